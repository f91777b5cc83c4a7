//! `/.well-known/jwks.json`: the public keys that verify our access tokens.
use poem_openapi::{Object, OpenApi, payload::Json};

use super::{ApiTags, Resource};
use crate::{auth::tokens::Jwk, state::AppState};

pub struct JwksApi {
    state: AppState,
}

impl Resource for JwksApi {
    fn new(state: AppState) -> Self {
        Self { state }
    }
}

#[derive(Object)]
struct JwkSet {
    keys: Vec<JwkView>,
}

#[derive(Object)]
struct JwkView {
    kty: String,
    crv: String,
    alg: String,
    #[oai(rename = "use")]
    use_: String,
    kid: String,
    x: String,
}

impl From<Jwk> for JwkView {
    fn from(k: Jwk) -> Self {
        Self {
            kty: k.kty.into(),
            crv: k.crv.into(),
            alg: k.alg.into(),
            use_: k.use_.into(),
            kid: k.kid,
            x: k.x,
        }
    }
}

#[OpenApi(tag = "ApiTags::Auth")]
impl JwksApi {
    /// The public keys that verify our access tokens (JWKS).
    #[oai(path = "/.well-known/jwks.json", method = "get")]
    async fn jwks(&self) -> Json<JwkSet> {
        let keys = self.state.tokens.jwks().into_iter().map(JwkView::from);
        Json(JwkSet {
            keys: keys.collect(),
        })
    }
}
