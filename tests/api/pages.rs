//! The pages people see: the start page signed out and signed in, the error pages of the
//! browser login flow (API clients keep problem documents), the icon, and the policy every
//! page carries.
use base64::Engine;
use figment::providers::Serialized;
use ironquill::db::entities::refresh_token;
use sea_orm::EntityTrait;
use sha2::{Digest, Sha256};

use crate::{
    fakes::{Browser, NAVIGATION, oidc::FakeOidc},
    helpers::{TestApp, assert_problem, spawn_app, spawn_app_with},
};

pub async fn app_with_idp(idp: &FakeOidc) -> TestApp {
    let settings = idp.settings();
    spawn_app_with(move |f| f.merge(Serialized::default("auth.providers.fake", settings))).await
}

/// A signed-in browser, through the local provider.
pub async fn signed_in(app: &TestApp) -> Browser {
    let mut browser = Browser::default();
    assert_eq!(browser.login(app, "fake").await.status(), 200);
    browser
}

fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// Asserts an HTML page under the strict page policy, whose one stylesheet is the one the
/// policy names by hash; returns the page.
pub async fn assert_page(resp: reqwest::Response, status: u16) -> String {
    assert_eq!(resp.status(), status);
    assert_eq!(header(&resp, "content-type"), "text/html; charset=utf-8");
    let csp = header(&resp, "content-security-policy");
    for directive in [
        "default-src 'none'",
        "img-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(header(&resp, "x-frame-options"), "DENY");
    assert_eq!(header(&resp, "x-content-type-options"), "nosniff");
    let html = resp.text().await.unwrap();
    let style = html
        .split_once("<style>")
        .and_then(|(_, rest)| rest.split_once("</style>"))
        .map(|(style, _)| style)
        .expect("an inline stylesheet");
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(style));
    assert!(
        csp.contains(&format!("style-src 'sha256-{hash}'")),
        "the policy names the stylesheet's hash: {csp}"
    );
    assert!(!html.contains("<script"), "no script on a page");
    assert!(
        html.contains("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
    );
    html
}

#[tokio::test]
async fn signed_out_the_start_page_offers_each_provider_and_no_logout() {
    let idp = FakeOidc::start().await;
    let app = app_with_idp(&idp).await;
    let html = assert_page(Browser::default().navigate(&app, "/").await, 200).await;
    assert!(html.contains("<title>Start · ironquill</title>"));
    assert!(html.contains("href=\"/auth/login/fake\">Log in with Fake OIDC</a>"));
    assert!(!html.contains("/auth/logout"));
}

#[tokio::test]
async fn signed_in_the_start_page_names_the_user_and_offers_logout_with_the_csrf_token() {
    let idp = FakeOidc::start().await;
    let app = app_with_idp(&idp).await;
    let mut browser = signed_in(&app).await;
    let html = assert_page(browser.navigate(&app, "/").await, 200).await;
    assert!(
        html.contains("Signed in as <strong>Test Person</strong>"),
        "{html}"
    );
    assert!(html.contains("user@example.com"));
    assert!(
        !html.contains("/auth/login/"),
        "no login links while signed in"
    );
    let token = format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        browser.csrf()
    );
    for action in ["/auth/logout", "/auth/logout-all"] {
        let form = format!("<form method=\"post\" action=\"{action}\">{token}");
        assert!(html.contains(&form), "{action}: {html}");
    }
    assert!(html.contains(">Log out</button>") && html.contains(">Log out everywhere</button>"));
    // Not configured to end the provider's session: not offered.
    assert!(!html.contains("end_session"));
}

#[tokio::test]
async fn with_its_access_cookie_gone_a_browser_whose_session_lives_still_gets_the_logout_forms() {
    let idp = FakeOidc::start().await;
    let app = app_with_idp(&idp).await;
    let mut browser = signed_in(&app).await;
    // The access cookie lives 15 minutes, the refresh cookie 7 days.
    browser.cookies.remove("__Host-iq_access");
    for path in ["/", "/auth/logout"] {
        let html = assert_page(browser.navigate(&app, path).await, 200).await;
        assert!(
            html.contains("Signed in as <strong>Test Person</strong>"),
            "{path}: {html}"
        );
        for action in ["/auth/logout", "/auth/logout-all"] {
            let form = format!("<form method=\"post\" action=\"{action}\">");
            assert!(html.contains(&form), "{path} {action}: {html}");
        }
        assert!(!html.contains("/auth/login/"), "{path}");
    }
    // Reading the pages spent nothing: the one refresh token is still unspent.
    let tokens = refresh_token::Entity::find().all(&app.db).await.unwrap();
    assert!(
        tokens.iter().all(|t| t.spent_at.is_none()),
        "no rotation on GET"
    );
    assert_eq!(tokens.len(), 1);
    let resp = browser
        .submit(&app, "/auth/logout", &[("csrf", &browser.csrf())], false)
        .await;
    assert_eq!(resp.status(), 303, "and the form works");
}

/// Whether the start page offers to log in rather than out.
async fn shows_signed_out(app: &TestApp, browser: &mut Browser) -> bool {
    let html = assert_page(browser.navigate(app, "/").await, 200).await;
    html.contains("Log in with Fake OIDC") && !html.contains("/auth/logout")
}

#[tokio::test]
async fn a_refresh_cookie_that_could_not_refresh_shows_the_signed_out_page() {
    let idp = FakeOidc::start().await;
    let app = app_with_idp(&idp).await;

    // Spent: another copy refreshed. Reading the page is no reuse: that session lives on.
    let mut spent = signed_in(&app).await;
    spent.cookies.remove("__Host-iq_access");
    let mut current = spent.clone();
    assert_eq!(
        current.post(&app, "/auth/refresh", true).await.status(),
        200
    );
    assert!(shows_signed_out(&app, &mut spent).await, "spent");
    assert_eq!(
        current.post(&app, "/auth/refresh", true).await.status(),
        200
    );

    // Expired.
    let mut expired = signed_in(&app).await;
    expired.cookies.remove("__Host-iq_access");
    app.expire_refresh_tokens().await;
    assert!(shows_signed_out(&app, &mut expired).await, "expired");

    // Revoked: logged out from another copy of the cookies.
    let mut revoked = signed_in(&app).await;
    let mut other = revoked.clone();
    assert_eq!(other.post(&app, "/auth/logout", true).await.status(), 204);
    revoked.cookies.remove("__Host-iq_access");
    assert!(shows_signed_out(&app, &mut revoked).await, "revoked");
}

#[tokio::test]
async fn names_from_the_provider_are_escaped_on_every_page() {
    let idp = FakeOidc::start().await;
    idp.behave(|b| b.name = Some("<script>alert('x')</script> & co".into()));
    let app = app_with_idp(&idp).await;
    let mut browser = Browser::default();
    let signed_in_page = browser.login(&app, "fake").await;
    let escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co";
    let html = assert_page(signed_in_page, 200).await;
    assert!(html.contains(escaped), "{html}");
    for path in ["/", "/auth/logout"] {
        let html = assert_page(browser.navigate(&app, path).await, 200).await;
        assert!(html.contains(escaped), "{path}: {html}");
        assert!(!html.contains("<script>"), "{path}");
    }
}

#[tokio::test]
async fn a_browser_cancelling_at_the_provider_gets_a_page_with_the_way_back() {
    let idp = FakeOidc::start().await;
    idp.behave(|b| b.deny = Some("access_denied".into()));
    let app = app_with_idp(&idp).await;
    let mut browser = Browser::default();
    let callback = browser.follow_to_callback(&app, "fake").await;
    let path = callback.strip_prefix(&app.address).unwrap().to_owned();
    let html = assert_page(browser.navigate(&app, &path).await, 400).await;
    assert!(html.contains("Error 400") && html.contains("<h1>Bad Request</h1>"));
    assert!(html.contains("the identity provider refused the login: access_denied"));
    assert!(html.contains("<a class=\"button\" href=\"/\">Back to the start page</a>"));
    assert!(html.contains("Request id: <code>"));
}

#[tokio::test]
async fn a_reused_callback_is_a_page_for_a_browser_and_a_problem_for_an_api_client() {
    let idp = FakeOidc::start().await;
    let app = app_with_idp(&idp).await;
    let mut browser = Browser::default();
    let callback = browser.follow_to_callback(&app, "fake").await;
    assert_eq!(browser.get(&app, &callback).await.status(), 200);
    let path = callback.strip_prefix(&app.address).unwrap().to_owned();
    let html = assert_page(browser.navigate(&app, &path).await, 400).await;
    assert!(html.contains("unknown, expired or already used login state"));
    // A program asking the same (no HTML in its Accept) gets the problem document.
    let resp = app
        .client
        .get(&callback)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_problem(resp, 400).await;
}

#[tokio::test]
async fn an_unknown_provider_is_a_404_page_for_a_browser_and_a_problem_otherwise() {
    let app = spawn_app().await;
    let html = assert_page(
        Browser::default().navigate(&app, "/auth/login/nope").await,
        404,
    )
    .await;
    assert!(html.contains("<h1>Not Found</h1>") && html.contains("href=\"/\""));
    assert_problem(app.get("/auth/login/nope").await, 404).await;
    // Only the login flow's routes become pages: the API stays JSON whatever Accept says.
    let resp = app
        .client
        .get(app.url("/api/v1/me"))
        .header("accept", NAVIGATION)
        .send()
        .await
        .unwrap();
    assert_problem(resp, 401).await;
}

#[tokio::test]
async fn opening_the_logout_address_changes_nothing_and_offers_the_button() {
    let idp = FakeOidc::start().await;
    let app = app_with_idp(&idp).await;
    let mut browser = signed_in(&app).await;
    let html = assert_page(browser.navigate(&app, "/auth/logout").await, 200).await;
    assert!(html.contains("<form method=\"post\" action=\"/auth/logout\">"));
    let me = browser.get(&app, &app.url("/api/v1/me")).await;
    assert_eq!(me.status(), 200, "still signed in");
    // Without a session there is nothing to end, and the page says so.
    let html = assert_page(Browser::default().navigate(&app, "/auth/logout").await, 200).await;
    assert!(html.contains("Not signed in") && !html.contains("<form"));
}

#[tokio::test]
async fn the_icon_is_an_svg_served_at_both_addresses_and_cached() {
    let app = spawn_app().await;
    for path in ["/favicon.ico", "/favicon.svg"] {
        let resp = app.get(path).await;
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(header(&resp, "content-type"), "image/svg+xml", "{path}");
        assert_eq!(header(&resp, "cache-control"), "public, max-age=86400");
        assert!(resp.text().await.unwrap().starts_with("<svg"));
    }
}
