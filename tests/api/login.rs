//! Login through the local OIDC provider and the local GitHub, followed as a browser would,
//! and the sessions that result: cookies, CSRF, refresh rotation, reuse detection, logout.
use figment::providers::Serialized;
use serde_json::{Value, json};

use crate::{
    fakes::{
        Browser,
        github::FakeGithub,
        oidc::{FakeOidc, Signing},
    },
    helpers::{TestApp, assert_problem, shared_backends, spawn_app_with, spawn_sibling},
};

async fn app_with(oidc: Option<&FakeOidc>, github: Option<&FakeGithub>) -> TestApp {
    let oidc = oidc.map(FakeOidc::settings);
    let github = github.map(FakeGithub::settings);
    spawn_app_with(move |mut f| {
        if let Some(p) = oidc {
            f = f.merge(Serialized::default("auth.providers.fake", p));
        }
        if let Some(p) = github {
            f = f.merge(Serialized::default("auth.providers.gh", p));
        }
        f
    })
    .await
}

async fn me_with_bearer(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .get(app.url("/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_full_oidc_login_starts_a_session_in_secure_cookies() {
    let idp = FakeOidc::start().await;
    let app = app_with(Some(&idp), None).await;
    let mut browser = Browser::default();
    let resp = browser.login(&app, "fake").await;
    assert_eq!(
        resp.status(),
        200,
        "{}",
        resp.text().await.unwrap_or_default()
    );

    // Exactly these attributes: host-only, Secure, HttpOnly, SameSite=Strict, Path=/.
    let access = &browser.set_cookies["__Host-iq_access"];
    let mut attrs: Vec<&str> = access.split("; ").skip(1).collect();
    attrs.sort_unstable();
    assert_eq!(
        attrs,
        [
            "HttpOnly",
            "Max-Age=900",
            "Path=/",
            "SameSite=Strict",
            "Secure"
        ]
    );
    let refresh = &browser.set_cookies["__Host-iq_refresh"];
    let mut attrs: Vec<&str> = refresh.split("; ").skip(1).collect();
    attrs.sort_unstable();
    assert_eq!(
        attrs,
        [
            "HttpOnly",
            "Max-Age=604800",
            "Path=/",
            "SameSite=Strict",
            "Secure"
        ]
    );
    let csrf = &browser.set_cookies["__Host-iq_csrf"];
    assert!(
        !csrf.contains("HttpOnly"),
        "the page must read the CSRF token: {csrf}"
    );
    assert!(csrf.contains("Secure") && csrf.contains("SameSite=Strict"));

    let me: Value = browser
        .get(&app, &app.url("/api/v1/me"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["authentication"]["method"], "session");
    assert_eq!(me["email"], "user@example.com");
    // Native clients send the same access token as a bearer token.
    assert_eq!(me_with_bearer(&app, &browser.access()).await.status(), 200);
    // The landing page knows who is signed in: by the provider's name, with the address.
    let page = browser.get(&app, &app.url("/")).await.text().await.unwrap();
    assert!(
        page.contains("Signed in as <strong>Test Person</strong>")
            && page.contains("user@example.com"),
        "{page}"
    );
}

#[tokio::test]
async fn es256_signed_id_tokens_are_accepted_too() {
    let idp = FakeOidc::start().await;
    idp.behave(|b| b.signing = Signing::Key("ec-0".into()));
    let app = app_with(Some(&idp), None).await;
    assert_eq!(Browser::default().login(&app, "fake").await.status(), 200);
}

#[tokio::test]
async fn every_id_token_validation_failure_refuses_the_login() {
    let idp = FakeOidc::start().await;
    let app = app_with(Some(&idp), None).await;
    type Change = Box<dyn Fn(&mut crate::fakes::oidc::Behaviour)>;
    let cases: Vec<(&str, Change)> = vec![
        ("bad signature", Box::new(|b| b.signing = Signing::Forged)),
        ("alg none", Box::new(|b| b.signing = Signing::None)),
        (
            "HS256 with the public key",
            Box::new(|b| b.signing = Signing::Hs256WithPublicKey),
        ),
        (
            "HS256 with the client secret",
            Box::new(|b| b.signing = Signing::Hs256WithClientSecret),
        ),
        ("issued too long ago", Box::new(|b| b.iat_offset = -900)),
        ("expired", Box::new(|b| b.exp_offset = -120)),
        ("not yet valid", Box::new(|b| b.iat_offset = 600)),
        (
            "wrong iss",
            Box::new(|b| b.issuer = Some("https://evil.example".into())),
        ),
        (
            "wrong aud",
            Box::new(|b| b.audience = Some("someone-else".into())),
        ),
        (
            "wrong nonce",
            Box::new(|b| b.nonce = Some("not-the-nonce".into())),
        ),
        (
            "wrong azp",
            Box::new(|b| b.azp = Some("another-client".into())),
        ),
    ];
    for (what, change) in cases {
        idp.behave(|b| *b = Default::default());
        idp.behave(|b| change(b));
        let mut browser = Browser::default();
        let resp = browser.login(&app, "fake").await;
        let problem = assert_problem(resp, 400).await;
        assert_eq!(
            problem["detail"], "the identity provider's answer failed validation",
            "{what}"
        );
        assert!(
            !browser.cookies.contains_key("__Host-iq_access"),
            "{what}: no session"
        );
    }
    // And the provider still works when it behaves.
    idp.behave(|b| *b = Default::default());
    assert_eq!(Browser::default().login(&app, "fake").await.status(), 200);
}

#[tokio::test]
async fn a_replayed_state_or_code_is_refused() {
    let idp = FakeOidc::start().await;
    let app = app_with(Some(&idp), None).await;
    let mut browser = Browser::default();
    let callback = browser.follow_to_callback(&app, "fake").await;
    let login_cookie = browser.cookies.get("__Host-iq_login").cloned().unwrap();
    assert_eq!(browser.get(&app, &callback).await.status(), 200);

    // The same callback again (state already used), even with the binding cookie restored.
    browser
        .cookies
        .insert("__Host-iq_login".into(), login_cookie);
    let problem = assert_problem(browser.get(&app, &callback).await, 400).await;
    assert!(problem["detail"].as_str().unwrap().contains("login state"));

    // A fresh flow, but the old code: the provider refuses it, so do we.
    let fresh = browser.follow_to_callback(&app, "fake").await;
    let old_code = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let mut replay = url::Url::parse(&fresh).unwrap();
    let state = replay
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    replay
        .query_pairs_mut()
        .clear()
        .append_pair("code", &old_code)
        .append_pair("state", &state);
    assert_problem(browser.get(&app, replay.as_str()).await, 400).await;
}

#[tokio::test]
async fn a_login_finished_in_another_browser_is_refused() {
    let idp = FakeOidc::start().await;
    let app = app_with(Some(&idp), None).await;
    // The attacker starts a login and sends the victim the callback link (login CSRF).
    let callback = Browser::default().follow_to_callback(&app, "fake").await;
    let mut victim = Browser::default();
    let problem = assert_problem(victim.get(&app, &callback).await, 400).await;
    assert_eq!(
        problem["detail"],
        "this login was not started by this browser"
    );
}

#[tokio::test]
async fn the_providers_error_is_shown_as_a_problem() {
    let idp = FakeOidc::start().await;
    idp.behave(|b| b.deny = Some("access_denied".into()));
    let app = app_with(Some(&idp), None).await;
    let problem = assert_problem(Browser::default().login(&app, "fake").await, 400).await;
    assert_eq!(
        problem["detail"],
        "the identity provider refused the login: access_denied The user said no"
    );
}

#[tokio::test]
async fn an_unknown_kid_refreshes_the_jwks_once_and_accepts_the_rotated_key() {
    let idp = FakeOidc::start().await;
    let app = app_with(Some(&idp), None).await;
    let mut browser = Browser::default();
    // Discovery (and the first JWKS fetch) happens when the login starts.
    let callback = browser.follow_to_callback(&app, "fake").await;
    assert_eq!(idp.jwks_fetches(), 1);
    // Meanwhile the provider rotates in a key the client has not seen.
    idp.publish("rsa-2");
    idp.behave(|b| b.signing = Signing::Key("rsa-2".into()));
    // (The code in `callback` was issued before the switch; tokens are minted at exchange.)
    assert_eq!(browser.get(&app, &callback).await.status(), 200);
    assert_eq!(idp.jwks_fetches(), 2, "refreshed exactly once");
}

#[tokio::test]
async fn a_full_github_login_uses_the_verified_primary_address() {
    let gh = FakeGithub::start().await;
    let app = app_with(None, Some(&gh)).await;
    let mut browser = Browser::default();
    assert_eq!(browser.login(&app, "gh").await.status(), 200);
    let me: Value = browser
        .get(&app, &app.url("/api/v1/me"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "octo@example.com");
    assert_eq!(me["display_name"], "The Octocat");
}

#[tokio::test]
async fn a_github_error_sent_with_status_200_refuses_the_login() {
    let gh = FakeGithub::start().await;
    let app = app_with(None, Some(&gh)).await;
    let mut browser = Browser::default();
    let callback = browser.follow_to_callback(&app, "gh").await;
    let mut bad = url::Url::parse(&callback).unwrap();
    let state = bad
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    bad.query_pairs_mut()
        .clear()
        .append_pair("code", "wrong")
        .append_pair("state", &state);
    assert_problem(browser.get(&app, bad.as_str()).await, 400).await;

    // An error beside something that parses as a token: still an error, never a login.
    gh.behave(|b| b.error_beside_a_token = true);
    let mut browser = Browser::default();
    let callback = browser.follow_to_callback(&app, "gh").await;
    assert_problem(browser.get(&app, &callback).await, 400).await;
}

#[tokio::test]
async fn an_unverified_github_address_is_not_taken_as_the_users() {
    let gh = FakeGithub::start().await;
    gh.behave(|b| {
        b.emails = json!([{"email": "octo@example.com", "primary": true, "verified": false}])
    });
    let app = app_with(None, Some(&gh)).await;
    let mut browser = Browser::default();
    assert_eq!(browser.login(&app, "gh").await.status(), 200);
    let me: Value = browser
        .get(&app, &app.url("/api/v1/me"))
        .await
        .json()
        .await
        .unwrap();
    assert!(me["email"].is_null());
}

#[tokio::test]
async fn cookie_authenticated_writes_need_csrf_proof() {
    let idp = FakeOidc::start().await;
    let app = app_with(Some(&idp), None).await;
    let mut browser = Browser::default();
    browser.login(&app, "fake").await;
    let create = |req: reqwest::RequestBuilder| req.json(&json!({"slug": "mine", "name": "Mine"}));
    let cookie = browser.cookie_header();

    let no_proof = create(
        app.client
            .post(app.url("/api/v1/tenants"))
            .header("cookie", &cookie),
    )
    .send()
    .await
    .unwrap();
    let problem = assert_problem(no_proof, 403).await;
    assert!(problem["detail"].as_str().unwrap().starts_with("CSRF"));
    let wrong = create(
        app.client
            .post(app.url("/api/v1/tenants"))
            .header("cookie", &cookie)
            .header("x-csrf-token", "nope"),
    )
    .send()
    .await
    .unwrap();
    assert_problem(wrong, 403).await;
    let cross_site = create(
        app.client
            .post(app.url("/api/v1/tenants"))
            .header("cookie", &cookie)
            .header("origin", "https://evil.example"),
    )
    .send()
    .await
    .unwrap();
    assert_problem(cross_site, 403).await;

    let double_submit = create(
        app.client
            .post(app.url("/api/v1/tenants"))
            .header("cookie", &cookie)
            .header("x-csrf-token", browser.cookies["__Host-iq_csrf"].clone()),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(double_submit.status(), 201);
    let same_origin = app
        .client
        .post(app.url("/api/v1/tenants"))
        .header("cookie", &cookie)
        .header("origin", app.address.clone())
        .json(&json!({"slug": "mine-too", "name": "Mine"}))
        .send()
        .await
        .unwrap();
    assert_eq!(same_origin.status(), 201);
    // A bearer token is not sent by a browser on its own: no CSRF proof needed.
    let bearer = app
        .client
        .post(app.url("/api/v1/tenants"))
        .bearer_auth(browser.access())
        .json(&json!({"slug": "mine-three", "name": "Mine"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 201);
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_refresh_token_ends_the_session() {
    let idp = FakeOidc::start().await;
    let app = app_with(Some(&idp), None).await;
    let mut browser = Browser::default();
    browser.login(&app, "fake").await;
    let first_refresh = browser.cookies["__Host-iq_refresh"].clone();
    let first_access = browser.access();

    assert_problem(browser.post(&app, "/auth/refresh", false).await, 403).await;
    let resp = browser.post(&app, "/auth/refresh", true).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["refresh_token"].is_null(),
        "browsers keep it in the cookie"
    );
    let second_refresh = browser.cookies["__Host-iq_refresh"].clone();
    assert_ne!(second_refresh, first_refresh);
    assert_ne!(browser.access(), first_access);
    assert_eq!(me_with_bearer(&app, &browser.access()).await.status(), 200);

    // Someone replays the first (spent) refresh token: the whole session dies.
    let replay = app
        .client
        .post(app.url("/auth/refresh"))
        .header("x-refresh-token", &first_refresh)
        .send()
        .await
        .unwrap();
    assert_problem(replay, 401).await;
    let legit = app
        .client
        .post(app.url("/auth/refresh"))
        .header("x-refresh-token", &second_refresh)
        .send()
        .await
        .unwrap();
    assert_problem(legit, 401).await;
    assert_problem(me_with_bearer(&app, &browser.access()).await, 401).await;
    // ... and it is on the record.
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let events = ironquill::db::entities::audit_event::Entity::find()
        .filter(ironquill::db::entities::audit_event::Column::Action.eq("refresh_token_reuse"))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
}

#[tokio::test]
async fn native_clients_refresh_with_a_header_and_get_the_next_token_in_the_body() {
    let idp = FakeOidc::start().await;
    let app = app_with(Some(&idp), None).await;
    let mut browser = Browser::default();
    browser.login(&app, "fake").await;
    let refresh = browser.cookies["__Host-iq_refresh"].clone();
    let body: Value = app
        .client
        .post(app.url("/auth/refresh"))
        .header("x-refresh-token", &refresh)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert!(body["refresh_token"].as_str().unwrap().starts_with("iqr_"));
    assert_eq!(
        me_with_bearer(&app, body["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn logout_ends_the_session_at_once() {
    let idp = FakeOidc::start().await;
    let app = app_with(Some(&idp), None).await;
    let mut browser = Browser::default();
    browser.login(&app, "fake").await;
    let access = browser.access();
    let refresh = browser.cookies["__Host-iq_refresh"].clone();
    assert_problem(browser.post(&app, "/auth/logout", false).await, 403).await;
    assert_eq!(browser.post(&app, "/auth/logout", true).await.status(), 204);
    assert!(
        !browser.cookies.contains_key("__Host-iq_access"),
        "cookies cleared"
    );
    assert_problem(me_with_bearer(&app, &access).await, 401).await;
    let resp = app
        .client
        .post(app.url("/auth/refresh"))
        .header("x-refresh-token", &refresh)
        .send()
        .await
        .unwrap();
    assert_problem(resp, 401).await;
}

#[tokio::test]
async fn logout_all_ends_every_session_of_the_user() {
    let idp = FakeOidc::start().await;
    let app = app_with(Some(&idp), None).await;
    let mut laptop = Browser::default();
    let mut phone = Browser::default();
    laptop.login(&app, "fake").await;
    phone.login(&app, "fake").await;
    // A second passes so the new epoch is strictly after both tokens' issue time.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        laptop.post(&app, "/auth/logout-all", true).await.status(),
        204
    );
    assert_problem(me_with_bearer(&app, &phone.access()).await, 401).await;
    let resp = app
        .client
        .post(app.url("/auth/refresh"))
        .header(
            "x-refresh-token",
            phone.cookies["__Host-iq_refresh"].clone(),
        )
        .send()
        .await
        .unwrap();
    assert_problem(resp, 401).await;
    // A new login works again.
    let mut again = Browser::default();
    again.login(&app, "fake").await;
    assert_eq!(me_with_bearer(&app, &again.access()).await.status(), 200);
}

#[tokio::test]
async fn a_token_revoked_through_one_instance_is_refused_by_another() {
    if !shared_backends() {
        // In-process state is per instance by design; this needs PostgreSQL and Redis.
        eprintln!("skipped: needs DATABASE_URL and REDIS_URL");
        return;
    }
    let idp = FakeOidc::start().await;
    let a = app_with(Some(&idp), None).await;
    let b = spawn_sibling(&a).await;
    let mut browser = Browser::default();
    browser.login(&a, "fake").await;
    let access = browser.access();
    assert_eq!(
        me_with_bearer(&b, &access).await.status(),
        200,
        "b verifies a's tokens"
    );
    assert_eq!(browser.post(&a, "/auth/logout", true).await.status(), 204);
    assert_problem(me_with_bearer(&b, &access).await, 401).await;
}

#[tokio::test]
async fn providers_and_public_keys_are_published() {
    let idp = FakeOidc::start().await;
    let gh = FakeGithub::start().await;
    let app = app_with(Some(&idp), Some(&gh)).await;
    let list: Value = app.get("/auth/providers").await.json().await.unwrap();
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fake", "gh"]);
    assert_eq!(
        list["items"][0]["login_url"],
        format!("{}/auth/login/fake", app.address)
    );
    assert_eq!(list["items"][0]["display_name"], "Fake OIDC");
    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert_eq!(jwks["keys"][0]["alg"], "EdDSA");
    let page = app.get("/").await.text().await.unwrap();
    assert!(
        page.contains("/auth/login/fake")
            && page.contains("Log in with Fake OIDC")
            && page.contains("/docs")
    );
    assert_problem(app.get("/auth/login/nope").await, 404).await;
}

#[tokio::test]
async fn logout_works_with_only_the_refresh_cookie_once_the_access_token_is_gone() {
    let idp = FakeOidc::start().await;
    let app = app_with(Some(&idp), None).await;
    let mut browser = Browser::default();
    browser.login(&app, "fake").await;
    let access = browser.access();
    let refresh = browser.cookies["__Host-iq_refresh"].clone();
    // The access cookie has expired (Max-Age 900) while the refresh cookie lives on.
    browser.cookies.remove("__Host-iq_access");
    assert_problem(browser.post(&app, "/auth/logout", false).await, 403).await;
    assert_eq!(browser.post(&app, "/auth/logout", true).await.status(), 204);
    let resp = app
        .client
        .post(app.url("/auth/refresh"))
        .header("x-refresh-token", &refresh)
        .send()
        .await
        .unwrap();
    assert_problem(resp, 401).await;
    assert_problem(me_with_bearer(&app, &access).await, 401).await;
}

#[tokio::test]
async fn logout_with_an_older_access_token_also_ends_the_newer_ones() {
    let idp = FakeOidc::start().await;
    let app = app_with(Some(&idp), None).await;
    let mut browser = Browser::default();
    browser.login(&app, "fake").await;
    let older = browser.access();
    assert_eq!(
        browser.post(&app, "/auth/refresh", true).await.status(),
        200
    );
    let newer = browser.access();
    assert_ne!(older, newer);
    let resp = app
        .client
        .post(app.url("/auth/logout"))
        .bearer_auth(&older)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_problem(me_with_bearer(&app, &newer).await, 401).await;
}

#[tokio::test]
async fn of_two_concurrent_refreshes_with_one_token_exactly_one_succeeds() {
    let idp = FakeOidc::start().await;
    let app = app_with(Some(&idp), None).await;
    let mut browser = Browser::default();
    browser.login(&app, "fake").await;
    let refresh = browser.cookies["__Host-iq_refresh"].clone();
    let attempt = || {
        app.client
            .post(app.url("/auth/refresh"))
            .header("x-refresh-token", &refresh)
            .send()
    };
    let (a, b) = tokio::join!(attempt(), attempt());
    let mut statuses = vec![a.unwrap().status().as_u16(), b.unwrap().status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [200, 401],
        "one rotates, the other is treated as reuse"
    );
}

#[tokio::test]
async fn an_unreachable_issuer_is_a_503_and_is_not_hammered() {
    // Port 1 on loopback: nothing listens, every connection is refused.
    let app = spawn_app_with(|f| {
        f.merge(Serialized::default(
            "auth.providers.down",
            json!({"kind": "oidc", "issuer": "http://127.0.0.1:1", "client_id": "c", "client_secret": "s",
                   "allow_private_network": true}),
        ))
    })
    .await;
    let first = assert_problem(app.get("/auth/login/down").await, 503).await;
    assert_eq!(first["detail"], "the identity provider is unreachable");
    // Within the back-off the next login fails fast, without another fetch.
    assert_problem(app.get("/auth/login/down").await, 503).await;

    // The same with a provider that counts: logins arriving together and after the failure
    // cost the provider one request.
    let idp = FakeOidc::start().await;
    idp.set_down(true);
    let app = app_with(Some(&idp), None).await;
    let logins = (0..5).map(|_| app.get("/auth/login/fake"));
    for resp in futures_util::future::join_all(logins).await {
        assert_problem(resp, 503).await;
    }
    assert_problem(app.get("/auth/login/fake").await, 503).await;
    assert_eq!(idp.discovery_fetches(), 1, "one fetch, then the back-off");
}

#[tokio::test]
async fn unknown_kids_refetch_the_jwks_at_most_once_a_minute() {
    let idp = FakeOidc::start().await;
    // Signed by a key the provider never published (forged, or from an attacker's own kid).
    idp.behave(|b| b.signing = Signing::Key("rsa-2".into()));
    let app = app_with(Some(&idp), None).await;
    for _ in 0..4 {
        let problem = assert_problem(Browser::default().login(&app, "fake").await, 400).await;
        assert_eq!(
            problem["detail"],
            "the identity provider's answer failed validation"
        );
    }
    assert_eq!(idp.discovery_fetches(), 1);
    assert_eq!(
        idp.jwks_fetches(),
        2,
        "the first fetch and one refresh, not one per token"
    );
}

/// An app whose provider `fake` has `settings` with `changes` merged in.
pub async fn app_with_oidc(idp: &FakeOidc, changes: Value) -> TestApp {
    let mut settings = idp.settings();
    for (key, value) in changes.as_object().into_iter().flatten() {
        settings[key] = value.clone();
    }
    spawn_app_with(move |f| f.merge(Serialized::default("auth.providers.fake", settings))).await
}

#[tokio::test]
async fn a_key_the_provider_withdraws_stops_being_accepted_once_its_max_age_passes() {
    let idp = FakeOidc::start().await;
    idp.cache_control("public, max-age=0");
    idp.behave(|b| b.signing = Signing::Key("rsa-1".into()));
    // The five-minute floor lowered so the provider's max-age=0 takes effect at once.
    let app = app_with_oidc(&idp, json!({"refresh_min_secs": 0})).await;
    assert_eq!(Browser::default().login(&app, "fake").await.status(), 200);

    // The provider withdraws rsa-1 (say it leaked) while tokens signed with it still come.
    idp.withdraw("rsa-1");
    let fetches = idp.discovery_fetches();
    let problem = assert_problem(Browser::default().login(&app, "fake").await, 400).await;
    assert_eq!(
        problem["detail"],
        "the identity provider's answer failed validation"
    );
    assert!(
        idp.discovery_fetches() > fetches,
        "discovery is fetched again too"
    );
    // Keys it still publishes keep working.
    idp.behave(|b| b.signing = Signing::Key("rsa-0".into()));
    assert_eq!(Browser::default().login(&app, "fake").await.status(), 200);
}

#[tokio::test]
async fn keys_are_trusted_for_at_least_five_minutes_whatever_the_provider_says() {
    let idp = FakeOidc::start().await;
    idp.cache_control("max-age=0");
    idp.behave(|b| b.signing = Signing::Key("rsa-1".into()));
    let app = app_with(Some(&idp), None).await;
    assert_eq!(Browser::default().login(&app, "fake").await.status(), 200);
    idp.withdraw("rsa-1");
    // Within the floor the cached keys stand, and the provider is not asked again.
    assert_eq!(Browser::default().login(&app, "fake").await.status(), 200);
    assert_eq!((idp.discovery_fetches(), idp.jwks_fetches()), (1, 1));
}

#[tokio::test]
async fn a_provider_on_a_private_address_is_refused_without_allow_private_network() {
    let idp = FakeOidc::start().await;
    // By address, and by a name that resolves to it.
    let by_name = idp.issuer.replace("127.0.0.1", "localhost");
    for issuer in [idp.issuer.clone(), by_name] {
        let app = app_with_oidc(
            &idp,
            json!({"issuer": issuer, "allow_private_network": false}),
        )
        .await;
        let problem = assert_problem(app.get("/auth/login/fake").await, 503).await;
        assert_eq!(
            problem["detail"], "the identity provider is unreachable",
            "{issuer}"
        );
    }
    assert_eq!(idp.discovery_fetches(), 0, "never connected");

    // GitHub's first call is the token exchange, at the callback: refused the same way.
    let gh = FakeGithub::start().await;
    let mut settings = gh.settings();
    settings["allow_private_network"] = json!(false);
    let app =
        spawn_app_with(move |f| f.merge(Serialized::default("auth.providers.gh", settings))).await;
    assert_problem(Browser::default().login(&app, "gh").await, 503).await;
}

#[tokio::test]
async fn a_provider_answer_over_one_mebibyte_is_refused() {
    let idp = FakeOidc::start().await;
    // Large but under the cap: still read.
    idp.pad_answers(512 * 1024);
    let app = app_with(Some(&idp), None).await;
    assert_eq!(Browser::default().login(&app, "fake").await.status(), 200);

    idp.pad_answers(2 * 1024 * 1024);
    let app = app_with(Some(&idp), None).await;
    let problem = assert_problem(app.get("/auth/login/fake").await, 503).await;
    assert_eq!(problem["detail"], "the identity provider is unreachable");

    let gh = FakeGithub::start().await;
    gh.behave(|b| {
        b.emails = json!([{"email": format!("{}@example.com", "x".repeat(2 * 1024 * 1024)),
                           "primary": true, "verified": true}])
    });
    let app = app_with(None, Some(&gh)).await;
    assert_problem(Browser::default().login(&app, "gh").await, 503).await;
}

/// The user's `display_name`, as `/api/v1/me` shows it to this browser.
async fn display_name(app: &TestApp, browser: &mut Browser) -> Value {
    let me: Value = browser
        .get(app, &app.url("/api/v1/me"))
        .await
        .json()
        .await
        .unwrap();
    me["display_name"].clone()
}

#[tokio::test]
async fn display_name_comes_from_the_oidc_name_claim_and_follows_later_logins() {
    let idp = FakeOidc::start().await;
    let app = app_with(Some(&idp), None).await;
    // The operator created the user first, by address: the login links to it, and the
    // provider's name still arrives.
    app.bootstrap("acme", "user@example.com").await;
    let mut browser = Browser::default();
    assert_eq!(browser.login(&app, "fake").await.status(), 200);
    assert_eq!(display_name(&app, &mut browser).await, "Test Person");
    idp.behave(|b| b.name = Some("Test Person-Renamed".into()));
    let mut later = Browser::default();
    assert_eq!(later.login(&app, "fake").await.status(), 200);
    assert_eq!(display_name(&app, &mut later).await, "Test Person-Renamed");
    // A login without a name keeps the one known.
    idp.behave(|b| b.name = None);
    let mut nameless = Browser::default();
    assert_eq!(nameless.login(&app, "fake").await.status(), 200);
    assert_eq!(
        display_name(&app, &mut nameless).await,
        "Test Person-Renamed"
    );
}

#[tokio::test]
async fn where_the_id_token_has_no_name_it_comes_from_userinfo() {
    let idp = FakeOidc::start().await;
    idp.behave(|b| {
        b.name = None;
        b.userinfo_name = Some("Grace Hopper".into());
    });
    let app = app_with(Some(&idp), None).await;
    let mut browser = Browser::default();
    assert_eq!(browser.login(&app, "fake").await.status(), 200);
    assert_eq!(display_name(&app, &mut browser).await, "Grace Hopper");
}

#[tokio::test]
async fn userinfo_about_another_subject_is_ignored() {
    let idp = FakeOidc::start().await;
    idp.behave(|b| {
        b.name = None;
        b.userinfo_name = Some("Mallory".into());
        b.userinfo_subject = Some("someone-else".into());
    });
    let app = app_with(Some(&idp), None).await;
    let mut browser = Browser::default();
    assert_eq!(browser.login(&app, "fake").await.status(), 200);
    assert_eq!(display_name(&app, &mut browser).await, Value::Null);
}

#[tokio::test]
async fn a_failing_userinfo_endpoint_still_lets_the_login_succeed_without_a_name() {
    let idp = FakeOidc::start().await;
    idp.behave(|b| {
        b.name = None;
        b.userinfo_name = Some("Grace Hopper".into());
        b.userinfo_fails = true;
    });
    let app = app_with(Some(&idp), None).await;
    let mut browser = Browser::default();
    assert_eq!(browser.login(&app, "fake").await.status(), 200);
    assert_eq!(display_name(&app, &mut browser).await, Value::Null);
}

#[tokio::test]
async fn display_names_lose_control_and_invisible_characters_and_stop_at_200() {
    let idp = FakeOidc::start().await;
    // A right-to-left override, a bell, zero-width and isolate characters, a byte order mark.
    idp.behave(|b| {
        b.name = Some(" \u{202E}Ada\u{7}\u{200B} Love\u{2066}lace\u{2069}\u{FEFF}\n".into())
    });
    let app = app_with(Some(&idp), None).await;
    let mut browser = Browser::default();
    assert_eq!(browser.login(&app, "fake").await.status(), 200);
    assert_eq!(display_name(&app, &mut browser).await, "Ada Lovelace");
    // Nothing printable at all: no name rather than an empty one.
    idp.behave(|b| b.name = Some("\u{200B}\u{202E}\u{0}".into()));
    let mut invisible = Browser::default();
    assert_eq!(invisible.login(&app, "fake").await.status(), 200);
    assert_eq!(display_name(&app, &mut invisible).await, "Ada Lovelace");
    idp.behave(|b| b.name = Some("é".repeat(300)));
    let mut long = Browser::default();
    assert_eq!(long.login(&app, "fake").await.status(), 200);
    assert_eq!(display_name(&app, &mut long).await, "é".repeat(200));
}

#[tokio::test]
async fn display_name_comes_from_the_github_profile_falling_back_to_the_login() {
    let gh = FakeGithub::start().await;
    gh.behave(|b| b.name = None);
    let app = app_with(None, Some(&gh)).await;
    let mut browser = Browser::default();
    assert_eq!(browser.login(&app, "gh").await.status(), 200);
    assert_eq!(display_name(&app, &mut browser).await, "octocat");
    gh.behave(|b| b.name = Some("Mona Lisa Octocat".into()));
    let mut later = Browser::default();
    assert_eq!(later.login(&app, "gh").await.status(), 200);
    assert_eq!(display_name(&app, &mut later).await, "Mona Lisa Octocat");
}
