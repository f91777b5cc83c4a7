//! Posts. Every query here is scoped by [`TenantScope`].
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{Page, PageRequest, TenantScope};
use crate::db::entities::{
    PostStatus,
    post::{self, Column},
};

/// Published posts of the tenant, newest first.
pub async fn list_published(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    page: PageRequest,
) -> Result<Page<post::Model>, sea_orm::DbErr> {
    let rows = post::Entity::find()
        .filter(Column::TenantId.eq(scope.id()))
        .filter(Column::Status.eq(PostStatus::Published))
        .order_by_desc(Column::PublishedAt)
        .order_by_desc(Column::Id)
        .offset(page.offset)
        .limit(page.limit + 1)
        .all(db)
        .await?;
    Ok(Page::from_overfetch(rows, page))
}

/// One published post of the tenant by slug.
pub async fn find_published_by_slug(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    slug: &str,
) -> Result<Option<post::Model>, sea_orm::DbErr> {
    post::Entity::find()
        .filter(Column::TenantId.eq(scope.id()))
        .filter(Column::Status.eq(PostStatus::Published))
        .filter(Column::Slug.eq(slug))
        .one(db)
        .await
}
