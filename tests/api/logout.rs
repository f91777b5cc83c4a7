//! Logging out with only the refresh cookie: only a token that could still refresh may end a
//! session, so an old copy can never log the user out everywhere (a spent one is reuse, handled
//! as on refresh; an expired one ends nothing). API clients keep their 204 whatever body they
//! send; logging out everywhere is charged to the user's rate limit and documented as needing
//! a session.
use figment::providers::Serialized;
use ironquill::db::entities::{audit_event, session};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use crate::{
    fakes::{Browser, oidc::FakeOidc},
    helpers::{TestApp, assert_problem, spawn_app_with},
    pages::{app_with_idp, signed_in},
};

const REFRESH: &str = "__Host-iq_refresh";

async fn me_status(app: &TestApp, browser: &mut Browser) -> u16 {
    let resp = browser.get(app, &app.url("/api/v1/me")).await;
    resp.status().as_u16()
}

/// Someone holding a copy of `refresh` and nothing else, with a CSRF cookie and header pair of
/// their own choosing.
async fn with_copied_refresh(app: &TestApp, path: &str, refresh: &str) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header(
            "cookie",
            format!("{REFRESH}={refresh}; __Host-iq_csrf=chosen"),
        )
        .header("x-csrf-token", "chosen")
        .send()
        .await
        .unwrap()
}

async fn events(app: &TestApp, action: &str) -> usize {
    audit_event::Entity::find()
        .filter(audit_event::Column::Action.eq(action))
        .all(&app.db)
        .await
        .unwrap()
        .len()
}

async fn live_sessions(app: &TestApp) -> usize {
    session::Entity::find()
        .filter(session::Column::RevokedAt.is_null())
        .all(&app.db)
        .await
        .unwrap()
        .len()
}

/// One user signed in on two devices (and the provider, which must outlive them).
async fn laptop_and_phone() -> (FakeOidc, TestApp, Browser, Browser) {
    let idp = FakeOidc::start().await;
    let app = app_with_idp(&idp).await;
    let laptop = signed_in(&app).await;
    let phone = signed_in(&app).await;
    (idp, app, laptop, phone)
}

#[tokio::test]
async fn a_spent_refresh_token_cannot_log_out_everywhere_it_is_reuse_of_its_own_session() {
    for path in ["/auth/logout-all", "/auth/logout"] {
        let (_idp, app, mut laptop, mut phone) = laptop_and_phone().await;
        let copied = laptop.cookies[REFRESH].clone();
        // The laptop refreshes: the copy is spent from now on.
        assert_eq!(laptop.post(&app, "/auth/refresh", true).await.status(), 200);

        assert_problem(with_copied_refresh(&app, path, &copied).await, 401).await;
        assert_eq!(
            me_status(&app, &mut phone).await,
            200,
            "{path}: the phone survives"
        );
        // As on refresh: the copy's own session ends as reuse, and is recorded so.
        assert_eq!(me_status(&app, &mut laptop).await, 401, "{path}");
        assert_eq!(events(&app, "refresh_token_reuse").await, 1, "{path}");
        assert_eq!(events(&app, "logout_all").await, 0, "{path}");
        assert_eq!(events(&app, "logout").await, 0, "{path}");
        assert_eq!(live_sessions(&app).await, 1, "{path}");
    }
}

#[tokio::test]
async fn an_expired_refresh_token_ends_nothing() {
    for path in ["/auth/logout-all", "/auth/logout"] {
        let (_idp, app, mut laptop, mut phone) = laptop_and_phone().await;
        let copied = laptop.cookies[REFRESH].clone();
        app.expire_refresh_tokens().await;
        assert_problem(with_copied_refresh(&app, path, &copied).await, 401).await;
        assert_eq!(me_status(&app, &mut laptop).await, 200, "{path}");
        assert_eq!(me_status(&app, &mut phone).await, 200, "{path}");
        assert_eq!(live_sessions(&app).await, 2, "{path}");
    }
}

#[tokio::test]
async fn a_live_refresh_cookie_alone_still_logs_out_everywhere() {
    let (_idp, app, mut laptop, mut phone) = laptop_and_phone().await;
    laptop.cookies.remove("__Host-iq_access");
    assert_eq!(
        laptop.post(&app, "/auth/logout-all", true).await.status(),
        204
    );
    assert_eq!(me_status(&app, &mut phone).await, 401);
    assert_eq!(live_sessions(&app).await, 0);
}

#[tokio::test]
async fn an_api_client_posting_any_other_form_body_still_gets_204() {
    let idp = FakeOidc::start().await;
    let app = app_with_idp(&idp).await;
    for (path, body) in [
        ("/auth/logout", ""),
        ("/auth/logout", "end_session=1"),
        ("/auth/logout-all", ""),
    ] {
        let browser = signed_in(&app).await;
        // What `curl -d '' -H 'Authorization: Bearer …'` sends.
        let resp = app
            .client
            .post(app.url(path))
            .bearer_auth(browser.access())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204, "{path} {body:?}");
    }
}

#[tokio::test]
async fn logging_out_everywhere_is_charged_to_the_users_rate_limit() {
    let idp = FakeOidc::start().await;
    let settings = idp.settings();
    let app = spawn_app_with(move |f| {
        f.merge(Serialized::default("auth.providers.fake", settings))
            .merge(Serialized::default(
                "rate_limit.per_principal",
                json!({"requests": 2, "window_secs": 60}),
            ))
    })
    .await;
    let mut browser = signed_in(&app).await;
    assert_eq!(me_status(&app, &mut browser).await, 200);
    assert_eq!(me_status(&app, &mut browser).await, 200);
    let resp = browser.post(&app, "/auth/logout-all", true).await;
    assert!(
        resp.headers()["ratelimit"]
            .to_str()
            .unwrap()
            .contains("\"principal\";r=0"),
        "{:?}",
        resp.headers()
    );
    assert_problem(resp, 429).await;
    assert_eq!(live_sessions(&app).await, 1, "nothing ended");
}
