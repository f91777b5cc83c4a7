//! A local OpenID Connect provider: real discovery, JWKS, RS256 and ES256 signing, key rotation,
//! PKCE checks, single-use codes, and switches that make it misbehave.
use std::{
    collections::HashMap,
    sync::{Arc, LazyLock, Mutex},
};

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use poem::{
    EndpointExt, IntoResponse, Response, Route, get, handler,
    http::StatusCode,
    post,
    web::{Data, Form, Json, Query},
};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub const CLIENT_ID: &str = "ironquill-test";
pub const CLIENT_SECRET: &str = "fake-oidc-client-secret-7f3a9c";

#[derive(Clone)]
pub struct Key {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    pub jwk: Value,
    /// The public key in PEM (what an attacker would use as an HMAC secret).
    pub public_pem: String,
}

fn rsa_key(kid: &str) -> Key {
    use rsa::{
        pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding},
        traits::PublicKeyParts,
    };
    let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let pem = private.to_pkcs8_pem(LineEnding::LF).unwrap();
    let public = private.to_public_key();
    Key {
        kid: kid.into(),
        alg: Algorithm::RS256,
        encoding: EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        jwk: json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
            "n": B64.encode(public.n().to_bytes_be()), "e": B64.encode(public.e().to_bytes_be())}),
        public_pem: public.to_public_key_pem(LineEnding::LF).unwrap(),
    }
}

fn ec_key(kid: &str) -> Key {
    use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let secret = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
    let pem = secret.to_pkcs8_pem(LineEnding::LF).unwrap();
    let point =
        p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&secret.public_key(), false);
    Key {
        kid: kid.into(),
        alg: Algorithm::ES256,
        encoding: EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
        jwk: json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": B64.encode(point.x().unwrap()), "y": B64.encode(point.y().unwrap())}),
        public_pem: secret
            .public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap(),
    }
}

/// RSA keys are slow to make: a few, made once for the whole suite.
static RSA_KEYS: LazyLock<Vec<Key>> =
    LazyLock::new(|| (0..3).map(|i| rsa_key(&format!("rsa-{i}"))).collect());

/// How the next ID token is made.
#[derive(Clone)]
pub enum Signing {
    /// With the key of this kid (RS256 `rsa-0` unless changed).
    Key(String),
    /// `alg: none`, no signature.
    None,
    /// HS256 with the RSA public key as the secret (the algorithm-confusion attack).
    Hs256WithPublicKey,
    /// Claims to be `rsa-0` but is signed by another key.
    Forged,
    /// HS256 with the client secret, which discovery advertises: still refused, because
    /// only asymmetric algorithms are allowed.
    Hs256WithClientSecret,
}

#[derive(Clone)]
pub struct Behaviour {
    pub signing: Signing,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub exp_offset: i64,
    pub iat_offset: i64,
    pub nonce: Option<String>,
    /// An `azp` claim (the authorized party) to add.
    pub azp: Option<String>,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    /// Answer the authorization request with this `error`.
    pub deny: Option<String>,
    /// The `name` claim.
    pub name: Option<String>,
    /// The `name` the userinfo endpoint answers (for the subject of the last ID token).
    pub userinfo_name: Option<String>,
    /// The `sub` the userinfo endpoint answers, where not the ID token's.
    pub userinfo_subject: Option<String>,
    /// The userinfo endpoint answers 500.
    pub userinfo_fails: bool,
    /// Show a login page (a form a person fills in) instead of answering at once: what a
    /// real browser goes through. Its "Cancel" answers `access_denied`.
    pub login_page: bool,
    /// Name an `end_session_endpoint` (RP-Initiated Logout) in discovery.
    pub end_session: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            signing: Signing::Key("rsa-0".into()),
            issuer: None,
            audience: None,
            exp_offset: 300,
            iat_offset: 0,
            nonce: None,
            azp: None,
            subject: "subject-1".into(),
            email: Some("user@example.com".into()),
            email_verified: true,
            deny: None,
            name: Some("Test Person".into()),
            userinfo_name: None,
            userinfo_subject: None,
            userinfo_fails: false,
            login_page: false,
            end_session: false,
        }
    }
}

struct Grant {
    nonce: String,
    challenge: String,
    redirect_uri: String,
}

pub struct State {
    pub issuer: String,
    pub behaviour: Behaviour,
    /// Keys that sign; `published` are those in the JWKS.
    keys: Vec<Key>,
    published: Vec<String>,
    grants: HashMap<String, Grant>,
    pub jwks_fetches: u32,
    pub discovery_fetches: u32,
    /// Sent as `Cache-Control` with discovery and the JWKS.
    cache_control: Option<String>,
    /// Discovery answers 500.
    down: bool,
    /// Bytes of filler added to discovery and the JWKS.
    padding: usize,
    /// The query of each request to the end-session endpoint.
    logouts: Vec<HashMap<String, String>>,
}

#[derive(Clone)]
pub struct FakeOidc {
    pub issuer: String,
    state: Arc<Mutex<State>>,
}

impl FakeOidc {
    pub async fn start() -> Self {
        let mut keys = RSA_KEYS.clone();
        keys.push(ec_key("ec-0"));
        let published = vec!["rsa-0".into(), "rsa-1".into(), "ec-0".into()];
        let state = Arc::new(Mutex::new(State {
            issuer: String::new(),
            behaviour: Behaviour::default(),
            keys,
            published,
            grants: HashMap::new(),
            jwks_fetches: 0,
            discovery_fetches: 0,
            cache_control: None,
            down: false,
            padding: 0,
            logouts: Vec::new(),
        }));
        let app = Route::new()
            .at("/.well-known/openid-configuration", get(discovery))
            .at("/authorize", get(authorize).post(decide))
            .at("/logout", get(end_session))
            .at("/userinfo", get(userinfo))
            .at("/token", post(token))
            .at("/jwks", get(jwks))
            .data(state.clone());
        let addr = super::serve(app).await;
        let issuer = format!("http://{addr}");
        state.lock().unwrap().issuer = issuer.clone();
        Self { issuer, state }
    }

    pub fn behave(&self, change: impl FnOnce(&mut Behaviour)) {
        change(&mut self.state.lock().unwrap().behaviour);
    }

    /// Adds `kid` to the JWKS (a key rotated in after clients cached the old set).
    pub fn publish(&self, kid: &str) {
        self.state.lock().unwrap().published.push(kid.into());
    }

    /// Removes `kid` from the JWKS (a key the provider no longer trusts; it can still sign).
    pub fn withdraw(&self, kid: &str) {
        self.state.lock().unwrap().published.retain(|k| k != kid);
    }

    pub fn jwks_fetches(&self) -> u32 {
        self.state.lock().unwrap().jwks_fetches
    }

    pub fn discovery_fetches(&self) -> u32 {
        self.state.lock().unwrap().discovery_fetches
    }

    /// Sends `Cache-Control: value` with discovery and the JWKS.
    pub fn cache_control(&self, value: &str) {
        self.state.lock().unwrap().cache_control = Some(value.into());
    }

    /// Makes discovery answer 500 (`true`) or work again.
    pub fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    /// Pads discovery and the JWKS with `bytes` of filler.
    pub fn pad_answers(&self, bytes: usize) {
        self.state.lock().unwrap().padding = bytes;
    }

    /// The query of each visit to the end-session endpoint, oldest first.
    pub fn logouts(&self) -> Vec<HashMap<String, String>> {
        self.state.lock().unwrap().logouts.clone()
    }

    /// The provider settings for ironquill, as JSON for figment. The fake listens on loopback,
    /// so it is on a private network.
    pub fn settings(&self) -> Value {
        // A provider the tests trust for the addresses it verifies (linking on); the tests of
        // an untrusted provider turn it off.
        json!({"kind": "oidc", "issuer": self.issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
               "display_name": "Fake OIDC", "allow_private_network": true, "link_verified_email": true})
    }
}

type Shared = Arc<Mutex<State>>;

/// `body` as JSON, with the configured filler and `Cache-Control`.
fn cacheable(s: &State, mut body: Value) -> Response {
    if s.padding > 0 {
        body["padding"] = json!("x".repeat(s.padding));
    }
    let mut response = Json(body).into_response();
    if let Some(value) = &s.cache_control {
        response
            .headers_mut()
            .insert("cache-control", value.parse().unwrap());
    }
    response
}

#[handler]
fn discovery(state: Data<&Shared>) -> Response {
    let mut s = state.lock().unwrap();
    s.discovery_fetches += 1;
    if s.down {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let issuer = s.issuer.clone();
    let body = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "HS256"],
    });
    let mut body = body;
    if s.behaviour.end_session {
        body["end_session_endpoint"] = json!(format!("{issuer}/logout"));
    }
    cacheable(&s, body)
}

#[handler]
fn jwks(state: Data<&Shared>) -> Response {
    let mut s = state.lock().unwrap();
    s.jwks_fetches += 1;
    let keys: Vec<Value> = s
        .keys
        .iter()
        .filter(|k| s.published.contains(&k.kid))
        .map(|k| k.jwk.clone())
        .collect();
    cacheable(&s, json!({ "keys": keys }))
}

#[derive(Deserialize, serde::Serialize)]
struct AuthorizeQuery {
    client_id: String,
    redirect_uri: String,
    state: String,
    nonce: String,
    code_challenge: String,
    code_challenge_method: String,
}

#[handler]
fn authorize(state: Data<&Shared>, Query(q): Query<AuthorizeQuery>) -> Response {
    assert_eq!(q.client_id, CLIENT_ID);
    assert_eq!(q.code_challenge_method, "S256", "PKCE must use S256");
    if state.lock().unwrap().behaviour.login_page {
        return login_page(&q);
    }
    answer(&state, q, None)
}

/// The provider's own login page: the request's parameters ride along in hidden fields.
fn login_page(q: &AuthorizeQuery) -> Response {
    let hidden: String = serde_json::to_value(q)
        .unwrap()
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, value)| {
            format!(
                "<input type=hidden name=\"{name}\" value=\"{}\">",
                value.as_str().unwrap().replace('"', "&quot;")
            )
        })
        .collect();
    let page = format!(
        "<!doctype html><title>Fake OIDC login</title><h1>Sign in to Fake OIDC</h1>\
         <form method=post action=/authorize>{hidden}\
         <label>Name <input id=name name=name></label>\
         <button id=sign-in name=decision value=allow>Sign in</button>\
         <button id=cancel name=decision value=deny>Cancel</button></form>"
    );
    poem::web::Html(page).into_response()
}

#[derive(Deserialize)]
struct Decision {
    #[serde(flatten)]
    request: AuthorizeQuery,
    decision: String,
    name: Option<String>,
}

/// The login page's form: signed in under the name typed, or cancelled.
#[handler]
fn decide(state: Data<&Shared>, Form(form): Form<Decision>) -> Response {
    if form.decision != "allow" {
        return refuse(&form.request, "access_denied");
    }
    let name = form.name.filter(|n| !n.is_empty());
    answer(&state, form.request, name)
}

fn refuse(q: &AuthorizeQuery, error: &str) -> Response {
    let mut target = url::Url::parse(&q.redirect_uri).unwrap();
    target
        .query_pairs_mut()
        .append_pair("error", error)
        .append_pair("error_description", "The user said no")
        .append_pair("state", &q.state);
    found(target.as_str())
}

fn found(location: &str) -> Response {
    Response::builder()
        .status(StatusCode::FOUND)
        .header("location", location)
        .finish()
}

/// Redirects back with a code (or the configured refusal); `name`, if given, is the name the
/// ID token for this code will carry.
fn answer(state: &Shared, q: AuthorizeQuery, name: Option<String>) -> Response {
    let mut s = state.lock().unwrap();
    if let Some(name) = name {
        s.behaviour.name = Some(name);
    }
    if let Some(error) = s.behaviour.deny.clone() {
        return refuse(&q, &error);
    }
    let code = uuid::Uuid::new_v4().to_string();
    let mut target = url::Url::parse(&q.redirect_uri).unwrap();
    target
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &q.state);
    s.grants.insert(
        code,
        Grant {
            nonce: q.nonce,
            challenge: q.code_challenge,
            redirect_uri: q.redirect_uri,
        },
    );
    found(target.as_str())
}

/// The user the token endpoint's access token stands for.
#[handler]
fn userinfo(state: Data<&Shared>, req: &poem::Request) -> Response {
    if req.header("authorization") != Some("Bearer provider-access-token") {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let b = state.lock().unwrap().behaviour.clone();
    if b.userinfo_fails {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let mut body = json!({"sub": b.userinfo_subject.unwrap_or(b.subject)});
    if let Some(name) = b.userinfo_name {
        body["name"] = json!(name);
    }
    Json(body).into_response()
}

/// RP-Initiated Logout: records the request, then returns to `post_logout_redirect_uri`.
#[handler]
fn end_session(state: Data<&Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let back = q.get("post_logout_redirect_uri").cloned();
    state.lock().unwrap().logouts.push(q);
    match back {
        Some(back) => found(&back),
        None => poem::web::Html("<!doctype html><p>Signed out of Fake OIDC.</p>").into_response(),
    }
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: String,
    code: String,
    redirect_uri: String,
    code_verifier: String,
}

fn token_error(error: &str) -> Response {
    Json(json!({"error": error}))
        .with_status(StatusCode::BAD_REQUEST)
        .into_response()
}

#[handler]
fn token(state: Data<&Shared>, req: &poem::Request, Form(form): Form<TokenForm>) -> Response {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    if req.header("authorization") != Some(expected.as_str()) {
        return token_error("invalid_client");
    }
    let mut s = state.lock().unwrap();
    // Single use: a replayed code finds nothing.
    let Some(grant) = s.grants.remove(&form.code) else {
        return token_error("invalid_grant");
    };
    let challenge = B64.encode(Sha256::digest(form.code_verifier.as_bytes()));
    if form.grant_type != "authorization_code"
        || challenge != grant.challenge
        || form.redirect_uri != grant.redirect_uri
    {
        return token_error("invalid_grant");
    }
    let b = s.behaviour.clone();
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({
        "iss": b.issuer.clone().unwrap_or_else(|| s.issuer.clone()),
        "sub": b.subject,
        "aud": b.audience.clone().unwrap_or_else(|| CLIENT_ID.into()),
        "exp": now + b.exp_offset,
        "iat": now + b.iat_offset,
        "nonce": b.nonce.clone().unwrap_or(grant.nonce),
        "email": b.email,
        "email_verified": b.email_verified,
    });
    if let Some(name) = &b.name {
        claims["name"] = json!(name);
    }
    if let Some(azp) = &b.azp {
        claims["azp"] = json!(azp);
    }
    let rsa0 = s.keys.iter().find(|k| k.kid == "rsa-0").unwrap().clone();
    let id_token = match &b.signing {
        Signing::Key(kid) => {
            let key = s.keys.iter().find(|k| &k.kid == kid).unwrap();
            let mut header = Header::new(key.alg);
            header.kid = Some(key.kid.clone());
            jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap()
        }
        Signing::None => format!(
            "{}.{}.",
            B64.encode(r#"{"alg":"none","typ":"JWT"}"#),
            B64.encode(claims.to_string())
        ),
        Signing::Hs256WithPublicKey => {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some(rsa0.kid.clone());
            jsonwebtoken::encode(
                &header,
                &claims,
                &EncodingKey::from_secret(rsa0.public_pem.as_bytes()),
            )
            .unwrap()
        }
        Signing::Hs256WithClientSecret => jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(CLIENT_SECRET.as_bytes()),
        )
        .unwrap(),
        Signing::Forged => {
            let other = s.keys.iter().find(|k| k.kid == "rsa-2").unwrap();
            let mut header = Header::new(Algorithm::RS256);
            header.kid = Some("rsa-0".into());
            jsonwebtoken::encode(&header, &claims, &other.encoding).unwrap()
        }
    };
    Json(json!({"access_token": "provider-access-token", "token_type": "Bearer", "expires_in": 300, "id_token": id_token}))
        .into_response()
}
