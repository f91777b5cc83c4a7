//! Logging out from the pages: plain form POSTs carrying the CSRF token, answered with a
//! redirect to the start page; the provider's own session ended on request (RP-Initiated
//! Logout).
use figment::providers::Serialized;

use crate::{
    fakes::{Browser, oidc::FakeOidc},
    helpers::{TestApp, assert_problem, spawn_app_with},
    pages::{app_with_idp, assert_page, signed_in},
};

fn location(resp: &reqwest::Response) -> String {
    resp.headers()["location"].to_str().unwrap().to_owned()
}

async fn me_status(app: &TestApp, browser: &mut Browser) -> u16 {
    browser
        .get(app, &app.url("/api/v1/me"))
        .await
        .status()
        .as_u16()
}

#[tokio::test]
async fn the_logout_form_ends_the_session_and_sends_the_browser_to_the_start_page() {
    let idp = FakeOidc::start().await;
    let app = app_with_idp(&idp).await;
    let mut browser = signed_in(&app).await;
    let kept = browser.clone();
    let csrf = browser.csrf();
    // The token in the form is proof enough, with no Origin or Sec-Fetch-Site to go by.
    let resp = browser
        .submit(&app, "/auth/logout", &[("csrf", &csrf)], false)
        .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/");
    assert!(
        browser.cookies.is_empty(),
        "cookies cleared: {:?}",
        browser.cookies
    );
    let html = assert_page(browser.navigate(&app, "/").await, 200).await;
    assert!(html.contains("Log in with Fake OIDC"));
    // The session is over, not only forgotten by this browser.
    let mut copy = kept;
    assert_eq!(me_status(&app, &mut copy).await, 401);
}

#[tokio::test]
async fn a_logout_form_without_proof_of_origin_is_refused_and_changes_nothing() {
    let idp = FakeOidc::start().await;
    let app = app_with_idp(&idp).await;
    let mut browser = signed_in(&app).await;
    for path in ["/auth/logout", "/auth/logout-all"] {
        for fields in [vec![], vec![("csrf", "forged")], vec![("csrf", "")]] {
            let resp = browser.submit(&app, path, &fields, false).await;
            let html = assert_page(resp, 403).await;
            assert!(html.contains("CSRF check failed"), "{path} {fields:?}");
        }
    }
    assert_eq!(me_status(&app, &mut browser).await, 200, "still signed in");
    // An API client gets the same refusal as a problem document.
    let resp = app
        .client
        .post(app.url("/auth/logout"))
        .header("cookie", browser.cookie_header())
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_problem(resp, 403).await;
    assert_eq!(me_status(&app, &mut browser).await, 200);
}

#[tokio::test]
async fn a_form_from_a_sibling_site_is_refused_by_both_logouts() {
    // `SameSite=Strict` cookies do go along with a same-site request: a page on another port
    // or subdomain of the same site gets them sent, so the check must not count it as ours.
    let idp = FakeOidc::start().await;
    let app = app_with_idp(&idp).await;
    let mut browser = signed_in(&app).await;
    let sibling = url::Url::parse(&app.address).unwrap();
    let sibling = format!("http://{}:1", sibling.host_str().unwrap());
    for path in ["/auth/logout", "/auth/logout-all"] {
        for fields in [vec![], vec![("csrf", "guessed")]] {
            let resp = app
                .client
                .post(app.url(path))
                .header("cookie", browser.cookie_header())
                .header("accept", crate::fakes::NAVIGATION)
                .header("origin", &sibling)
                .header("sec-fetch-site", "same-site")
                .form(&fields)
                .send()
                .await
                .unwrap();
            let html = assert_page(resp, 403).await;
            assert!(html.contains("CSRF check failed"), "{path} {fields:?}");
        }
    }
    assert_eq!(me_status(&app, &mut browser).await, 200, "still signed in");
}

#[tokio::test]
async fn a_logout_form_with_a_dead_session_gets_a_page_and_its_cookies_cleared() {
    let idp = FakeOidc::start().await;
    let app = app_with_idp(&idp).await;
    let mut browser = signed_in(&app).await;
    let mut other = browser.clone();
    assert_eq!(other.post(&app, "/auth/logout", true).await.status(), 204);
    browser.cookies.remove("__Host-iq_access");
    let csrf = browser.csrf();
    let resp = browser
        .submit(&app, "/auth/logout", &[("csrf", &csrf)], false)
        .await;
    assert_page(resp, 401).await;
    // Every cookie's clearing survives the page that replaced the problem document.
    assert!(browser.cookies.is_empty(), "{:?}", browser.cookies);
}

#[tokio::test]
async fn logging_out_everywhere_from_the_form_ends_every_session_of_the_user() {
    let idp = FakeOidc::start().await;
    let app = app_with_idp(&idp).await;
    let mut laptop = signed_in(&app).await;
    let mut phone = signed_in(&app).await;
    let csrf = laptop.csrf();
    // The form's token is proof enough here too, with no Origin or Sec-Fetch-Site.
    let resp = laptop
        .submit(&app, "/auth/logout-all", &[("csrf", &csrf)], false)
        .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/");
    assert_eq!(me_status(&app, &mut laptop).await, 401);
    assert_eq!(me_status(&app, &mut phone).await, 401);
}

async fn app_ending_provider_sessions(idp: &FakeOidc) -> TestApp {
    let mut settings = idp.settings();
    settings["end_session"] = true.into();
    spawn_app_with(move |f| f.merge(Serialized::default("auth.providers.fake", settings))).await
}

#[tokio::test]
async fn where_configured_logout_leads_on_to_the_providers_end_session_endpoint() {
    let idp = FakeOidc::start().await;
    idp.behave(|b| b.end_session = true);
    let app = app_ending_provider_sessions(&idp).await;
    let mut browser = signed_in(&app).await;
    let html = assert_page(browser.navigate(&app, "/").await, 200).await;
    assert!(html.contains("<input type=\"hidden\" name=\"end_session\" value=\"1\">"));
    assert!(html.contains("Log out here and at Fake OIDC"));

    let csrf = browser.csrf();
    let resp = browser
        .submit(
            &app,
            "/auth/logout",
            &[("csrf", &csrf), ("end_session", "1")],
            true,
        )
        .await;
    let html = assert_page(resp, 200).await;
    assert!(html.contains("href=\"/auth/end-session/fake\">Sign out at Fake OIDC</a>"));
    assert_eq!(
        me_status(&app, &mut browser).await,
        401,
        "signed out here first"
    );

    let resp = browser.navigate(&app, "/auth/end-session/fake").await;
    assert_eq!(resp.status(), 303);
    let target = url::Url::parse(&location(&resp)).unwrap();
    assert_eq!(
        target.as_str().split('?').next(),
        Some(format!("{}/logout", idp.issuer).as_str())
    );
    let query: std::collections::HashMap<_, _> = target.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], crate::fakes::oidc::CLIENT_ID);
    assert_eq!(query["post_logout_redirect_uri"], app.url("/"));
    assert!(!query.contains_key("id_token_hint"), "no ID token is kept");
    // The provider ends its session and sends the browser back to the start page.
    let back = browser.get(&app, target.as_str()).await;
    assert_eq!(location(&back), app.url("/"));
    assert_eq!(idp.logouts().len(), 1);
}

#[tokio::test]
async fn the_provider_logout_is_offered_only_where_configured_and_offered() {
    // Not configured: no button, no redirect.
    let idp = FakeOidc::start().await;
    idp.behave(|b| b.end_session = true);
    let app = app_with_idp(&idp).await;
    let mut browser = signed_in(&app).await;
    let html = assert_page(browser.navigate(&app, "/").await, 200).await;
    assert!(!html.contains("end_session"));
    assert_page(browser.navigate(&app, "/auth/end-session/fake").await, 404).await;
    // Configured, but the provider names no end-session endpoint: nowhere to send anyone.
    let quiet = FakeOidc::start().await;
    let app = app_ending_provider_sessions(&quiet).await;
    let mut browser = signed_in(&app).await;
    let resp = browser.navigate(&app, "/auth/end-session/fake").await;
    assert_page(resp, 404).await;
    assert_problem(app.get("/auth/end-session/fake").await, 404).await;
}
