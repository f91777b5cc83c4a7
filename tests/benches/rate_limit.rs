//! Rate limiter cost per decision: `just bench` (or `cargo bench --bench rate_limit`).
//!
//! - `limit_in_process`: one GCRA decision in the in-process limiter (governor), over 1,000
//!   client addresses.
//! - `limit_redis`: the same decision shared through Redis (one `EVALSHA` round trip), when
//!   `REDIS_URL` is set or Redis answers on 127.0.0.1:6379; skipped otherwise.
//!
//! An authenticated request takes two decisions (per address, per principal); an anonymous
//! one, one.
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use ironquill::{
    config::{AppEnv, Settings},
    ratelimit::{Policy, RateLimiter},
    store::{EphemeralStore, MemoryStore, RedisStore, Store},
};

fn addresses() -> Vec<String> {
    (0..1000)
        .map(|n| format!("198.51.{}.{}", n / 256, n % 256))
        .collect()
}

fn run(c: &mut Criterion, rt: &tokio::runtime::Runtime, name: &str, limiter: Arc<RateLimiter>) {
    let clients = addresses();
    let mut next = 0usize;
    c.bench_function(name, |b| {
        b.to_async(rt).iter(|| {
            next = (next + 1) % clients.len();
            let (limiter, client) = (limiter.clone(), &clients[next]);
            async move {
                let decision = limiter.check(Policy::PerIp, client).await;
                assert!(decision.allowed);
            }
        })
    });
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let settings =
        Settings::from_figment(Settings::figment(AppEnv::Test), AppEnv::Test).expect("settings");
    let limits = &settings.rate_limit;
    let local = RateLimiter::new(limits, &Store::Memory(MemoryStore::new(1000)));
    run(c, &rt, "limit_in_process", local);

    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let redis = RedisStore::new(&url, "iq-bench:").expect("redis url");
    if rt.block_on(redis.ping()).is_err() {
        eprintln!("limit_redis skipped: no Redis at {url}");
        return;
    }
    let shared = RateLimiter::new(limits, &Store::Redis(redis));
    run(c, &rt, "limit_redis", shared);
}

criterion_group!(benches, bench);
criterion_main!(benches);
