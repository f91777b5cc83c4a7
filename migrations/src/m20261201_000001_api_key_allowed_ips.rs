//! API keys may be confined to client networks: `allowed_ips`, a JSON array of CIDR strings,
//! NULL for a key usable from anywhere (every existing key stays so).
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(ApiKeys::Table)
                .add_column(json_null(ApiKeys::AllowedIps))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(ApiKeys::Table)
                .drop_column(ApiKeys::AllowedIps)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    AllowedIps,
}
