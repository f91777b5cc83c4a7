//! Database migrations, shared by SQLite and PostgreSQL.
//!
//! Applied at start-up (`database.migrate_on_start`) and by `cargo run -- migrate`.
pub use sea_orm_migration::prelude::*;

mod m20261123_000001_initial;
mod m20261124_000001_key_labels_per_tenant;
mod m20261201_000001_api_key_allowed_ips;
mod m20261202_000001_audit_trail;
mod m20261203_000001_authz_changes;
mod m20261204_000001_list_indexes;
mod m20261205_000001_api_key_require_dpop;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_initial::Migration),
            Box::new(m20261124_000001_key_labels_per_tenant::Migration),
            Box::new(m20261201_000001_api_key_allowed_ips::Migration),
            Box::new(m20261202_000001_audit_trail::Migration),
            Box::new(m20261203_000001_authz_changes::Migration),
            Box::new(m20261204_000001_list_indexes::Migration),
            Box::new(m20261205_000001_api_key_require_dpop::Migration),
        ]
    }
}
