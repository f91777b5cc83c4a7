use crate::helpers::spawn_app;

async fn spec() -> serde_json::Value {
    let app = spawn_app().await;
    let resp = app.get("/openapi.json").await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn the_spec_describes_the_service() {
    let spec = spec().await;
    assert_eq!(spec["info"]["title"], "ironquill");
    assert_eq!(spec["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        spec["info"]["description"]
            .as_str()
            .unwrap()
            .contains("problem")
    );
    let tags: Vec<&str> = spec["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        tags.contains(&"Public") && tags.contains(&"Operations"),
        "{tags:?}"
    );
    for path in [
        "/healthz",
        "/readyz",
        "/public/{tenant}/posts",
        "/public/{tenant}/posts/{slug}",
    ] {
        assert!(spec["paths"][path]["get"].is_object(), "{path} documented");
    }
}

#[tokio::test]
async fn error_responses_are_documented_as_problem_documents() {
    let spec = spec().await;
    let responses = &spec["paths"]["/public/{tenant}/posts"]["get"]["responses"];
    for status in ["400", "404", "422", "500"] {
        let content = &responses[status]["content"]["application/problem+json"];
        assert!(
            content["schema"]["$ref"]
                .as_str()
                .unwrap()
                .ends_with("/Problem"),
            "{status}: {content}"
        );
    }
    let problem = &spec["components"]["schemas"]["Problem"]["properties"];
    for field in ["type", "title", "status", "detail", "request_id", "errors"] {
        assert!(problem[field].is_object(), "Problem.{field}");
    }
}

#[tokio::test]
async fn each_accepted_credential_form_is_a_documented_security_scheme() {
    let spec = spec().await;
    let schemes = &spec["components"]["securitySchemes"];
    assert_eq!(schemes["ApiKeyAuth"]["type"], "apiKey");
    assert_eq!(schemes["ApiKeyAuth"]["in"], "header");
    assert_eq!(schemes["ApiKeyAuth"]["name"], "Authorization");
    assert_eq!(schemes["ApiKeyBasicAuth"]["type"], "http");
    assert_eq!(schemes["ApiKeyBasicAuth"]["scheme"], "basic");
    // The key exactly as the CLI prints it, with no scheme word to type.
    assert_eq!(schemes["XApiKeyAuth"]["type"], "apiKey");
    assert_eq!(schemes["XApiKeyAuth"]["in"], "header");
    assert_eq!(schemes["XApiKeyAuth"]["name"], "X-API-Key");
    // The cookie is set by the browser login; the docs say so instead of inviting typing.
    let cookie = &schemes["SessionCookieAuth"];
    assert_eq!(cookie["in"], "cookie");
    assert!(
        cookie["description"]
            .as_str()
            .unwrap()
            .contains("Nothing can be typed here"),
        "{cookie}"
    );
    for (path, method) in [
        ("/api/v1/me", "get"),
        ("/api/v1/tenants", "post"),
        ("/api/v1/me/api-keys", "get"),
        ("/api/v1/me/api-keys/{id}/rotate", "post"),
    ] {
        let security = spec["paths"][path][method]["security"].to_string();
        assert!(
            security.contains("ApiKeyAuth")
                && security.contains("ApiKeyBasicAuth")
                && security.contains("XApiKeyAuth"),
            "{path}: {security}"
        );
    }
    // The logouts resolve their caller themselves, and still say what they take: a session.
    for path in ["/auth/logout", "/auth/logout-all"] {
        let security = &spec["paths"][path]["post"]["security"];
        assert_eq!(
            security,
            &serde_json::json!([{"BearerAuth": []}, {"SessionCookieAuth": []}]),
            "{path}"
        );
        for scheme in ["BearerAuth", "SessionCookieAuth"] {
            assert!(schemes[scheme].is_object(), "{scheme} is a declared scheme");
        }
    }
    // Public operations require nothing.
    assert!(spec["paths"]["/public/{tenant}/posts"]["get"]["security"].is_null());
}

#[tokio::test]
async fn every_tenant_operation_states_its_permission_from_the_policy() {
    let spec = spec().await;
    let mut seen = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        if !path.starts_with("/api/v1/tenants/{tenant}/") {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            let permission = op["x-permission"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no x-permission"));
            let roles = op["x-roles"].as_array().unwrap();
            assert!(!roles.is_empty(), "{method} {path}: nobody may call it");
            assert!(
                op["description"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("Requires `{permission}`"))
            );
            seen += 1;
        }
    }
    assert_eq!(
        seen,
        ironquill::api::tenant_routes().len(),
        "every route-table line is a documented operation"
    );
    let update = &spec["paths"]["/api/v1/tenants/{tenant}/posts/{id}"]["patch"];
    assert_eq!(update["x-permission"], "posts:update");
    // The collapsed line in the docs UI says it too.
    let summary = update["summary"].as_str().unwrap();
    assert!(
        summary.ends_with(" · requires `posts:update` (owner, admin, editor, author)"),
        "{summary}"
    );
    assert_eq!(
        update["x-roles"],
        serde_json::json!(["owner", "admin", "editor", "author"])
    );
    let members = &spec["paths"]["/api/v1/tenants/{tenant}/members"]["get"];
    assert_eq!(members["x-roles"], serde_json::json!(["owner", "admin"]));
}

#[tokio::test]
async fn the_docs_ui_shows_the_annotated_document() {
    let app = spawn_app().await;
    let html = app.get("/docs").await.text().await.unwrap();
    assert!(html.contains("x-permission"));
}

#[tokio::test]
async fn the_docs_tab_is_named_after_the_service() {
    let app = spawn_app().await;
    let html = app.get("/docs").await.text().await.unwrap();
    assert!(
        html.contains("<title>ironquill API docs</title>"),
        "{html:.300}"
    );
    assert!(!html.contains("<title>Swagger UI</title>"));
}
