//! Keys confined to client networks (`allowed_ips`). The test client, on loopback, plays a
//! trusted proxy, so `X-Forwarded-For` sets the client address of each request.
use figment::providers::Serialized;
use ironquill::auth::api_keys::KeyVerifier;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, id_of, spawn_app_with};

const KEYS: &str = "/api/v1/me/api-keys";
const INSIDE: &str = "198.51.100.7";
const OUTSIDE: &str = "203.0.113.9";

async fn behind_proxy() -> TestApp {
    spawn_app_with(|f| {
        f.merge(Serialized::default(
            "server.trusted_proxies",
            vec!["127.0.0.1/32"],
        ))
    })
    .await
}

/// `method path` with `key`, sent by a client at `client`.
fn from(
    app: &TestApp,
    client: &str,
    method: Method,
    path: &str,
    key: &str,
) -> reqwest::RequestBuilder {
    app.with_key(method, path, key)
        .header("x-forwarded-for", client)
}

async fn me_from(app: &TestApp, client: &str, key: &str) -> reqwest::Response {
    from(app, client, Method::GET, "/api/v1/me", key)
        .send()
        .await
        .unwrap()
}

async fn create_key_from(
    app: &TestApp,
    client: &str,
    key: &str,
    body: &Value,
) -> reqwest::Response {
    from(app, client, Method::POST, KEYS, key)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn rotate_key_from(
    app: &TestApp,
    client: &str,
    key: &str,
    id: &str,
    body: Option<&Value>,
) -> reqwest::Response {
    let req = from(
        app,
        client,
        Method::POST,
        &format!("{KEYS}/{id}/rotate"),
        key,
    );
    match body {
        Some(body) => req.json(body),
        None => req,
    }
    .send()
    .await
    .unwrap()
}

fn read_write(label: &str, allowed_ips: Value) -> Value {
    json!({"label": label, "tenant": "acme", "permissions": ["read", "write"], "allowed_ips": allowed_ips})
}

fn secret(created: &Value) -> &str {
    created["api_key"].as_str().unwrap()
}

#[tokio::test]
async fn a_key_works_only_from_its_allowed_networks_in_either_ip_version() {
    let app = behind_proxy().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let created = app
        .new_key(
            &owner.api_key,
            &read_write("ci", json!(["198.51.100.0/24", "2001:db8:1::/48"])),
        )
        .await;
    let key = secret(&created);
    for inside in [INSIDE, "2001:db8:1::5", "::ffff:198.51.100.200"] {
        assert_eq!(me_from(&app, inside, key).await.status(), 200, "{inside}");
    }
    for outside in [
        OUTSIDE,
        "198.51.101.7",
        "2001:db8:2::5",
        "::ffff:203.0.113.9",
    ] {
        assert_problem(me_from(&app, outside, key).await, 401).await;
    }
    // No forwarded address: the client is the proxy on loopback, outside too.
    assert_problem(app.get_me(key).await, 401).await;
    // An unrestricted key works from anywhere.
    assert_eq!(me_from(&app, OUTSIDE, &owner.api_key).await.status(), 200);
}

#[tokio::test]
async fn use_from_outside_gets_the_wrong_key_answer_and_is_not_recorded() {
    let app = behind_proxy().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let created = app
        .new_key(&owner.api_key, &read_write("ci", json!([INSIDE])))
        .await;
    let key = secret(&created);
    let outside = me_from(&app, OUTSIDE, key).await;
    let challenge = outside.headers().get("www-authenticate").cloned();
    let outside = assert_problem(outside, 401).await;

    let mut wrong = key.to_owned();
    wrong.replace_range(20..21, if &key[20..21] == "a" { "b" } else { "a" });
    let wrong_key = me_from(&app, INSIDE, &wrong).await;
    assert_eq!(
        wrong_key.headers().get("www-authenticate").cloned(),
        challenge
    );
    let wrong_key = assert_problem(wrong_key, 401).await;
    assert_eq!(outside["detail"], wrong_key["detail"]);
    assert_eq!(outside["title"], wrong_key["title"]);

    assert_eq!(
        app.last_used_at(id_of(&created)).await,
        None,
        "a refused use is not recorded"
    );
    // From inside, on a cache miss (as on another instance), the use is recorded.
    let verifier = KeyVerifier::new(app.db.clone(), app.state.store.clone());
    let principal = verifier.verify(key, INSIDE.parse().ok()).await.unwrap();
    assert!(principal.is_some());
    assert!(app.last_used_at(id_of(&created)).await.is_some());
}

#[tokio::test]
async fn a_cached_key_is_still_refused_from_outside() {
    let app = behind_proxy().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let created = app
        .new_key(
            &owner.api_key,
            &read_write("ci", json!(["198.51.100.0/24"])),
        )
        .await;
    let key = secret(&created);
    assert_eq!(
        me_from(&app, INSIDE, key).await.status(),
        200,
        "verified, and now cached"
    );
    assert_problem(me_from(&app, OUTSIDE, key).await, 401).await;
    assert_eq!(me_from(&app, INSIDE, key).await.status(), 200);
}

#[tokio::test]
async fn networks_are_normalised_and_shown_in_lists() {
    let app = behind_proxy().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let created = app
        .new_key(
            &owner.api_key,
            &read_write(
                "ci",
                json!(["198.51.100.77/24", " 2001:db8::1 ", "198.51.100.0/24"]),
            ),
        )
        .await;
    let normalised = json!(["198.51.100.0/24", "2001:db8::1/128"]);
    assert_eq!(created["allowed_ips"], normalised);
    let anywhere = app
        .new_key(&owner.api_key, &read_write("anywhere", json!([])))
        .await;
    assert_eq!(
        anywhere["allowed_ips"],
        Value::Null,
        "empty: no restriction"
    );
    assert_eq!(
        me_from(&app, OUTSIDE, secret(&anywhere)).await.status(),
        200
    );

    let listed = app.listed_key(&owner.api_key, "ci").await;
    assert_eq!(listed["allowed_ips"], normalised);
    for label in ["anywhere", "cli:acme"] {
        let key = app.listed_key(&owner.api_key, label).await;
        assert!(key["allowed_ips"].is_null(), "{label}: {key}");
    }
}

#[tokio::test]
async fn invalid_networks_are_refused_naming_the_entry() {
    let app = behind_proxy().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let too_many: Vec<String> = (0..33).map(|i| format!("192.0.2.{i}")).collect();
    for (allowed_ips, field) in [
        (json!(["10.0.0.0/8", "10.0.0.0/33"]), "allowed_ips[1]"),
        (json!(["example.com"]), "allowed_ips[0]"),
        (json!(["2001:db8::/129"]), "allowed_ips[0]"),
        (json!([42]), "allowed_ips[0]"),
        (json!("10.0.0.0/8"), "allowed_ips"),
        (json!(too_many), "allowed_ips"),
    ] {
        let resp = app
            .create_key(&owner.api_key, &read_write("x", allowed_ips.clone()))
            .await;
        let problem = assert_problem(resp, 422).await;
        assert_eq!(problem["errors"][0]["field"], field, "{allowed_ips}");
    }
    let cli = app.listed_key(&owner.api_key, "cli:acme").await;
    let cli = id_of(&cli);
    let resp = rotate_key_from(
        &app,
        INSIDE,
        &owner.api_key,
        cli,
        Some(&json!({"allowed_ips": ["10.0.0.0/8", "nope"]})),
    )
    .await;
    let problem = assert_problem(resp, 422).await;
    assert_eq!(problem["errors"][0]["field"], "allowed_ips[1]");
    let resp = rotate_key_from(
        &app,
        INSIDE,
        &owner.api_key,
        cli,
        Some(&json!({"label": "x"})),
    )
    .await;
    assert_problem(resp, 422).await;
    assert_eq!(
        app.get_me(&owner.api_key).await.status(),
        200,
        "not rotated"
    );
}

#[tokio::test]
async fn rotation_keeps_the_networks_unless_the_body_replaces_them() {
    let app = behind_proxy().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let created = app
        .new_key(
            &owner.api_key,
            &read_write("ci", json!(["198.51.100.0/24"])),
        )
        .await;
    let id = id_of(&created);

    // No body at all, an empty object, an empty list: the networks stay.
    for body in [
        None,
        Some(json!({})),
        Some(json!({"allowed_ips": []})),
        Some(json!({"allowed_ips": null})),
    ] {
        let resp = rotate_key_from(&app, INSIDE, &owner.api_key, id, body.as_ref()).await;
        assert_eq!(resp.status(), 200, "{body:?}");
        let rotated: Value = resp.json().await.unwrap();
        assert_eq!(
            rotated["allowed_ips"],
            json!(["198.51.100.0/24"]),
            "{body:?}"
        );
        assert_eq!(me_from(&app, INSIDE, secret(&rotated)).await.status(), 200);
        assert_problem(me_from(&app, OUTSIDE, secret(&rotated)).await, 401).await;
    }

    let body = json!({"allowed_ips": ["203.0.113.0/24"]});
    let resp = rotate_key_from(&app, INSIDE, &owner.api_key, id, Some(&body)).await;
    assert_eq!(resp.status(), 200);
    let rotated: Value = resp.json().await.unwrap();
    assert_eq!(rotated["allowed_ips"], json!(["203.0.113.0/24"]));
    assert_eq!(me_from(&app, OUTSIDE, secret(&rotated)).await.status(), 200);
    assert_problem(me_from(&app, INSIDE, secret(&rotated)).await, 401).await;
    let listed = app.listed_key(&owner.api_key, "ci").await;
    assert_eq!(listed["allowed_ips"], json!(["203.0.113.0/24"]));
}

#[tokio::test]
async fn a_confined_key_cannot_grant_wider_networks_but_can_grant_narrower_ones() {
    let app = behind_proxy().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let confined = app
        .new_key(
            &owner.api_key,
            &read_write("ci", json!(["198.51.100.0/24", "2001:db8::/32"])),
        )
        .await;
    let confined = secret(&confined);

    for wider in [
        json!(["0.0.0.0/0"]),
        json!(["198.51.100.0/23"]),
        json!(["198.51.100.0/25", "203.0.113.0/24"]),
        json!(["2001:db9::/32"]),
        json!(["::ffff:0:0/96"]),
    ] {
        let resp =
            create_key_from(&app, INSIDE, confined, &read_write("wider", wider.clone())).await;
        let problem = assert_problem(resp, 403).await;
        assert!(
            problem["detail"].as_str().unwrap().contains("allowed_ips"),
            "{wider}: {problem}"
        );
    }

    let narrower = create_key_from(
        &app,
        INSIDE,
        confined,
        &read_write("narrower", json!(["198.51.100.128/25", "2001:db8:5::1"])),
    )
    .await;
    assert_eq!(narrower.status(), 201);
    let narrower: Value = narrower.json().await.unwrap();
    assert_eq!(
        narrower["allowed_ips"],
        json!(["198.51.100.128/25", "2001:db8:5::1/128"])
    );
    assert_problem(me_from(&app, INSIDE, secret(&narrower)).await, 401).await;
    assert_eq!(
        me_from(&app, "198.51.100.200", secret(&narrower))
            .await
            .status(),
        200
    );

    // Left out (or empty), the new key gets the confined key's own networks.
    for (label, body) in [
        (
            "inherits",
            json!({"label": "inherits", "tenant": "acme", "permissions": ["read"]}),
        ),
        ("inherits-too", read_write("inherits-too", json!([]))),
    ] {
        let resp = create_key_from(&app, INSIDE, confined, &body).await;
        assert_eq!(resp.status(), 201, "{label}");
        let inherited: Value = resp.json().await.unwrap();
        assert_eq!(
            inherited["allowed_ips"],
            json!(["198.51.100.0/24", "2001:db8::/32"])
        );
    }

    // Rotation too: not the owner's unrestricted key, not to a wider range.
    let cli = app.listed_key(&owner.api_key, "cli:acme").await;
    let cli = id_of(&cli);
    assert_problem(
        rotate_key_from(&app, INSIDE, confined, cli, None).await,
        403,
    )
    .await;
    assert_eq!(app.get_me(&owner.api_key).await.status(), 200, "untouched");
    let id = id_of(&narrower);
    let widen = json!({"allowed_ips": ["198.51.100.0/16"]});
    assert_problem(
        rotate_key_from(&app, INSIDE, confined, id, Some(&widen)).await,
        403,
    )
    .await;
    let narrow = json!({"allowed_ips": ["198.51.100.7"]});
    let resp = rotate_key_from(&app, INSIDE, confined, id, Some(&narrow)).await;
    assert_eq!(resp.status(), 200);
    let rotated: Value = resp.json().await.unwrap();
    assert_eq!(rotated["allowed_ips"], json!(["198.51.100.7/32"]));

    // The confined key itself, used from outside, can do nothing at all.
    let resp = create_key_from(&app, OUTSIDE, confined, &read_write("x", json!([INSIDE]))).await;
    assert_problem(resp, 401).await;
}
