//! Posts. Every query here is scoped by [`TenantScope`].
use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, SqlErr,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use super::{Page, PageRequest, TenantScope};
use crate::{
    db::entities::{
        PostStatus,
        post::{self, Column},
    },
    error::ApiError,
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

/// Which posts a caller may see.
#[derive(Debug, Clone, Copy)]
pub enum Visibility {
    /// Published posts only (viewers).
    Published,
    /// Published posts and the caller's own drafts (authors).
    PublishedAndOwnDrafts(Uuid),
    /// Everything (editors and up).
    All,
}

impl Visibility {
    fn condition(self) -> Condition {
        match self {
            Visibility::Published => Condition::all().add(Column::Status.eq(PostStatus::Published)),
            Visibility::PublishedAndOwnDrafts(me) => Condition::any()
                .add(Column::Status.eq(PostStatus::Published))
                .add(Column::AuthorId.eq(me)),
            Visibility::All => Condition::all(),
        }
    }
}

/// A valid post title: 1–200 characters, no control characters.
pub fn validate_title(raw: &str) -> Result<String, ApiError> {
    let title = raw.trim();
    if title.is_empty() || title.chars().count() > 200 || title.chars().any(char::is_control) {
        return Err(ApiError::validation(
            "title",
            "must be 1 to 200 printable characters",
        ));
    }
    Ok(title.to_owned())
}

/// A valid post slug: 1–100 of `a-z`, `0-9`, `-`, not starting or ending with `-`.
pub fn validate_slug(raw: &str) -> Result<String, ApiError> {
    let ok = (1..=100).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !raw.starts_with('-')
        && !raw.ends_with('-');
    if !ok {
        return Err(ApiError::validation(
            "slug",
            "must be 1 to 100 of a-z, 0-9 and inner hyphens",
        ));
    }
    Ok(raw.to_owned())
}

pub fn validate_body(raw: &str) -> Result<String, ApiError> {
    if raw.chars().count() > 100_000 {
        return Err(ApiError::validation(
            "body",
            "must be at most 100000 characters",
        ));
    }
    Ok(raw.to_owned())
}

/// What a client may set on a new post; author, tenant, status and version are ours.
pub struct PostForCreate {
    pub title: String,
    pub slug: String,
    pub body: String,
}

/// What a client may change; absent fields stay as they are.
#[derive(Default)]
pub struct PostForUpdate {
    pub title: Option<String>,
    pub slug: Option<String>,
    pub body: Option<String>,
}

fn slug_conflict(err: sea_orm::DbErr) -> ApiError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => {
            ApiError::Conflict("a post with this slug exists".into())
        }
        _ => err.into(),
    }
}

pub async fn list(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    visibility: Visibility,
    page: PageRequest,
) -> Result<Page<post::Model>, sea_orm::DbErr> {
    let rows = post::Entity::find()
        .filter(Column::TenantId.eq(scope.id()))
        .filter(visibility.condition())
        .order_by_desc(Column::CreatedAt)
        .order_by_desc(Column::Id)
        .offset(page.offset)
        .limit(page.limit + 1)
        .all(db)
        .await?;
    Ok(Page::from_overfetch(rows, page))
}

/// A post of the tenant the caller may see, or `None` (missing and hidden look the same).
pub async fn find(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    visibility: Visibility,
    id: Uuid,
) -> Result<Option<post::Model>, sea_orm::DbErr> {
    post::Entity::find_by_id(id)
        .filter(Column::TenantId.eq(scope.id()))
        .filter(visibility.condition())
        .one(db)
        .await
}

/// Creates a draft by `author`.
pub async fn create(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    author: Uuid,
    new: PostForCreate,
) -> Result<post::Model, ApiError> {
    let now = Utc::now();
    post::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(scope.id()),
        author_id: Set(author),
        title: Set(validate_title(&new.title)?),
        slug: Set(validate_slug(&new.slug)?),
        body: Set(validate_body(&new.body)?),
        status: Set(PostStatus::Draft),
        version: Set(1),
        published_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
    .map_err(slug_conflict)
}

/// Applies `changes` only if the post is still at `expected_version` (one atomic statement),
/// so of two concurrent editors the second gets 412 instead of silently overwriting.
pub async fn update(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    id: Uuid,
    expected_version: i32,
    changes: PostForUpdate,
) -> Result<post::Model, ApiError> {
    let mut query = post::Entity::update_many()
        .col_expr(Column::Version, Expr::col(Column::Version).add(1))
        .col_expr(Column::UpdatedAt, Expr::value(Utc::now()));
    if let Some(title) = changes.title {
        query = query.col_expr(Column::Title, Expr::value(validate_title(&title)?));
    }
    if let Some(slug) = changes.slug {
        query = query.col_expr(Column::Slug, Expr::value(validate_slug(&slug)?));
    }
    if let Some(body) = changes.body {
        query = query.col_expr(Column::Body, Expr::value(validate_body(&body)?));
    }
    versioned(db, scope, id, expected_version, query).await
}

/// Publishes or unpublishes, under the same version check as [`update`].
pub async fn set_status(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    id: Uuid,
    expected_version: i32,
    status: PostStatus,
) -> Result<post::Model, ApiError> {
    let published_at = match status {
        PostStatus::Published => Some(Utc::now()),
        PostStatus::Draft => None,
    };
    let query = post::Entity::update_many()
        .col_expr(Column::Version, Expr::col(Column::Version).add(1))
        .col_expr(Column::UpdatedAt, Expr::value(Utc::now()))
        .col_expr(Column::Status, Expr::value(status))
        .col_expr(Column::PublishedAt, Expr::value(published_at));
    versioned(db, scope, id, expected_version, query).await
}

async fn versioned(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    id: Uuid,
    expected_version: i32,
    query: sea_orm::UpdateMany<post::Entity>,
) -> Result<post::Model, ApiError> {
    let result = query
        .filter(Column::Id.eq(id))
        .filter(Column::TenantId.eq(scope.id()))
        .filter(Column::Version.eq(expected_version))
        .exec(db)
        .await
        .map_err(slug_conflict)?;
    let current = find(db, scope, Visibility::All, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if result.rows_affected == 0 {
        return Err(ApiError::PreconditionFailed);
    }
    Ok(current)
}

/// Deletes the post (and its comments), if still at `expected_version` when one is given.
pub async fn delete(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<(), ApiError> {
    let mut query = post::Entity::delete_many()
        .filter(Column::Id.eq(id))
        .filter(Column::TenantId.eq(scope.id()));
    if let Some(version) = expected_version {
        query = query.filter(Column::Version.eq(version));
    }
    let result = query.exec(db).await?;
    if result.rows_affected == 0 {
        return Err(if find(db, scope, Visibility::All, id).await?.is_some() {
            ApiError::PreconditionFailed
        } else {
            ApiError::NotFound
        });
    }
    Ok(())
}
