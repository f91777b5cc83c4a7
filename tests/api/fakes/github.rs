//! A local GitHub: OAuth2 authorize and token endpoints (errors answered with status 200, as
//! GitHub does), `/user` and `/user/emails`.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use poem::{
    EndpointExt, Response, Route, get, handler,
    http::StatusCode,
    post,
    web::{Data, Form, Json, Query},
};
use serde::Deserialize;
use serde_json::{Value, json};

pub struct Behaviour {
    pub emails: Value,
    /// Answer even a good code with `200 {"error": …}`, plus a usable-looking token: only a
    /// client that reads the `error` of a 200 refuses it.
    pub error_beside_a_token: bool,
    /// The profile's `name` (`None`: the user set none, so `login` is all there is).
    pub name: Option<String>,
}

struct State {
    codes: HashMap<String, String>,
    behaviour: Behaviour,
}

type Shared = Arc<Mutex<State>>;

pub struct FakeGithub {
    pub base: String,
    state: Shared,
}

impl FakeGithub {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State {
            codes: HashMap::new(),
            behaviour: Behaviour {
                emails: json!([
                    {"email": "octo-old@example.com", "primary": false, "verified": true},
                    {"email": "octo@example.com", "primary": true, "verified": true}
                ]),
                error_beside_a_token: false,
                name: Some("The Octocat".into()),
            },
        }));
        let app = Route::new()
            .at("/login/oauth/authorize", get(authorize))
            .at("/login/oauth/access_token", post(token))
            .at("/api/user", get(user))
            .at("/api/user/emails", get(emails))
            .data(state.clone());
        let addr = super::serve(app).await;
        Self {
            base: format!("http://{addr}"),
            state,
        }
    }

    pub fn behave(&self, change: impl FnOnce(&mut Behaviour)) {
        change(&mut self.state.lock().unwrap().behaviour);
    }

    pub fn settings(&self) -> Value {
        json!({"kind": "github", "client_id": "gh-client", "client_secret": "gh-secret",
               "auth_url": format!("{}/login/oauth/authorize", self.base),
               "token_url": format!("{}/login/oauth/access_token", self.base),
               "api_url": format!("{}/api", self.base), "allow_private_network": true,
               "link_verified_email": true})
    }
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    redirect_uri: String,
    state: String,
    code_challenge: String,
}

#[handler]
fn authorize(state: Data<&Shared>, Query(q): Query<AuthorizeQuery>) -> Response {
    let code = uuid::Uuid::new_v4().to_string();
    state
        .lock()
        .unwrap()
        .codes
        .insert(code.clone(), q.code_challenge);
    let mut target = url::Url::parse(&q.redirect_uri).unwrap();
    target
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &q.state);
    Response::builder()
        .status(StatusCode::FOUND)
        .header("location", target.as_str())
        .finish()
}

#[derive(Deserialize)]
struct TokenForm {
    code: String,
    code_verifier: String,
}

#[handler]
fn token(state: Data<&Shared>, Form(form): Form<TokenForm>) -> Json<Value> {
    use base64::Engine;
    use sha2::Digest;
    let (challenge, error_beside_a_token) = {
        let mut state = state.lock().unwrap();
        let challenge = state.codes.remove(&form.code);
        (challenge, state.behaviour.error_beside_a_token)
    };
    if error_beside_a_token {
        return Json(
            json!({"error": "bad_verification_code", "access_token": "gho_test",
                           "token_type": "bearer", "scope": "read:user,user:email"}),
        );
    }
    let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(form.code_verifier.as_bytes()));
    // GitHub's quirk: errors come back with 200.
    match challenge {
        Some(c) if c == expected => Json(
            json!({"access_token": "gho_test", "token_type": "bearer", "scope": "read:user,user:email"}),
        ),
        _ => Json(
            json!({"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."}),
        ),
    }
}

fn authorized(req: &poem::Request) -> bool {
    req.header("authorization") == Some("Bearer gho_test")
}

#[handler]
fn user(req: &poem::Request, state: Data<&Shared>) -> Response {
    if !authorized(req) {
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .finish();
    }
    let name = state.lock().unwrap().behaviour.name.clone();
    Json(json!({"id": 4242, "login": "octocat", "name": name})).into_response()
}

#[handler]
fn emails(req: &poem::Request, state: Data<&Shared>) -> Response {
    if !authorized(req) {
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .finish();
    }
    Json(state.lock().unwrap().behaviour.emails.clone()).into_response()
}

use poem::IntoResponse;
