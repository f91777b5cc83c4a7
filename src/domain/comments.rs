//! Comments on posts. Every query here goes through the tenant filter.
use sea_orm::{ColumnTrait, ConnectionTrait, QueryFilter, QueryOrder, Set};
use uuid::Uuid;

use super::{Error, Page, PageRequest, Paginate, Result, TenantOwned, TenantScope};
use crate::db::entities::comment::{self, Column, Entity as Comments};

pub fn validate_body(raw: &str) -> Result<String> {
    let body = raw.trim();
    if body.is_empty() || body.chars().count() > 10_000 {
        return Err(Error::invalid("body", "must be 1 to 10000 characters"));
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
    Comments::find_in(scope)
        .filter(Column::PostId.eq(post_id))
        .order_by_asc(Column::CreatedAt)
        .order_by_asc(Column::Id)
        .page(db, page)
        .await
}

pub async fn create(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    post_id: Uuid,
    author: Uuid,
    body: &str,
) -> Result<comment::Model> {
    let row = comment::ActiveModel {
        post_id: Set(post_id),
        author_id: Set(author),
        body: Set(validate_body(body)?),
        ..Default::default()
    };
    Ok(Comments::insert_in(scope, row, db).await?)
}

pub async fn find(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    post_id: Uuid,
    id: Uuid,
) -> Result<Option<comment::Model>, sea_orm::DbErr> {
    Comments::find_id_in(scope, id)
        .filter(Column::PostId.eq(post_id))
        .one(db)
        .await
}

pub async fn delete(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    id: Uuid,
) -> Result<(), sea_orm::DbErr> {
    Comments::delete_in(scope)
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}
