//! The blog domain: tenants and their posts. Queries of tenant-owned rows take a
//! [`TenantScope`], which only tenant resolution can create, so no query can forget the tenant.
pub mod audit;
pub mod comments;
pub mod members;
pub mod memberships;
pub mod pagination;
pub mod posts;
pub mod tenants;
pub mod users;

pub use pagination::{Page, PageRequest};
pub use tenants::TenantScope;
