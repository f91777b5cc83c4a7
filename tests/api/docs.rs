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
