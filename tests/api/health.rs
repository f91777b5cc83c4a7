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

/// This machine's address on its default route, if it has one that is not loopback.
fn non_loopback_address() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    // Connecting a UDP socket sends nothing; it only picks the route and its source address.
    socket.connect("203.0.113.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test]
async fn readyz_tells_only_callers_on_this_machine_what_runs_and_what_is_down() {
    let Some(ip) = non_loopback_address() else {
        eprintln!("skipped: this machine has no non-loopback address to call readyz from");
        return;
    };
    let app = spawn_app_with(|f| {
        f.merge(Serialized::default("server.host", "0.0.0.0"))
            .merge(Serialized::default("redis.url", "redis://127.0.0.1:1"))
    })
    .await;
    let port = app.address.rsplit(':').next().unwrap().to_owned();
    let remote = format!("http://{ip}:{port}/readyz");
    let problem = assert_problem(app.client.get(&remote).send().await.unwrap(), 503).await;
    assert_eq!(problem["detail"], "not ready");
    // From loopback the name of what is down is given.
    let problem = assert_problem(app.get("/readyz").await, 503).await;
    assert_eq!(problem["detail"], "redis store unreachable");

    let app = spawn_app_with(|f| f.merge(Serialized::default("server.host", "0.0.0.0"))).await;
    let port = app.address.rsplit(':').next().unwrap().to_owned();
    let resp = app
        .client
        .get(format!("http://{ip}:{port}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "ready"}));
}
