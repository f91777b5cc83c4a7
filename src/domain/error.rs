//! What the domain layer can fail with. Converted to the API's problem documents once, in
//! `crate::error`, so domain code never thinks in HTTP statuses.
use sea_orm::{DbErr, SqlErr};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Missing, or in a tenant the caller cannot see: the two look the same.
    #[error("not found")]
    NotFound,
    /// Clashes with existing state (a taken slug, an existing member); the text says which.
    #[error("{0}")]
    Conflict(String),
    /// The row moved on since the version the caller named.
    #[error("the resource was changed since it was read")]
    VersionMismatch,
    /// A configured limit the change would pass; the text says which.
    #[error("{0}")]
    Limit(String),
    /// The caller lacks a permission the change needs (decided on the row, not the route).
    #[error("missing permission: {0}")]
    MissingPermission(String),
    #[error("invalid {field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Db(#[from] DbErr),
    /// The ephemeral store could not record what the change needs (a revocation): nothing
    /// was committed, and the caller may retry.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict(message.into())
    }
}

/// Turns a unique-key violation into the error the caller names, in one line:
/// `row.insert(db).await.on_unique(|| Error::conflict("this slug is taken"))?` (realworld's
/// `on_constraint`). Any other database error passes through unchanged.
pub trait OnUnique<T> {
    fn on_unique(self, err: impl FnOnce() -> Error) -> Result<T>;
}

impl<T> OnUnique<T> for std::result::Result<T, DbErr> {
    fn on_unique(self, err: impl FnOnce() -> Error) -> Result<T> {
        self.map_err(|db| match db.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => err(),
            _ => Error::Db(db),
        })
    }
}
