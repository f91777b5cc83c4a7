use serde_json::json;

use crate::helpers::{assert_problem, spawn_app, spawn_app_with};

#[tokio::test]
async fn creating_a_tenant_makes_the_caller_its_owner() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let resp = app
        .create_tenant_in_session(
            &app.session_for(owner.user_id),
            &json!({"slug": "beta-blog", "name": "Beta Blog"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let tenant: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(tenant["slug"], "beta-blog");
    assert_eq!(tenant["name"], "Beta Blog");
    assert_eq!(tenant["role"], "owner");
    let scope = ironquill::domain::tenants::resolve(&app.db, "beta-blog")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(scope.id().to_string(), tenant["id"].as_str().unwrap());
    let role = ironquill::domain::memberships::role_of(&app.db, &scope, owner.user_id)
        .await
        .unwrap();
    assert_eq!(role, Some(ironquill::db::entities::Role::Owner));
}

#[tokio::test]
async fn a_taken_slug_is_a_conflict() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let resp = app
        .create_tenant_in_session(
            &app.session_for(owner.user_id),
            &json!({"slug": "acme", "name": "Again"}),
        )
        .await;
    assert_problem(resp, 409).await;
}

#[tokio::test]
async fn invalid_and_reserved_slugs_are_refused_naming_slug() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    for slug in [
        "AB",
        "Upper",
        "api",
        "admin",
        "-lead",
        "trail-",
        "double--hyphen",
        "under_score",
        "x",
    ] {
        let resp = app
            .create_tenant_in_session(
                &app.session_for(owner.user_id),
                &json!({"slug": slug, "name": "N"}),
            )
            .await;
        let problem = assert_problem(resp, 422).await;
        assert_eq!(problem["errors"][0]["field"], "slug", "{slug}");
    }
}

#[tokio::test]
async fn a_wrongly_shaped_body_names_the_field() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    for (body, field) in [
        (json!({"slug": "beta"}), "name"),
        (json!({"slug": 7, "name": "B"}), "slug"),
        (
            json!({"slug": "beta", "name": "B", "id": "00000000-0000-0000-0000-000000000000"}),
            "id",
        ),
        (json!({"slug": "beta", "name": ""}), "name"),
    ] {
        let resp = app
            .create_tenant_in_session(&app.session_for(owner.user_id), &body)
            .await;
        let problem = assert_problem(resp, 422).await;
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
        assert!(
            problem["detail"].as_str().unwrap().contains(field),
            "{body}: {problem}"
        );
    }
}

#[tokio::test]
async fn malformed_json_is_a_bad_request() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let resp = app
        .client
        .post(app.url("/api/v1/tenants"))
        .bearer_auth(app.session_for(owner.user_id))
        .header("content-type", "application/json")
        .body("{\"slug\": ")
        .send()
        .await
        .unwrap();
    let problem = assert_problem(resp, 400).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with("malformed JSON")
    );
}

#[tokio::test]
async fn a_body_that_is_not_json_is_unsupported_media_type() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let resp = app
        .client
        .post(app.url("/api/v1/tenants"))
        .bearer_auth(app.session_for(owner.user_id))
        .header("content-type", "text/plain")
        .body("slug=beta")
        .send()
        .await
        .unwrap();
    assert_problem(resp, 415).await;
}

#[tokio::test]
async fn a_key_lists_only_its_own_tenant() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let created = app
        .create_tenant_in_session(
            &app.session_for(owner.user_id),
            &json!({"slug": "beta", "name": "Beta"}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let list: serde_json::Value = app.list_tenants(&owner.api_key).await.json().await.unwrap();
    let slugs: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["acme"]);
}

#[tokio::test]
async fn a_key_bound_to_a_tenant_cannot_create_tenants() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    // A key of the owner's, with every permission: still confined to acme.
    let resp = app
        .create_tenant(&owner.api_key, &json!({"slug": "beta", "name": "Beta"}))
        .await;
    let problem = assert_problem(resp, 403).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("tenant"),
        "{problem}"
    );
    let resp = app.list_tenants(&owner.api_key).await;
    let list: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        1,
        "nothing created"
    );
}

#[tokio::test]
async fn the_tenant_list_is_paginated_with_the_same_hard_maximum_as_posts() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let session = app.session_for(owner.user_id);
    for slug in ["beta", "gamma"] {
        let resp = app
            .create_tenant_in_session(&session, &json!({"slug": slug, "name": slug}))
            .await;
        assert_eq!(resp.status(), 201);
    }
    let list = |query: &'static str| {
        let session = session.clone();
        let app = &app;
        async move {
            app.client
                .get(app.url(&format!("/api/v1/tenants{query}")))
                .bearer_auth(session)
                .send()
                .await
                .unwrap()
        }
    };
    let page: serde_json::Value = list("?limit=2").await.json().await.unwrap();
    let slugs: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["acme", "beta"]);
    assert_eq!(page["next_offset"], 2);
    let problem = assert_problem(list("?limit=101").await, 422).await;
    assert_eq!(problem["errors"][0]["field"], "limit");
}

#[tokio::test]
async fn one_user_owns_at_most_the_configured_number_of_tenants() {
    let app = spawn_app_with(|f| {
        f.merge(figment::providers::Serialized::default(
            "tenants.max_owned_per_user",
            2,
        ))
    })
    .await;
    // The operator's CLI is not capped; the API counts what the user owns already.
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let session = app.session_for(owner.user_id);
    let create = |slug: &'static str| {
        let (app, session) = (&app, session.clone());
        async move {
            app.create_tenant_in_session(&session, &json!({"slug": slug, "name": slug}))
                .await
        }
    };
    assert_eq!(create("beta").await.status(), 201);
    let problem = assert_problem(create("gamma").await, 403).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("own 2 tenants"),
        "{problem}"
    );
    assert_problem(
        app.get_with_key("/api/v1/tenants/gamma/posts", &owner.api_key)
            .await,
        404,
    )
    .await;
}
