//! The same rules for a person in a browser as for a program with a key: the role matrix over
//! cookie sessions, and the CSRF proofs a cookie-authenticated write needs.
use reqwest::Method;
use serde_json::json;

use crate::{
    helpers::{TestApp, draft},
    team::{ACTORS, Team},
};

/// A request as the actor's browser sends it: the session cookie, and `Sec-Fetch-Site` as
/// given (browsers set it; scripts on other sites cannot forge it).
fn from_browser(
    app: &TestApp,
    session: &str,
    method: Method,
    path: &str,
    fetch_site: Option<&str>,
) -> reqwest::RequestBuilder {
    let mut req = app
        .client
        .request(method, app.url(path))
        .header("cookie", format!("__Host-iq_access={session}"));
    if let Some(site) = fetch_site {
        req = req.header("sec-fetch-site", site);
    }
    req
}

async fn sessions(team: &Team) -> Vec<String> {
    let mut all = Vec::new();
    for actor in ACTORS {
        let user = team.app.user_id_of(team.key(actor)).await;
        all.push(team.app.session_for(user.parse().unwrap()));
    }
    all
}

#[tokio::test]
async fn the_role_matrix_holds_for_browser_sessions_too() {
    let team = Team::new().await;
    let app = &team.app;
    let sessions = sessions(&team).await;
    let bobs = app.new_draft(&team.bob, "acme", "bobs-draft").await;
    let tag = team.etag(&bobs).await;
    let same = Some("same-origin");
    for (i, (session, status)) in sessions
        .iter()
        .zip([201, 201, 201, 201, 403, 404])
        .enumerate()
    {
        let resp = from_browser(
            app,
            session,
            Method::POST,
            "/api/v1/tenants/acme/posts",
            same,
        )
        .json(&draft(&format!("by-browser-{i}")))
        .send()
        .await
        .unwrap();
        assert_eq!(resp.status(), status, "create a post: {}", ACTORS[i]);
    }
    for (i, (session, status)) in sessions
        .iter()
        .zip([200, 200, 200, 404, 404, 404])
        .enumerate()
    {
        // Another author's draft: hidden from authors and viewers, editable by editors and up.
        let path = format!("/api/v1/tenants/acme/posts/{bobs}");
        let resp = from_browser(app, session, Method::GET, &path, None)
            .send()
            .await
            .unwrap();
        let expected = if i == 2 { 200 } else { status };
        assert_eq!(
            resp.status(),
            expected,
            "read another's draft: {}",
            ACTORS[i]
        );
    }
    for (i, (session, status)) in sessions
        .iter()
        .zip([202, 202, 403, 403, 403, 404])
        .enumerate()
    {
        let resp = from_browser(
            app,
            session,
            Method::POST,
            "/api/v1/tenants/acme/members",
            same,
        )
        .json(&json!({"email": format!("new-{i}@example.com"), "role": "viewer"}))
        .send()
        .await
        .unwrap();
        assert_eq!(resp.status(), status, "invite a member: {}", ACTORS[i]);
    }
    // An editor changes another's post, with the version read.
    let path = format!("/api/v1/tenants/acme/posts/{bobs}");
    let resp = from_browser(app, &sessions[2], Method::PATCH, &path, same)
        .header("if-match", &tag)
        .json(&json!({"title": "Edited"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_cookie_write_needs_same_origin_proof_from_sec_fetch_site_or_the_csrf_token() {
    let team = Team::new().await;
    let app = &team.app;
    let user = app.user_id_of(team.key("author")).await;
    let session = app.session_for(user.parse().unwrap());
    let create = |site: Option<&str>, slug: &str| {
        from_browser(
            app,
            &session,
            Method::POST,
            "/api/v1/tenants/acme/posts",
            site,
        )
        .json(&draft(slug))
        .send()
    };
    assert_eq!(
        create(Some("same-origin"), "a").await.unwrap().status(),
        201
    );
    for site in [Some("cross-site"), Some("same-site"), Some("none"), None] {
        let resp = create(site, "b").await.unwrap();
        assert_eq!(resp.status(), 403, "Sec-Fetch-Site: {site:?}");
    }
    // A read needs no proof: it changes nothing.
    let resp = from_browser(
        app,
        &session,
        Method::GET,
        "/api/v1/tenants/acme/posts",
        Some("cross-site"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
}
