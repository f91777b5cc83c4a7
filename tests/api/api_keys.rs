//! The key lifecycle over HTTP: shown once, never stored or listed, revoked and rotated at once.
use ironquill::db::entities::{api_key, audit_event, identity, membership, tenant, user};
use sea_orm::EntityTrait;
use serde_json::json;

use crate::helpers::{TestApp, assert_problem, id_of, shared_backends, spawn_app, spawn_sibling};

/// Every stored value of the tables a key could leak into, as text.
async fn everything_stored(app: &TestApp) -> String {
    let mut all = String::new();
    for rows in [
        api_key::Entity::find()
            .into_json()
            .all(&app.db)
            .await
            .unwrap(),
        audit_event::Entity::find()
            .into_json()
            .all(&app.db)
            .await
            .unwrap(),
        user::Entity::find().into_json().all(&app.db).await.unwrap(),
        identity::Entity::find()
            .into_json()
            .all(&app.db)
            .await
            .unwrap(),
        tenant::Entity::find()
            .into_json()
            .all(&app.db)
            .await
            .unwrap(),
        membership::Entity::find()
            .into_json()
            .all(&app.db)
            .await
            .unwrap(),
    ] {
        all.push_str(&serde_json::to_string(&rows).unwrap());
    }
    all
}

#[tokio::test]
async fn a_created_key_is_shown_once_and_works() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let created = app
        .new_key(
            &owner.api_key,
            &json!({"label": "deploy bot", "tenant": "acme", "permissions": ["read", "write"]}),
        )
        .await;
    let secret = created["api_key"].as_str().unwrap();
    assert!(secret.starts_with("iq_"));
    assert!(secret.starts_with(created["prefix"].as_str().unwrap()));
    assert_eq!(created["label"], "deploy bot");
    assert_eq!(created["tenant"], "acme");
    assert_eq!(created["permissions"], json!(["read", "write"]));
    assert_eq!(app.get_me(secret).await.status(), 200);
}

#[tokio::test]
async fn the_secret_is_never_listed_nor_stored() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let created = app
        .new_key(
            &owner.api_key,
            &json!({"label": "ci", "tenant": "acme", "permissions": ["read"]}),
        )
        .await;
    let secret = created["api_key"].as_str().unwrap().to_owned();
    app.get_me(&secret).await;

    let listing = app.list_keys(&owner.api_key).await.text().await.unwrap();
    assert!(listing.contains("\"ci\""), "the key is listed");
    for s in [&secret, &owner.api_key] {
        assert!(!listing.contains(s.as_str()), "no secret in the list");
        // Not even the secret part alone.
        assert!(!listing.contains(&s[20..]));
    }
    assert!(!listing.contains("secret_hash") && !listing.contains("hash"));

    let stored = everything_stored(&app).await;
    for s in [&secret, &owner.api_key] {
        assert!(
            !stored.contains(&s[20..]),
            "no stored column holds a secret"
        );
    }
}

#[tokio::test]
async fn the_list_shows_what_identifies_a_key_and_last_use() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    app.get_me(&owner.api_key).await;
    let list: serde_json::Value = app.list_keys(&owner.api_key).await.json().await.unwrap();
    let key = &list["items"][0];
    assert_eq!(key["label"], "cli:acme");
    assert_eq!(key["tenant"], "acme");
    assert!(owner.api_key.starts_with(key["prefix"].as_str().unwrap()));
    assert!(key["last_used_at"].is_string(), "use was recorded: {key}");
    assert!(key["created_at"].is_string());
    assert!(key.get("api_key").is_none());
}

#[tokio::test]
async fn a_revoked_key_is_dead_at_once() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let created = app
        .new_key(
            &owner.api_key,
            &json!({"label": "temp", "tenant": "acme", "permissions": ["read"]}),
        )
        .await;
    let secret = created["api_key"].as_str().unwrap();
    assert_eq!(
        app.get_me(secret).await.status(),
        200,
        "works, and is now cached"
    );

    assert_eq!(
        app.revoke_key(&owner.api_key, id_of(&created))
            .await
            .status(),
        204
    );
    assert_problem(app.get_me(secret).await, 401).await;
    let list: serde_json::Value = app.list_keys(&owner.api_key).await.json().await.unwrap();
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["id"] != created["id"])
    );
    assert_problem(app.revoke_key(&owner.api_key, id_of(&created)).await, 404).await;
}

#[tokio::test]
async fn rotation_gives_a_new_secret_and_kills_the_old_one() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let created = app
        .new_key(
            &owner.api_key,
            &json!({"label": "bot", "tenant": "acme", "permissions": ["read"]}),
        )
        .await;
    let old = created["api_key"].as_str().unwrap();
    assert_eq!(app.get_me(old).await.status(), 200);

    let resp = app.rotate_key(&owner.api_key, id_of(&created)).await;
    assert_eq!(resp.status(), 200);
    let rotated: serde_json::Value = resp.json().await.unwrap();
    let new = rotated["api_key"].as_str().unwrap();
    assert_ne!(new, old);
    for field in ["id", "label", "tenant", "permissions", "expires_at"] {
        assert_eq!(rotated[field], created[field], "{field} kept");
    }
    assert_problem(app.get_me(old).await, 401).await;
    assert_eq!(app.get_me(new).await.status(), 200);
}

#[tokio::test]
async fn another_users_keys_cannot_be_seen_revoked_or_rotated() {
    let app = spawn_app().await;
    let ann = app.bootstrap("acme", "ann@example.com").await;
    let bob = app.add_user("acme", "bob@example.com", "admin").await;
    let anns = app
        .new_key(
            &ann.api_key,
            &json!({"label": "mine", "tenant": "acme", "permissions": ["read"]}),
        )
        .await;

    let bobs_list = app.list_keys(&bob.api_key).await.text().await.unwrap();
    assert!(!bobs_list.contains(anns["id"].as_str().unwrap()));
    assert_problem(app.revoke_key(&bob.api_key, id_of(&anns)).await, 404).await;
    assert_problem(app.rotate_key(&bob.api_key, id_of(&anns)).await, 404).await;
    assert_eq!(
        app.get_me(anns["api_key"].as_str().unwrap()).await.status(),
        200,
        "untouched"
    );
}

#[tokio::test]
async fn labels_are_unique_among_active_keys() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let body = json!({"label": "ci", "tenant": "acme", "permissions": ["read"]});
    let first = app.new_key(&owner.api_key, &body).await;
    assert_problem(app.create_key(&owner.api_key, &body).await, 409).await;
    app.revoke_key(&owner.api_key, id_of(&first)).await;
    app.new_key(&owner.api_key, &body).await;
}

#[tokio::test]
async fn invalid_requests_name_the_field() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let past = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    for (body, field) in [
        (
            json!({"label": "", "tenant": "acme", "permissions": ["read"]}),
            "label",
        ),
        (
            json!({"label": "x", "tenant": "acme", "permissions": []}),
            "permissions",
        ),
        (
            json!({"label": "x", "tenant": "acme", "permissions": ["read", "admin"]}),
            "permissions[1]",
        ),
        (
            json!({"label": "x", "tenant": "acme", "permissions": ["read"], "expires_at": past}),
            "expires_at",
        ),
        (
            json!({"label": "x", "tenant": "nowhere", "permissions": ["read"]}),
            "tenant",
        ),
        (json!({"tenant": "acme", "permissions": ["read"]}), "label"),
        // Mass assignment: fields the server owns cannot be set.
        (
            json!({"label": "x", "tenant": "acme", "permissions": ["read"], "user_id": owner.user_id}),
            "user_id",
        ),
        (
            json!({"label": "x", "tenant": "acme", "permissions": ["read"], "last_used_at": past}),
            "last_used_at",
        ),
    ] {
        let problem = assert_problem(app.create_key(&owner.api_key, &body).await, 422).await;
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
    }
}

#[tokio::test]
async fn a_key_is_bound_to_tenants_its_user_belongs_to() {
    let app = spawn_app().await;
    let ann = app.bootstrap("acme", "ann@example.com").await;
    app.bootstrap("other", "olga@example.com").await;
    let resp = app
        .create_key(
            &ann.api_key,
            &json!({"label": "x", "tenant": "other", "permissions": ["read"]}),
        )
        .await;
    let problem = assert_problem(resp, 422).await;
    assert_eq!(problem["errors"][0]["field"], "tenant");
    // Same answer as for a tenant that does not exist at all: no existence oracle.
    let missing = app
        .create_key(
            &ann.api_key,
            &json!({"label": "x", "tenant": "nowhere", "permissions": ["read"]}),
        )
        .await;
    let missing = assert_problem(missing, 422).await;
    assert_eq!(missing["detail"], problem["detail"]);
}

#[tokio::test]
async fn a_key_cannot_mint_a_key_for_another_tenant_or_with_more_permissions() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let session = app.session_for(owner.user_id);
    let created = app
        .create_tenant_in_session(&session, &json!({"slug": "beta", "name": "Beta"}))
        .await;
    assert_eq!(created.status(), 201);
    // The owner is a member of beta, but this key is bound to acme.
    let resp = app
        .create_key(
            &owner.api_key,
            &json!({"label": "x", "tenant": "beta", "permissions": ["read"]}),
        )
        .await;
    assert_problem(resp, 422).await;

    let write_only = app
        .new_key(
            &owner.api_key,
            &json!({"label": "w", "tenant": "acme", "permissions": ["write"]}),
        )
        .await;
    let write_only = write_only["api_key"].as_str().unwrap();
    let resp = app
        .create_key(
            write_only,
            &json!({"label": "more", "tenant": "acme", "permissions": ["read", "write"]}),
        )
        .await;
    assert_problem(resp, 403).await;
}

#[tokio::test]
async fn revocation_through_one_instance_is_refused_by_another_at_once() {
    if !shared_backends() {
        // In-process state is per instance by design; this needs PostgreSQL and Redis.
        eprintln!("skipped: needs DATABASE_URL and REDIS_URL");
        return;
    }
    let a = spawn_app().await;
    let b = spawn_sibling(&a).await;
    let owner = a.bootstrap("acme", "ann@example.com").await;
    let created = a
        .new_key(
            &owner.api_key,
            &json!({"label": "shared", "tenant": "acme", "permissions": ["read"]}),
        )
        .await;
    let secret = created["api_key"].as_str().unwrap();
    assert_eq!(
        b.get_me(secret).await.status(),
        200,
        "b verified it and cached it"
    );

    assert_eq!(
        a.revoke_key(&owner.api_key, id_of(&created)).await.status(),
        204
    );
    assert_problem(b.get_me(secret).await, 401).await;

    // Rotation too: b cached the owner's key; a rotates it; b refuses the old secret.
    let cli_key = b.listed_key(&owner.api_key, "cli:acme").await;
    let rotated: serde_json::Value = a
        .rotate_key(&owner.api_key, id_of(&cli_key))
        .await
        .json()
        .await
        .unwrap();
    assert_problem(b.get_me(&owner.api_key).await, 401).await;
    assert_eq!(
        b.get_me(rotated["api_key"].as_str().unwrap())
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn an_expiring_key_cannot_mint_or_rotate_a_longer_lived_one() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let in_a_day = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let in_a_week = (chrono::Utc::now() + chrono::Duration::days(7)).to_rfc3339();
    let short = app
        .new_key(&owner.api_key, &json!({"label": "ci", "tenant": "acme", "permissions": ["read", "write"], "expires_at": in_a_day}))
        .await;
    let short_secret = short["api_key"].as_str().unwrap();
    for body in [
        json!({"label": "forever", "tenant": "acme", "permissions": ["read"]}),
        json!({"label": "longer", "tenant": "acme", "permissions": ["read"], "expires_at": in_a_week}),
    ] {
        assert_problem(app.create_key(short_secret, &body).await, 403).await;
    }
    // Nor take over the owner's permanent key by rotating it.
    let permanent = app.listed_key(&owner.api_key, "cli:acme").await;
    assert_problem(app.rotate_key(short_secret, id_of(&permanent)).await, 403).await;
    assert_eq!(
        app.get_me(&owner.api_key).await.status(),
        200,
        "the owner's key is untouched"
    );
    // Within its own lifetime it may.
    let soon = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    app.new_key(
        short_secret,
        &json!({"label": "shorter", "tenant": "acme", "permissions": ["read"], "expires_at": soon}),
    )
    .await;
}

#[tokio::test]
async fn cli_labels_are_reserved() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let resp = app
        .create_key(
            &owner.api_key,
            &json!({"label": "cli:beta", "tenant": "acme", "permissions": ["read"]}),
        )
        .await;
    let problem = assert_problem(resp, 422).await;
    assert_eq!(problem["errors"][0]["field"], "label");
}

/// The revocation marker, without Redis: two verifiers (two instances) over one database and
/// one store. The second has the key cached; a revocation through the first reaches it anyway.
#[tokio::test]
async fn a_revocation_marker_reaches_a_verifier_whose_cache_holds_the_key() {
    use ironquill::auth::api_keys::{KeyScope, KeyVerifier, revoke};

    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let created = app
        .new_key(
            &owner.api_key,
            &json!({"label": "x", "tenant": "acme", "permissions": ["read"]}),
        )
        .await;
    let secret = created["api_key"].as_str().unwrap();
    let other = KeyVerifier::new(app.db.clone(), app.state.store.clone());
    let principal = other
        .verify(secret, None)
        .await
        .unwrap()
        .expect("valid, and now cached by `other`");

    let owner_principal = app
        .state
        .keys
        .verify(&owner.api_key, None)
        .await
        .unwrap()
        .unwrap();
    let id = created["id"].as_str().unwrap().parse().unwrap();
    revoke(
        &app.db,
        &app.state.keys,
        &KeyScope {
            principal: &owner_principal,
        },
        id,
        &ironquill::domain::audit::Context::default(),
    )
    .await
    .unwrap();
    assert_eq!(principal.user_id, owner.user_id);
    assert!(
        other.verify(secret, None).await.unwrap().is_none(),
        "refused despite the warm cache"
    );
}

/// `last_used_at` is written at most once a minute per key: each fresh verifier (a cache miss,
/// as on another instance) would otherwise write on every request.
#[tokio::test]
async fn last_used_at_is_written_at_most_once_a_minute() {
    use ironquill::auth::api_keys::KeyVerifier;
    use sea_orm::{ActiveModelTrait, Set};

    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let created = app
        .new_key(
            &owner.api_key,
            &json!({"label": "x", "tenant": "acme", "permissions": ["read"]}),
        )
        .await;
    let secret = created["api_key"].as_str().unwrap();
    let id = id_of(&created);
    let last_used = || app.last_used_at(id);
    let verify = || async {
        KeyVerifier::new(app.db.clone(), app.state.store.clone())
            .verify(secret, None)
            .await
            .unwrap()
            .expect("valid key");
    };
    assert_eq!(last_used().await, None);
    verify().await;
    let first = last_used().await.expect("recorded on first use");
    verify().await;
    assert_eq!(
        last_used().await,
        Some(first),
        "not again within the minute"
    );
    let long_ago = chrono::Utc::now() - chrono::Duration::minutes(2);
    api_key::ActiveModel {
        id: Set(id.parse().unwrap()),
        last_used_at: Set(Some(long_ago)),
        ..Default::default()
    }
    .update(&app.db)
    .await
    .unwrap();
    verify().await;
    assert!(
        last_used().await.unwrap() > first,
        "written again once the minute has passed"
    );
}

/// Labels are unique per tenant: a key bound to one tenant learns nothing about the labels its
/// user has in another.
#[tokio::test]
async fn labels_are_unique_per_tenant_and_say_nothing_about_other_tenants() {
    let app = spawn_app().await;
    let acme = app.bootstrap("acme", "ann@example.com").await;
    let beta = app.bootstrap("beta", "ann@example.com").await;
    let ci = |tenant: &str| json!({"label": "ci", "tenant": tenant, "permissions": ["read"]});
    assert_eq!(
        app.create_key(&acme.api_key, &ci("acme")).await.status(),
        201
    );
    assert_eq!(
        app.create_key(&beta.api_key, &ci("beta")).await.status(),
        201,
        "the same label in another tenant"
    );
    let problem = assert_problem(app.create_key(&acme.api_key, &ci("acme")).await, 409).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("in this tenant")
    );
}

#[tokio::test]
async fn the_key_list_is_paginated_with_the_same_hard_maximum_as_posts() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    for label in ["a", "b"] {
        app.new_key(
            &owner.api_key,
            &json!({"label": label, "tenant": "acme", "permissions": ["read"]}),
        )
        .await;
    }
    let page: serde_json::Value = app
        .get_with_key("/api/v1/me/api-keys?limit=2", &owner.api_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["next_offset"], 2, "three keys: the CLI's and two");
    let last: serde_json::Value = app
        .get_with_key("/api/v1/me/api-keys?limit=2&offset=2", &owner.api_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(last["items"].as_array().unwrap().len(), 1);
    assert!(last.get("next_offset").is_none());
    let problem = assert_problem(
        app.get_with_key("/api/v1/me/api-keys?limit=101", &owner.api_key)
            .await,
        422,
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "limit");
}
