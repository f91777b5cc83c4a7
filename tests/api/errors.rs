use futures_util::stream;

use crate::helpers::{assert_problem, draft, spawn_app, spawn_app_with};

#[tokio::test]
async fn unknown_route_is_a_404_problem() {
    let app = spawn_app().await;
    let problem = assert_problem(app.get("/no/such/route").await, 404).await;
    assert_eq!(problem["title"], "Not Found");
}

#[tokio::test]
async fn wrong_method_is_a_405_problem() {
    let app = spawn_app().await;
    let resp = app.client.delete(app.url("/healthz")).send().await.unwrap();
    assert_problem(resp, 405).await;
}

#[tokio::test]
async fn declared_oversized_body_is_a_413_problem() {
    let app = spawn_app().await;
    let limit = app.state.settings.server.body_limit_bytes;
    let resp = app
        .client
        .post(app.url("/healthz"))
        .header("content-type", "application/json")
        .body(vec![b' '; limit + 1])
        .send()
        .await
        .unwrap();
    assert_problem(resp, 413).await;
}

#[tokio::test]
async fn chunked_oversized_body_is_a_413_problem() {
    let app = spawn_app().await;
    let limit = app.state.settings.server.body_limit_bytes;
    // No Content-Length: the limit must hold while the body streams in.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..=limit / 4096).map(|_| Ok(vec![b' '; 4096])).collect();
    let resp = app
        .client
        .post(app.url("/healthz"))
        .body(reqwest::Body::wrap_stream(stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 413).await;
}

#[tokio::test]
async fn a_body_within_the_limit_reaches_routing() {
    let app = spawn_app().await;
    let resp = app
        .client
        .post(app.url("/healthz"))
        .body("{}")
        .send()
        .await
        .unwrap();
    // Not 413: the body was accepted and the route answered that POST is not allowed.
    assert_problem(resp, 405).await;
}

#[tokio::test]
async fn a_well_formed_request_id_is_echoed() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "abc-123");
}

#[tokio::test]
async fn a_malformed_request_id_is_replaced() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(app.url("/no/such/route"))
        .header("x-request-id", "evil\tid with spaces")
        .send()
        .await
        .unwrap();
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(id, "evil\tid with spaces");
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "a generated id: {id}");
    let problem = assert_problem(resp, 404).await;
    assert_eq!(problem["request_id"], id.as_str());
}

#[tokio::test]
async fn every_response_gets_a_request_id() {
    let app = spawn_app().await;
    let a = app.get("/healthz").await.headers()["x-request-id"].clone();
    let b = app.get("/healthz").await.headers()["x-request-id"].clone();
    assert_ne!(a, b);
}

#[tokio::test]
async fn an_http2_body_without_a_length_is_limited_too() {
    let app = spawn_app_with(|f| {
        f.merge(figment::providers::Serialized::default(
            "server.http2_cleartext",
            true,
        ))
    })
    .await;
    let limit = app.state.settings.server.body_limit_bytes;
    // HTTP/2 over plain TCP: the body is DATA frames, with neither Content-Length nor chunking.
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..=limit / 4096).map(|_| Ok(vec![b' '; 4096])).collect();
    let resp = h2
        .post(app.url("/healthz"))
        .body(reqwest::Body::wrap_stream(stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_problem(resp, 413).await;
}

#[tokio::test]
async fn a_body_with_trailing_bytes_is_a_400_and_creates_nothing() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "owner@example.com").await.api_key;
    let resp = app
        .with_key(reqwest::Method::POST, "/api/v1/tenants/acme/posts", &owner)
        .header("content-type", "application/json")
        .body(r#"{"title":"a","slug":"a","body":"b"} xyz"#)
        .send()
        .await
        .unwrap();
    let problem = assert_problem(resp, 400).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("trailing"),
        "{problem}"
    );
    let list: serde_json::Value = app.list_posts(&owner, "acme").await.json().await.unwrap();
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0), "{list}");
}

#[tokio::test]
async fn a_nul_character_in_any_text_field_is_a_422_naming_the_field() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "owner@example.com").await.api_key;
    let mut post = draft("nul");
    post["body"] = "before\u{0}after".into();
    let problem = assert_problem(app.create_post(&owner, "acme", &post).await, 422).await;
    assert_eq!(problem["errors"][0]["field"], "body", "{problem}");
    // The same rule for every body, without a line per field: a tenant's name, a key's label.
    let tenant = serde_json::json!({"slug": "nul", "name": "a\u{0}"});
    let problem = assert_problem(app.create_tenant(&owner, &tenant).await, 422).await;
    assert_eq!(problem["errors"][0]["field"], "name", "{problem}");
    let key = serde_json::json!({"label": "\u{0}", "tenant": "acme", "permissions": ["read"]});
    let problem = assert_problem(app.create_key(&owner, &key).await, 422).await;
    assert_eq!(problem["errors"][0]["field"], "label", "{problem}");
}

#[tokio::test]
async fn an_overlong_uri_is_a_414_problem() {
    let app = spawn_app().await;
    let long = format!("/healthz?pad={}", "a".repeat(9 * 1024));
    let problem = assert_problem(app.get(&long).await, 414).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("8192"),
        "{problem}"
    );
}

#[tokio::test]
async fn oversized_header_fields_are_a_431_problem() {
    let app = spawn_app().await;
    let mut req = app.client.get(app.url("/healthz"));
    // 10 × 4 KiB: over our 32 KiB, well under hyper's own limits, so we answer it ourselves.
    for i in 0..10 {
        req = req.header(format!("x-pad-{i}"), "a".repeat(4096));
    }
    assert_problem(req.send().await.unwrap(), 431).await;
    // A normal request on the same server is untouched.
    assert_eq!(app.get("/healthz").await.status(), 200);
}
