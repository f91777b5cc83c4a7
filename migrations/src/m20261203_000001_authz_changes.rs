//! Which tenant each role-assignment version changed, so that instances reload only the
//! tenants that changed instead of every membership.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(AuthzChanges::Table)
                .col(big_integer(AuthzChanges::Version).primary_key())
                .col(uuid(AuthzChanges::TenantId))
                .col(timestamp_with_time_zone(AuthzChanges::CreatedAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(AuthzChanges::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum AuthzChanges {
    Table,
    Version,
    TenantId,
    CreatedAt,
}
