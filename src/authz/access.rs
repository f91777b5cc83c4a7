//! What a handler in a tenant route knows about the caller, and the ownership helpers.
use std::sync::Arc;

use uuid::Uuid;

use super::{Grants, Permission, Snapshot};
use crate::{
    auth::{Principal, permissions::Permission as KeyPermission},
    db::entities::Role,
    domain::TenantScope,
    error::{ApiError, ApiResult},
};

/// Set by [`super::TenantAuthz`] for every tenant route: the tenant, the caller, and the
/// caller's role and the compiled policy from the snapshot the route decision was made with
/// (so one request sees one consistent policy).
#[derive(Clone)]
pub struct TenantAccess {
    // Private: the role was looked up for this principal in this tenant, so neither may change.
    scope: TenantScope,
    principal: Principal,
    role: Role,
    grants: Arc<Grants>,
}

impl TenantAccess {
    /// The access of a member of `scope`'s tenant in `snapshot`; `None` for anyone else.
    pub fn of_member(
        scope: TenantScope,
        principal: Principal,
        snapshot: &Snapshot,
    ) -> Option<Self> {
        let role = snapshot.role(principal.user_id, scope.id())?;
        Some(Self {
            scope,
            principal,
            role,
            grants: snapshot.grants().clone(),
        })
    }

    /// The tenant of the route.
    pub fn scope(&self) -> &TenantScope {
        &self.scope
    }

    /// The caller.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    pub fn user_id(&self) -> Uuid {
        self.principal.user_id
    }

    /// The role allows it and, for an API key, so do the key's permissions: a key never
    /// exceeds its owner, and its permissions narrow further.
    pub fn can(&self, permission: Permission) -> bool {
        let key_needs = if permission.is_read() {
            KeyPermission::Read
        } else {
            KeyPermission::Write
        };
        self.principal.credential_allows(key_needs) && self.role_allows(permission)
    }

    /// The role alone, whatever the credential: for what the caller may *see* (a read-only key
    /// of an author still sees that author's drafts).
    pub fn role_allows(&self, permission: Permission) -> bool {
        self.grants.allows(self.role, permission)
    }

    pub fn require(&self, permission: Permission) -> ApiResult<()> {
        if self.can(permission) {
            Ok(())
        } else {
            Err(ApiError::missing_permission(permission))
        }
    }

    /// Ownership check: the caller owns the row, or holds the `*_any` permission.
    pub fn require_owner_or(&self, owner: Uuid, any: Permission) -> ApiResult<()> {
        if owner == self.user_id() {
            Ok(())
        } else {
            self.require(any)
        }
    }
}
