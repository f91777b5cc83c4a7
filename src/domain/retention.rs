//! What is deleted once it can no longer matter: audit events past `audit.retention_days`,
//! sessions (with their refresh tokens) past their expiry, refresh tokens past theirs, and
//! invitations that expired unanswered or were answered longer ago than the retention, and the
//! role-assignment change log past a day.
use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, sea_query::Query,
};
use serde::Serialize;

use super::{Result, audit};
use crate::db::{
    BeginWrite,
    entities::{authz_change, invitation, refresh_token, session},
};

/// How many rows of each kind a purge deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Purged {
    pub audit_events: u64,
    pub sessions: u64,
    pub refresh_tokens: u64,
    pub invitations: u64,
    /// Entries of the role-assignment change log older than a day (an instance that far
    /// behind reloads every assignment instead).
    pub authz_changes: u64,
}

/// Deletes what is past keeping at `now`, in one transaction.
pub async fn purge(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    retention_days: u32,
) -> Result<Purged> {
    let cutoff = now - Duration::days(i64::from(retention_days));
    let txn = db.begin_write().await?;
    let audit_events = audit::purge_before(&txn, cutoff).await?;
    // Unspent refresh tokens past their expiry are worthless, and so is every token of an
    // expired session (which goes next). A spent token of a live session stays even past its
    // own expiry: presenting it again is how reuse is detected and the session revoked.
    // A subquery, not a list of ids: any number of sessions fits.
    let expired_sessions = || {
        Query::select()
            .column(session::Column::Id)
            .from(session::Entity)
            .and_where(session::Column::ExpiresAt.lt(now))
            .to_owned()
    };
    let refresh_tokens = refresh_token::Entity::delete_many()
        .filter(
            Condition::any()
                .add(
                    Condition::all()
                        .add(refresh_token::Column::SpentAt.is_null())
                        .add(refresh_token::Column::ExpiresAt.lt(now)),
                )
                .add(refresh_token::Column::SessionId.in_subquery(expired_sessions())),
        )
        .exec(&txn)
        .await?
        .rows_affected;
    let sessions = session::Entity::delete_many()
        .filter(session::Column::ExpiresAt.lt(now))
        .exec(&txn)
        .await?
        .rows_affected;
    let invitations = invitation::Entity::delete_many()
        .filter(
            Condition::any()
                .add(
                    Condition::all()
                        .add(invitation::Column::AcceptedAt.is_null())
                        .add(invitation::Column::ExpiresAt.lt(now)),
                )
                .add(invitation::Column::AcceptedAt.lt(cutoff)),
        )
        .exec(&txn)
        .await?
        .rows_affected;
    let authz_changes = authz_change::Entity::delete_many()
        .filter(authz_change::Column::CreatedAt.lt(now - Duration::days(1)))
        .exec(&txn)
        .await?
        .rows_affected;
    txn.commit().await?;
    Ok(Purged {
        audit_events,
        sessions,
        refresh_tokens,
        invitations,
        authz_changes,
    })
}
