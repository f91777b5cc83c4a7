//! The security specification: every role against every tenant endpoint, on its own and on
//! other people's rows, in its tenant and in another (OWASP API1 BOLA, API3 property-level
//! authorization, API5 BFLA).
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, assert_problem, draft, etag, shared_backends, spawn_app, spawn_sibling,
};

/// The cast: tenant `acme` with one member of every role and a second author, and an outsider
/// who owns tenant `other`.
/// Every actor, in the column order of the role matrix's expectation rows.
const ACTORS: [&str; 6] = ["owner", "admin", "editor", "author", "viewer", "outsider"];

struct Team {
    app: TestApp,
    keys: Vec<String>,
    /// The second author's key (another person's rows for `author`).
    bob: String,
    owner_id: String,
    bob_id: String,
}

impl Team {
    async fn new() -> Self {
        let app = spawn_app().await;
        let owner = app.bootstrap("acme", "owner@example.com").await;
        let admin = app.add_user("acme", "admin@example.com", "admin").await;
        let editor = app.add_user("acme", "editor@example.com", "editor").await;
        let ann = app.add_user("acme", "ann@example.com", "author").await;
        let viewer = app.add_user("acme", "viewer@example.com", "viewer").await;
        let bob = app.add_user("acme", "bob@example.com", "author").await;
        let outsider = app.bootstrap("other", "olga@example.com").await;
        Self {
            owner_id: owner.user_id.to_string(),
            bob_id: bob.user_id.to_string(),
            keys: [owner, admin, editor, ann, viewer, outsider]
                .into_iter()
                .map(|i| i.api_key)
                .collect(),
            bob: bob.api_key,
            app,
        }
    }

    /// The key of one of the [`ACTORS`] (`author` is Ann).
    fn key(&self, actor: &str) -> &str {
        &self.keys[ACTORS.iter().position(|a| *a == actor).unwrap()]
    }

    /// A post's current `ETag` in `acme`.
    async fn etag(&self, post: &str) -> String {
        self.app.etag_of(self.key("owner"), "acme", post).await
    }
}

fn check(what: &str, actor: &str, got: reqwest::StatusCode, expected: u16) {
    assert_eq!(got.as_u16(), expected, "{what} as {actor}");
}

#[tokio::test]
async fn the_role_matrix_over_posts_and_comments() {
    let team = Team::new().await;
    let (app, bob) = (&team.app, team.bob.as_str());
    let bob_draft = app.new_draft(bob, "acme", "bob-draft").await;
    let bob_pub = app.new_published_post(bob, "acme", "bob-pub").await;
    let ann_draft = app.new_draft(team.key("author"), "acme", "ann-draft").await;
    let ann_pub = app
        .new_published_post(team.key("author"), "acme", "ann-pub")
        .await;
    let foreign = app
        .new_published_post(team.key("outsider"), "other", "foreign")
        .await;
    let posts = "/api/v1/tenants/acme/posts";

    //                                                   owner admin editor author viewer outsider
    let reads: Vec<(&str, String, [u16; 6])> = vec![
        (
            "list posts",
            posts.to_owned(),
            [200, 200, 200, 200, 200, 404],
        ),
        (
            "read own draft (ann's)",
            format!("{posts}/{ann_draft}"),
            [200, 200, 200, 200, 404, 404],
        ),
        (
            "read another's draft",
            format!("{posts}/{bob_draft}"),
            [200, 200, 200, 404, 404, 404],
        ),
        (
            "read a published post",
            format!("{posts}/{bob_pub}"),
            [200, 200, 200, 200, 200, 404],
        ),
        (
            "comments of another's draft",
            format!("{posts}/{bob_draft}/comments"),
            [200, 200, 200, 404, 404, 404],
        ),
        (
            "another tenant's post id under this tenant (BOLA)",
            format!("{posts}/{foreign}"),
            [404; 6],
        ),
        (
            "members",
            "/api/v1/tenants/acme/members".to_owned(),
            [200, 200, 403, 403, 403, 404],
        ),
    ];
    for (what, path, expected) in &reads {
        for (actor, status) in ACTORS.iter().zip(expected) {
            let resp = app.get_with_key(path, team.key(actor)).await;
            check(what, actor, resp.status(), *status);
        }
    }
    // The outsider's own tenant is reachable with its key; acme keys are useless there.
    for actor in &ACTORS[..5] {
        let resp = app.get_post(team.key(actor), "other", &foreign).await;
        check(
            "another tenant's post in its own tenant",
            actor,
            resp.status(),
            404,
        );
    }

    for (i, (actor, status)) in ACTORS
        .iter()
        .zip([201, 201, 201, 201, 403, 404])
        .enumerate()
    {
        let resp = app
            .create_post(team.key(actor), "acme", &draft(&format!("new-{i}")))
            .await;
        check("create a post", actor, resp.status(), status);
    }

    //                                              owner admin editor author viewer outsider
    let updates: [(&str, &String, [u16; 6]); 2] = [
        (
            "update another's published post",
            &bob_pub,
            [200, 200, 200, 403, 403, 404],
        ),
        (
            "update own published post (ann's)",
            &ann_pub,
            [200, 200, 200, 200, 403, 404],
        ),
    ];
    for (what, post, expected) in updates {
        for (actor, status) in ACTORS.iter().zip(expected) {
            let tag = team.etag(post).await;
            let resp = app
                .update_post(
                    team.key(actor),
                    "acme",
                    post,
                    Some(&tag),
                    &json!({"title": actor}),
                )
                .await;
            check(what, actor, resp.status(), status);
        }
    }
    for (actor, status) in ACTORS.iter().zip([412, 412, 412, 403, 403, 404]) {
        let resp = app
            .update_post(
                team.key(actor),
                "acme",
                &bob_pub,
                Some("\"1\""),
                &json!({"title": "x"}),
            )
            .await;
        check("update with a stale ETag", actor, resp.status(), status);
    }

    for (i, (actor, status)) in ACTORS
        .iter()
        .zip([200, 200, 200, 404, 403, 404])
        .enumerate()
    {
        let bobs = app.new_draft(bob, "acme", &format!("bob-pub-me-{i}")).await;
        let tag = team.etag(&bobs).await;
        let resp = app
            .publish_post(team.key(actor), "acme", &bobs, Some(&tag))
            .await;
        check("publish another's draft", actor, resp.status(), status);
    }
    for (i, (actor, status)) in ACTORS
        .iter()
        .zip([204, 204, 204, 403, 403, 404])
        .enumerate()
    {
        let victim = app
            .new_published_post(bob, "acme", &format!("bob-del-{i}"))
            .await;
        let resp = app.delete_post(team.key(actor), "acme", &victim).await;
        check("delete another's post", actor, resp.status(), status);
    }
    let own = app
        .new_published_post(team.key("author"), "acme", "ann-del")
        .await;
    let resp = app.delete_post(team.key("author"), "acme", &own).await;
    check("delete own post", "author", resp.status(), 204);

    for (actor, status) in ACTORS.iter().zip([201, 201, 201, 201, 403, 404]) {
        let resp = app
            .create_comment(team.key(actor), "acme", &bob_pub, &json!({"body": "hi"}))
            .await;
        check("comment on a published post", actor, resp.status(), status);
    }
    for (actor, status) in ACTORS.iter().zip([204, 204, 204, 403, 403, 404]) {
        let cid = app.new_comment(bob, "acme", &bob_pub).await;
        let resp = app
            .delete_comment(team.key(actor), "acme", &bob_pub, &cid)
            .await;
        check("delete another's comment", actor, resp.status(), status);
    }
    let cid = app.new_comment(team.key("author"), "acme", &bob_pub).await;
    let resp = app
        .delete_comment(team.key("author"), "acme", &bob_pub, &cid)
        .await;
    check("delete own comment", "author", resp.status(), 204);
}

#[tokio::test]
async fn the_role_matrix_over_members() {
    let team = Team::new().await;
    let app = &team.app;
    for (i, (actor, status)) in ACTORS
        .iter()
        .zip([201, 201, 403, 403, 403, 404])
        .enumerate()
    {
        let email = format!("existing-{i}@example.com");
        // The address has an account (in another tenant), so it is added, not invited.
        app.bootstrap(&format!("t{i}-home"), &email).await;
        let resp = app
            .add_member(team.key(actor), "acme", &email, "viewer")
            .await;
        check("add a member", actor, resp.status(), status);
    }
    for (i, (actor, status)) in ACTORS
        .iter()
        .zip([201, 403, 403, 403, 403, 404])
        .enumerate()
    {
        let email = format!("owner-{i}@example.com");
        app.bootstrap(&format!("o{i}-home"), &email).await;
        let resp = app
            .add_member(team.key(actor), "acme", &email, "owner")
            .await;
        check("grant owner (BFLA)", actor, resp.status(), status);
    }
    for (actor, status) in ACTORS.iter().zip([200, 200, 403, 403, 403, 404]) {
        let resp = app
            .change_role(team.key(actor), "acme", &team.bob_id, "editor")
            .await;
        check("change a member's role", actor, resp.status(), status);
    }
    for (actor, status) in ACTORS.iter().zip([403, 403, 403, 403, 403, 404]).skip(1) {
        let resp = app
            .change_role(team.key(actor), "acme", &team.owner_id, "viewer")
            .await;
        check("demote an owner", actor, resp.status(), status);
        let resp = app
            .remove_member(team.key(actor), "acme", &team.owner_id)
            .await;
        check("remove an owner", actor, resp.status(), status);
    }
}

#[tokio::test]
async fn an_invited_address_without_an_account_is_pending() {
    let team = Team::new().await;
    let (app, admin) = (&team.app, team.key("admin"));
    let resp = app
        .add_member(admin, "acme", "New@Example.com", "author")
        .await;
    assert_eq!(resp.status(), 202);
    let list: Value = app.list_members(admin, "acme").await.json().await.unwrap();
    assert_eq!(list["invitations"][0]["email"], "new@example.com");
    assert_eq!(list["invitations"][0]["role"], "author");
}

#[tokio::test]
async fn the_last_owner_cannot_be_demoted_or_removed() {
    let team = Team::new().await;
    let (app, owner, me) = (&team.app, team.key("owner"), team.owner_id.as_str());
    assert_problem(app.change_role(owner, "acme", me, "admin").await, 409).await;
    assert_problem(app.remove_member(owner, "acme", me).await, 409).await;
    // With a second owner, the first may step down.
    app.bootstrap("second-home", "second@example.com").await;
    let resp = app
        .add_member(owner, "acme", "second@example.com", "owner")
        .await;
    assert_eq!(resp.status(), 201);
    assert_eq!(
        app.change_role(owner, "acme", me, "admin").await.status(),
        200
    );
}

#[tokio::test]
async fn a_membership_change_takes_effect_on_the_next_request() {
    let team = Team::new().await;
    let (app, owner, viewer) = (&team.app, team.key("owner"), team.key("viewer"));
    let promoted = draft("promoted");
    assert_eq!(
        app.create_post(viewer, "acme", &promoted).await.status(),
        403
    );
    let viewer_id = app.user_id_of(viewer).await;
    let resp = app.change_role(owner, "acme", &viewer_id, "editor").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        app.create_post(viewer, "acme", &promoted).await.status(),
        201
    );

    let resp = app.remove_member(owner, "acme", &viewer_id).await;
    assert_eq!(resp.status(), 204);
    // Removed: the tenant is gone from the caller's view, and so is its key.
    assert_eq!(app.list_posts(viewer, "acme").await.status(), 401);
}

#[tokio::test]
async fn a_role_change_through_one_instance_applies_on_another_at_once() {
    if !shared_backends() {
        return; // In-process state is per instance by design; this needs PostgreSQL and Redis.
    }
    let team = Team::new().await;
    let (a, viewer) = (&team.app, team.key("viewer"));
    let b = spawn_sibling(a).await;
    assert_eq!(
        b.create_post(viewer, "acme", &draft("one")).await.status(),
        403,
        "b has loaded the policy"
    );
    let viewer_id = a.user_id_of(viewer).await;
    let resp = a
        .change_role(team.key("owner"), "acme", &viewer_id, "author")
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        b.create_post(viewer, "acme", &draft("two")).await.status(),
        201
    );
}

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

#[tokio::test]
async fn a_read_key_cannot_write_whatever_its_role() {
    let team = Team::new().await;
    let app = &team.app;
    let read = app
        .new_key(
            team.key("owner"),
            &json!({"label": "ro", "tenant": "acme", "permissions": ["read"]}),
        )
        .await;
    let read = read["api_key"].as_str().unwrap();
    assert_eq!(app.list_members(read, "acme").await.status(), 200);
    assert_problem(app.create_post(read, "acme", &draft("s")).await, 403).await;
}

#[tokio::test]
async fn a_route_without_a_policy_is_refused() {
    let team = Team::new().await;
    let app = &team.app;
    // A tenant path that no route table line covers: refused before routing, even for the owner.
    let secrets = "/api/v1/tenants/acme/secrets";
    let problem = assert_problem(app.get_with_key(secrets, team.key("owner")).await, 403).await;
    assert_eq!(
        problem["detail"],
        "no authorization policy covers this route"
    );
    // A non-member learns nothing, not even that.
    assert_problem(app.get_with_key(secrets, team.key("outsider")).await, 404).await;
}

#[tokio::test]
async fn a_key_is_useless_in_another_tenant_even_of_its_own_user() {
    let team = Team::new().await;
    let (app, owner) = (&team.app, team.key("owner"));
    let created = app
        .create_tenant(owner, &json!({"slug": "beta", "name": "Beta"}))
        .await;
    assert_eq!(created.status(), 201, "the owner now belongs to beta too");
    // The owner's key is bound to acme: beta answers as if it did not exist.
    assert_problem(app.list_posts(owner, "beta").await, 404).await;
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
    let team = Team::new().await;
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
async fn a_demotion_takes_effect_on_the_next_request() {
    let team = Team::new().await;
    let (app, editor) = (&team.app, team.key("editor"));
    let editor_id = app.user_id_of(editor).await;
    assert_eq!(
        app.create_post(editor, "acme", &draft("before"))
            .await
            .status(),
        201
    );
    let resp = app
        .change_role(team.key("owner"), "acme", &editor_id, "viewer")
        .await;
    assert_eq!(resp.status(), 200);
    assert_problem(app.create_post(editor, "acme", &draft("after")).await, 403).await;
}

#[tokio::test]
async fn a_change_made_outside_the_api_is_seen_within_a_second() {
    // As the admin CLI does from another process: the database changes, nothing is announced
    // to this instance's store. The policy's database version tells it anyway.
    let w = Team::new().await;
    let (app, viewer_key) = (&w.app, w.key("viewer"));
    assert_eq!(
        app.create_post(viewer_key, "acme", &draft("one"))
            .await
            .status(),
        403
    );
    let viewer: uuid::Uuid = app.user_id_of(viewer_key).await.parse().unwrap();
    let acme = ironquill::domain::tenants::find_by_slug(&w.app.db, "acme")
        .await
        .unwrap()
        .unwrap();
    ironquill::domain::memberships::set_role(
        &w.app.db,
        acme.id,
        viewer,
        ironquill::db::entities::Role::Author,
    )
    .await
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        app.create_post(viewer_key, "acme", &draft("two"))
            .await
            .status(),
        201
    );
}

#[tokio::test]
async fn an_empty_tenant_segment_is_not_found() {
    let team = Team::new().await;
    for path in ["/api/v1/tenants//members", "/api/v1/tenants//posts"] {
        assert_problem(team.app.get_with_key(path, team.key("owner")).await, 404).await;
    }
}

#[tokio::test]
async fn an_admin_cannot_make_anyone_owner() {
    let team = Team::new().await;
    let (app, admin) = (&team.app, team.key("admin"));
    let problem = assert_problem(
        app.change_role(admin, "acme", &team.bob_id, "owner").await,
        403,
    )
    .await;
    assert_eq!(
        problem["detail"],
        "missing permission: members:manage_owners"
    );
    // Nor replace a pending owner invitation with something else.
    let resp = app
        .add_member(team.key("owner"), "acme", "future@example.com", "owner")
        .await;
    assert_eq!(resp.status(), 202);
    assert_problem(
        app.add_member(admin, "acme", "future@example.com", "viewer")
            .await,
        403,
    )
    .await;
}

#[tokio::test]
async fn a_comment_id_from_another_post_is_not_found() {
    let team = Team::new().await;
    let (app, bob) = (&team.app, team.bob.as_str());
    let first = app.new_published_post(bob, "acme", "first").await;
    let second = app.new_published_post(bob, "acme", "second").await;
    let cid = app.new_comment(bob, "acme", &first).await;
    let resp = app
        .delete_comment(team.key("owner"), "acme", &second, &cid)
        .await;
    assert_problem(resp, 404).await;
}
