//! Identity: who is calling. Every `/api/...` request resolves to a [`Principal`] through one
//! middleware ([`Authenticate`]) or is refused with 401.
pub mod api_keys;
pub mod client_credentials;
pub mod cookies;
pub mod dpop;
pub mod login;
mod middleware;
pub mod permissions;
mod principal;
pub mod providers;
pub mod secrets;
pub mod sessions;
pub mod tokens;

pub use middleware::{Authenticate, Authenticator, PROTECTED_PREFIX, X_API_KEY};
pub use principal::{ApiKeyGrant, Credential, Principal, SessionGrant, TokenUse};
