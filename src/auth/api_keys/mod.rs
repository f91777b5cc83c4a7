//! Scoped API keys: the format, verification with a short-lived cache, the client networks a
//! key is confined to, and management.
mod allowed_ips;
mod manage;
pub mod token;
mod verify;

pub use allowed_ips::AllowedIps;
pub use manage::{
    ApiKeyInfo, CLI_LABEL_PREFIX, KeyLimits, KeyScope, NewApiKey, create, find_active_by_label,
    insert_key, key_event, list, replace_secret, revoke, rotate,
};
#[cfg(test)]
pub(crate) use verify::revocation_key;
pub use verify::{KeyVerifier, VerifyError};
