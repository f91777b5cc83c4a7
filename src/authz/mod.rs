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
#[cfg(test)]
pub(crate) use policy::EPOCH_KEY;
pub use policy::{Authorizer, AuthzError, Grants, Snapshot, build_enforcer, parse_policy};
pub use routes::{RouteTable, TenantRoute};

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
    pub const fn new(object: &'static str, action: &'static str) -> Self {
        Self { object, action }
    }

    /// Reading actions are open to `read` API keys; everything else needs `write`.
    pub fn is_read(&self) -> bool {
        matches!(self.action, "read" | "read_drafts" | "access")
    }
}

/// Declares permission constants, and `PERMISSIONS` listing them, in one place:
/// `permissions! { POSTS_READ = "posts" : "read", ... }`. Each must appear in
/// `config/policy.csv` (checked at start), and `policy.csv` may name no other.
#[macro_export]
macro_rules! permissions {
    ($($(#[$doc:meta])* $name:ident = $object:literal : $action:literal),* $(,)?) => {
        $($(#[$doc])* pub const $name: $crate::authz::Permission =
            $crate::authz::Permission::new($object, $action);)*
        /// Every permission declared in this module.
        pub const PERMISSIONS: &[$crate::authz::Permission] = &[$($name),*];
    };
}

/// The permissions of the security machinery itself; each resource declares its own beside
/// its routes (`api/posts.rs`).
pub mod perms {
    crate::permissions! {
        /// Membership: every tenant route needs it first (non-members get 404).
        TENANT_ACCESS = "tenant" : "access",
        MEMBERS_READ = "members" : "read",
        MEMBERS_MANAGE = "members" : "manage",
        /// Granting, changing or removing `owner`.
        MEMBERS_MANAGE_OWNERS = "members" : "manage_owners",
        AUDIT_READ = "audit" : "read",
    }
}
