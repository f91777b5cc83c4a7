//! Rate limits, driven over HTTP with small quotas: each trips with 429 and the
//! `RateLimit-Policy` / `RateLimit` fields, and recovers after its window. The test client plays
//! a trusted proxy, so `X-Forwarded-For` picks the client address of each request.
use std::time::Duration;

use figment::providers::Serialized;
use serde_json::{Value, json};

use crate::{
    fakes::{Browser, oidc::FakeOidc},
    helpers::{TestApp, assert_problem, shared_backends, spawn_app_with, spawn_sibling},
};

const ALICE: &str = "198.51.100.7";
const BOB: &str = "203.0.113.9";

/// Quotas of `changes` over generous ones, behind a trusted proxy on 127.0.0.1.
fn limits(changes: Value) -> impl FnOnce(figment::Figment) -> figment::Figment {
    move |mut f| {
        f = f.merge(Serialized::default(
            "server.trusted_proxies",
            vec!["127.0.0.1/32"],
        ));
        for (key, value) in changes.as_object().into_iter().flatten() {
            f = f.merge(Serialized::default(&format!("rate_limit.{key}"), value));
        }
        f
    }
}

async fn limited_app(changes: Value) -> TestApp {
    spawn_app_with(limits(changes)).await
}

fn quota(requests: u32, window_secs: u64) -> Value {
    json!({"requests": requests, "window_secs": window_secs})
}

async fn get_from(app: &TestApp, path: &str, client: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .header("x-forwarded-for", client)
        .send()
        .await
        .unwrap()
}

async fn get_with_key_from(app: &TestApp, key: &str, client: &str) -> reqwest::Response {
    app.client
        .get(app.url("/api/v1/me"))
        .header("authorization", format!("apikey {key}"))
        .header("x-forwarded-for", client)
        .send()
        .await
        .unwrap()
}

fn field(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// A 429 problem naming `policy` in both fields, with `Retry-After`; returns its seconds.
async fn assert_limited(resp: reqwest::Response, policy: &str) -> u64 {
    let retry: u64 = field(&resp, "retry-after")
        .parse()
        .expect("Retry-After seconds");
    assert!(retry >= 1);
    let state = field(&resp, "ratelimit");
    assert!(
        state.contains(&format!("\"{policy}\";r=0;t={retry}")),
        "RateLimit: {state}"
    );
    assert!(
        field(&resp, "ratelimit-policy").contains(&format!("\"{policy}\";q=")),
        "RateLimit-Policy: {}",
        field(&resp, "ratelimit-policy")
    );
    assert_problem(resp, 429).await;
    retry
}

#[tokio::test]
async fn every_request_from_one_address_is_limited_and_the_limit_recovers() {
    let app = limited_app(json!({"per_ip": quota(3, 1)})).await;
    for remaining in [2, 1, 0] {
        let resp = get_from(&app, "/auth/providers", ALICE).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(field(&resp, "ratelimit-policy"), "\"ip\";q=3;w=1");
        assert!(
            field(&resp, "ratelimit").starts_with(&format!("\"ip\";r={remaining};t=")),
            "{}",
            field(&resp, "ratelimit")
        );
    }
    assert_limited(get_from(&app, "/auth/providers", ALICE).await, "ip").await;
    // Every path counts, anonymous or not; another address has its own budget.
    assert_limited(get_from(&app, "/api/v1/me", ALICE).await, "ip").await;
    assert_eq!(get_from(&app, "/auth/providers", BOB).await.status(), 200);
    // The liveness probe is never limited, and says nothing about limits.
    let health = get_from(&app, "/healthz", ALICE).await;
    assert_eq!(health.status(), 200);
    assert!(health.headers().get("ratelimit").is_none());
    // One request's allowance comes back after a third of the window.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(get_from(&app, "/auth/providers", ALICE).await.status(), 200);
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_does_not_change_the_bucket() {
    // No trusted proxy: the header is the client's own words.
    let app =
        spawn_app_with(|f| f.merge(Serialized::default("rate_limit.per_ip", quota(2, 60)))).await;
    for spoofed in [ALICE, BOB] {
        assert_eq!(
            get_from(&app, "/auth/providers", spoofed).await.status(),
            200
        );
    }
    assert_limited(get_from(&app, "/auth/providers", "192.0.2.1").await, "ip").await;
}

#[tokio::test]
async fn authenticated_requests_are_limited_per_principal() {
    // Two requests per two seconds: one allowance comes back each second.
    let app = limited_app(json!({"per_principal": quota(2, 2)})).await;
    let owner = app.bootstrap("acme", "owner@example.com").await;
    let other = app.bootstrap("globex", "other@example.com").await;
    for _ in 0..2 {
        let resp = get_with_key_from(&app, &owner.api_key, ALICE).await;
        assert_eq!(resp.status(), 200);
        assert!(field(&resp, "ratelimit-policy").contains("\"principal\";q=2;w=2"));
    }
    // The key's budget follows it from any address; other principals are not affected.
    assert_limited(
        get_with_key_from(&app, &owner.api_key, BOB).await,
        "principal",
    )
    .await;
    assert_eq!(
        get_with_key_from(&app, &other.api_key, ALICE)
            .await
            .status(),
        200
    );
    // A user's sessions share one budget.
    let session = app.session_for(owner.user_id);
    let me = |token: String| {
        app.client
            .get(app.url("/api/v1/me"))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(me(session.clone()).await.unwrap().status(), 200);
    assert_eq!(
        me(app.session_for(owner.user_id)).await.unwrap().status(),
        200
    );
    assert_limited(me(session.clone()).await.unwrap(), "principal").await;
    // Both budgets recover after their window.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(me(session).await.unwrap().status(), 200);
    assert_eq!(
        get_with_key_from(&app, &owner.api_key, ALICE)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn logins_callbacks_and_refreshes_have_a_strict_bucket_per_address() {
    let app = limited_app(json!({"auth": quota(2, 2)})).await;
    let refresh = |client: &'static str| {
        app.client
            .post(app.url("/auth/refresh"))
            .header("x-refresh-token", "iqr_not-a-token")
            .header("x-forwarded-for", client)
            .send()
    };
    assert_eq!(refresh(ALICE).await.unwrap().status(), 401);
    assert_eq!(
        get_from(&app, "/auth/callback/none?state=x&code=y", ALICE)
            .await
            .status(),
        400,
        "a callback without its login cookie, but counted"
    );
    assert_limited(refresh(ALICE).await.unwrap(), "auth").await;
    assert_limited(get_from(&app, "/auth/login/none", ALICE).await, "auth").await;
    // Only those endpoints: the rest of the service still answers that address.
    assert_eq!(get_from(&app, "/auth/providers", ALICE).await.status(), 200);
    assert_eq!(refresh(BOB).await.unwrap().status(), 401);
    // An allowance comes back after half the window.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(refresh(ALICE).await.unwrap().status(), 401);
}

#[tokio::test]
async fn the_token_endpoint_has_the_strict_bucket_and_a_wrong_key_there_counts_as_failed() {
    let app = limited_app(json!({
        "auth": quota(3, 60),
        "failed_auth": quota(1, 60),
        "failed_auth_cooldown_secs": 60,
    }))
    .await;
    let owner = app.bootstrap("acme", "owner@example.com").await;
    let token = |client: &'static str, key: &str| {
        app.client
            .post(app.url("/oauth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "apikey"),
                ("client_secret", key),
            ])
            .header("x-forwarded-for", client)
            .send()
    };
    assert_eq!(token(ALICE, &owner.api_key).await.unwrap().status(), 200);
    assert_eq!(token(ALICE, &owner.api_key).await.unwrap().status(), 200);
    assert_eq!(token(ALICE, &owner.api_key).await.unwrap().status(), 200);
    assert_limited(token(ALICE, &owner.api_key).await.unwrap(), "auth").await;
    // Wrong keys in the form (no Authorization header) cool the address down like any other.
    assert_eq!(token(BOB, "iq_wrong").await.unwrap().status(), 401);
    assert_eq!(token(BOB, "iq_wrong").await.unwrap().status(), 401);
    assert_limited(token(BOB, &owner.api_key).await.unwrap(), "failed-auth").await;
}

#[tokio::test]
async fn failed_authentications_cool_the_address_down_whatever_it_sends_next() {
    let app = limited_app(json!({
        "failed_auth": quota(3, 60),
        "failed_auth_cooldown_secs": 1,
    }))
    .await;
    let owner = app.bootstrap("acme", "owner@example.com").await;
    let forged = |n: usize| format!("iq_{n:0>40}");
    // Past the threshold the wrong keys stop being answered with 401...
    let mut statuses = Vec::new();
    for n in 0..8 {
        statuses.push(
            get_with_key_from(&app, &forged(n), ALICE)
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [401, 401, 401, 401, 429, 429, 429, 429]);
    // ...and so is the right one: a brute force cannot tell when it has found it.
    let retry = assert_limited(
        get_with_key_from(&app, &owner.api_key, ALICE).await,
        "failed-auth",
    )
    .await;
    assert_eq!(retry, 1);
    // Every path that looks at a credential is closed to it, the landing page included.
    let landing = app
        .client
        .get(app.url("/"))
        .header("authorization", format!("apikey {}", owner.api_key))
        .header("x-forwarded-for", ALICE)
        .send()
        .await
        .unwrap();
    assert_eq!(landing.status(), 429);
    // A bad bearer token and a bad refresh token count the same way (from another address).
    for _ in 0..4 {
        let resp = app
            .client
            .get(app.url("/api/v1/me"))
            .bearer_auth("not.a.token")
            .header("x-forwarded-for", BOB)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
    }
    let refresh = app
        .client
        .post(app.url("/auth/refresh"))
        .header("x-refresh-token", "iqr_unknown")
        .header("x-forwarded-for", BOB)
        .send()
        .await
        .unwrap();
    assert_limited(refresh, "failed-auth").await;
    // Requests without a credential still go through, and other addresses are unaffected.
    assert_eq!(get_from(&app, "/auth/providers", ALICE).await.status(), 200);
    assert_eq!(
        get_with_key_from(&app, &owner.api_key, "192.0.2.1")
            .await
            .status(),
        200
    );
    // The cooling period ends.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        get_with_key_from(&app, &owner.api_key, ALICE)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn an_expired_access_token_is_not_counted_as_a_failed_authentication() {
    let app = limited_app(json!({"failed_auth": quota(1, 60)})).await;
    let owner = app.bootstrap("acme", "owner@example.com").await;
    let base = app
        .state
        .public_url
        .as_str()
        .trim_end_matches('/')
        .to_owned();
    let past = chrono::Utc::now().timestamp() - 3600;
    let expired = crate::helpers::mint_token(
        Some("at+jwt"),
        &json!({"iss": base, "aud": format!("{base}/api"), "sub": owner.user_id,
                "sid": uuid::Uuid::now_v7(), "jti": uuid::Uuid::now_v7(),
                "iat": past, "nbf": past, "exp": past + 60}),
    );
    for _ in 0..5 {
        let resp = app
            .client
            .get(app.url("/api/v1/me"))
            .bearer_auth(&expired)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
    }
    let me = app
        .client
        .get(app.url("/api/v1/me"))
        .bearer_auth(app.session_for(owner.user_id))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
}

#[tokio::test]
async fn a_login_flow_flood_no_longer_locks_out_a_real_login() {
    let idp = FakeOidc::start().await;
    let app = spawn_app_with(|f| {
        limits(json!({"login_flows_per_ip": 5, "login_flows_total": 20}))(f)
            .merge(Serialized::default("auth.providers.fake", idp.settings()))
    })
    .await;
    // A real user starts logging in, then someone floods the login endpoint.
    let mut early = Browser::default();
    let early_callback = early.follow_to_callback(&app, "fake").await;
    let mut started = 0;
    for _ in 0..40 {
        let resp = get_from(&app, "/auth/login/fake", ALICE).await;
        match resp.status().as_u16() {
            302 => started += 1,
            _ => {
                assert_limited(resp, "login-flows").await;
            }
        }
    }
    assert_eq!(started, 5, "one address starts at most its quota of flows");
    // Other users log in as usual, and the flow started before the flood still completes.
    assert_eq!(Browser::default().login(&app, "fake").await.status(), 200);
    assert_eq!(early.get(&app, &early_callback).await.status(), 200);

    // Spread over many addresses, the flood meets the total cap: new flows wait, but none
    // already started is crowded out.
    let mut pending = Browser::default();
    let pending_callback = pending.follow_to_callback(&app, "fake").await;
    let mut refused_total = false;
    for n in 0..40 {
        let resp = get_from(&app, "/auth/login/fake", &format!("192.0.2.{n}")).await;
        if resp.status() == 429 {
            assert_limited(resp, "login-flows-total").await;
            refused_total = true;
        }
    }
    assert!(refused_total, "the total cap was reached");
    assert_eq!(pending.get(&app, &pending_callback).await.status(), 200);
}

#[tokio::test]
async fn two_instances_sharing_redis_share_one_budget() {
    if !shared_backends() {
        eprintln!("skipped: needs DATABASE_URL=postgres://… and REDIS_URL (run by .ci/run)");
        return;
    }
    let first = limited_app(json!({"per_ip": quota(4, 60)})).await;
    let second = spawn_sibling(&first).await;
    for app in [&first, &second, &first, &second] {
        assert_eq!(get_from(app, "/auth/providers", ALICE).await.status(), 200);
    }
    assert_limited(get_from(&second, "/auth/providers", ALICE).await, "ip").await;
    assert_limited(get_from(&first, "/auth/providers", ALICE).await, "ip").await;
    assert_eq!(get_from(&first, "/auth/providers", BOB).await.status(), 200);
}

#[tokio::test]
async fn with_redis_unreachable_the_in_process_limit_still_holds() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let app = spawn_app_with(|f| {
        limits(json!({"per_ip": quota(2, 60)}))(f)
            .merge(Serialized::default(
                "redis.url",
                format!("redis://127.0.0.1:{port}"),
            ))
            .merge(Serialized::default("redis.key_prefix", "iq-down:"))
    })
    .await;
    for _ in 0..2 {
        assert_eq!(get_from(&app, "/auth/providers", ALICE).await.status(), 200);
    }
    assert_limited(get_from(&app, "/auth/providers", ALICE).await, "ip").await;
    assert_eq!(get_from(&app, "/auth/providers", BOB).await.status(), 200);
}

#[tokio::test]
async fn a_garbage_refresh_token_is_refused_without_taking_the_write_lock() {
    if std::env::var("DATABASE_URL").is_ok_and(|u| u.starts_with("postgres")) {
        eprintln!("skipped: PostgreSQL has no database-wide write lock to observe");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/iq.db?mode=rwc", dir.path().display());
    let app = spawn_app_with(|f| {
        f.merge(Serialized::default("database.url", &url))
            .merge(Serialized::default("database.max_connections", 4))
    })
    .await;
    // Another writer holds SQLite's single write lock (a refresh that wrote would wait for it).
    use sea_orm::ConnectionTrait;
    let writer = sea_orm::Database::connect(&url).await.unwrap();
    writer.execute_unprepared("BEGIN IMMEDIATE").await.unwrap();
    let resp = app
        .client
        .post(app.url("/auth/refresh"))
        .header("x-refresh-token", format!("iqr_{}", "A".repeat(43)))
        .send()
        .await
        .unwrap();
    // Not a 503 after the busy timeout: refused on a read.
    assert_problem(resp, 401).await;
    writer.execute_unprepared("ROLLBACK").await.unwrap();
}

#[tokio::test]
async fn readyz_warns_when_redis_may_evict_revocations() {
    if !shared_backends() {
        eprintln!("skipped: needs REDIS_URL (run by .ci/run)");
        return;
    }
    let app = limited_app(json!({})).await;
    let warnings = |body: Value| body["warnings"].as_array().cloned().unwrap_or_default();
    let policy = |value: &str| {
        let url = std::env::var("REDIS_URL").unwrap();
        let client = deadpool_redis::redis::Client::open(url).unwrap();
        let mut conn = client.get_connection().unwrap();
        deadpool_redis::redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory-policy")
            .arg(value)
            .exec(&mut conn)
            .unwrap();
    };
    let ready: Value = app.get("/readyz").await.json().await.unwrap();
    assert_eq!(
        warnings(ready),
        Vec::<Value>::new(),
        "noeviction: no warning"
    );
    // No maxmemory is set here, so nothing is evicted while the policy is changed.
    policy("allkeys-lru");
    let ready: Value = app.get("/readyz").await.json().await.unwrap();
    policy("noeviction");
    let warned = warnings(ready);
    assert_eq!(warned.len(), 1);
    assert!(warned[0].as_str().unwrap().contains("allkeys-lru"));
}

#[tokio::test]
async fn each_key_draws_its_tokens_from_its_own_budget() {
    const GRANT: &[(&str, &str)] = &[("grant_type", "client_credentials")];
    let app = limited_app(json!({"per_principal": quota(2, 60)})).await;
    let owner = app.bootstrap("acme", "owner@example.com").await;
    let other = app.bootstrap("globex", "other@example.com").await;
    for _ in 0..2 {
        let issued = app.request_token(GRANT, Some(&owner.api_key)).await;
        assert_eq!(issued.status(), 200);
    }
    assert_limited(
        app.request_token(GRANT, Some(&owner.api_key)).await,
        "principal",
    )
    .await;
    let others = app.request_token(GRANT, Some(&other.api_key)).await;
    assert_eq!(others.status(), 200, "another key's budget");
}
