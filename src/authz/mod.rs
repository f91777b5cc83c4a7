//! Authorization: Casbin decides what a role may do in a tenant; handlers decide whether the
//! caller owns the row. Deny by default.
//!
//! The memberships table is the source of truth for role assignments. They are loaded into an
//! immutable Casbin snapshot that requests read without any lock ([`arc_swap`]); a membership
//! change publishes a new epoch in the ephemeral store, and the next request on any instance
//! that sees an epoch it has not loaded rebuilds the snapshot from the database first. With
//! Redis every instance sees the change on its next request; without, the one process does.
mod access;
mod middleware;
mod policy;
pub mod routes;

pub use access::TenantAccess;
pub use middleware::TenantAuthz;
pub use policy::{Authorizer, AuthzError, Snapshot, build_enforcer, parse_policy};

use std::fmt;

/// An `object:action` pair, as named in `config/policy.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Permission {
    pub object: &'static str,
    pub action: &'static str,
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.object, self.action)
    }
}

impl Permission {
    const fn new(object: &'static str, action: &'static str) -> Self {
        Self { object, action }
    }

    /// Reading actions are open to `read` API keys; everything else needs `write`.
    pub fn is_read(&self) -> bool {
        matches!(self.action, "read" | "read_drafts" | "access")
    }
}

/// Every permission the code checks. Each must appear in `config/policy.csv` (checked at start).
pub mod perms {
    use super::Permission;

    pub const TENANT_ACCESS: Permission = Permission::new("tenant", "access");
    pub const POSTS_READ: Permission = Permission::new("posts", "read");
    pub const POSTS_READ_DRAFTS: Permission = Permission::new("posts", "read_drafts");
    pub const POSTS_CREATE: Permission = Permission::new("posts", "create");
    pub const POSTS_UPDATE: Permission = Permission::new("posts", "update");
    pub const POSTS_UPDATE_ANY: Permission = Permission::new("posts", "update_any");
    pub const POSTS_DELETE: Permission = Permission::new("posts", "delete");
    pub const POSTS_DELETE_ANY: Permission = Permission::new("posts", "delete_any");
    pub const POSTS_PUBLISH: Permission = Permission::new("posts", "publish");
    pub const POSTS_PUBLISH_ANY: Permission = Permission::new("posts", "publish_any");
    pub const COMMENTS_READ: Permission = Permission::new("comments", "read");
    pub const COMMENTS_CREATE: Permission = Permission::new("comments", "create");
    pub const COMMENTS_DELETE: Permission = Permission::new("comments", "delete");
    pub const COMMENTS_DELETE_ANY: Permission = Permission::new("comments", "delete_any");
    pub const MEMBERS_READ: Permission = Permission::new("members", "read");
    pub const MEMBERS_MANAGE: Permission = Permission::new("members", "manage");
    pub const MEMBERS_MANAGE_OWNERS: Permission = Permission::new("members", "manage_owners");
    pub const AUDIT_READ: Permission = Permission::new("audit", "read");

    pub const ALL: &[Permission] = &[
        TENANT_ACCESS,
        POSTS_READ,
        POSTS_READ_DRAFTS,
        POSTS_CREATE,
        POSTS_UPDATE,
        POSTS_UPDATE_ANY,
        POSTS_DELETE,
        POSTS_DELETE_ANY,
        POSTS_PUBLISH,
        POSTS_PUBLISH_ANY,
        COMMENTS_READ,
        COMMENTS_CREATE,
        COMMENTS_DELETE,
        COMMENTS_DELETE_ANY,
        MEMBERS_READ,
        MEMBERS_MANAGE,
        MEMBERS_MANAGE_OWNERS,
        AUDIT_READ,
    ];
}
