//! Scoped API keys: the format, verification with a short-lived cache, and management.
mod manage;
pub mod token;
mod verify;

pub use manage::{
    ApiKeyInfo, CLI_LABEL_PREFIX, KeyScope, NewApiKey, create, find_active_by_label, insert_key,
    list, replace_secret, revoke, rotate,
};
pub use verify::{KeyVerifier, VerifyError};
