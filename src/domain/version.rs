//! Optimistic concurrency: a change names the version it was based on (`If-Match`), and the
//! statement that writes it checks that version atomically, so of two concurrent editors the
//! second gets [`Error::VersionMismatch`] instead of silently overwriting the first.
use chrono::Utc;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, QueryFilter, UpdateMany,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use super::{Error, OnUnique, Result, TenantOwned, TenantScope};

/// The versions a change is conditional on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// Whatever the current version is (`If-Match: *`).
    Any,
    /// One of these (`If-Match: "3", "4"`); none at all when no tag could name a version of
    /// ours (weak, foreign or malformed tags), which then never matches.
    OneOf(Vec<i32>),
}

impl Expected {
    pub fn version(v: i32) -> Self {
        Self::OneOf(vec![v])
    }

    /// The filter that holds only for a row at an expected version.
    pub fn condition(&self, version: impl ColumnTrait) -> Condition {
        match self {
            Expected::Any => Condition::all(),
            Expected::OneOf(versions) if versions.is_empty() => {
                Condition::all().add(Expr::value(false))
            }
            Expected::OneOf(versions) => Condition::all().add(version.is_in(versions.clone())),
        }
    }
}

/// A tenant-owned table with a `version` (the `ETag`) and an `updated_at` column.
#[allow(async_fn_in_trait)] // used by this crate's own futures only
pub trait Versioned: TenantOwned {
    fn version_column() -> Self::Column;
    fn updated_at_column() -> Self::Column;

    /// Applies `changes` (an `update_in(scope)` with its `col_expr`s; the tenant filter is
    /// applied here again, so a plain `update_many()` cannot escape the tenant) to row `id` if
    /// it is at an `expected` version, bumping the version, and returns the row as this
    /// statement left it. A unique-key violation becomes `on_unique()`.
    async fn update_expected(
        db: &impl ConnectionTrait,
        scope: &TenantScope,
        id: Uuid,
        expected: Expected,
        changes: UpdateMany<Self>,
        on_unique: impl FnOnce() -> Error,
    ) -> Result<Self::Model> {
        let version = Self::version_column();
        // RETURNING: the row exactly as this statement left it, so the ETag handed back is the
        // version this change made, never a later concurrent one.
        let updated = changes
            .col_expr(version, Expr::col(version).add(1))
            .col_expr(Self::updated_at_column(), Expr::value(Utc::now()))
            .filter(Self::tenant_column().eq(scope.id()))
            .filter(Self::id_column().eq(id))
            .filter(expected.condition(version))
            .exec_with_returning(db)
            .await
            .on_unique(on_unique)?;
        if let Some(row) = updated.into_iter().next() {
            return Ok(row);
        }
        let exists = Self::find_id_in(scope, id).one(db).await?.is_some();
        Err(if exists {
            Error::VersionMismatch
        } else {
            Error::NotFound
        })
    }

    /// Deletes row `id` if it is at the `expected` version.
    async fn delete_expected(
        db: &impl ConnectionTrait,
        scope: &TenantScope,
        id: Uuid,
        expected: Expected,
    ) -> Result<()> {
        let result = Self::delete_in(scope)
            .filter(Self::id_column().eq(id))
            .filter(expected.condition(Self::version_column()))
            .exec(db)
            .await?;
        if result.rows_affected > 0 {
            return Ok(());
        }
        let exists = Self::find_id_in(scope, id).one(db).await?.is_some();
        Err(if exists {
            Error::VersionMismatch
        } else {
            Error::NotFound
        })
    }
}
