//! The one authentication path for `/api/...`: resolves the [`Principal`] or refuses.
//!
//! Accepted: `Authorization: apikey <key>`, and HTTP Basic with user `apikey` and the key as
//! password (for tools that only speak Basic). Every failure is the same 401, so a client
//! cannot learn which part of its credential was wrong.
use std::sync::Arc;

use base64::Engine;
use poem::{Endpoint, Middleware, Request, Result, http::header};

use super::{
    Principal,
    api_keys::{KeyVerifier, VerifyError},
    permissions::Permission,
};
use crate::error::ApiError;

/// Paths under this prefix require a principal; everything else is public.
pub const PROTECTED_PREFIX: &str = "/api/";

pub struct Authenticate {
    keys: Arc<KeyVerifier>,
}

impl Authenticate {
    pub fn new(keys: Arc<KeyVerifier>) -> Self {
        Self { keys }
    }
}

impl<E: Endpoint> Middleware<E> for Authenticate {
    type Output = AuthenticateEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        AuthenticateEndpoint {
            inner: ep,
            keys: self.keys.clone(),
        }
    }
}

pub struct AuthenticateEndpoint<E> {
    inner: E,
    keys: Arc<KeyVerifier>,
}

/// The API key a request presents, in either accepted form.
fn presented_key(req: &Request) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("apikey") {
        return Some(rest.to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (user, key) = decoded.split_once(':')?;
        return (user == "apikey").then(|| key.to_owned());
    }
    None
}

impl<E: Endpoint> Endpoint for AuthenticateEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        if !req.uri().path().starts_with(PROTECTED_PREFIX) {
            return self.inner.call(req).await;
        }
        let principal = self.resolve(&req).await?;
        let needed = Permission::for_method(req.method());
        if !principal.credential_allows(needed) {
            return Err(ApiError::missing_permission(needed).into());
        }
        req.extensions_mut().insert(principal);
        self.inner.call(req).await
    }
}

impl<E> AuthenticateEndpoint<E> {
    async fn resolve(&self, req: &Request) -> Result<Principal, ApiError> {
        let key = presented_key(req).ok_or(ApiError::Unauthorized)?;
        match self.keys.verify(&key).await {
            Ok(Some(principal)) => Ok(principal),
            Ok(None) => Err(ApiError::Unauthorized),
            // Fail closed: if revocations cannot be checked, nobody gets in.
            Err(VerifyError::Store(err)) => {
                tracing::error!(error = %err, "credential check impossible: store unavailable");
                Err(ApiError::Unavailable(
                    "authentication is temporarily unavailable".into(),
                ))
            }
            Err(VerifyError::Db(err)) => Err(err.into()),
        }
    }
}
