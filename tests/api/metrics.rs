//! Prometheus metrics on their own listener: counters move with the traffic that should move
//! them, labels are bounded, and no credential ever appears.
use figment::providers::Serialized;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app_with};

async fn app_with_metrics() -> TestApp {
    spawn_app_with(|f| {
        f.merge(Serialized::default("metrics.listen", "127.0.0.1:0"))
            .merge(Serialized::default(
                "rate_limit.auth",
                json!({"requests": 1, "window_secs": 60}),
            ))
    })
    .await
}

async fn scrape(app: &TestApp) -> String {
    let url = format!(
        "{}/metrics",
        app.metrics_address.as_ref().expect("metrics on")
    );
    let resp = app.client.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    resp.text().await.unwrap()
}

/// The value of the series `name` whose labels include every `labels` pair (0 if absent).
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|line| {
            labels
                .iter()
                .all(|(k, v)| line.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn metrics_are_served_only_on_their_own_listener() {
    let app = app_with_metrics().await;
    assert!(scrape(&app).await.contains("db_pool_connections"));
    let public = app.get("/metrics").await;
    assert_eq!(public.status(), 404);
    // Off unless configured.
    let plain = spawn_app_with(|f| f).await;
    assert!(plain.metrics_address.is_none());
}

#[tokio::test]
async fn counters_move_with_the_traffic_and_labels_stay_bounded() {
    let app = app_with_metrics().await;
    let owner = app.bootstrap("acme", "owner@example.com").await;
    let reader = app.add_user("acme", "viewer@example.com", "viewer").await;
    let before = scrape(&app).await;

    for _ in 0..3 {
        assert_eq!(app.get_me(&owner.api_key).await.status(), 200);
    }
    let wrong = "iq_0000000000000000_wrongwrongwrongwrongwrongwrongwrongwrongwr";
    assert_eq!(app.get_me(wrong).await.status(), 401);
    let denied = app
        .create_post(
            &reader.api_key,
            "acme",
            &json!({"title": "t", "slug": "s", "body": "b"}),
        )
        .await;
    assert_eq!(denied.status(), 403);
    for _ in 0..2 {
        app.client
            .post(app.url("/auth/refresh"))
            .header("x-refresh-token", "iqr_unknown")
            .send()
            .await
            .unwrap();
    }
    app.get("/no/such/path/12345").await;

    let after = scrape(&app).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    let me = [
        ("route", "/api/v1/me"),
        ("method", "GET"),
        ("status", "200"),
    ];
    assert!(moved("http_requests_total", &me) >= 3.0);
    assert!(
        moved(
            "http_request_duration_seconds_count",
            &[("route", "/api/v1/me")]
        ) >= 3.0
    );
    assert!(
        moved(
            "auth_failures_total",
            &[("credential", "api_key"), ("reason", "rejected")]
        ) >= 1.0
    );
    assert!(
        moved(
            "auth_failures_total",
            &[("credential", "refresh_token"), ("reason", "unknown")]
        ) >= 1.0
    );
    assert!(moved("authz_denied_total", &[("permission", "posts:create")]) >= 1.0);
    assert!(moved("rate_limited_total", &[("policy", "auth")]) >= 1.0);
    assert!(moved("http_requests_total", &[("route", "unmatched")]) >= 1.0);
    // Templates, never raw paths or credentials.
    assert!(!after.contains("/no/such/path"));
    assert!(!after.contains("/api/v1/tenants/acme"));
    assert!(after.contains("/api/v1/tenants/{tenant}/posts"));
    for secret in [
        owner.api_key.as_str(),
        reader.api_key.as_str(),
        wrong,
        "iqr_unknown",
    ] {
        assert!(!after.contains(secret));
    }
}
