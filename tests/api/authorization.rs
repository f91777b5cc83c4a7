//! What holds for every tenant resource: a route needs a policy, a key reaches its own tenant
//! only, and a read key writes nothing. The rules of each resource are in the role matrix and
//! in the resource's own file.
use serde_json::json;

use crate::{
    helpers::{assert_problem, draft},
    team::Team,
};

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
async fn the_bare_tenant_path_is_closed_until_a_route_is_declared_there() {
    let team = Team::new().await;
    let app = &team.app;
    let bare = "/api/v1/tenants/acme";
    let problem = assert_problem(app.get_with_key(bare, team.key("owner")).await, 403).await;
    assert_eq!(
        problem["detail"],
        "no authorization policy covers this route"
    );
    assert_problem(app.get_with_key(bare, team.key("outsider")).await, 404).await;
    assert_problem(app.get(bare).await, 401).await;
}

#[tokio::test]
async fn an_empty_tenant_segment_is_not_found() {
    let team = Team::new().await;
    for path in ["/api/v1/tenants//members", "/api/v1/tenants//posts"] {
        assert_problem(team.app.get_with_key(path, team.key("owner")).await, 404).await;
    }
}

#[tokio::test]
async fn a_key_is_useless_in_another_tenant_even_of_its_own_user() {
    let team = Team::new().await;
    let (app, owner) = (&team.app, team.key("owner"));
    let session = app.session_for(team.owner_id.parse().unwrap());
    let created = app
        .create_tenant_in_session(&session, &json!({"slug": "beta", "name": "Beta"}))
        .await;
    assert_eq!(created.status(), 201, "the owner now belongs to beta too");
    // The owner's key is bound to acme: beta answers as if it did not exist.
    assert_problem(app.list_posts(owner, "beta").await, 404).await;
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
async fn another_method_on_a_declared_route_is_a_405_listing_the_allowed_ones() {
    let team = Team::new().await;
    let app = &team.app;
    let posts = "/api/v1/tenants/acme/posts";
    for method in [reqwest::Method::OPTIONS, reqwest::Method::PUT] {
        let resp = app
            .with_key(method.clone(), posts, team.key("viewer"))
            .send()
            .await
            .unwrap();
        let allow = resp.headers()["allow"].to_str().unwrap().to_owned();
        assert_eq!(allow, "GET, POST", "{method}");
        assert_problem(resp, 405).await;
    }
    // A non-member still learns nothing about the tenant.
    let resp = app
        .with_key(reqwest::Method::OPTIONS, posts, team.key("outsider"))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 404).await;
}

/// A role change reloads only its tenant: the other tenants' assignments carry over, and a
/// change log that no longer covers every version makes the instance read them all again.
#[tokio::test]
async fn role_changes_reload_their_tenant_and_a_gap_in_the_log_reloads_everything() {
    use sea_orm::ConnectionTrait;
    let team = Team::new().await;
    let app = &team.app;
    let owner = team.key("owner");
    let post = json!({"title": "t", "slug": "by-bob", "body": "b"});
    // Bob (author) may write; made a viewer, he may not, at once.
    assert_eq!(
        app.create_post(&team.bob, "acme", &post).await.status(),
        201
    );
    let demoted = app.change_role(owner, "acme", &team.bob_id, "viewer").await;
    assert_eq!(demoted.status(), 200);
    let refused = json!({"title": "t", "slug": "by-bob-2", "body": "b"});
    assert_eq!(
        app.create_post(&team.bob, "acme", &refused).await.status(),
        403
    );
    // The other tenant was carried over untouched.
    let theirs = json!({"title": "t", "slug": "olga", "body": "b"});
    let outsider = team.key("outsider");
    assert_eq!(
        app.create_post(outsider, "other", &theirs).await.status(),
        201
    );

    // The log loses its entries: the next change cannot be applied alone.
    app.db
        .execute_unprepared("DELETE FROM authz_changes")
        .await
        .unwrap();
    let restored = app.change_role(owner, "acme", &team.bob_id, "author").await;
    assert_eq!(restored.status(), 200);
    app.db
        .execute_unprepared("DELETE FROM authz_changes")
        .await
        .unwrap();
    let again = app.change_role(owner, "acme", &team.bob_id, "editor").await;
    assert_eq!(again.status(), 200);
    assert_eq!(
        app.create_post(&team.bob, "acme", &refused).await.status(),
        201
    );
    let olga = json!({"title": "t", "slug": "olga-2", "body": "b"});
    assert_eq!(
        app.create_post(outsider, "other", &olga).await.status(),
        201
    );
}
