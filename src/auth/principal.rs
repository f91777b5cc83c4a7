//! The resolved caller of a request.
use uuid::Uuid;

use super::permissions::{Permission, Permissions};

/// A user, acting through some credential.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: Uuid,
    pub credential: Credential,
}

/// How the principal authenticated, and the limits that come with it.
#[derive(Debug, Clone)]
pub enum Credential {
    /// An API key: bound to one tenant, narrowed to its permissions.
    ApiKey(ApiKeyGrant),
}

#[derive(Debug, Clone)]
pub struct ApiKeyGrant {
    pub key_id: Uuid,
    pub lookup_id: String,
    pub tenant_id: Uuid,
    pub permissions: Permissions,
    /// A key cannot hand out a lifetime longer than its own.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Principal {
    /// The one tenant this credential is confined to, if any.
    pub fn bound_tenant(&self) -> Option<Uuid> {
        match &self.credential {
            Credential::ApiKey(grant) => Some(grant.tenant_id),
        }
    }

    /// Whether the credential itself carries `permission` (the role is checked separately).
    pub fn credential_allows(&self, permission: Permission) -> bool {
        match &self.credential {
            Credential::ApiKey(grant) => grant.permissions.contains(permission),
        }
    }

    /// The key's grant when authenticated by an API key.
    pub fn api_key(&self) -> Option<&ApiKeyGrant> {
        match &self.credential {
            Credential::ApiKey(grant) => Some(grant),
        }
    }
}
