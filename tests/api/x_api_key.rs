//! `X-API-Key: <key>`: the key exactly as the CLI prints it, under the same rules as
//! `Authorization: apikey` (permissions, allowed networks, failed-authentication limits), and
//! never together with `Authorization`.
use figment::providers::Serialized;
use serde_json::json;

use crate::helpers::{TestApp, assert_problem, spawn_app, spawn_app_with};

async fn get_with_x_api_key(app: &TestApp, path: &str, key: &str) -> reqwest::Response {
    app.with_x_api_key(reqwest::Method::GET, path, key)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_key_as_the_cli_prints_it_works_in_x_api_key() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "owner@example.com").await;
    let me = get_with_x_api_key(&app, "/api/v1/me", &owner.api_key).await;
    assert_eq!(me.status(), 200);
    let posts = get_with_x_api_key(&app, "/api/v1/tenants/acme/posts", &owner.api_key).await;
    assert_eq!(posts.status(), 200);
    let created = app
        .with_x_api_key(
            reqwest::Method::POST,
            "/api/v1/tenants/acme/posts",
            &owner.api_key,
        )
        .json(&crate::helpers::draft("by-header"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
}

#[tokio::test]
async fn a_read_only_key_in_x_api_key_still_cannot_write() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "owner@example.com").await;
    let created = app
        .new_key(
            &owner.api_key,
            &json!({"label": "ro", "tenant": "acme", "permissions": ["read"]}),
        )
        .await;
    let key = created["api_key"].as_str().unwrap();
    assert_eq!(
        get_with_x_api_key(&app, "/api/v1/tenants/acme/posts", key)
            .await
            .status(),
        200
    );
    let resp = app
        .with_x_api_key(reqwest::Method::POST, "/api/v1/tenants/acme/posts", key)
        .json(&crate::helpers::draft("nope"))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 403).await;
}

#[tokio::test]
async fn authorization_and_x_api_key_together_are_refused_not_guessed() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "owner@example.com").await;
    let resp = app
        .with_key(reqwest::Method::GET, "/api/v1/me", &owner.api_key)
        .header("x-api-key", &owner.api_key)
        .send()
        .await
        .unwrap();
    let problem = assert_problem(resp, 400).await;
    assert!(problem["detail"].as_str().unwrap().contains("not both"));
    let twice = app
        .client
        .get(app.url("/api/v1/me"))
        .header("x-api-key", &owner.api_key)
        .header("x-api-key", &owner.api_key)
        .send()
        .await
        .unwrap();
    assert_problem(twice, 400).await;
}

#[tokio::test]
async fn wrong_keys_in_x_api_key_count_as_failed_authentications() {
    let app = spawn_app_with(|f| {
        f.merge(Serialized::default(
            "rate_limit.failed_auth",
            json!({"requests": 2, "window_secs": 60}),
        ))
    })
    .await;
    let owner = app.bootstrap("acme", "owner@example.com").await;
    let mut statuses = Vec::new();
    for n in 0..5 {
        let forged = format!("iq_{n:0>40}");
        statuses.push(
            get_with_x_api_key(&app, "/api/v1/me", &forged)
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
    // The address is cooling down: the right key in the new header is turned away too.
    let resp = get_with_x_api_key(&app, "/api/v1/me", &owner.api_key).await;
    assert_problem(resp, 429).await;
}

#[tokio::test]
async fn a_key_confined_to_other_networks_is_refused_in_x_api_key_too() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "owner@example.com").await;
    let created = app
        .new_key(
            &owner.api_key,
            &json!({"label": "elsewhere", "tenant": "acme", "permissions": ["read"],
                    "allowed_ips": ["198.51.100.0/24"]}),
        )
        .await;
    let key = created["api_key"].as_str().unwrap();
    assert_problem(get_with_x_api_key(&app, "/api/v1/me", key).await, 401).await;
}
