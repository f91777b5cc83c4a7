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

/// The user and password of an HTTP Basic credential (the part after `Basic `), as sent:
/// `None` unless it is base64 of UTF-8 text with a colon.
fn basic_credentials(encoded: &str) -> Option<(String, String)> {
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}
