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
    for (path, method) in [
        ("/api/v1/me", "get"),
        ("/api/v1/tenants", "post"),
        ("/api/v1/me/api-keys", "get"),
        ("/api/v1/me/api-keys/{id}/rotate", "post"),
    ] {
        let security = spec["paths"][path][method]["security"].to_string();
        assert!(
            security.contains("ApiKeyAuth") && security.contains("ApiKeyBasicAuth"),
            "{path}: {security}"
        );
    }
    // Public operations require nothing.
    assert!(spec["paths"]["/public/{tenant}/posts"]["get"]["security"].is_null());
}
