//! API key labels are unique per user *and tenant* among active keys. Unique per user alone,
//! a 409 on create told a key bound to one tenant which labels its user had in the others.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        db.execute_unprepared("DROP INDEX ux_api_keys_user_label_active")
            .await?;
        db.execute_unprepared(
            "CREATE UNIQUE INDEX ux_api_keys_user_tenant_label_active \
             ON api_keys (user_id, tenant_id, label) WHERE revoked_at IS NULL",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        db.execute_unprepared("DROP INDEX ux_api_keys_user_tenant_label_active")
            .await?;
        db.execute_unprepared(
            "CREATE UNIQUE INDEX ux_api_keys_user_label_active ON api_keys (user_id, label) \
             WHERE revoked_at IS NULL",
        )
        .await?;
        Ok(())
    }
}
