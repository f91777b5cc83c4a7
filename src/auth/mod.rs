//! Identity: who is calling. Every `/api/...` request resolves to a [`Principal`] through one
//! middleware ([`Authenticate`]) or is refused with 401.
pub mod api_keys;
mod middleware;
pub mod permissions;
mod principal;

pub use middleware::Authenticate;
pub use principal::{ApiKeyGrant, Credential, Principal};
