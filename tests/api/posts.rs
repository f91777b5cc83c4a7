//! Posts: what a client may write and read, and how concurrent edits and tenants stay apart.
//! Who may call what is in `role_matrix.rs`. A new tenant resource starts by copying this file,
//! adds one helper per endpoint to `helpers.rs` and its table to `role_matrix.rs`.
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, assert_problem, draft, etag, spawn_app_on_a_sqlite_file},
    team::Team,
};

#[tokio::test]
async fn server_owned_fields_cannot_be_set_and_hidden_fields_are_not_returned() {
    let team = Team::new().await;
    let (app, ann) = (&team.app, team.key("author"));
    for field in [
        "author_id",
        "tenant_id",
        "status",
        "version",
        "published_at",
        "created_at",
        "id",
    ] {
        let mut body = draft("s");
        body[field] = json!(team.bob_id);
        let problem = assert_problem(app.create_post(ann, "acme", &body).await, 422).await;
        assert_eq!(problem["errors"][0]["field"], field);
    }
    let id = app.new_draft(ann, "acme", "mine").await;
    let tag = team.etag(&id).await;
    let body = json!({"author_id": team.bob_id});
    let problem = assert_problem(
        app.update_post(ann, "acme", &id, Some(&tag), &body).await,
        422,
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "author_id");

    let post: Value = app.get_post(ann, "acme", &id).await.json().await.unwrap();
    assert!(post.get("tenant_id").is_none());
    let mut keys: Vec<&str> = post
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "author_id",
            "body",
            "created_at",
            "id",
            "published_at",
            "slug",
            "status",
            "title",
            "updated_at",
            "version"
        ]
    );
}

#[tokio::test]
async fn slugs_are_unique_per_tenant() {
    let team = Team::new().await;
    let app = &team.app;
    app.new_draft(team.key("author"), "acme", "same").await;
    let resp = app
        .create_post(team.key("editor"), "acme", &draft("same"))
        .await;
    assert_problem(resp, 409).await;
    // Another tenant may use it.
    app.new_draft(team.key("outsider"), "other", "same").await;
}

/// The slugs of the posts `key` sees in acme's list, sorted.
async fn listed_slugs(app: &TestApp, key: &str) -> Vec<String> {
    let page: Value = app.list_posts(key, "acme").await.json().await.unwrap();
    let mut slugs: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["slug"].as_str().unwrap().to_owned())
        .collect();
    slugs.sort();
    slugs
}

#[tokio::test]
async fn lists_show_each_role_only_the_drafts_it_may_see() {
    each_role_sees_only_the_drafts_it_may(Team::new().await).await;
}

/// On a SQLite file the list is read on the calling thread (`db::Reader`), not through the
/// pool: the same rules must hold there.
#[tokio::test]
async fn lists_read_from_a_sqlite_file_show_the_same_drafts() {
    let dir = tempfile::tempdir().unwrap();
    let team = Team::of(spawn_app_on_a_sqlite_file(&dir).await).await;
    let reads = team.app.state.reads.clone();
    each_role_sees_only_the_drafts_it_may(team).await;
    // The editor's list (every post: bounded by its index) was read inline; the viewer's and
    // authors' lists filter while they scan, so the pool read them.
    let (served, handed_over) = reads.inline_counts();
    assert_eq!((served, handed_over), (1, 0));
}

async fn each_role_sees_only_the_drafts_it_may(team: Team) {
    let (app, bob) = (&team.app, team.bob.as_str());
    app.new_draft(bob, "acme", "bobs-draft").await;
    app.new_published_post(bob, "acme", "bobs-pub").await;
    app.new_draft(team.key("author"), "acme", "anns-draft")
        .await;
    assert_eq!(listed_slugs(app, team.key("viewer")).await, ["bobs-pub"]);
    assert_eq!(
        listed_slugs(app, team.key("author")).await,
        ["anns-draft", "bobs-pub"]
    );
    assert_eq!(
        listed_slugs(app, team.key("editor")).await,
        ["anns-draft", "bobs-draft", "bobs-pub"]
    );
    // A read-only key of the author still sees the author's drafts.
    let ro = app
        .new_key(
            team.key("author"),
            &json!({"label": "ro", "tenant": "acme", "permissions": ["read"]}),
        )
        .await;
    let page: Value = app
        .list_posts(ro["api_key"].as_str().unwrap(), "acme")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn optimistic_concurrency_never_loses_an_edit() {
    let team = Team::new().await;
    let (app, ann, editor) = (&team.app, team.key("author"), team.key("editor"));
    let id = app.new_draft(ann, "acme", "shared").await;
    let tag = team.etag(&id).await;
    let first = app
        .update_post(
            editor,
            "acme",
            &id,
            Some(&tag),
            &json!({"title": "editor's"}),
        )
        .await;
    assert_eq!(first.status(), 200);
    let new_tag = etag(&first);
    assert_ne!(new_tag, tag);
    let second = app
        .update_post(ann, "acme", &id, Some(&tag), &json!({"title": "author's"}))
        .await;
    assert_problem(second, 412).await;
    let post: Value = app.get_post(ann, "acme", &id).await.json().await.unwrap();
    assert_eq!(post["title"], "editor's", "the stale write changed nothing");
    let missing = app
        .update_post(ann, "acme", &id, None, &json!({"title": "x"}))
        .await;
    assert_problem(missing, 428).await;
    let weak = app
        .update_post(
            ann,
            "acme",
            &id,
            Some(&format!("W/{new_tag}")),
            &json!({"title": "x"}),
        )
        .await;
    assert_problem(weak, 412).await;
}

#[tokio::test]
async fn if_match_star_matches_whatever_version_is_current() {
    let team = Team::new().await;
    let (app, ann) = (&team.app, team.key("author"));
    let id = app.new_draft(ann, "acme", "starred").await;
    // RFC 9110 §13.1.1: `*` matches any current representation.
    let resp = app
        .update_post(ann, "acme", &id, Some("*"), &json!({"title": "New"}))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(etag(&resp), "\"2\"");
    let resp = app.publish_post(ann, "acme", &id, Some("*")).await;
    assert_eq!(resp.status(), 200);
    let resp = app.unpublish_post(ann, "acme", &id, Some("*")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(etag(&resp), "\"4\"");
    // A weak tag never matches (strong comparison), on delete as on update.
    assert_problem(
        app.delete_post_if_match(ann, "acme", &id, "W/\"4\"").await,
        412,
    )
    .await;
    assert_problem(
        app.delete_post_if_match(ann, "acme", &id, "\"3\"").await,
        412,
    )
    .await;
    let resp = app.delete_post_if_match(ann, "acme", &id, "*").await;
    assert_eq!(resp.status(), 204);
    assert_problem(app.get_post(ann, "acme", &id).await, 404).await;
}
