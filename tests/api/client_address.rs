//! The client address: the peer, unless the peer is a configured proxy, whose `Forwarded` /
//! `X-Forwarded-For` then names the client. Seen through `/readyz`, which tells only clients on
//! this machine what runs here.
use figment::providers::Serialized;
use serde_json::Value;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

/// Whether `/readyz` took the caller for one on this machine (it then names the backends).
async fn seen_as_local(app: &TestApp, header: Option<(&str, &str)>) -> bool {
    let mut req = app.client.get(app.url("/readyz"));
    if let Some((name, value)) = header {
        req = req.header(name, value);
    }
    let body: Value = req.send().await.unwrap().json().await.unwrap();
    body.get("database").is_some()
}

#[tokio::test]
async fn forwarded_headers_from_an_untrusted_peer_change_nothing() {
    let app = spawn_app().await;
    assert!(seen_as_local(&app, None).await);
    for header in [
        ("x-forwarded-for", "198.51.100.7"),
        ("forwarded", "for=198.51.100.7"),
    ] {
        assert!(
            seen_as_local(&app, Some(header)).await,
            "{header:?} ignored"
        );
    }
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_right_most_untrusted_address_is_the_client() {
    // The test client, on 127.0.0.1, plays the proxy.
    let app = spawn_app_with(|f| {
        f.merge(Serialized::default(
            "server.trusted_proxies",
            vec!["127.0.0.1/32"],
        ))
    })
    .await;
    assert!(
        seen_as_local(&app, None).await,
        "no header: the proxy itself"
    );
    // The client's own `Forwarded`, which an X-Forwarded-For proxy passes through: ignored.
    assert!(seen_as_local(&app, Some(("forwarded", "for=198.51.100.7"))).await);
    for header in [
        ("x-forwarded-for", "198.51.100.7"),
        // A forged first hop, then the address the proxy saw, then the proxy itself.
        ("x-forwarded-for", "127.0.0.9, 198.51.100.7, 127.0.0.1"),
    ] {
        assert!(!seen_as_local(&app, Some(header)).await, "{header:?}");
    }
    // A loopback client behind the proxy is still local.
    assert!(seen_as_local(&app, Some(("x-forwarded-for", "127.0.0.9"))).await);
}

#[tokio::test]
async fn a_proxy_that_writes_forwarded_is_read_through_forwarded_only() {
    let app = spawn_app_with(|f| {
        f.merge(Serialized::default(
            "server.trusted_proxies",
            vec!["127.0.0.1"],
        ))
        .merge(Serialized::default("server.forwarded_header", "forwarded"))
    })
    .await;
    assert!(!seen_as_local(&app, Some(("forwarded", "for=198.51.100.7;proto=https"))).await);
    assert!(seen_as_local(&app, Some(("x-forwarded-for", "198.51.100.7"))).await);
}
