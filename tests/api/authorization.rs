//! The security specification: every role against every tenant endpoint, on its own and on
//! other people's rows, in its tenant and in another (OWASP API1 BOLA, API3 property-level
//! authorization, API5 BFLA).
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, shared_backends, spawn_app, spawn_sibling};

/// Column order of every expectation row.
const ACTORS: [&str; 6] = ["owner", "admin", "editor", "author", "viewer", "outsider"];

struct World {
    app: TestApp,
    keys: Vec<String>,
    /// The second author's key (another person's rows for `author`).
    bob: String,
    owner_id: String,
    bob_id: String,
}

impl World {
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

    fn key(&self, actor: &str) -> &str {
        &self.keys[ACTORS.iter().position(|a| *a == actor).unwrap()]
    }

    async fn send(
        &self,
        key: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self.app.with_key(method, path, key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        if let Some(tag) = if_match {
            req = req.header("if-match", tag);
        }
        req.send().await.unwrap()
    }

    /// A post by `key`'s user in `tenant`, published or not; returns its id.
    async fn post(&self, key: &str, tenant: &str, slug: &str, published: bool) -> String {
        let path = format!("/api/v1/tenants/{tenant}/posts");
        let resp = self
            .send(
                key,
                Method::POST,
                &path,
                Some(json!({"title": slug, "slug": slug, "body": "text"})),
                None,
            )
            .await;
        assert_eq!(resp.status(), 201, "create {slug}");
        let tag = resp.headers()["etag"].to_str().unwrap().to_owned();
        let id = resp.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        if published {
            let resp = self
                .send(
                    key,
                    Method::POST,
                    &format!("{path}/{id}/publish"),
                    None,
                    Some(&tag),
                )
                .await;
            assert_eq!(resp.status(), 200, "publish {slug}");
        }
        id
    }

    async fn etag(&self, post: &str) -> String {
        let resp = self
            .send(
                self.key("owner"),
                Method::GET,
                &format!("/api/v1/tenants/acme/posts/{post}"),
                None,
                None,
            )
            .await;
        resp.headers()["etag"].to_str().unwrap().to_owned()
    }

    async fn comment(&self, key: &str, post: &str) -> String {
        let path = format!("/api/v1/tenants/acme/posts/{post}/comments");
        let resp = self
            .send(key, Method::POST, &path, Some(json!({"body": "hi"})), None)
            .await;
        assert_eq!(resp.status(), 201);
        resp.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

fn check(what: &str, actor: &str, got: reqwest::StatusCode, expected: u16) {
    assert_eq!(got.as_u16(), expected, "{what} as {actor}");
}

#[tokio::test]
async fn the_role_matrix_over_posts_and_comments() {
    let w = World::new().await;
    let bob = w.bob.clone();
    let bob_draft = w.post(&bob, "acme", "bob-draft", false).await;
    let bob_pub = w.post(&bob, "acme", "bob-pub", true).await;
    let ann_draft = w.post(w.key("author"), "acme", "ann-draft", false).await;
    let ann_pub = w.post(w.key("author"), "acme", "ann-pub", true).await;
    let foreign = w.post(w.key("outsider"), "other", "foreign", true).await;
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
            let resp = w.send(w.key(actor), Method::GET, path, None, None).await;
            check(what, actor, resp.status(), *status);
        }
    }
    // The outsider's own tenant is reachable with its key; acme keys are useless there.
    for actor in &ACTORS[..5] {
        let resp = w
            .send(
                w.key(actor),
                Method::GET,
                &format!("/api/v1/tenants/other/posts/{foreign}"),
                None,
                None,
            )
            .await;
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
        let body = json!({"title": "t", "slug": format!("new-{i}"), "body": "b"});
        let resp = w
            .send(w.key(actor), Method::POST, posts, Some(body), None)
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
            let tag = w.etag(post).await;
            let resp = w
                .send(
                    w.key(actor),
                    Method::PATCH,
                    &format!("{posts}/{post}"),
                    Some(json!({"title": actor})),
                    Some(&tag),
                )
                .await;
            check(what, actor, resp.status(), status);
        }
    }
    for (actor, status) in ACTORS.iter().zip([412, 412, 412, 403, 403, 404]) {
        let resp = w
            .send(
                w.key(actor),
                Method::PATCH,
                &format!("{posts}/{bob_pub}"),
                Some(json!({"title": "x"})),
                Some("\"1\""),
            )
            .await;
        check("update with a stale ETag", actor, resp.status(), status);
    }

    for (i, (actor, status)) in ACTORS
        .iter()
        .zip([200, 200, 200, 404, 403, 404])
        .enumerate()
    {
        let draft = w
            .post(&bob, "acme", &format!("bob-pub-me-{i}"), false)
            .await;
        let tag = w.etag(&draft).await;
        let resp = w
            .send(
                w.key(actor),
                Method::POST,
                &format!("{posts}/{draft}/publish"),
                None,
                Some(&tag),
            )
            .await;
        check("publish another's draft", actor, resp.status(), status);
    }
    for (i, (actor, status)) in ACTORS
        .iter()
        .zip([204, 204, 204, 403, 403, 404])
        .enumerate()
    {
        let victim = w.post(&bob, "acme", &format!("bob-del-{i}"), true).await;
        let resp = w
            .send(
                w.key(actor),
                Method::DELETE,
                &format!("{posts}/{victim}"),
                None,
                None,
            )
            .await;
        check("delete another's post", actor, resp.status(), status);
    }
    let own = w.post(w.key("author"), "acme", "ann-del", true).await;
    let resp = w
        .send(
            w.key("author"),
            Method::DELETE,
            &format!("{posts}/{own}"),
            None,
            None,
        )
        .await;
    check("delete own post", "author", resp.status(), 204);

    for (actor, status) in ACTORS.iter().zip([201, 201, 201, 201, 403, 404]) {
        let resp = w
            .send(
                w.key(actor),
                Method::POST,
                &format!("{posts}/{bob_pub}/comments"),
                Some(json!({"body": "hi"})),
                None,
            )
            .await;
        check("comment on a published post", actor, resp.status(), status);
    }
    for (actor, status) in ACTORS.iter().zip([204, 204, 204, 403, 403, 404]) {
        let cid = w.comment(&bob, &bob_pub).await;
        let resp = w
            .send(
                w.key(actor),
                Method::DELETE,
                &format!("{posts}/{bob_pub}/comments/{cid}"),
                None,
                None,
            )
            .await;
        check("delete another's comment", actor, resp.status(), status);
    }
    let cid = w.comment(w.key("author"), &bob_pub).await;
    let resp = w
        .send(
            w.key("author"),
            Method::DELETE,
            &format!("{posts}/{bob_pub}/comments/{cid}"),
            None,
            None,
        )
        .await;
    check("delete own comment", "author", resp.status(), 204);
}

#[tokio::test]
async fn the_role_matrix_over_members() {
    let w = World::new().await;
    let members = "/api/v1/tenants/acme/members";
    for (i, (actor, status)) in ACTORS
        .iter()
        .zip([201, 201, 403, 403, 403, 404])
        .enumerate()
    {
        let body = json!({"email": format!("existing-{i}@example.com"), "role": "viewer"});
        // The address has an account (in another tenant), so it is added, not invited.
        w.app
            .bootstrap(&format!("t{i}-home"), &format!("existing-{i}@example.com"))
            .await;
        let resp = w
            .send(w.key(actor), Method::POST, members, Some(body), None)
            .await;
        check("add a member", actor, resp.status(), status);
    }
    for (i, (actor, status)) in ACTORS
        .iter()
        .zip([201, 403, 403, 403, 403, 404])
        .enumerate()
    {
        w.app
            .bootstrap(&format!("o{i}-home"), &format!("owner-{i}@example.com"))
            .await;
        let body = json!({"email": format!("owner-{i}@example.com"), "role": "owner"});
        let resp = w
            .send(w.key(actor), Method::POST, members, Some(body), None)
            .await;
        check("grant owner (BFLA)", actor, resp.status(), status);
    }
    for (actor, status) in ACTORS.iter().zip([200, 200, 403, 403, 403, 404]) {
        let resp = w
            .send(
                w.key(actor),
                Method::PATCH,
                &format!("{members}/{}", w.bob_id),
                Some(json!({"role": "editor"})),
                None,
            )
            .await;
        check("change a member's role", actor, resp.status(), status);
    }
    for (actor, status) in ACTORS.iter().zip([403, 403, 403, 403, 403, 404]).skip(1) {
        let resp = w
            .send(
                w.key(actor),
                Method::PATCH,
                &format!("{members}/{}", w.owner_id),
                Some(json!({"role": "viewer"})),
                None,
            )
            .await;
        check("demote an owner", actor, resp.status(), status);
        let resp = w
            .send(
                w.key(actor),
                Method::DELETE,
                &format!("{members}/{}", w.owner_id),
                None,
                None,
            )
            .await;
        check("remove an owner", actor, resp.status(), status);
    }
}

#[tokio::test]
async fn an_invited_address_without_an_account_is_pending() {
    let w = World::new().await;
    let resp = w
        .send(
            w.key("admin"),
            Method::POST,
            "/api/v1/tenants/acme/members",
            Some(json!({"email": "New@Example.com", "role": "author"})),
            None,
        )
        .await;
    assert_eq!(resp.status(), 202);
    let list: Value = w
        .send(
            w.key("admin"),
            Method::GET,
            "/api/v1/tenants/acme/members",
            None,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["invitations"][0]["email"], "new@example.com");
    assert_eq!(list["invitations"][0]["role"], "author");
}

#[tokio::test]
async fn the_last_owner_cannot_be_demoted_or_removed() {
    let w = World::new().await;
    let me = format!("/api/v1/tenants/acme/members/{}", w.owner_id);
    let resp = w
        .send(
            w.key("owner"),
            Method::PATCH,
            &me,
            Some(json!({"role": "admin"})),
            None,
        )
        .await;
    assert_problem(resp, 409).await;
    let resp = w
        .send(w.key("owner"), Method::DELETE, &me, None, None)
        .await;
    assert_problem(resp, 409).await;
    // With a second owner, the first may step down.
    w.app.bootstrap("second-home", "second@example.com").await;
    let resp = w
        .send(
            w.key("owner"),
            Method::POST,
            "/api/v1/tenants/acme/members",
            Some(json!({"email": "second@example.com", "role": "owner"})),
            None,
        )
        .await;
    assert_eq!(resp.status(), 201);
    let resp = w
        .send(
            w.key("owner"),
            Method::PATCH,
            &me,
            Some(json!({"role": "admin"})),
            None,
        )
        .await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_membership_change_takes_effect_on_the_next_request() {
    let w = World::new().await;
    let posts = "/api/v1/tenants/acme/posts";
    let body = || Some(json!({"title": "t", "slug": "promoted", "body": "b"}));
    let resp = w
        .send(w.key("viewer"), Method::POST, posts, body(), None)
        .await;
    assert_eq!(resp.status(), 403);
    let me: Value = w.app.get_me(w.key("viewer")).await.json().await.unwrap();
    let viewer_id = me["user_id"].as_str().unwrap();
    let path = format!("/api/v1/tenants/acme/members/{viewer_id}");
    let resp = w
        .send(
            w.key("owner"),
            Method::PATCH,
            &path,
            Some(json!({"role": "editor"})),
            None,
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        w.send(w.key("viewer"), Method::POST, posts, body(), None)
            .await
            .status(),
        201
    );

    let resp = w
        .send(w.key("owner"), Method::DELETE, &path, None, None)
        .await;
    assert_eq!(resp.status(), 204);
    // Removed: the tenant is gone from the caller's view, and so is its key.
    assert_eq!(
        w.send(w.key("viewer"), Method::GET, posts, None, None)
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn a_role_change_through_one_instance_applies_on_another_at_once() {
    if !shared_backends() {
        return; // In-process state is per instance by design; this needs PostgreSQL and Redis.
    }
    let w = World::new().await;
    let b = spawn_sibling(&w.app).await;
    let posts = "/api/v1/tenants/acme/posts";
    let viewer = w.key("viewer").to_owned();
    let create = |slug: &str| json!({"title": "t", "slug": slug, "body": "b"});
    assert_eq!(
        b.post_json_with_key(posts, &viewer, &create("one"))
            .await
            .status(),
        403,
        "b has loaded the policy"
    );
    let me: Value = w.app.get_me(&viewer).await.json().await.unwrap();
    let path = format!(
        "/api/v1/tenants/acme/members/{}",
        me["user_id"].as_str().unwrap()
    );
    let resp = w
        .send(
            w.key("owner"),
            Method::PATCH,
            &path,
            Some(json!({"role": "author"})),
            None,
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        b.post_json_with_key(posts, &viewer, &create("two"))
            .await
            .status(),
        201
    );
}

#[tokio::test]
async fn server_owned_fields_cannot_be_set_and_hidden_fields_are_not_returned() {
    let w = World::new().await;
    let posts = "/api/v1/tenants/acme/posts";
    for field in [
        "author_id",
        "tenant_id",
        "status",
        "version",
        "published_at",
        "created_at",
        "id",
    ] {
        let body = json!({"title": "t", "slug": "s", "body": "b", field: w.bob_id});
        let problem = assert_problem(
            w.send(w.key("author"), Method::POST, posts, Some(body), None)
                .await,
            422,
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field);
    }
    let id = w.post(w.key("author"), "acme", "mine", false).await;
    let tag = w.etag(&id).await;
    let body = json!({"author_id": w.bob_id});
    let problem = assert_problem(
        w.send(
            w.key("author"),
            Method::PATCH,
            &format!("{posts}/{id}"),
            Some(body),
            Some(&tag),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "author_id");

    let post: Value = w
        .send(
            w.key("author"),
            Method::GET,
            &format!("{posts}/{id}"),
            None,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
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
    let w = World::new().await;
    let id = w.post(w.key("author"), "acme", "shared", false).await;
    let path = format!("/api/v1/tenants/acme/posts/{id}");
    let tag = w.etag(&id).await;
    let first = w
        .send(
            w.key("editor"),
            Method::PATCH,
            &path,
            Some(json!({"title": "editor's"})),
            Some(&tag),
        )
        .await;
    assert_eq!(first.status(), 200);
    let new_tag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(new_tag, tag);
    let second = w
        .send(
            w.key("author"),
            Method::PATCH,
            &path,
            Some(json!({"title": "author's"})),
            Some(&tag),
        )
        .await;
    assert_problem(second, 412).await;
    let post: Value = w
        .send(w.key("author"), Method::GET, &path, None, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(post["title"], "editor's", "the stale write changed nothing");
    let missing = w
        .send(
            w.key("author"),
            Method::PATCH,
            &path,
            Some(json!({"title": "x"})),
            None,
        )
        .await;
    assert_problem(missing, 428).await;
    let weak = w
        .send(
            w.key("author"),
            Method::PATCH,
            &path,
            Some(json!({"title": "x"})),
            Some(&format!("W/{new_tag}")),
        )
        .await;
    assert_problem(weak, 412).await;
}

#[tokio::test]
async fn slugs_are_unique_per_tenant() {
    let w = World::new().await;
    w.post(w.key("author"), "acme", "same", false).await;
    let resp = w
        .send(
            w.key("editor"),
            Method::POST,
            "/api/v1/tenants/acme/posts",
            Some(json!({"title": "t", "slug": "same", "body": "b"})),
            None,
        )
        .await;
    assert_problem(resp, 409).await;
    // Another tenant may use it.
    w.post(w.key("outsider"), "other", "same", false).await;
}

#[tokio::test]
async fn a_read_key_cannot_write_whatever_its_role() {
    let w = World::new().await;
    let read = w
        .app
        .create_key(
            w.key("owner"),
            json!({"label": "ro", "tenant": "acme", "permissions": ["read"]}),
        )
        .await;
    let read = read["api_key"].as_str().unwrap();
    assert_eq!(
        w.send(
            read,
            Method::GET,
            "/api/v1/tenants/acme/members",
            None,
            None
        )
        .await
        .status(),
        200
    );
    let resp = w
        .send(
            read,
            Method::POST,
            "/api/v1/tenants/acme/posts",
            Some(json!({"title": "t", "slug": "s", "body": "b"})),
            None,
        )
        .await;
    assert_problem(resp, 403).await;
}

#[tokio::test]
async fn a_route_without_a_policy_is_refused() {
    let w = World::new().await;
    // A tenant path that no route table line covers: refused before routing, even for the owner.
    let problem = assert_problem(
        w.send(
            w.key("owner"),
            Method::GET,
            "/api/v1/tenants/acme/secrets",
            None,
            None,
        )
        .await,
        403,
    )
    .await;
    assert_eq!(
        problem["detail"],
        "no authorization policy covers this route"
    );
    // A non-member learns nothing, not even that.
    assert_problem(
        w.send(
            w.key("outsider"),
            Method::GET,
            "/api/v1/tenants/acme/secrets",
            None,
            None,
        )
        .await,
        404,
    )
    .await;
}

#[tokio::test]
async fn a_key_is_useless_in_another_tenant_even_of_its_own_user() {
    let w = World::new().await;
    let created = w
        .app
        .post_json_with_key(
            "/api/v1/tenants",
            w.key("owner"),
            &json!({"slug": "beta", "name": "Beta"}),
        )
        .await;
    assert_eq!(created.status(), 201, "the owner now belongs to beta too");
    // The owner's key is bound to acme: beta answers as if it did not exist.
    let resp = w
        .send(
            w.key("owner"),
            Method::GET,
            "/api/v1/tenants/beta/posts",
            None,
            None,
        )
        .await;
    assert_problem(resp, 404).await;
}

#[tokio::test]
async fn lists_show_each_role_only_the_drafts_it_may_see() {
    let w = World::new().await;
    let bob = w.bob.clone();
    w.post(&bob, "acme", "bobs-draft", false).await;
    w.post(&bob, "acme", "bobs-pub", true).await;
    w.post(w.key("author"), "acme", "anns-draft", false).await;
    let slugs = |actor: &'static str| {
        let key = w.key(actor).to_owned();
        let w = &w;
        async move {
            let page: Value = w
                .send(&key, Method::GET, "/api/v1/tenants/acme/posts", None, None)
                .await
                .json()
                .await
                .unwrap();
            let mut slugs: Vec<String> = page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["slug"].as_str().unwrap().to_owned())
                .collect();
            slugs.sort();
            slugs
        }
    };
    assert_eq!(slugs("viewer").await, ["bobs-pub"]);
    assert_eq!(slugs("author").await, ["anns-draft", "bobs-pub"]);
    assert_eq!(
        slugs("editor").await,
        ["anns-draft", "bobs-draft", "bobs-pub"]
    );
    // A read-only key of the author still sees the author's drafts.
    let ro = w
        .app
        .create_key(
            w.key("author"),
            json!({"label": "ro", "tenant": "acme", "permissions": ["read"]}),
        )
        .await;
    let page: Value = w
        .send(
            ro["api_key"].as_str().unwrap(),
            Method::GET,
            "/api/v1/tenants/acme/posts",
            None,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_demotion_takes_effect_on_the_next_request() {
    let w = World::new().await;
    let me: Value = w.app.get_me(w.key("editor")).await.json().await.unwrap();
    let path = format!(
        "/api/v1/tenants/acme/members/{}",
        me["user_id"].as_str().unwrap()
    );
    let create = |slug: &str| Some(json!({"title": "t", "slug": slug, "body": "b"}));
    let posts = "/api/v1/tenants/acme/posts";
    assert_eq!(
        w.send(w.key("editor"), Method::POST, posts, create("before"), None)
            .await
            .status(),
        201
    );
    let resp = w
        .send(
            w.key("owner"),
            Method::PATCH,
            &path,
            Some(json!({"role": "viewer"})),
            None,
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_problem(
        w.send(w.key("editor"), Method::POST, posts, create("after"), None)
            .await,
        403,
    )
    .await;
}

#[tokio::test]
async fn a_change_made_outside_the_api_is_seen_within_a_second() {
    // As the admin CLI does from another process: the database changes, nothing is announced
    // to this instance's store. The policy's database version tells it anyway.
    let w = World::new().await;
    let posts = "/api/v1/tenants/acme/posts";
    let create = |slug: &str| Some(json!({"title": "t", "slug": slug, "body": "b"}));
    assert_eq!(
        w.send(w.key("viewer"), Method::POST, posts, create("one"), None)
            .await
            .status(),
        403
    );
    let me: Value = w.app.get_me(w.key("viewer")).await.json().await.unwrap();
    let viewer: uuid::Uuid = me["user_id"].as_str().unwrap().parse().unwrap();
    let acme = ironquill::domain::tenants::resolve(&w.app.db, "acme")
        .await
        .unwrap()
        .unwrap();
    ironquill::domain::memberships::set_role(
        &w.app.db,
        &acme,
        viewer,
        ironquill::db::entities::Role::Author,
    )
    .await
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        w.send(w.key("viewer"), Method::POST, posts, create("two"), None)
            .await
            .status(),
        201
    );
}

#[tokio::test]
async fn an_empty_tenant_segment_is_not_found() {
    let w = World::new().await;
    for path in ["/api/v1/tenants//members", "/api/v1/tenants//posts"] {
        assert_problem(
            w.send(w.key("owner"), Method::GET, path, None, None).await,
            404,
        )
        .await;
    }
}

#[tokio::test]
async fn an_admin_cannot_make_anyone_owner() {
    let w = World::new().await;
    let path = format!("/api/v1/tenants/acme/members/{}", w.bob_id);
    let problem = assert_problem(
        w.send(
            w.key("admin"),
            Method::PATCH,
            &path,
            Some(json!({"role": "owner"})),
            None,
        )
        .await,
        403,
    )
    .await;
    assert_eq!(
        problem["detail"],
        "missing permission: members:manage_owners"
    );
    // Nor replace a pending owner invitation with something else.
    let members = "/api/v1/tenants/acme/members";
    let invite = |role: &str| Some(json!({"email": "future@example.com", "role": role}));
    assert_eq!(
        w.send(w.key("owner"), Method::POST, members, invite("owner"), None)
            .await
            .status(),
        202
    );
    assert_problem(
        w.send(
            w.key("admin"),
            Method::POST,
            members,
            invite("viewer"),
            None,
        )
        .await,
        403,
    )
    .await;
}

#[tokio::test]
async fn a_comment_id_from_another_post_is_not_found() {
    let w = World::new().await;
    let bob = w.bob.clone();
    let first = w.post(&bob, "acme", "first", true).await;
    let second = w.post(&bob, "acme", "second", true).await;
    let cid = w.comment(&bob, &first).await;
    let path = format!("/api/v1/tenants/acme/posts/{second}/comments/{cid}");
    assert_problem(
        w.send(w.key("owner"), Method::DELETE, &path, None, None)
            .await,
        404,
    )
    .await;
}
