//! Comments on posts. Every query here is scoped by [`TenantScope`].
use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use uuid::Uuid;

use super::{Page, PageRequest, TenantScope};
use crate::{
    db::entities::comment::{self, Column},
    error::ApiError,
};

pub fn validate_body(raw: &str) -> Result<String, ApiError> {
    let body = raw.trim();
    if body.is_empty() || body.chars().count() > 10_000 {
        return Err(ApiError::validation(
            "body",
            "must be 1 to 10000 characters",
        ));
    }
    Ok(body.to_owned())
}

/// Comments of a post, oldest first.
pub async fn list(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    post_id: Uuid,
    page: PageRequest,
) -> Result<Page<comment::Model>, sea_orm::DbErr> {
    let rows = comment::Entity::find()
        .filter(Column::TenantId.eq(scope.id()))
        .filter(Column::PostId.eq(post_id))
        .order_by_asc(Column::CreatedAt)
        .order_by_asc(Column::Id)
        .offset(page.offset)
        .limit(page.limit + 1)
        .all(db)
        .await?;
    Ok(Page::from_overfetch(rows, page))
}

pub async fn create(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    post_id: Uuid,
    author: Uuid,
    body: &str,
) -> Result<comment::Model, ApiError> {
    Ok(comment::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(scope.id()),
        post_id: Set(post_id),
        author_id: Set(author),
        body: Set(validate_body(body)?),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await?)
}

pub async fn find(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    post_id: Uuid,
    id: Uuid,
) -> Result<Option<comment::Model>, sea_orm::DbErr> {
    comment::Entity::find_by_id(id)
        .filter(Column::TenantId.eq(scope.id()))
        .filter(Column::PostId.eq(post_id))
        .one(db)
        .await
}

pub async fn delete(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    id: Uuid,
) -> Result<(), sea_orm::DbErr> {
    comment::Entity::delete_many()
        .filter(Column::TenantId.eq(scope.id()))
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}
