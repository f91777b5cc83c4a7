use figment::providers::Serialized;

use crate::helpers::{spawn_app, spawn_app_with};

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn api_and_error_responses_carry_the_security_headers() {
    let app = spawn_app().await;
    for path in ["/healthz", "/no/such/route", "/public/nobody/posts"] {
        let resp = app.get(path).await;
        assert_eq!(
            header(&resp, "x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(header(&resp, "x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(
            header(&resp, "referrer-policy"),
            Some("no-referrer"),
            "{path}"
        );
        let csp = header(&resp, "content-security-policy").unwrap();
        assert!(csp.starts_with("default-src 'none'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(header(&resp, "cache-control"), Some("no-store"), "{path}");
        // Plain HTTP and not configured: no HSTS.
        assert_eq!(header(&resp, "strict-transport-security"), None, "{path}");
    }
}

#[tokio::test]
async fn docs_get_a_csp_that_lets_the_ui_run_from_this_origin_only() {
    let app = spawn_app().await;
    let resp = app.get("/docs").await;
    assert_eq!(resp.status(), 200);
    let csp = header(&resp, "content-security-policy").unwrap().to_owned();
    assert!(csp.contains("script-src 'self' 'unsafe-inline'"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let html = resp.text().await.unwrap();
    // The page carries the document itself (with the permissions written into it).
    assert!(
        html.contains("\"x-permission\""),
        "the UI shows the annotated spec"
    );
    // Everything the UI needs is inline or same-origin: no third-party script.
    assert!(!html.contains("<script src=\"http"), "no external scripts");
}

#[tokio::test]
async fn hsts_is_sent_when_configured() {
    let app = spawn_app_with(|f| f.merge(Serialized::default("server.hsts", true))).await;
    let resp = app.get("/healthz").await;
    assert_eq!(
        header(&resp, "strict-transport-security"),
        Some("max-age=63072000; includeSubDomains")
    );
}

#[tokio::test]
async fn hsts_is_sent_when_the_public_url_is_https() {
    let app = spawn_app_with(|f| {
        f.merge(Serialized::default(
            "server.public_url",
            "https://blog.example.com",
        ))
    })
    .await;
    let resp = app.get("/healthz").await;
    assert!(header(&resp, "strict-transport-security").is_some());
}
