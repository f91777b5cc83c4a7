//! Access token verification: `just bench` (or `cargo bench --bench tokens`).
//!
//! - `verify_signed`: EdDSA signature and every claim, as the first request with a token pays.
//! - `verify_cached`: the same token again (SHA-256 of the token, a cache lookup, the time).
use criterion::{Criterion, criterion_group, criterion_main};
use ironquill::{
    auth::tokens::TokenIssuer,
    config::{AppEnv, Settings},
};

fn bench(c: &mut Criterion) {
    let settings =
        Settings::from_figment(Settings::figment(AppEnv::Test), AppEnv::Test).expect("settings");
    let url = url::Url::parse("https://iq.example").expect("url");
    let issuer = TokenIssuer::from_settings(&settings, &url).expect("issuer");
    let (token, _) = issuer
        .issue(uuid::Uuid::now_v7(), uuid::Uuid::now_v7())
        .expect("token");
    c.bench_function("verify_signed", |b| {
        b.iter(|| {
            issuer
                .verify_signed(std::hint::black_box(&token))
                .expect("valid")
        })
    });
    c.bench_function("verify_cached", |b| {
        b.iter(|| issuer.verify(std::hint::black_box(&token)).expect("valid"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
