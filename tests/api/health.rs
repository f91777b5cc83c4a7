use crate::helpers::{assert_problem, spawn_app, spawn_app_with};
use figment::providers::Serialized;

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    let resp = app.get("/healthz").await;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn readyz_reports_the_configured_backends() {
    let app = spawn_app().await;
    let resp = app.get("/readyz").await;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    let expected_db = if std::env::var("DATABASE_URL").is_ok_and(|u| u.starts_with("postgres")) {
        "postgres"
    } else {
        "sqlite"
    };
    assert_eq!(body["database"], expected_db);
    let expected_store = if std::env::var("REDIS_URL").is_ok() {
        "redis"
    } else {
        "memory"
    };
    assert_eq!(body["store"], expected_store);
}

#[tokio::test]
async fn readyz_is_503_naming_redis_when_redis_is_unreachable() {
    // Port 1 on loopback: nothing listens there, so every connection is refused.
    let app =
        spawn_app_with(|f| f.merge(Serialized::default("redis.url", "redis://127.0.0.1:1"))).await;
    let problem = assert_problem(app.get("/readyz").await, 503).await;
    assert_eq!(problem["detail"], "redis store unreachable");
}

#[tokio::test]
async fn readyz_is_503_when_the_database_is_gone() {
    let app = spawn_app().await;
    app.state.db.clone().close().await.unwrap();
    let problem = assert_problem(app.get("/readyz").await, 503).await;
    assert_eq!(problem["detail"], "database unreachable");
}

#[tokio::test]
async fn shutdown_lets_the_server_stop_cleanly() {
    let app = spawn_app().await;
    let address = app.address.clone();
    assert_eq!(app.get("/healthz").await.status(), 200);
    app.shutdown().await.expect("server stops without error");
    let after = reqwest::get(format!("{address}/healthz")).await;
    assert!(after.is_err(), "no longer listening after shutdown");
}
