//! The resolved caller of a request.
use uuid::Uuid;

use super::{
    api_keys::AllowedIps,
    permissions::{Permission, Permissions},
};

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
    /// A login session: the user's full roles in each of its tenants.
    Session(SessionGrant),
}

#[derive(Debug, Clone)]
pub struct ApiKeyGrant {
    pub key_id: Uuid,
    pub lookup_id: String,
    pub tenant_id: Uuid,
    pub permissions: Permissions,
    /// A key cannot hand out a lifetime longer than its own.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Nor client networks beyond its own; `None`: usable from anywhere.
    pub allowed_ips: Option<AllowedIps>,
    /// Its machine tokens must be bound to a DPoP key.
    pub require_dpop: bool,
    /// Set when the caller presented a machine token issued for this key rather than the key
    /// itself: such a caller holds a short-lived stand-in and must not manage keys.
    pub via_token: Option<TokenUse>,
}

/// The machine token a key-backed request came with.
#[derive(Debug, Clone)]
pub struct TokenUse {
    pub jti: Uuid,
    /// When the token expires (Unix seconds).
    pub exp: i64,
    /// The DPoP key thumbprint the token is bound to, if any.
    pub jkt: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SessionGrant {
    pub session_id: Uuid,
    pub token_id: Uuid,
    /// When the access token expires (revocation entries need to live until then).
    pub expires_at: i64,
    /// Whether it came in a cookie (then unsafe methods need CSRF proof).
    pub via_cookie: bool,
}

impl Principal {
    /// The one tenant this credential is confined to, if any.
    pub fn bound_tenant(&self) -> Option<Uuid> {
        match &self.credential {
            Credential::ApiKey(grant) => Some(grant.tenant_id),
            Credential::Session(_) => None,
        }
    }

    /// Whether this credential may act in `tenant` at all (a key only in the one it is bound to).
    pub fn can_reach(&self, tenant: Uuid) -> bool {
        self.bound_tenant().is_none_or(|bound| bound == tenant)
    }

    /// Whether the credential itself carries `permission` (the role is checked separately).
    pub fn credential_allows(&self, permission: Permission) -> bool {
        match &self.credential {
            Credential::ApiKey(grant) => grant.permissions.contains(permission),
            Credential::Session(_) => true,
        }
    }

    /// The key's grant when authenticated by an API key.
    pub fn api_key(&self) -> Option<&ApiKeyGrant> {
        match &self.credential {
            Credential::ApiKey(grant) => Some(grant),
            Credential::Session(_) => None,
        }
    }

    /// For what only a person in a session may do (create a tenant, answer an invitation): a
    /// key is bound to one tenant and acts in it only. `doing` completes "… in a session".
    pub fn require_session(&self, doing: &str) -> Result<(), crate::error::ApiError> {
        match self.credential {
            Credential::Session(_) => Ok(()),
            Credential::ApiKey(_) => Err(crate::error::ApiError::Forbidden(format!(
                "an API key acts only in its own tenant; {doing} in a session"
            ))),
        }
    }

    pub fn session(&self) -> Option<&SessionGrant> {
        match &self.credential {
            Credential::Session(grant) => Some(grant),
            Credential::ApiKey(_) => None,
        }
    }
}
