//! Machine clients: an API key exchanged at `POST /oauth/token` (client credentials) for a
//! short-lived bearer token that carries the key's user, tenant and permissions, never more,
//! and dies with its key.
use figment::providers::Serialized;
use ironquill::db::entities::audit_event;
use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, assert_problem, draft, id_of, shared_backends, spawn_app, spawn_app_with,
    spawn_sibling,
};

const POSTS: &str = "/api/v1/tenants/acme/posts";
const GRANT: (&str, &str) = ("grant_type", "client_credentials");

/// A key of the tenant owner's with `permissions`; returns its id and secret.
async fn key_with(app: &TestApp, owner: &str, permissions: Value) -> (String, String) {
    let label = format!("bot {}", uuid::Uuid::new_v4());
    let created = app
        .new_key(
            owner,
            &json!({"label": label, "tenant": "acme", "permissions": permissions}),
        )
        .await;
    let secret = created["api_key"].as_str().unwrap().to_owned();
    (id_of(&created).to_owned(), secret)
}

/// The RFC 6749 error of a refused token request, after checking its status and caching.
async fn oauth_error(resp: reqwest::Response, status: u16) -> String {
    assert_eq!(resp.status(), status);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "OAuth errors are plain JSON, not problem+json"
    );
    let body: Value = resp.json().await.unwrap();
    assert!(body["error_description"].is_string());
    body["error"].as_str().unwrap().to_owned()
}

async fn me(app: &TestApp, token: &str) -> u16 {
    let resp = app
        .with_bearer(Method::GET, "/api/v1/me", token)
        .send()
        .await;
    resp.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_key_gets_a_short_lived_token_with_basic_or_in_the_form() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let basic = app.request_token(&[GRANT], Some(&owner.api_key)).await;
    assert_eq!(basic.status(), 200);
    assert_eq!(basic.headers()["cache-control"], "no-store");
    let basic: Value = basic.json().await.unwrap();
    assert_eq!(basic["token_type"], "Bearer");
    assert_eq!(basic["expires_in"], 300);
    assert_eq!(basic["scope"], "read write");
    assert!(basic.get("refresh_token").is_none(), "no refresh token");
    let post = app
        .request_token(
            &[
                GRANT,
                ("client_id", "apikey"),
                ("client_secret", &owner.api_key),
            ],
            None,
        )
        .await;
    assert_eq!(post.status(), 200);
    let post: Value = post.json().await.unwrap();
    let tokens = [&basic, &post].map(|t| t["access_token"].as_str().unwrap());
    for (token, slug) in tokens.into_iter().zip(["by-basic", "by-post"]) {
        assert_eq!(me(&app, token).await, 200);
        let created = app
            .with_bearer(Method::POST, POSTS, token)
            .json(&draft(slug))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
    }
    // The issue is in the audit trail, on behalf of the key.
    let issued = audit_event::Entity::find()
        .filter(audit_event::Column::Action.eq("client_token_issued"))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(issued.len(), 2);
    assert_eq!(issued[0].target_type.as_deref(), Some("api_key"));
}

#[tokio::test]
async fn the_token_is_bound_to_the_keys_tenant() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    app.bootstrap("globex", "gus@example.com").await;
    let token = app.machine_token(&owner.api_key, None).await;
    let acme = app
        .with_bearer(Method::GET, POSTS, &token)
        .send()
        .await
        .unwrap();
    assert_eq!(acme.status(), 200);
    let globex = app
        .with_bearer(Method::GET, "/api/v1/tenants/globex/posts", &token)
        .send()
        .await
        .unwrap();
    assert!(
        matches!(globex.status().as_u16(), 403 | 404),
        "{}",
        globex.status()
    );
}

#[tokio::test]
async fn a_scope_narrows_the_keys_permissions_and_never_widens_them() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let read = app.machine_token(&owner.api_key, Some("read")).await;
    let listed = app
        .with_bearer(Method::GET, POSTS, &read)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let write = app
        .with_bearer(Method::POST, POSTS, &read)
        .json(&draft("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), 403);
    // A read-only key cannot get write, whichever way it asks.
    let (_, read_key) = key_with(&app, &owner.api_key, json!(["read"])).await;
    for scope in ["write", "read write"] {
        let resp = app
            .request_token(&[GRANT, ("scope", scope)], Some(&read_key))
            .await;
        assert_eq!(oauth_error(resp, 400).await, "invalid_scope");
    }
    let default: Value = app
        .request_token(&[GRANT], Some(&read_key))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        default["scope"], "read",
        "by default, the key's own permissions"
    );
}

#[tokio::test]
async fn a_revoked_or_rotated_keys_tokens_are_refused_at_once() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let (revoked_id, revoked) = key_with(&app, &owner.api_key, json!(["read"])).await;
    let (rotated_id, rotated) = key_with(&app, &owner.api_key, json!(["read"])).await;
    let of_revoked = app.machine_token(&revoked, None).await;
    let of_rotated = app.machine_token(&rotated, None).await;
    assert_eq!(me(&app, &of_revoked).await, 200);
    assert_eq!(me(&app, &of_rotated).await, 200);
    assert_eq!(
        app.revoke_key(&owner.api_key, &revoked_id).await.status(),
        204
    );
    assert_eq!(
        app.rotate_key(&owner.api_key, &rotated_id).await.status(),
        200
    );
    assert_eq!(me(&app, &of_revoked).await, 401);
    assert_eq!(me(&app, &of_rotated).await, 401);
}

#[tokio::test]
async fn another_instance_refuses_a_revoked_keys_token_at_once() {
    if !shared_backends() {
        return;
    }
    let app = spawn_app().await;
    let sibling = spawn_sibling(&app).await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let (id, key) = key_with(&app, &owner.api_key, json!(["read"])).await;
    let token = app.machine_token(&key, None).await;
    assert_eq!(
        me(&sibling, &token).await,
        200,
        "the sibling caches the key"
    );
    assert_eq!(app.revoke_key(&owner.api_key, &id).await.status(), 204);
    assert_eq!(me(&sibling, &token).await, 401);
}

/// A token request (form, Basic key) and the status and `error` it gets.
type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>, u16, &'a str);

#[tokio::test]
async fn every_refused_request_gets_its_rfc_6749_error() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let key = owner.api_key.as_str();
    let cases: [Case; 8] = [
        (&[], Some(key), 400, "invalid_request"),
        (
            &[("grant_type", "password")],
            Some(key),
            400,
            "unsupported_grant_type",
        ),
        (&[GRANT], None, 401, "invalid_client"),
        (&[GRANT], Some("iq_wrong"), 401, "invalid_client"),
        (
            &[GRANT, ("client_id", "someone"), ("client_secret", key)],
            None,
            401,
            "invalid_client",
        ),
        (
            &[GRANT, ("client_id", "apikey")],
            None,
            401,
            "invalid_client",
        ),
        (
            &[GRANT, ("client_id", "apikey"), ("client_secret", key)],
            Some(key),
            400,
            "invalid_request",
        ),
        (
            &[GRANT, ("scope", "admin")],
            Some(key),
            400,
            "invalid_scope",
        ),
    ];
    for (form, basic, status, error) in cases {
        let resp = app.request_token(form, basic).await;
        let challenge = resp.headers().get("www-authenticate").cloned();
        assert_eq!(oauth_error(resp, status).await, error, "{form:?}");
        // invalid_client names the scheme to authenticate with.
        assert_eq!(challenge.is_some(), status == 401, "{form:?}");
    }
    // A token request is a form, nothing else.
    let json = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth("apikey", Some(key))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 415);
}

#[tokio::test]
async fn the_lifetime_is_configured_and_a_session_token_shape_is_not_a_machine_one() {
    let app =
        spawn_app_with(|f| f.merge(Serialized::default("auth.client_token_ttl_secs", 60))).await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let body: Value = app
        .request_token(&[GRANT], Some(&owner.api_key))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["expires_in"], 60);
    // A machine token never comes as the session cookie.
    let token = body["access_token"].as_str().unwrap();
    let as_cookie = app
        .client
        .get(app.url("/api/v1/me"))
        .header("cookie", format!("__Host-iq_access={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(as_cookie.status(), 401);
}

#[tokio::test]
async fn discovery_names_the_token_endpoint_and_how_to_authenticate() {
    let app = spawn_app().await;
    let metadata: Value = app
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], app.state.tokens.issuer());
    assert_eq!(
        metadata["token_endpoint"],
        format!("{}/oauth/token", app.state.tokens.issuer())
    );
    assert_eq!(
        metadata["grant_types_supported"],
        json!(["client_credentials"])
    );
    assert_eq!(
        metadata["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post"])
    );
    let document: Value = app.get("/openapi.json").await.json().await.unwrap();
    let token = &document["paths"]["/oauth/token"]["post"];
    assert!(token["requestBody"]["content"]["application/x-www-form-urlencoded"].is_object());
    assert!(token["responses"]["200"].is_object());
    for status in ["400", "401"] {
        let content = &token["responses"][status]["content"];
        assert!(
            content["application/json; charset=utf-8"].is_object(),
            "{status}: the RFC 6749 body is documented"
        );
    }
}

#[tokio::test]
async fn a_machine_token_cannot_create_rotate_or_revoke_api_keys() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let (key_id, secret) = key_with(&app, &owner.api_key, json!(["read", "write"])).await;
    let (other_id, _) = key_with(&app, &owner.api_key, json!(["read"])).await;
    let token = app.machine_token(&secret, None).await;
    let keys = "/api/v1/me/api-keys";

    let create = app
        .with_bearer(Method::POST, keys, &token)
        .json(&json!({"label": "forever", "tenant": "acme", "permissions": ["read"]}))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(create, 403).await;
    assert_eq!(problem["detail"], "a machine token cannot manage API keys");
    for id in [&key_id, &other_id] {
        let rotate = app
            .with_bearer(Method::POST, &format!("{keys}/{id}/rotate"), &token)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_problem(rotate, 403).await;
        let revoke = app
            .with_bearer(Method::DELETE, &format!("{keys}/{id}"), &token)
            .send()
            .await
            .unwrap();
        assert_problem(revoke, 403).await;
    }

    // Nothing changed: the key still works for its owner, and the token still reads.
    assert_eq!(app.get_me(&secret).await.status(), 200);
    assert_eq!(me(&app, &token).await, 200);
    let listed = app
        .list_keys(&owner.api_key)
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert!(
        !listed.to_string().contains("forever"),
        "no key was created: {listed}"
    );
}

#[tokio::test]
async fn me_and_the_audit_trail_name_the_machine_token() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let token = app.machine_token(&owner.api_key, None).await;
    let me: Value = app
        .with_bearer(Method::GET, "/api/v1/me", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let authentication = &me["authentication"];
    assert_eq!(authentication["method"], "api_key");
    let jti = authentication["client_token"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(authentication["client_token"]["dpop_bound"], false);
    assert!(authentication["client_token"]["expires_at"].is_string());
    let by_key: Value = app.get_me(&owner.api_key).await.json().await.unwrap();
    assert!(by_key["authentication"]["client_token"].is_null());

    // What the token does is recorded as the key's act, naming the token.
    let invited = app
        .with_bearer(Method::POST, "/api/v1/tenants/acme/members", &token)
        .json(&json!({"email": "bob@example.com", "role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(invited.status(), 202);
    let event = audit_event::Entity::find()
        .filter(audit_event::Column::Action.eq("member_invited"))
        .one(&app.db)
        .await
        .unwrap()
        .expect("the invitation is recorded");
    assert!(event.actor_api_key_id.is_some());
    assert_eq!(event.detail.unwrap()["via_token"], jti.as_str());
}
