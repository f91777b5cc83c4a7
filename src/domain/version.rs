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

/// The version a change is conditional on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// Whatever the current version is (`If-Match: *`).
    Any,
    Version(i32),
    /// A tag that can name no version of ours (weak, foreign, malformed): never matches.
    Nothing,
}

impl Expected {
    /// The filter that holds only for a row at the expected version.
    pub fn condition(self, version: impl ColumnTrait) -> Condition {
        match self {
            Expected::Any => Condition::all(),
            Expected::Version(v) => Condition::all().add(version.eq(v)),
            Expected::Nothing => Condition::all().add(Expr::value(false)),
        }
    }
}

/// A tenant-owned table with a `version` (the `ETag`) and an `updated_at` column.
#[allow(async_fn_in_trait)] // used by this crate's own futures only
pub trait Versioned: TenantOwned {
    fn version_column() -> Self::Column;
    fn updated_at_column() -> Self::Column;

    /// Applies `changes` (the `col_expr`s of an update; the tenant filter is added here) to
    /// row `id` if it is at the `expected` version, bumping the version, and returns the row
    /// as it now is. A unique-key violation becomes `on_unique()`.
    async fn update_expected(
        db: &impl ConnectionTrait,
        scope: &TenantScope,
        id: Uuid,
        expected: Expected,
        changes: UpdateMany<Self>,
        on_unique: impl FnOnce() -> Error,
    ) -> Result<Self::Model> {
        let version = Self::version_column();
        let result = changes
            .col_expr(version, Expr::col(version).add(1))
            .col_expr(Self::updated_at_column(), Expr::value(Utc::now()))
            .filter(Self::tenant_column().eq(scope.id()))
            .filter(Self::id_column().eq(id))
            .filter(expected.condition(version))
            .exec(db)
            .await
            .on_unique(on_unique)?;
        let current = Self::find_id_in(scope, id)
            .one(db)
            .await?
            .ok_or(Error::NotFound)?;
        if result.rows_affected == 0 {
            return Err(Error::VersionMismatch);
        }
        Ok(current)
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
