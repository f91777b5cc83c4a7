//! The security schemes documented in `/openapi.json`.
//!
//! Authentication itself happens once, in [`crate::auth::Authenticate`]; these extractors only
//! hand the resolved principal to a handler. A handler that declares one therefore cannot run
//! without a principal, even if the middleware were bypassed.
use poem::Request;
use poem_openapi::{
    SecurityScheme,
    auth::{ApiKey, Basic},
};

use crate::auth::Principal;

/// An API key: `Authorization: apikey <key>`. In the docs UI, enter `apikey iq_...` as the
/// value (the scheme word included).
#[derive(SecurityScheme)]
#[oai(
    ty = "api_key",
    key_name = "Authorization",
    key_in = "header",
    checker = "resolved_by_key"
)]
pub struct ApiKeyAuth(Principal);

/// The same API key as HTTP Basic credentials, with user `apikey` and the key as password.
#[derive(SecurityScheme)]
#[oai(ty = "basic", checker = "resolved_by_basic")]
pub struct ApiKeyBasicAuth(Principal);

/// Any accepted credential.
#[derive(SecurityScheme)]
pub enum Auth {
    ApiKey(ApiKeyAuth),
    Basic(ApiKeyBasicAuth),
}

impl Auth {
    pub fn principal(&self) -> &Principal {
        match self {
            Auth::ApiKey(ApiKeyAuth(p)) | Auth::Basic(ApiKeyBasicAuth(p)) => p,
        }
    }
}

async fn resolved_by_key(req: &Request, _: ApiKey) -> Option<Principal> {
    req.extensions().get::<Principal>().cloned()
}

async fn resolved_by_basic(req: &Request, _: Basic) -> Option<Principal> {
    req.extensions().get::<Principal>().cloned()
}
