//! Indexes that match each paged list's filter and order, down to the `id` tie-breaker, so a
//! page is read in index order and the query stops after `limit + 1` rows. Without them every
//! request sorted all of a tenant's posts (or a post's comments) to return twenty.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// (name, table, columns) of each index this migration adds.
const ADDED: &[(&str, &str, &[&str])] = &[
    // Published posts, newest first (the public list).
    (
        "ix_posts_tenant_status_published_id",
        "posts",
        &["tenant_id", "status", "published_at", "id"],
    ),
    // All of a tenant's posts, newest first (members' list; visibility filters as it scans).
    (
        "ix_posts_tenant_created_id",
        "posts",
        &["tenant_id", "created_at", "id"],
    ),
    // A post's comments, oldest first.
    (
        "ix_comments_tenant_post_created_id",
        "comments",
        &["tenant_id", "post_id", "created_at", "id"],
    ),
];

/// (name, table, columns) of the indexes they replace: the same without the tie-breaker.
const REPLACED: &[(&str, &str, &[&str])] = &[
    (
        "ix_posts_tenant_status_published",
        "posts",
        &["tenant_id", "status", "published_at"],
    ),
    (
        "ix_comments_tenant_post_created",
        "comments",
        &["tenant_id", "post_id", "created_at"],
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, columns) in ADDED {
            create(m, name, table, columns).await?;
        }
        for (name, table, _) in REPLACED {
            drop_index(m, name, table).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, columns) in REPLACED {
            create(m, name, table, columns).await?;
        }
        for (name, table, _) in ADDED {
            drop_index(m, name, table).await?;
        }
        Ok(())
    }
}

async fn create(
    m: &SchemaManager<'_>,
    name: &str,
    table: &str,
    columns: &[&str],
) -> Result<(), DbErr> {
    let mut index = Index::create()
        .name(name)
        .table(Alias::new(table))
        .to_owned();
    for column in columns {
        index.col(Alias::new(*column));
    }
    m.create_index(index).await
}

async fn drop_index(m: &SchemaManager<'_>, name: &str, table: &str) -> Result<(), DbErr> {
    m.drop_index(Index::drop().name(name).table(Alias::new(table)).to_owned())
        .await
}
