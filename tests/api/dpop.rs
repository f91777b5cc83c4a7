//! DPoP (RFC 9449): a machine token bound to the client's key is accepted only with a fresh
//! proof of that key for this very request and token, once.
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use figment::providers::Serialized;

use crate::helpers::{
    TestApp, assert_problem, shared_backends, spawn_app, spawn_app_with, spawn_sibling,
};

const ME: &str = "/api/v1/me";

/// A client's key pair, as a DPoP client holds it.
struct ClientKey {
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
}

impl ClientKey {
    fn generate() -> Self {
        use p256::pkcs8::{EncodePrivateKey, LineEnding};
        let secret = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let pem = secret.to_pkcs8_pem(LineEnding::LF).unwrap();
        let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(
            &secret.public_key(),
            false,
        );
        Self {
            alg: Algorithm::ES256,
            encoding: EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
            jwk: json!({"kty": "EC", "crv": "P-256",
                "x": B64.encode(point.x().unwrap()), "y": B64.encode(point.y().unwrap())}),
        }
    }

    /// An Ed25519 key pair (EdDSA proofs).
    fn ed25519() -> Self {
        use ed25519_dalek::pkcs8::{EncodePrivateKey, spki::der::pem::LineEnding};
        let signing = ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>());
        let pem = signing.to_pkcs8_pem(LineEnding::LF).unwrap();
        Self {
            alg: Algorithm::EdDSA,
            encoding: EncodingKey::from_ed_pem(pem.as_bytes()).unwrap(),
            jwk: json!({"kty": "OKP", "crv": "Ed25519",
                "x": B64.encode(signing.verifying_key().as_bytes())}),
        }
    }

    /// A proof for `method` on `url`; for a resource request, bound to `token`.
    fn proof(&self, method: &str, url: &str, token: Option<&str>) -> String {
        self.proof_with(&json!({
            "jti": uuid::Uuid::new_v4().to_string(),
            "htm": method,
            "htu": url,
            "iat": chrono::Utc::now().timestamp(),
            "ath": token.map(|t| B64.encode(Sha256::digest(t.as_bytes()))),
        }))
    }

    fn proof_with(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(serde_json::from_value(self.jwk.clone()).unwrap());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }

    /// A proof whose header is written by hand, carrying `jwk` as given (jsonwebtoken's `Jwk`
    /// would drop members it does not know, such as a private `d`), signed by this key.
    fn raw_proof(&self, jwk: &Value, claims: &Value) -> String {
        let alg = if self.alg == Algorithm::ES256 {
            "ES256"
        } else {
            "EdDSA"
        };
        let header = json!({"typ": "dpop+jwt", "alg": alg, "jwk": jwk});
        signed(&header, claims, Some((&self.encoding, self.alg)))
    }
}

/// A JWT of `header` and `claims` as written, signed with `key` (none: an empty signature).
fn signed(header: &Value, claims: &Value, key: Option<(&EncodingKey, Algorithm)>) -> String {
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let signature = key.map_or(String::new(), |(key, alg)| {
        jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).unwrap()
    });
    format!("{input}.{signature}")
}

/// A token request for `api_key` carrying `proof`.
async fn request_token_with(app: &TestApp, api_key: &str, proof: &str) -> reqwest::Response {
    app.client
        .post(app.url("/oauth/token"))
        .basic_auth("apikey", Some(api_key))
        .header("dpop", proof)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
}

/// A DPoP-bound token for `api_key`, bound to `key`.
async fn bound_token(app: &TestApp, api_key: &str, key: &ClientKey) -> String {
    let proof = key.proof("POST", &app.url("/oauth/token"), None);
    let resp = request_token_with(app, api_key, &proof).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    body["access_token"].as_str().unwrap().to_owned()
}

fn with_dpop(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    proof: &str,
) -> reqwest::RequestBuilder {
    app.client
        .request(method, app.url(path))
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", proof)
}

/// `GET /api/v1/me` with a DPoP token and proof.
async fn me_with(app: &TestApp, token: &str, proof: &str) -> reqwest::Response {
    with_dpop(app, Method::GET, ME, token, proof)
        .send()
        .await
        .unwrap()
}

/// A 401 with the DPoP challenge naming `error` and the algorithms.
fn assert_dpop_refused(resp: &reqwest::Response, error: &str) {
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("DPoP "), "{challenge}");
    assert!(
        challenge.contains(&format!("error=\"{error}\"")),
        "{challenge}"
    );
    assert!(challenge.contains("algs=\"ES256"), "{challenge}");
}

#[tokio::test]
async fn a_bound_token_works_only_with_a_fresh_proof_of_its_key() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let key = ClientKey::generate();
    let token = bound_token(&app, &owner.api_key, &key).await;
    let url = app.url(ME);
    let proof = key.proof("GET", &url, Some(&token));
    let ok = me_with(&app, &token, &proof).await;
    assert_eq!(ok.status(), 200);
    // The same proof again: a replay.
    let replayed = me_with(&app, &token, &proof).await;
    assert_dpop_refused(&replayed, "invalid_dpop_proof");
    // As a plain bearer token, or without a proof.
    let bearer = app
        .with_bearer(Method::GET, ME, &token)
        .send()
        .await
        .unwrap();
    assert_dpop_refused(&bearer, "invalid_token");
    let no_proof = app
        .client
        .get(app.url(ME))
        .header("authorization", format!("DPoP {token}"))
        .send()
        .await
        .unwrap();
    assert_dpop_refused(&no_proof, "invalid_dpop_proof");
    // A proof for another method, another URL, another token, or from another key.
    let other_key = ClientKey::generate();
    for proof in [
        key.proof("POST", &url, Some(&token)),
        key.proof("GET", &app.url("/api/v1/tenants"), Some(&token)),
        key.proof("GET", &url, Some("another-token")),
        key.proof("GET", &url, None),
        other_key.proof("GET", &url, Some(&token)),
    ] {
        let resp = me_with(&app, &token, &proof).await;
        assert_dpop_refused(&resp, "invalid_dpop_proof");
    }
    // A query string is not part of htu.
    let proof = key.proof("GET", &app.url("/api/v1/tenants"), Some(&token));
    let listed = with_dpop(&app, Method::GET, "/api/v1/tenants?limit=5", &token, &proof)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
}

#[tokio::test]
async fn eddsa_proofs_work_as_well() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let key = ClientKey::ed25519();
    let token = bound_token(&app, &owner.api_key, &key).await;
    let proof = key.proof("GET", &app.url(ME), Some(&token));
    assert_eq!(me_with(&app, &token, &proof).await.status(), 200);
    let other = ClientKey::ed25519().proof("GET", &app.url(ME), Some(&token));
    assert_dpop_refused(&me_with(&app, &token, &other).await, "invalid_dpop_proof");
}

#[tokio::test]
async fn stale_or_malformed_proofs_are_refused() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let key = ClientKey::generate();
    let token = bound_token(&app, &owner.api_key, &key).await;
    let url = app.url(ME);
    let ath = B64.encode(Sha256::digest(token.as_bytes()));
    let claims = |iat: i64| json!({"jti": uuid::Uuid::new_v4().to_string(), "htm": "GET", "htu": url, "iat": iat, "ath": ath});
    let now = chrono::Utc::now().timestamp();
    for proof in [
        key.proof_with(&claims(now - 300)),
        key.proof_with(&claims(now + 300)),
    ] {
        let resp = me_with(&app, &token, &proof).await;
        assert_dpop_refused(&resp, "invalid_dpop_proof");
    }
    // A jwk carrying the private part is refused, though the bound key signed the proof: the
    // same hand-written proof without `d` is accepted.
    let mut leaky = key.jwk.clone();
    leaky["d"] = json!(B64.encode([1u8; 32]));
    let resp = me_with(&app, &token, &key.raw_proof(&leaky, &claims(now))).await;
    assert_dpop_refused(&resp, "invalid_dpop_proof");
    let resp = me_with(&app, &token, &key.raw_proof(&key.jwk, &claims(now))).await;
    assert_eq!(
        resp.status(),
        200,
        "the hand-written proof is otherwise valid"
    );
    // An unbound token sent with the DPoP scheme is refused too.
    let unbound = app.machine_token(&owner.api_key, None).await;
    let resp = me_with(&app, &unbound, &key.proof("GET", &url, Some(&unbound))).await;
    assert_dpop_refused(&resp, "invalid_token");
}

#[tokio::test]
async fn the_token_endpoint_refuses_a_bad_proof_with_invalid_dpop_proof() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let key = ClientKey::generate();
    let token_url = app.url("/oauth/token");
    for proof in [
        key.proof("GET", &token_url, None),
        key.proof("POST", &app.url("/elsewhere"), None),
        "not-a-jwt".to_owned(),
    ] {
        let resp = request_token_with(&app, &owner.api_key, &proof).await;
        assert_eq!(resp.status(), 400);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_dpop_proof");
    }
    let metadata: Value = app
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        metadata["dpop_signing_alg_values_supported"],
        json!(["ES256", "EdDSA"])
    );
}

#[tokio::test]
async fn with_the_store_down_proofs_cannot_be_checked_and_nobody_gets_in() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let key = ClientKey::generate();
    let token = bound_token(&app, &owner.api_key, &key).await;
    // An instance behind the same public URL whose Redis does not answer (nothing listens).
    let public_url = app.state.public_url.to_string();
    let down = spawn_app_with(|f| {
        f.merge(Serialized::default("redis.url", "redis://127.0.0.1:1"))
            .merge(Serialized::default("server.public_url", public_url))
    })
    .await;
    let proof = key.proof("GET", &app.url(ME), Some(&token));
    let resp = me_with(&down, &token, &proof).await;
    assert_problem(resp, 503).await;
    // The proof is checked once the client is authenticated: a key of that instance's own.
    let there = down.bootstrap("acme", "bob@example.com").await;
    let proof = key.proof("POST", &app.url("/oauth/token"), None);
    let resp = request_token_with(&down, &there.api_key, &proof).await;
    assert_problem(resp, 503).await;
}

#[tokio::test]
async fn another_instance_refuses_a_replayed_proof() {
    if !shared_backends() {
        return;
    }
    let app = spawn_app().await;
    let sibling = spawn_sibling(&app).await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let key = ClientKey::generate();
    let token = bound_token(&app, &owner.api_key, &key).await;
    // Both instances share a public URL (behind one load balancer): one htu for both.
    let proof = key.proof("GET", &app.url(ME), Some(&token));
    let first = me_with(&app, &token, &proof).await;
    assert_eq!(first.status(), 200);
    let replayed = sibling
        .client
        .get(sibling.url(ME))
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", &proof)
        .send()
        .await
        .unwrap();
    assert_dpop_refused(&replayed, "invalid_dpop_proof");
}

#[tokio::test]
async fn a_key_can_require_dpop_and_keeps_requiring_it_after_rotation() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let created = app
        .new_key(
            &owner.api_key,
            &json!({"label": "bot", "tenant": "acme", "permissions": ["read"], "require_dpop": true}),
        )
        .await;
    assert_eq!(created["require_dpop"], true);
    assert_eq!(
        app.listed_key(&owner.api_key, "bot").await["require_dpop"],
        true
    );
    let rotated = app
        .rotate_key(&owner.api_key, created["id"].as_str().unwrap())
        .await;
    assert_eq!(rotated.status(), 200);
    let rotated: Value = rotated.json().await.unwrap();
    assert_eq!(rotated["require_dpop"], true, "kept on rotation");
    let secret = rotated["api_key"].as_str().unwrap();
    let plain = app
        .request_token(&[("grant_type", "client_credentials")], Some(secret))
        .await;
    assert_eq!(plain.status(), 400);
    let body: Value = plain.json().await.unwrap();
    assert_eq!(body["error"], "invalid_dpop_proof");
    let key = ClientKey::generate();
    let token = bound_token(&app, secret, &key).await;
    let proof = key.proof("GET", &app.url(ME), Some(&token));
    let ok = me_with(&app, &token, &proof).await;
    assert_eq!(ok.status(), 200);
    // Other keys are unaffected (false by default).
    assert_eq!(
        app.listed_key(&owner.api_key, "cli:acme").await["require_dpop"],
        false
    );
}

#[tokio::test]
async fn a_key_that_requires_dpop_cannot_create_one_that_does_not() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let strict = app
        .new_key(
            &owner.api_key,
            &json!({"label": "strict", "tenant": "acme", "permissions": ["read", "write"], "require_dpop": true}),
        )
        .await;
    let strict = strict["api_key"].as_str().unwrap();
    let loose = app
        .create_key(
            strict,
            &json!({"label": "loose", "tenant": "acme", "permissions": ["read"]}),
        )
        .await;
    let problem = assert_problem(loose, 403).await;
    assert_eq!(
        problem["detail"],
        "an API key that requires DPoP cannot grant a key that does not"
    );
    let child = app
        .new_key(
            strict,
            &json!({"label": "child", "tenant": "acme", "permissions": ["read"], "require_dpop": true}),
        )
        .await;
    assert_eq!(child["require_dpop"], true);
}

#[tokio::test]
async fn a_proof_sent_with_a_wrong_key_is_not_spent() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let key = ClientKey::generate();
    let proof = key.proof("POST", &app.url("/oauth/token"), None);
    let stranger = request_token_with(&app, "iq_not_a_real_key", &proof).await;
    assert_eq!(stranger.status(), 401);
    let owners = request_token_with(&app, &owner.api_key, &proof).await;
    assert_eq!(owners.status(), 200, "the stranger did not spend the proof");
}

#[tokio::test]
async fn proofs_with_a_wrong_alg_typ_or_curve_are_refused() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let key = ClientKey::generate();
    let claims = json!({"jti": uuid::Uuid::new_v4().to_string(), "htm": "POST",
        "htu": app.url("/oauth/token"), "iat": chrono::Utc::now().timestamp()});
    let header = |alg: &str, typ: &str| json!({"typ": typ, "alg": alg, "jwk": key.jwk});
    let hmac = EncodingKey::from_secret(b"a shared secret is no proof of possession");
    let ed = ClientKey::ed25519();
    let mut p256_named_ed = ed.jwk.clone();
    p256_named_ed["crv"] = json!("P-256");
    for (what, proof) in [
        (
            "alg none",
            signed(&header("none", "dpop+jwt"), &claims, None),
        ),
        (
            "HS256",
            signed(
                &header("HS256", "dpop+jwt"),
                &claims,
                Some((&hmac, Algorithm::HS256)),
            ),
        ),
        (
            "typ JWT",
            signed(
                &header("ES256", "JWT"),
                &claims,
                Some((&key.encoding, Algorithm::ES256)),
            ),
        ),
        ("crv P-256 for EdDSA", ed.raw_proof(&p256_named_ed, &claims)),
    ] {
        let resp = request_token_with(&app, &owner.api_key, &proof).await;
        assert_eq!(resp.status(), 400, "{what}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_dpop_proof", "{what}");
    }
    // The same hand-written proof, rightly made, is accepted.
    let good = signed(
        &header("ES256", "dpop+jwt"),
        &claims,
        Some((&key.encoding, Algorithm::ES256)),
    );
    assert_eq!(
        request_token_with(&app, &owner.api_key, &good)
            .await
            .status(),
        200
    );
}
