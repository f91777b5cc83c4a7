//! The security schemes documented in `/openapi.json`.
//!
//! Authentication itself happens once, in [`crate::auth::Authenticate`]; these extractors only
//! hand the resolved principal to a handler. A handler that declares one therefore cannot run
//! without a principal, even if the middleware were bypassed.
use poem::Request;
use poem_openapi::{
    SecurityScheme,
    auth::{ApiKey, Basic, Bearer},
};

use crate::auth::Principal;

/// An API key, exactly as `admin bootstrap` or key creation prints it (`iq_...`), in the
/// `X-API-Key` header. The same key as `Authorization: apikey`, with the same rules; send one
/// or the other, not both.
#[derive(SecurityScheme)]
#[oai(
    ty = "api_key",
    key_name = "X-API-Key",
    key_in = "header",
    checker = "resolved_by_key"
)]
pub struct XApiKeyAuth(Principal);

/// An API key as `Authorization: apikey <key>`. Here, type `apikey iq_...` (the scheme word
/// included); or paste the bare key into `XApiKeyAuth` instead.
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

/// An access token: a session's (from `POST /auth/refresh`, for native clients), or a
/// program's short-lived machine token (from `POST /oauth/token` for its API key).
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "resolved_by_bearer")]
pub struct BearerAuth(Principal);

/// A browser session: the `HttpOnly` access token cookie that logging in at `/` sets.
/// Nothing can be typed here: scripts cannot read or set it, so log in at `/` in this browser
/// and the docs' requests carry it by themselves. Unsafe methods also need CSRF proof (`X-CSRF-Token`
/// echoing the `__Host-iq_csrf` cookie, or a same-origin request).
#[derive(SecurityScheme)]
#[oai(
    ty = "api_key",
    key_name = "__Host-iq_access",
    key_in = "cookie",
    checker = "resolved_by_cookie"
)]
pub struct SessionCookieAuth(Principal);

/// Any accepted credential.
#[derive(SecurityScheme)]
pub enum Auth {
    XApiKey(XApiKeyAuth),
    ApiKey(ApiKeyAuth),
    Basic(ApiKeyBasicAuth),
    Bearer(BearerAuth),
    Cookie(SessionCookieAuth),
}

impl Auth {
    pub fn principal(&self) -> &Principal {
        match self {
            Auth::XApiKey(XApiKeyAuth(p))
            | Auth::ApiKey(ApiKeyAuth(p))
            | Auth::Basic(ApiKeyBasicAuth(p))
            | Auth::Bearer(BearerAuth(p))
            | Auth::Cookie(SessionCookieAuth(p)) => p,
        }
    }
}

fn resolved(req: &Request) -> Option<Principal> {
    req.extensions().get::<Principal>().cloned()
}

async fn resolved_by_key(req: &Request, _: ApiKey) -> Option<Principal> {
    resolved(req)
}

async fn resolved_by_basic(req: &Request, _: Basic) -> Option<Principal> {
    resolved(req)
}

async fn resolved_by_bearer(req: &Request, _: Bearer) -> Option<Principal> {
    resolved(req)
}

async fn resolved_by_cookie(req: &Request, _: ApiKey) -> Option<Principal> {
    resolved(req)
}
