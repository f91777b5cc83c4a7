//! The whole data model of the product: identity, tenancy, the blog, credentials and audit.
//!
//! Every tenant-owned table carries `tenant_id` and is indexed by it first, because every query
//! of tenant-owned rows is scoped by tenant.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Users::Table)
                .col(pk_uuid(Users::Id))
                // Only a verified address is stored here; unverified claims stay on the identity.
                .col(string_len_null(Users::Email, 320).unique_key())
                .col(string_len_null(Users::DisplayName, 200))
                .col(timestamp_with_time_zone(Users::CreatedAt))
                .col(timestamp_with_time_zone(Users::UpdatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Identities::Table)
                .col(pk_uuid(Identities::Id))
                .col(uuid(Identities::UserId))
                .col(string_len(Identities::Provider, 64))
                .col(string_len(Identities::Subject, 255))
                .col(string_len_null(Identities::Email, 320))
                .col(boolean(Identities::EmailVerified))
                .col(timestamp_with_time_zone(Identities::CreatedAt))
                .col(timestamp_with_time_zone(Identities::LastLoginAt))
                .foreign_key(&mut cascade(
                    "fk_identities_user",
                    Identities::Table,
                    Identities::UserId,
                    Users::Table,
                ))
                .to_owned(),
        )
        .await?;
        unique_index(
            m,
            "ux_identities_provider_subject",
            Identities::Table,
            &[Identities::Provider, Identities::Subject],
        )
        .await?;
        index(
            m,
            "ix_identities_user",
            Identities::Table,
            &[Identities::UserId],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Tenants::Table)
                .col(pk_uuid(Tenants::Id))
                .col(string_len_uniq(Tenants::Slug, 63))
                .col(string_len(Tenants::Name, 200))
                .col(timestamp_with_time_zone(Tenants::CreatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Memberships::Table)
                .col(uuid(Memberships::TenantId))
                .col(uuid(Memberships::UserId))
                .col(string_len(Memberships::Role, 16))
                .col(timestamp_with_time_zone(Memberships::CreatedAt))
                .col(timestamp_with_time_zone(Memberships::UpdatedAt))
                .primary_key(
                    Index::create()
                        .col(Memberships::TenantId)
                        .col(Memberships::UserId),
                )
                .foreign_key(&mut cascade(
                    "fk_memberships_tenant",
                    Memberships::Table,
                    Memberships::TenantId,
                    Tenants::Table,
                ))
                .foreign_key(&mut cascade(
                    "fk_memberships_user",
                    Memberships::Table,
                    Memberships::UserId,
                    Users::Table,
                ))
                .to_owned(),
        )
        .await?;
        // "Which tenants is this user in" is asked on every authenticated request.
        index(
            m,
            "ix_memberships_user",
            Memberships::Table,
            &[Memberships::UserId],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Invitations::Table)
                .col(pk_uuid(Invitations::Id))
                .col(uuid(Invitations::TenantId))
                .col(string_len(Invitations::Email, 320))
                .col(string_len(Invitations::Role, 16))
                .col(uuid_null(Invitations::InvitedBy))
                .col(timestamp_with_time_zone(Invitations::CreatedAt))
                .col(timestamp_with_time_zone(Invitations::ExpiresAt))
                .col(timestamp_with_time_zone_null(Invitations::AcceptedAt))
                .foreign_key(&mut cascade(
                    "fk_invitations_tenant",
                    Invitations::Table,
                    Invitations::TenantId,
                    Tenants::Table,
                ))
                .to_owned(),
        )
        .await?;
        unique_index(
            m,
            "ux_invitations_tenant_email",
            Invitations::Table,
            &[Invitations::TenantId, Invitations::Email],
        )
        .await?;
        index(
            m,
            "ix_invitations_email",
            Invitations::Table,
            &[Invitations::Email],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Posts::Table)
                .col(pk_uuid(Posts::Id))
                .col(uuid(Posts::TenantId))
                .col(uuid(Posts::AuthorId))
                .col(string_len(Posts::Title, 200))
                .col(string_len(Posts::Slug, 100))
                .col(text(Posts::Body))
                .col(string_len(Posts::Status, 16))
                .col(integer(Posts::Version))
                .col(timestamp_with_time_zone_null(Posts::PublishedAt))
                .col(timestamp_with_time_zone(Posts::CreatedAt))
                .col(timestamp_with_time_zone(Posts::UpdatedAt))
                .foreign_key(&mut cascade(
                    "fk_posts_tenant",
                    Posts::Table,
                    Posts::TenantId,
                    Tenants::Table,
                ))
                .foreign_key(&mut cascade(
                    "fk_posts_author",
                    Posts::Table,
                    Posts::AuthorId,
                    Users::Table,
                ))
                .to_owned(),
        )
        .await?;
        unique_index(
            m,
            "ux_posts_tenant_slug",
            Posts::Table,
            &[Posts::TenantId, Posts::Slug],
        )
        .await?;
        // The public listing: published posts of one tenant, newest first.
        index(
            m,
            "ix_posts_tenant_status_published",
            Posts::Table,
            &[Posts::TenantId, Posts::Status, Posts::PublishedAt],
        )
        .await?;
        index(
            m,
            "ix_posts_tenant_author",
            Posts::Table,
            &[Posts::TenantId, Posts::AuthorId],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Comments::Table)
                .col(pk_uuid(Comments::Id))
                .col(uuid(Comments::TenantId))
                .col(uuid(Comments::PostId))
                .col(uuid(Comments::AuthorId))
                .col(text(Comments::Body))
                .col(timestamp_with_time_zone(Comments::CreatedAt))
                .foreign_key(&mut cascade(
                    "fk_comments_tenant",
                    Comments::Table,
                    Comments::TenantId,
                    Tenants::Table,
                ))
                .foreign_key(&mut cascade(
                    "fk_comments_post",
                    Comments::Table,
                    Comments::PostId,
                    Posts::Table,
                ))
                .foreign_key(&mut cascade(
                    "fk_comments_author",
                    Comments::Table,
                    Comments::AuthorId,
                    Users::Table,
                ))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "ix_comments_tenant_post_created",
            Comments::Table,
            &[Comments::TenantId, Comments::PostId, Comments::CreatedAt],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ApiKeys::Table)
                .col(pk_uuid(ApiKeys::Id))
                .col(uuid(ApiKeys::UserId))
                .col(uuid(ApiKeys::TenantId))
                .col(string_len(ApiKeys::Label, 100))
                // Non-secret lookup id, part of the key; the secret part is stored only as a hash.
                .col(string_len_uniq(ApiKeys::LookupId, 32))
                .col(string_len(ApiKeys::SecretHash, 128))
                .col(json(ApiKeys::Permissions))
                .col(timestamp_with_time_zone_null(ApiKeys::ExpiresAt))
                .col(timestamp_with_time_zone_null(ApiKeys::LastUsedAt))
                .col(timestamp_with_time_zone_null(ApiKeys::RevokedAt))
                .col(timestamp_with_time_zone(ApiKeys::CreatedAt))
                .foreign_key(&mut cascade(
                    "fk_api_keys_user",
                    ApiKeys::Table,
                    ApiKeys::UserId,
                    Users::Table,
                ))
                .foreign_key(&mut cascade(
                    "fk_api_keys_tenant",
                    ApiKeys::Table,
                    ApiKeys::TenantId,
                    Tenants::Table,
                ))
                .to_owned(),
        )
        .await?;
        // Labels are unique among a user's active keys; revoked keys keep theirs for the record.
        // A partial index, written out because the syntax is the same on SQLite and PostgreSQL.
        m.get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX ux_api_keys_user_label_active ON api_keys (user_id, label) \
                 WHERE revoked_at IS NULL",
            )
            .await?;

        // One row: bumped in the same transaction as every membership change, so every
        // instance (and the admin CLI, a separate process) can tell its policy snapshot is stale.
        m.create_table(
            Table::create()
                .table(AuthzState::Table)
                .col(integer(AuthzState::Id).primary_key())
                .col(big_integer(AuthzState::Version))
                .to_owned(),
        )
        .await?;
        m.get_connection()
            .execute_unprepared("INSERT INTO authz_state (id, version) VALUES (1, 0)")
            .await?;

        // A session is one login; its refresh tokens form the rotation family.
        m.create_table(
            Table::create()
                .table(Sessions::Table)
                .col(pk_uuid(Sessions::Id))
                .col(uuid(Sessions::UserId))
                .col(string_len(Sessions::Provider, 64))
                .col(string_len_null(Sessions::UserAgent, 255))
                .col(timestamp_with_time_zone(Sessions::CreatedAt))
                .col(timestamp_with_time_zone(Sessions::LastSeenAt))
                .col(timestamp_with_time_zone(Sessions::ExpiresAt))
                .col(timestamp_with_time_zone_null(Sessions::RevokedAt))
                .foreign_key(&mut cascade(
                    "fk_sessions_user",
                    Sessions::Table,
                    Sessions::UserId,
                    Users::Table,
                ))
                .to_owned(),
        )
        .await?;
        index(m, "ix_sessions_user", Sessions::Table, &[Sessions::UserId]).await?;

        m.create_table(
            Table::create()
                .table(RefreshTokens::Table)
                .col(pk_uuid(RefreshTokens::Id))
                .col(uuid(RefreshTokens::SessionId))
                .col(string_len_uniq(RefreshTokens::TokenHash, 128))
                .col(timestamp_with_time_zone(RefreshTokens::CreatedAt))
                .col(timestamp_with_time_zone(RefreshTokens::ExpiresAt))
                // Set when rotated; presenting a spent token again revokes the whole session.
                .col(timestamp_with_time_zone_null(RefreshTokens::SpentAt))
                .foreign_key(&mut cascade(
                    "fk_refresh_tokens_session",
                    RefreshTokens::Table,
                    RefreshTokens::SessionId,
                    Sessions::Table,
                ))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "ix_refresh_tokens_session",
            RefreshTokens::Table,
            &[RefreshTokens::SessionId],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(AuditEvents::Table)
                .col(pk_uuid(AuditEvents::Id))
                // Null for events outside any tenant (a failed login, say).
                .col(uuid_null(AuditEvents::TenantId))
                .col(uuid_null(AuditEvents::ActorUserId))
                .col(uuid_null(AuditEvents::ActorApiKeyId))
                .col(string_len(AuditEvents::Action, 64))
                .col(string_len(AuditEvents::Outcome, 16))
                .col(string_len_null(AuditEvents::TargetType, 32))
                .col(string_len_null(AuditEvents::TargetId, 64))
                .col(string_len_null(AuditEvents::Ip, 64))
                .col(string_len_null(AuditEvents::RequestId, 64))
                .col(json_null(AuditEvents::Detail))
                .col(timestamp_with_time_zone(AuditEvents::CreatedAt))
                .foreign_key(&mut cascade(
                    "fk_audit_events_tenant",
                    AuditEvents::Table,
                    AuditEvents::TenantId,
                    Tenants::Table,
                ))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "ix_audit_events_tenant_created",
            AuditEvents::Table,
            &[AuditEvents::TenantId, AuditEvents::CreatedAt],
        )
        .await?;

        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuditEvents::Table.into_iden(),
            AuthzState::Table.into_iden(),
            RefreshTokens::Table.into_iden(),
            Sessions::Table.into_iden(),
            ApiKeys::Table.into_iden(),
            Comments::Table.into_iden(),
            Posts::Table.into_iden(),
            Invitations::Table.into_iden(),
            Memberships::Table.into_iden(),
            Tenants::Table.into_iden(),
            Identities::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

/// A foreign key `table.column -> target.id` that goes away with its parent row.
fn cascade<T: IntoIden, C: IntoIden, P: IntoIden>(
    name: &str,
    table: T,
    column: C,
    target: P,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(table, column)
        .to(target, Alias::new("id"))
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

async fn index<T: IntoIden + Clone, C: IntoIden + Clone>(
    m: &SchemaManager<'_>,
    name: &str,
    table: T,
    cols: &[C],
) -> Result<(), DbErr> {
    create_index(m, name, table, cols, false).await
}

async fn unique_index<T: IntoIden + Clone, C: IntoIden + Clone>(
    m: &SchemaManager<'_>,
    name: &str,
    table: T,
    cols: &[C],
) -> Result<(), DbErr> {
    create_index(m, name, table, cols, true).await
}

async fn create_index<T: IntoIden + Clone, C: IntoIden + Clone>(
    m: &SchemaManager<'_>,
    name: &str,
    table: T,
    cols: &[C],
    unique: bool,
) -> Result<(), DbErr> {
    let mut stmt = Index::create().name(name).table(table).to_owned();
    for col in cols {
        stmt.col(col.clone());
    }
    if unique {
        stmt.unique();
    }
    m.create_index(stmt).await
}

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
    Id,
    Email,
    DisplayName,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Identities {
    Table,
    Id,
    UserId,
    Provider,
    Subject,
    Email,
    EmailVerified,
    CreatedAt,
    LastLoginAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Tenants {
    Table,
    Id,
    Slug,
    Name,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Memberships {
    Table,
    TenantId,
    UserId,
    Role,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Invitations {
    Table,
    Id,
    TenantId,
    Email,
    Role,
    InvitedBy,
    CreatedAt,
    ExpiresAt,
    AcceptedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Posts {
    Table,
    Id,
    TenantId,
    AuthorId,
    Title,
    Slug,
    Body,
    Status,
    Version,
    PublishedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Comments {
    Table,
    Id,
    TenantId,
    PostId,
    AuthorId,
    Body,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ApiKeys {
    Table,
    Id,
    UserId,
    TenantId,
    Label,
    LookupId,
    SecretHash,
    Permissions,
    ExpiresAt,
    LastUsedAt,
    RevokedAt,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Sessions {
    Table,
    Id,
    UserId,
    Provider,
    UserAgent,
    CreatedAt,
    LastSeenAt,
    ExpiresAt,
    RevokedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum RefreshTokens {
    Table,
    Id,
    SessionId,
    TokenHash,
    CreatedAt,
    ExpiresAt,
    SpentAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum AuditEvents {
    Table,
    Id,
    TenantId,
    ActorUserId,
    ActorApiKeyId,
    Action,
    Outcome,
    TargetType,
    TargetId,
    Ip,
    RequestId,
    Detail,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum AuthzState {
    Table,
    Id,
    Version,
}
