//! The pages as a person uses them, in headless Chromium: logging in through the provider's
//! own pages, the signed-in start page, cookies out of scripts' reach, logging out with the
//! button, an error page's way back, and the docs UI used with the key `admin bootstrap`
//! prints.
//!
//! They need Chromium and chromedriver (Debian `chromium`, `chromium-driver`), so each is
//! `#[ignore]`d: a bare `cargo test` lists them as ignored, with that reason, rather than
//! passing them unrun. `cargo test --test browser -- --ignored` runs them, and fails where
//! either is missing. `.ci/run` installs both and runs them so.
//!
//! `SCREENSHOTS=tests/browser/screenshots cargo test --test browser start_page -- --ignored`
//! also saves the start page at desktop and phone width (the README shows them).

// Shared with the API suite, of which these tests use a part.
#[allow(dead_code, unused_imports)]
#[path = "../api/fakes/mod.rs"]
mod fakes;
#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

mod driver;

use figment::providers::Serialized;

use driver::{Chromium, Window};
use fakes::oidc::FakeOidc;
use helpers::{TestApp, spawn_app_with};

/// The app with the local provider, which shows its own login page.
async fn app_and_provider() -> (TestApp, FakeOidc) {
    let idp = FakeOidc::start().await;
    idp.behave(|b| b.login_page = true);
    let settings = idp.settings();
    let app =
        spawn_app_with(move |f| f.merge(Serialized::default("auth.providers.fake", settings)))
            .await;
    (app, idp)
}

/// From the start page through the provider's login form, signed in as `name`.
async fn log_in(browser: &Chromium, app: &TestApp, name: &str) {
    browser.client.goto(&app.url("/")).await.unwrap();
    browser.click("a[href='/auth/login/fake']").await;
    browser.find("#name").await.send_keys(name).await.unwrap();
    browser.click("#sign-in").await;
    browser
        .wait_for_text(&app.url("/"), &format!("Signed in as {name}"))
        .await;
}

#[tokio::test]
#[ignore = "needs Chromium and chromedriver: cargo test --test browser -- --ignored"]
async fn a_person_logs_in_at_the_provider_and_out_with_the_button() {
    let browser = Chromium::start(Window::Desktop).await;
    let (app, _idp) = app_and_provider().await;
    log_in(&browser, &app, "Ada Lovelace").await;

    // Signed in: no login links, and the session cookies are set but out of scripts' reach.
    let links = browser
        .client
        .find_all(fantoccini::Locator::Css("a[href^='/auth/login/']"))
        .await
        .unwrap();
    assert!(links.is_empty(), "no login links while signed in");
    let cookies = browser.client.get_all_cookies().await.unwrap();
    for name in ["__Host-iq_access", "__Host-iq_refresh"] {
        let cookie = cookies
            .iter()
            .find(|c| c.name() == name)
            .unwrap_or_else(|| panic!("{name} set"));
        assert_eq!(cookie.http_only(), Some(true), "{name}");
        assert_eq!(cookie.secure(), Some(true), "{name}");
    }
    let readable = browser.run("return document.cookie").await;
    let readable = readable.as_str().unwrap();
    assert!(
        !readable.contains("iq_access") && !readable.contains("iq_refresh"),
        "{readable}"
    );
    assert!(
        readable.contains("__Host-iq_csrf"),
        "the CSRF token is meant for scripts"
    );

    browser
        .click_xpath("//button[normalize-space()='Log out']")
        .await;
    browser.wait_for_text(&app.url("/"), "Not signed in").await;
    browser.find("a[href='/auth/login/fake']").await;
    let cookies = browser.client.get_all_cookies().await.unwrap();
    assert!(
        !cookies.iter().any(|c| c.name() == "__Host-iq_access"),
        "the session cookies are gone"
    );
    browser.close().await;
}

#[tokio::test]
#[ignore = "needs Chromium and chromedriver: cargo test --test browser -- --ignored"]
async fn cancelling_at_the_provider_shows_a_page_that_leads_back() {
    let browser = Chromium::start(Window::Desktop).await;
    let (app, _idp) = app_and_provider().await;
    browser.client.goto(&app.url("/")).await.unwrap();
    browser.click("a[href='/auth/login/fake']").await;
    browser.click("#cancel").await;
    // The provider's page is left for ours: wait for ours before reading its heading.
    browser
        .wait_for_body("refused the login: access_denied")
        .await;
    let heading = browser.find("h1").await.text().await.unwrap();
    assert_eq!(heading, "Bad Request");
    browser
        .click_xpath("//a[normalize-space()='Back to the start page']")
        .await;
    browser.wait_for_text(&app.url("/"), "Not signed in").await;
    browser.close().await;
}

#[tokio::test]
#[ignore = "needs Chromium and chromedriver: cargo test --test browser -- --ignored"]
async fn the_docs_ui_authorizes_with_the_bootstrap_key_and_tries_an_operation() {
    let browser = Chromium::start(Window::Desktop).await;
    let (app, _idp) = app_and_provider().await;
    // What `admin bootstrap` prints as `api_key`.
    let key = app.bootstrap("acme", "owner@example.com").await.api_key;
    browser.client.goto(&app.url("/docs")).await.unwrap();
    assert_eq!(browser.client.title().await.unwrap(), "ironquill API docs");
    browser.click("button.authorize").await;
    let scheme = "//div[contains(@class,'auth-container')][.//h4[contains(., 'XApiKeyAuth')]]";
    browser
        .find_xpath(&format!("{scheme}//input"))
        .await
        .send_keys(&key)
        .await
        .unwrap();
    browser
        .click_xpath(&format!("{scheme}//button[contains(@class,'authorize')]"))
        .await;
    // Authorized: the scheme now offers to forget the key.
    browser
        .find_xpath(&format!("{scheme}//button[normalize-space()='Logout']"))
        .await;
    browser.click("button.close-modal").await;

    let operation = "//div[contains(@class,'opblock-get')][.//*[@data-path='/api/v1/me']]";
    browser
        .click_xpath(&format!("{operation}//*[@data-path='/api/v1/me']"))
        .await;
    browser
        .click_xpath(&format!(
            "{operation}//button[contains(@class,'try-out__btn')]"
        ))
        .await;
    browser
        .click_xpath(&format!("{operation}//button[contains(@class,'execute')]"))
        .await;
    let status = browser
        .find_xpath(&format!(
            "{operation}//table[contains(@class,'live-responses-table')]//tbody//td[contains(@class,'response-col_status')]"
        ))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(status.trim(), "200");
    browser.close().await;
}

/// The signed-in start page at a window's width: it fits without sideways scrolling, and is
/// saved as a PNG when `SCREENSHOTS` names a folder.
async fn start_page_at(window: Window, file: &str, width: i64) {
    let browser = Chromium::start(window).await;
    let (app, _idp) = app_and_provider().await;
    log_in(&browser, &app, "Ada Lovelace").await;
    let page_width = browser
        .run("return document.documentElement.scrollWidth")
        .await;
    let viewport = browser.run("return window.innerWidth").await;
    assert_eq!(
        viewport.as_i64(),
        Some(width),
        "laid out at the window's width"
    );
    assert!(
        page_width.as_i64() <= Some(width),
        "no sideways scrolling: {page_width}"
    );
    if let Some(dir) = std::env::var_os("SCREENSHOTS") {
        let png = browser.client.screenshot().await.unwrap();
        std::fs::write(std::path::Path::new(&dir).join(file), png).unwrap();
    }
    browser.close().await;
}

#[tokio::test]
#[ignore = "needs Chromium and chromedriver: cargo test --test browser -- --ignored"]
async fn the_start_page_fits_a_desktop_window() {
    start_page_at(Window::Desktop, "start-desktop.png", 1280).await;
}

#[tokio::test]
#[ignore = "needs Chromium and chromedriver: cargo test --test browser -- --ignored"]
async fn the_start_page_fits_a_phone() {
    start_page_at(Window::Phone, "start-phone.png", 390).await;
}
