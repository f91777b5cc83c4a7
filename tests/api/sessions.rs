//! The lifetime of what a login yields: typed access tokens of exactly their configured
//! lifetime, sessions with an absolute end, refresh races between tabs, and cookie-mode
//! refreshes that hand no token to scripts.
use chrono::{Duration, Utc};
use figment::{Figment, providers::Serialized};
use ironquill::db::entities::{refresh_token, session};
use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use serde_json::{Value, json};

use crate::{
    fakes::{Browser, oidc::FakeOidc},
    helpers::{TestApp, spawn_app_with},
};

async fn app_with(idp: &FakeOidc, customize: impl FnOnce(Figment) -> Figment) -> TestApp {
    let settings = idp.settings();
    spawn_app_with(move |f| {
        customize(f.merge(Serialized::default("auth.providers.fake", settings)))
    })
    .await
}

async fn logged_in(app: &TestApp) -> Browser {
    let mut browser = Browser::default();
    let resp = browser.login(app, "fake").await;
    assert_eq!(resp.status(), 200);
    browser
}

fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

use crate::helpers::mint_token as mint;

async fn me(app: &TestApp, token: &str) -> u16 {
    let resp = app
        .client
        .get(app.url("/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    resp.status().as_u16()
}

/// Refresh as a native client: the refresh token in `X-Refresh-Token`.
async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .post(app.url("/auth/refresh"))
        .header("x-refresh-token", token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn access_tokens_are_typed_and_live_exactly_the_configured_lifetime() {
    let idp = FakeOidc::start().await;
    let app = app_with(&idp, |f| {
        f.merge(Serialized::default("auth.access_token_ttl_secs", 600))
    })
    .await;
    let browser = logged_in(&app).await;
    let access = browser.access();
    let header = jsonwebtoken::decode_header(&access).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    // Signed with the configured key, not a generated one.
    assert_eq!(header.kid.as_deref(), Some("test-1"));
    let claims = claims_of(&access);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );
    assert_eq!(me(&app, &access).await, 200);

    // The same claims under our own key: accepted only as `at+jwt`, so no other JWT we might
    // sign (an ID token, a link) can stand in for an access token.
    assert_eq!(me(&app, &mint(Some("at+jwt"), &claims)).await, 200);
    assert_eq!(me(&app, &mint(Some("JWT"), &claims)).await, 401);
    assert_eq!(me(&app, &mint(None, &claims)).await, 401);

    // Issued in the future (though already valid by `nbf`): refused.
    let now = Utc::now().timestamp();
    let mut future = claims.clone();
    future["jti"] = json!(uuid::Uuid::now_v7());
    future["nbf"] = json!(now - 10);
    future["iat"] = json!(now + 3600);
    future["exp"] = json!(now + 4000);
    assert_eq!(me(&app, &mint(Some("at+jwt"), &future)).await, 401);
}

#[tokio::test]
async fn a_session_ends_at_its_absolute_lifetime_however_often_it_is_refreshed() {
    let idp = FakeOidc::start().await;
    let app = app_with(&idp, |f| {
        f.merge(Serialized::default("auth.session_max_age_secs", 1000))
    })
    .await;
    let browser = logged_in(&app).await;
    let sessions = session::Entity::find().all(&app.db).await.unwrap();
    let [session] = &sessions[..] else {
        panic!("one session")
    };
    // Never past its absolute end, although a refresh token lives a week.
    assert_eq!(
        (session.expires_at - session.created_at).num_seconds(),
        1000
    );
    let resp = refresh(&app, &browser.cookies["__Host-iq_refresh"]).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let next = body["refresh_token"].as_str().unwrap().to_owned();
    let refreshed = session::Entity::find_by_id(session.id)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert!((refreshed.expires_at - session.created_at).num_seconds() <= 1000);

    // The session is now older than its lifetime: the refresh fails and the user logs in again.
    session::ActiveModel {
        id: Set(session.id),
        created_at: Set(Utc::now() - Duration::seconds(1001)),
        ..Default::default()
    }
    .update(&app.db)
    .await
    .unwrap();
    assert_eq!(refresh(&app, &next).await.status(), 401);
}

#[tokio::test]
async fn two_tabs_refreshing_at_once_keep_the_session_and_real_reuse_still_ends_it() {
    let idp = FakeOidc::start().await;
    let app = app_with(&idp, |f| {
        f.merge(Serialized::default("auth.refresh_reuse_grace_secs", 10))
    })
    .await;
    let browser = logged_in(&app).await;
    let first = browser.cookies["__Host-iq_refresh"].clone();
    // Tab one wins the race...
    let resp = refresh(&app, &first).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let second = body["refresh_token"].as_str().unwrap().to_owned();
    // ...tab two, a moment later with the same token, is told to retry, and nothing is revoked.
    let resp = refresh(&app, &first).await;
    assert_eq!(resp.status(), 409);
    let resp = refresh(&app, &second).await;
    assert_eq!(resp.status(), 200, "the session lives on");
    let body: Value = resp.json().await.unwrap();
    let third = body["refresh_token"].as_str().unwrap().to_owned();

    // Past the grace, a spent token coming back is reuse: the session ends.
    let spent = refresh_token::Entity::find().all(&app.db).await.unwrap();
    for token in spent.into_iter().filter(|t| t.spent_at.is_some()) {
        refresh_token::ActiveModel {
            id: Set(token.id),
            spent_at: Set(Some(Utc::now() - Duration::seconds(11))),
            ..Default::default()
        }
        .update(&app.db)
        .await
        .unwrap();
    }
    assert_eq!(refresh(&app, &second).await.status(), 401);
    assert_eq!(refresh(&app, &third).await.status(), 401, "session revoked");
}

#[tokio::test]
async fn a_cookie_refresh_hands_no_token_to_the_page() {
    let idp = FakeOidc::start().await;
    let app = app_with(&idp, |f| f).await;
    let mut browser = logged_in(&app).await;
    let before = browser.access();
    let resp = browser.post(&app, "/auth/refresh", true).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert!(body.get("access_token").is_none(), "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(body["token_type"], "Bearer");
    // The new tokens arrived as cookies only.
    assert_ne!(browser.access(), before);
    assert_eq!(me(&app, &browser.access()).await, 200);
}
