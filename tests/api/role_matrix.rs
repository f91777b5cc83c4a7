//! The security specification at a glance: every role against every tenant endpoint, on its own
//! and on other people's rows, in its tenant and in another (OWASP API1 BOLA, API3
//! property-level authorization, API5 BFLA). A new tenant resource adds its table here.
use serde_json::json;

use crate::{
    helpers::draft,
    team::{ACTORS, Team},
};

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
        .zip([202, 202, 403, 403, 403, 404])
        .enumerate()
    {
        let email = format!("existing-{i}@example.com");
        // The address has an account (in another tenant): invited all the same.
        app.bootstrap(&format!("t{i}-home"), &email).await;
        let resp = app
            .add_member(team.key(actor), "acme", &email, "viewer")
            .await;
        check("add a member", actor, resp.status(), status);
    }
    for (i, (actor, status)) in ACTORS
        .iter()
        .zip([202, 403, 403, 403, 403, 404])
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
