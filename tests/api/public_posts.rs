use chrono::{Duration, Utc};

use crate::helpers::{TestApp, assert_problem, spawn_app, spawn_app_on_a_sqlite_file};

#[tokio::test]
async fn lists_only_published_posts_of_that_tenant_newest_first() {
    only_published_posts_of_that_tenant_newest_first(spawn_app().await).await;
}

/// On a SQLite file the page is read on the calling thread (`db::Reader`): the same rules.
#[tokio::test]
async fn lists_read_from_a_sqlite_file_follow_the_same_rules() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_on_a_sqlite_file(&dir).await;
    let reads = app.state.reads.clone();
    only_published_posts_of_that_tenant_newest_first(app).await;
    assert_eq!(reads.inline_counts(), (1, 0), "read on the calling thread");

    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_on_a_sqlite_file(&dir).await;
    let reads = app.state.reads.clone();
    pages_follow_next_offset_in(app).await;
    assert_eq!(reads.inline_counts(), (2, 0), "read on the calling thread");
}

async fn only_published_posts_of_that_tenant_newest_first(app: TestApp) {
    let acme = app.seed_tenant("acme").await;
    let other = app.seed_tenant("other").await;
    let author = app.seed_user().await;
    let now = Utc::now();
    app.seed_post(&acme, &author, "older", Some(now - Duration::hours(2)))
        .await;
    app.seed_post(&acme, &author, "newer", Some(now - Duration::hours(1)))
        .await;
    app.seed_post(&acme, &author, "draft", None).await;
    app.seed_post(&other, &author, "foreign", Some(now)).await;

    let resp = app.get_public_posts("acme", "").await;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    let slugs: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["newer", "older"]);
    assert_eq!(body["limit"], 20);
    assert!(body.get("next_offset").is_none() || body["next_offset"].is_null());
}

#[tokio::test]
async fn public_posts_expose_no_internal_ids() {
    let app = spawn_app().await;
    let acme = app.seed_tenant("acme").await;
    let author = app.seed_user().await;
    app.seed_post(&acme, &author, "hello", Some(Utc::now()))
        .await;
    let body: serde_json::Value = app
        .get_public_post("acme", "hello")
        .await
        .json()
        .await
        .unwrap();
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 5, "unexpected fields: {keys:?}");
    for key in ["slug", "title", "body", "published_at", "updated_at"] {
        assert!(keys.contains(&key), "missing {key}");
    }
}

#[tokio::test]
async fn pages_follow_next_offset() {
    pages_follow_next_offset_in(spawn_app().await).await;
}

async fn pages_follow_next_offset_in(app: TestApp) {
    let acme = app.seed_tenant("acme").await;
    let author = app.seed_user().await;
    let now = Utc::now();
    for i in 0..5 {
        app.seed_post(
            &acme,
            &author,
            &format!("post-{i}"),
            Some(now - Duration::minutes(i)),
        )
        .await;
    }
    let first: serde_json::Value = app
        .get_public_posts("acme", "?limit=2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    assert_eq!(first["next_offset"], 2);
    let last: serde_json::Value = app
        .get_public_posts("acme", "?limit=2&offset=4")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(last["items"][0]["slug"], "post-4");
    assert!(last["next_offset"].is_null());
}

#[tokio::test]
async fn page_size_above_the_maximum_is_refused_naming_limit() {
    let app = spawn_app().await;
    app.seed_tenant("acme").await;
    let problem = assert_problem(app.get_public_posts("acme", "?limit=101").await, 422).await;
    assert_eq!(problem["errors"][0]["field"], "limit");
    assert!(problem["detail"].as_str().unwrap().contains("limit"));
}

#[tokio::test]
async fn a_non_numeric_limit_is_a_bad_request_naming_limit() {
    let app = spawn_app().await;
    app.seed_tenant("acme").await;
    let problem = assert_problem(app.get_public_posts("acme", "?limit=ten").await, 400).await;
    assert!(problem["detail"].as_str().unwrap().contains("`limit`"));
}

#[tokio::test]
async fn unknown_tenant_is_404() {
    let app = spawn_app().await;
    assert_problem(app.get_public_posts("nobody", "").await, 404).await;
    assert_problem(app.get_public_post("nobody", "hello").await, 404).await;
}

#[tokio::test]
async fn drafts_missing_posts_and_other_tenants_posts_are_404() {
    let app = spawn_app().await;
    let acme = app.seed_tenant("acme").await;
    let other = app.seed_tenant("other").await;
    let author = app.seed_user().await;
    app.seed_post(&acme, &author, "draft", None).await;
    app.seed_post(&other, &author, "foreign", Some(Utc::now()))
        .await;
    app.seed_post(&acme, &author, "live", Some(Utc::now()))
        .await;

    assert_eq!(app.get_public_post("acme", "live").await.status(), 200);
    assert_problem(app.get_public_post("acme", "draft").await, 404).await;
    assert_problem(app.get_public_post("acme", "missing").await, 404).await;
    assert_problem(app.get_public_post("acme", "foreign").await, 404).await;
}
