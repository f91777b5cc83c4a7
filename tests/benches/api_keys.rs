//! API key verification cost: `just bench` (or `cargo bench --bench api_keys`).
//!
//! - `parse_and_hash`: format and checksum check plus SHA-256, no I/O.
//! - `verify_cached`: the whole path for a key verified moments ago (cache hit, constant-time
//!   compare, revocation-marker check in the in-process store): no database round-trip.
//! - `verify_unknown_key`: a well-formed key that is not in the database (one indexed lookup).
use criterion::{Criterion, criterion_group, criterion_main};
use ironquill::{
    app::AppState,
    auth::api_keys::token,
    config::{AppEnv, Settings},
};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (state, key, unknown) = rt.block_on(async {
        let settings = Settings::from_figment(Settings::figment(AppEnv::Test), AppEnv::Test)
            .expect("settings");
        let state = AppState::connect(settings).await.expect("state");
        let issued = ironquill::admin::bootstrap(&state, "bench", "bench@example.com")
            .await
            .expect("bootstrap");
        let unknown = {
            use secrecy::ExposeSecret;
            token::generate().secret.expose_secret().to_owned()
        };
        (state, issued.api_key, unknown)
    });

    c.bench_function("parse_and_hash", |b| {
        b.iter(|| {
            token::parse(std::hint::black_box(&key))
                .expect("valid")
                .hash()
        })
    });
    c.bench_function("verify_cached", |b| {
        b.to_async(&rt).iter(|| async {
            let principal = state
                .keys
                .verify(std::hint::black_box(&key), None)
                .await
                .expect("verify");
            assert!(principal.is_some());
        })
    });
    c.bench_function("verify_unknown_key", |b| {
        b.to_async(&rt).iter(|| async {
            let principal = state
                .keys
                .verify(std::hint::black_box(&unknown), None)
                .await
                .expect("verify");
            assert!(principal.is_none());
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
