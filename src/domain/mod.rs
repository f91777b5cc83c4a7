//! The blog domain: tenants and their posts. Queries of tenant-owned rows take a
//! [`TenantScope`], which only tenant resolution can create, and start from the
//! [`TenantOwned`] filter, so no query can forget the tenant.
pub mod audit;
pub mod comments;
pub mod error;
pub mod fields;
pub mod invitations;
pub mod members;
pub mod memberships;
pub mod pagination;
pub mod posts;
pub mod retention;
mod scope;
pub mod tenants;
pub mod users;
mod version;

pub use error::{Error, OnUnique, Result};
pub use pagination::{Page, PageRequest};
pub use scope::{Paginate, ReadPage, TenantOwned, TenantScope};
pub use version::{Expected, Versioned};
