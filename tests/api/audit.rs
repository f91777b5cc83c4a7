//! The audit trail over HTTP: each action writes exactly its event, with who, from where and
//! which request; changes and their events commit together; the trail reads newest first,
//! cursor-paginated, filtered, and only by owners and admins of the tenant.
use figment::providers::Serialized;
use reqwest::Method;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::{
    fakes::{Browser, oidc::FakeOidc},
    helpers::{TestApp, assert_problem, spawn_app_with},
    team::Team,
};
use ironquill::db::entities::audit_event;

const UA: &str = "audit-test/1.0";

/// A request with a user agent and a request id, as a client would send them.
async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    request_id: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app
        .client
        .request(method, app.url(path))
        .header("authorization", format!("apikey {key}"))
        .header("user-agent", UA)
        .header("x-request-id", request_id);
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

async fn trail(app: &TestApp, key: &str, query: &str) -> reqwest::Response {
    let path = format!("/api/v1/tenants/acme/audit-events{query}");
    app.get_with_key(&path, key).await
}

/// Every event of the tenant with `action` by a user (not the operator's CLI), newest first.
async fn events(app: &TestApp, key: &str, action: &str) -> Vec<Value> {
    let mut all = all_events(app, key, action).await;
    all.retain(|e| e["actor_user_id"].is_string());
    all
}

/// Every event of the tenant with `action`, the operator's included.
async fn all_events(app: &TestApp, key: &str, action: &str) -> Vec<Value> {
    let resp = trail(app, key, &format!("?action={action}&limit=100")).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["items"].as_array().unwrap().clone()
}

/// The id of the key `key` (its lookup prefix is in the list).
async fn key_id(app: &TestApp, key: &str) -> String {
    let list: Value = app.list_keys(key).await.json().await.unwrap();
    list["items"][0]["id"].as_str().unwrap().to_owned()
}

/// All rows with `action`, read from the database (events outside any tenant too).
async fn rows(app: &TestApp, action: &str) -> Vec<audit_event::Model> {
    audit_event::Entity::find()
        .filter(audit_event::Column::Action.eq(action))
        .all(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn member_changes_are_recorded_with_who_from_where_and_which_request() {
    let team = Team::new().await;
    let app = &team.app;
    let owner = team.key("owner");
    let owner_key_id = key_id(app, owner).await;

    let invited = send(
        app,
        Method::POST,
        "/api/v1/tenants/acme/members",
        owner,
        "req-invite",
        Some(json!({"email": "new@example.com", "role": "editor"})),
    )
    .await;
    assert_eq!(invited.status(), 202);
    let invitation: Value = invited.json().await.unwrap();
    let bob = format!("/api/v1/tenants/acme/members/{}", team.bob_id);
    let changed = send(
        app,
        Method::PATCH,
        &bob,
        owner,
        "req-role",
        Some(json!({"role": "editor"})),
    )
    .await;
    assert_eq!(changed.status(), 200);
    let removed = send(app, Method::DELETE, &bob, owner, "req-remove", None).await;
    assert_eq!(removed.status(), 204);

    let [invite] = events(app, owner, "member_invited")
        .await
        .try_into()
        .unwrap();
    assert_eq!(invite["target_type"], "invitation");
    assert_eq!(invite["target_id"], invitation["id"]);
    assert_eq!(invite["detail"], json!({"role": "editor"}));
    assert_eq!(invite["request_id"], "req-invite");

    let [role] = events(app, owner, "member_role_changed")
        .await
        .try_into()
        .unwrap();
    assert_eq!(role["target_id"], team.bob_id.as_str());
    assert_eq!(role["detail"], json!({"from": "author", "to": "editor"}));

    let [gone] = events(app, owner, "member_removed")
        .await
        .try_into()
        .unwrap();
    assert_eq!(gone["target_id"], team.bob_id.as_str());
    assert_eq!(
        gone["detail"],
        json!({"role": "editor", "api_keys_revoked": 1})
    );
    assert_eq!(gone["request_id"], "req-remove");

    for event in [&invite, &role, &gone] {
        assert_eq!(event["outcome"], "success");
        assert_eq!(event["actor_user_id"], team.owner_id.as_str());
        assert_eq!(event["actor_api_key_id"], owner_key_id.as_str());
        assert_eq!(event["client_ip"], "127.0.0.1");
        assert_eq!(event["user_agent"], UA);
        assert!(event["tenant_id"].is_string());
    }
}

#[tokio::test]
async fn api_key_events_are_recorded_without_any_secret() {
    let team = Team::new().await;
    let app = &team.app;
    let owner = team.key("owner");
    let created = app
        .new_key(
            owner,
            &json!({"label": "ci", "tenant": "acme", "permissions": ["read"]}),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    let rotated: Value = app.rotate_key(owner, id).await.json().await.unwrap();
    assert_eq!(app.revoke_key(owner, id).await.status(), 204);

    for action in ["api_key_created", "api_key_rotated", "api_key_revoked"] {
        let [event] = events(app, owner, action).await.try_into().unwrap();
        assert_eq!(event["target_type"], "api_key");
        assert_eq!(event["target_id"], id);
        assert_eq!(event["detail"]["label"], "ci");
        assert_eq!(event["detail"]["permissions"], json!(["read"]));
    }
    // Nothing in the trail can authenticate anyone.
    let everything = trail(app, owner, "?limit=100").await.text().await.unwrap();
    for secret in [
        created["api_key"].as_str().unwrap(),
        rotated["api_key"].as_str().unwrap(),
        owner,
    ] {
        assert!(!everything.contains(secret));
    }
    // The user sees them on their own page too, in a session (a key is refused: it acts
    // in its one tenant only).
    let page = "/api/v1/me/security-events";
    assert_problem(app.get_with_key(page, owner).await, 403).await;
    let session = app.session_for(team.owner_id.parse().unwrap());
    let mine: Value = app
        .client
        .get(app.url(page))
        .bearer_auth(session)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["api_key_revoked", "api_key_rotated", "api_key_created"]
    );
}

#[tokio::test]
async fn logins_and_logouts_appear_on_the_users_security_page() {
    let idp = FakeOidc::start().await;
    let app =
        spawn_app_with(|f| f.merge(Serialized::default("auth.providers.fake", idp.settings())))
            .await;
    let mut browser = Browser::default();
    assert_eq!(browser.login(&app, "fake").await.status(), 200);
    let page: Value = browser
        .get(&app, &app.url("/api/v1/me/security-events"))
        .await
        .json()
        .await
        .unwrap();
    let [login] = page["items"]
        .as_array()
        .unwrap()
        .clone()
        .try_into()
        .unwrap();
    assert_eq!(login["action"], "login");
    assert_eq!(login["outcome"], "success");
    assert_eq!(login["target_type"], "session");
    assert_eq!(login["detail"], json!({"provider": "fake"}));
    assert_eq!(login["client_ip"], "127.0.0.1");

    let refresh_cookie = browser.cookies["__Host-iq_refresh"].clone();
    let csrf = browser.cookies["__Host-iq_csrf"].clone();
    assert_eq!(browser.post(&app, "/auth/logout", true).await.status(), 204);
    // Replaying the logout with the dead refresh cookie ends nothing and records nothing.
    for _ in 0..3 {
        let replay = app
            .client
            .post(app.url("/auth/logout"))
            .header(
                "cookie",
                format!("__Host-iq_refresh={refresh_cookie}; __Host-iq_csrf={csrf}"),
            )
            .header("x-csrf-token", &csrf)
            .send()
            .await
            .unwrap();
        assert_eq!(replay.status(), 401);
    }
    let [logout] = rows(&app, "logout").await.try_into().unwrap();
    assert_eq!(
        logout.target_id,
        login["target_id"].as_str().map(str::to_owned)
    );
    assert_eq!(
        logout.actor_user_id.map(|u| u.to_string()),
        login["actor_user_id"].as_str().map(str::to_owned)
    );

    // A failed login is recorded with its reason (a replayed callback: unknown state).
    let replay = app.url("/auth/callback/fake?state=never-issued&code=x");
    assert_eq!(Browser::default().get(&app, &replay).await.status(), 400);
    let failures = rows(&app, "login").await;
    let failed: Vec<_> = failures.iter().filter(|e| e.outcome == "failure").collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0].detail,
        Some(json!({"provider": "fake", "reason": "unknown_state"}))
    );
}

#[tokio::test]
async fn refusals_are_recorded_once_per_client_and_kind_not_once_per_request() {
    let team = Team::new().await;
    let app = &team.app;
    for _ in 0..5 {
        assert_eq!(app.get_me("iq_not_a_real_key").await.status(), 401);
    }
    let [failed] = rows(app, "authentication_failed").await.try_into().unwrap();
    assert_eq!(failed.outcome, "failure");
    assert_eq!(
        failed.detail,
        Some(json!({"credential": "api_key", "reason": "rejected"}))
    );
    assert_eq!(failed.ip.as_deref(), Some("127.0.0.1"));

    let post = json!({"title": "t", "slug": "s", "body": "b"});
    for _ in 0..3 {
        let resp = app.create_post(team.key("viewer"), "acme", &post).await;
        assert_eq!(resp.status(), 403);
    }
    let [denied] = events(app, team.key("owner"), "permission_denied")
        .await
        .try_into()
        .unwrap();
    assert_eq!(denied["outcome"], "denied");
    assert_eq!(denied["detail"]["permission"], "posts:create");
    assert_eq!(denied["detail"]["method"], "POST");
}

#[tokio::test]
async fn rate_limit_trips_are_recorded() {
    let app = spawn_app_with(|f| {
        f.merge(Serialized::default(
            "rate_limit.per_ip",
            json!({"requests": 1, "window_secs": 60}),
        ))
    })
    .await;
    for _ in 0..3 {
        app.get("/auth/providers").await;
    }
    let [trip] = rows(&app, "rate_limited").await.try_into().unwrap();
    assert_eq!(trip.outcome, "denied");
    assert_eq!(
        trip.detail,
        Some(json!({"policy": "ip", "path": "/auth/providers"}))
    );
}

#[tokio::test]
async fn the_trail_is_paginated_newest_first_and_filtered() {
    let team = Team::new().await;
    let app = &team.app;
    let owner = team.key("owner");
    let bob = format!("/api/v1/tenants/acme/members/{}", team.bob_id);
    for role in ["editor", "viewer", "author", "editor", "viewer"] {
        let resp = send(
            app,
            Method::PATCH,
            &bob,
            owner,
            "r",
            Some(json!({"role": role})),
        )
        .await;
        assert_eq!(resp.status(), 200);
    }
    // Pages of two, following the cursor, give every event once, newest first.
    let mut seen = Vec::new();
    let mut query = format!(
        "?action=member_role_changed&actor={}&limit=2",
        team.owner_id
    );
    loop {
        let page: Value = trail(app, owner, &query).await.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                query = format!(
                    "?action=member_role_changed&actor={}&limit=2&cursor={cursor}",
                    team.owner_id
                )
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    let mut sorted = seen.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first, no repeats");
    let newest: Value = trail(app, owner, "?action=member_role_changed&limit=1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(newest["items"][0]["detail"]["to"], "viewer");

    // By actor and time.
    let by_owner = format!("?actor={}&action=member_role_changed", team.owner_id);
    let page: Value = trail(app, owner, &by_owner).await.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 5);
    let by_bob = format!("?actor={}", team.bob_id);
    let page: Value = trail(app, owner, &by_bob).await.json().await.unwrap();
    assert_eq!(page["items"], json!([]));
    let future = "?since=2999-01-01T00:00:00Z";
    let page: Value = trail(app, owner, future).await.json().await.unwrap();
    assert_eq!(page["items"], json!([]));
    let past = "?until=2000-01-01T00:00:00Z";
    let page: Value = trail(app, owner, past).await.json().await.unwrap();
    assert_eq!(page["items"], json!([]));

    assert_problem(trail(app, owner, "?cursor=nope").await, 422).await;
    assert_problem(trail(app, owner, "?limit=0").await, 422).await;
    assert_problem(trail(app, owner, "?limit=101").await, 422).await;
}

#[tokio::test]
async fn only_owners_and_admins_read_the_trail_and_outsiders_learn_nothing() {
    let team = Team::new().await;
    let app = &team.app;
    for (actor, status) in [
        ("owner", 200),
        ("admin", 200),
        ("editor", 403),
        ("author", 403),
        ("viewer", 403),
        ("outsider", 404),
    ] {
        let resp = trail(app, team.key(actor), "").await;
        assert_eq!(resp.status(), status, "{actor}");
    }
    // The outsider's own tenant's trail holds nothing of acme's.
    let theirs = app
        .get_with_key(
            "/api/v1/tenants/other/audit-events?limit=100",
            team.key("outsider"),
        )
        .await;
    let body: Value = theirs.json().await.unwrap();
    assert!(
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["detail"]["slug"] != "acme")
    );
}

#[tokio::test]
async fn a_change_and_its_event_commit_together_or_not_at_all() {
    let team = Team::new().await;
    let app = &team.app;
    let owner = team.key("owner");
    let bob = format!("/api/v1/tenants/acme/members/{}", team.bob_id);

    // A refused change records nothing: the last owner cannot step down.
    let me = format!("/api/v1/tenants/acme/members/{}", team.owner_id);
    let refused = send(
        app,
        Method::PATCH,
        &me,
        owner,
        "r",
        Some(json!({"role": "viewer"})),
    )
    .await;
    assert_eq!(refused.status(), 409);
    assert_eq!(
        events(app, owner, "member_role_changed").await,
        Vec::<Value>::new()
    );

    // If the event cannot be written, the change is not made.
    app.db
        .execute_unprepared("ALTER TABLE audit_events RENAME TO audit_events_away")
        .await
        .unwrap();
    let failed = send(
        app,
        Method::PATCH,
        &bob,
        owner,
        "r",
        Some(json!({"role": "editor"})),
    )
    .await;
    assert!(failed.status().is_server_error(), "{}", failed.status());
    app.db
        .execute_unprepared("ALTER TABLE audit_events_away RENAME TO audit_events")
        .await
        .unwrap();
    let members: Value = app.list_members(owner, "acme").await.json().await.unwrap();
    let bob_role = members["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user_id"] == team.bob_id.as_str())
        .map(|m| m["role"].clone());
    assert_eq!(
        bob_role,
        Some(json!("author")),
        "the role change was rolled back"
    );
    assert_eq!(
        events(app, owner, "member_role_changed").await,
        Vec::<Value>::new()
    );
}

#[tokio::test]
async fn old_events_and_expired_records_are_purged() {
    let team = Team::new().await;
    let app = &team.app;
    let owner = team.key("owner");
    app.new_key(
        owner,
        &json!({"label": "old", "tenant": "acme", "permissions": ["read"]}),
    )
    .await;
    // Age every event past the retention, then add a fresh one.
    app.db
        .execute_unprepared("UPDATE audit_events SET created_at = '2020-01-01T00:00:00Z'")
        .await
        .unwrap();
    app.new_key(
        owner,
        &json!({"label": "new", "tenant": "acme", "permissions": ["read"]}),
    )
    .await;
    let before = audit_event::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
        .len();
    let purged = ironquill::admin::purge(&app.state).await.unwrap();
    assert_eq!(purged.audit_events as usize, before - 1);
    let left = audit_event::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].detail.as_ref().unwrap()["label"], "new");
    // Nothing further to purge.
    let again = ironquill::admin::purge(&app.state).await.unwrap();
    assert_eq!(again.audit_events, 0);
}

#[tokio::test]
async fn a_session_s_tenant_invitation_refresh_reuse_and_logout_all_are_recorded() {
    let idp = FakeOidc::start().await;
    let app =
        spawn_app_with(|f| f.merge(Serialized::default("auth.providers.fake", idp.settings())))
            .await;
    let owner = app.bootstrap("acme", "owner@example.com").await;
    let invitation = app
        .new_invitation(&owner.api_key, "acme", "user@example.com", "editor")
        .await;
    let mut browser = Browser::default();
    assert_eq!(browser.login(&app, "fake").await.status(), 200);
    let accept = format!("/api/v1/me/invitations/{invitation}/accept");
    assert_eq!(browser.post(&app, &accept, true).await.status(), 200);
    let [joined] = events(&app, &owner.api_key, "invitation_accepted")
        .await
        .try_into()
        .unwrap();
    assert_eq!(joined["target_id"], invitation.as_str());
    assert_eq!(joined["detail"], json!({"role": "editor"}));

    // A tenant created in the session: recorded in the new tenant's trail.
    let session = browser.access();
    let created = app
        .create_tenant_in_session(&session, &json!({"slug": "mine", "name": "Mine"}))
        .await;
    assert_eq!(created.status(), 201);
    let trail: Value = app
        .client
        .get(app.url("/api/v1/tenants/mine/audit-events?action=tenant_created"))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(trail["items"][0]["detail"]["slug"], "mine");
    assert!(trail["items"][0]["actor_user_id"].is_string());

    // A spent refresh token presented again.
    let spent = browser.cookies["__Host-iq_refresh"].clone();
    assert_eq!(
        browser.post(&app, "/auth/refresh", true).await.status(),
        200
    );
    let reused = app
        .client
        .post(app.url("/auth/refresh"))
        .header("x-refresh-token", &spent)
        .send()
        .await
        .unwrap();
    assert_eq!(reused.status(), 401);
    let [reuse] = rows(&app, "refresh_token_reuse").await.try_into().unwrap();
    assert_eq!(reuse.outcome, "failure");
    assert_eq!(reuse.target_type.as_deref(), Some("session"));

    // A second login, then logout everywhere: one event per session ended.
    let mut other = Browser::default();
    assert_eq!(other.login(&app, "fake").await.status(), 200);
    assert_eq!(
        other.post(&app, "/auth/logout-all", true).await.status(),
        204
    );
    assert!(!rows(&app, "logout_all").await.is_empty());
}

#[tokio::test]
async fn the_operators_cli_changes_are_in_the_trail_too() {
    let team = Team::new().await;
    let app = &team.app;
    let owner = team.key("owner");
    // Five users added with a role, six CLI keys issued in acme (the owner's and five more).
    let roles = all_events(app, owner, "member_role_changed").await;
    assert_eq!(roles.len(), 5);
    let keys = all_events(app, owner, "api_key_created").await;
    assert_eq!(keys.len(), 6);
    for event in roles.iter().chain(&keys) {
        assert!(event["actor_user_id"].is_null());
        assert_eq!(event["user_agent"], "ironquill admin (command line)");
    }
    assert!(
        roles
            .iter()
            .any(|e| e["detail"] == json!({"from": null, "to": "viewer"}))
    );
}

#[tokio::test]
async fn the_purge_keeps_spent_refresh_tokens_of_live_sessions_for_reuse_detection() {
    let idp = FakeOidc::start().await;
    let app =
        spawn_app_with(|f| f.merge(Serialized::default("auth.providers.fake", idp.settings())))
            .await;
    let mut browser = Browser::default();
    assert_eq!(browser.login(&app, "fake").await.status(), 200);
    let spent = browser.cookies["__Host-iq_refresh"].clone();
    assert_eq!(
        browser.post(&app, "/auth/refresh", true).await.status(),
        200
    );
    // The spent token's own expiry passes; its session lives on.
    app.db
        .execute_unprepared(
            "UPDATE refresh_tokens SET expires_at = '2020-01-01T00:00:00Z' WHERE spent_at IS NOT NULL",
        )
        .await
        .unwrap();
    ironquill::admin::purge(&app.state).await.unwrap();
    let reused = app
        .client
        .post(app.url("/auth/refresh"))
        .header("x-refresh-token", &spent)
        .send()
        .await
        .unwrap();
    assert_eq!(reused.status(), 401);
    assert_eq!(
        rows(&app, "refresh_token_reuse").await.len(),
        1,
        "still detected"
    );
    // The session is over: the holder of the current token is refused too.
    assert_eq!(
        browser.post(&app, "/auth/refresh", true).await.status(),
        401
    );
}
