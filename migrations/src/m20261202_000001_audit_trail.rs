//! The audit trail grows up: each event also records the client's user agent, and is read
//! newest first per tenant and per actor, and purged by age.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEXES: &[(&str, &[AuditEvents])] = &[
    (
        "ix_audit_events_tenant_id",
        &[AuditEvents::TenantId, AuditEvents::Id],
    ),
    (
        "ix_audit_events_actor_id",
        &[AuditEvents::ActorUserId, AuditEvents::Id],
    ),
    ("ix_audit_events_created", &[AuditEvents::CreatedAt]),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(AuditEvents::Table)
                .add_column(string_len_null(AuditEvents::UserAgent, 200))
                .to_owned(),
        )
        .await?;
        for (name, columns) in INDEXES {
            let mut index = Index::create();
            index.name(*name).table(AuditEvents::Table);
            for column in *columns {
                index.col(*column);
            }
            m.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, _) in INDEXES {
            m.drop_index(
                Index::drop()
                    .name(*name)
                    .table(AuditEvents::Table)
                    .to_owned(),
            )
            .await?;
        }
        m.alter_table(
            Table::alter()
                .table(AuditEvents::Table)
                .drop_column(AuditEvents::UserAgent)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum AuditEvents {
    Table,
    Id,
    TenantId,
    ActorUserId,
    CreatedAt,
    UserAgent,
}
