//! Optimistic concurrency: a change names the version it was based on (`If-Match`), and the
//! statement that writes it checks that version atomically.
use sea_orm::{ColumnTrait, Condition, sea_query::Expr};

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
