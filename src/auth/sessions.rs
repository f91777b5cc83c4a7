//! Login sessions and their rotating refresh tokens.
//!
//! A session is one login; its refresh tokens form a family. Each refresh spends the presented
//! token and issues the next. Presenting a spent token again means it was copied: the whole
//! session is revoked (RFC 9700 refresh token rotation with reuse detection).
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    Set, sea_query::Expr,
};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::{
    auth::secrets::{random_token, sha256_hex as hash},
    db::{
        BeginWrite,
        entities::{refresh_token, session},
    },
    domain::{self, audit},
    store::{EphemeralStore, Store, StoreError},
};

const REFRESH_PREFIX: &str = "iqr_";

/// Store keys of the revocation list, consulted on every access token.
pub fn revoked_session_key(sid: Uuid) -> String {
    format!("revoked:sid:{sid}")
}

pub fn revoked_token_key(jti: Uuid) -> String {
    format!("revoked:jti:{jti}")
}

fn new_refresh_token() -> SecretString {
    format!("{REFRESH_PREFIX}{}", random_token()).into()
}

pub enum RefreshOutcome {
    /// The next refresh token, for this session.
    Rotated {
        session: session::Model,
        refresh: SecretString,
    },
    Refused(Refused),
}

/// Why a presented refresh token was not accepted.
pub enum Refused {
    /// Unknown, expired, or belonging to a revoked or too old session.
    Invalid,
    /// Spent moments ago (within the grace), its session alive: most likely a second tab that
    /// refreshed at the same time. The client retries with the token it now holds.
    JustSpent,
    /// A spent token came back: the session it belonged to is now revoked.
    Reused { session: session::Model },
}

/// How long sessions and their refresh tokens live.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// Of each refresh token (and of the session since its last refresh).
    pub refresh: Duration,
    /// Of the session since login, however often refreshed.
    pub max_age: Duration,
    /// How long a just-spent refresh token is answered with [`Refused::JustSpent`].
    pub reuse_grace: Duration,
}

impl Lifetimes {
    pub fn from_settings(auth: &crate::config::AuthSettings) -> Self {
        Self {
            refresh: auth.refresh_ttl(),
            max_age: auth.session_max_age(),
            reuse_grace: auth.refresh_reuse_grace(),
        }
    }

    /// When a session started at `created` and refreshed `now` expires: the refresh lifetime
    /// from now, but never past its absolute end.
    fn expiry(&self, created: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
        let refresh = now + to_chrono(self.refresh);
        let end = created + to_chrono(self.max_age);
        refresh.min(end)
    }
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(7))
}

/// Starts a session for `user` and returns its first refresh token; the login is recorded
/// in the same transaction.
pub async fn start(
    db: &DatabaseConnection,
    user: Uuid,
    provider: &str,
    lifetimes: Lifetimes,
    ctx: &audit::Context,
) -> domain::Result<(session::Model, SecretString)> {
    let user_agent = ctx.user_agent.as_deref();
    let now = Utc::now();
    let expires = lifetimes.expiry(now, now);
    let txn = db.begin_write().await?;
    let session = session::ActiveModel {
        user_id: Set(user),
        provider: Set(provider.to_owned()),
        user_agent: Set(user_agent.map(|ua| ua.chars().take(255).collect())),
        created_at: Set(now),
        last_seen_at: Set(now),
        expires_at: Set(expires),
        revoked_at: Set(None),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let refresh = insert_refresh(&txn, session.id, expires).await?;
    let event = audit::Event::success(audit::action::LOGIN)
        .target("session", session.id)
        .detail(serde_json::json!({ "provider": provider }));
    audit::write(&txn, &ctx.as_user(user), event).await?;
    txn.commit().await?;
    Ok((session, refresh))
}

async fn insert_refresh(
    db: &impl ConnectionTrait,
    session: Uuid,
    expires: DateTime<Utc>,
) -> Result<SecretString, sea_orm::DbErr> {
    let token = new_refresh_token();
    refresh_token::ActiveModel {
        session_id: Set(session),
        token_hash: Set(hash(token.expose_secret())),
        expires_at: Set(expires),
        spent_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(token)
}

/// Spends `presented` and issues its successor, detecting reuse.
pub async fn rotate(
    db: &DatabaseConnection,
    presented: &str,
    lifetimes: Lifetimes,
    ctx: &audit::Context,
) -> domain::Result<RefreshOutcome> {
    if !presented.starts_with(REFRESH_PREFIX) || presented.len() > 128 {
        return Ok(RefreshOutcome::Refused(Refused::Invalid));
    }
    let now = Utc::now();
    let token_hash = hash(presented);
    // A token we never issued is refused on a plain read: guessing costs no write lock.
    let known = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(&token_hash))
        .one(db)
        .await?
        .is_some();
    if !known {
        return Ok(RefreshOutcome::Refused(Refused::Invalid));
    }
    let txn = db.begin_write().await?;
    // Spend it first, atomically: the write comes first so SQLite takes its write lock at once
    // (a concurrent use waits instead of failing), and of two uses only one finds it unspent.
    let spent = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::SpentAt, Expr::value(Some(now)))
        .filter(refresh_token::Column::TokenHash.eq(&token_hash))
        .filter(refresh_token::Column::SpentAt.is_null())
        .exec(&txn)
        .await?;
    let found = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(&token_hash))
        .find_also_related(session::Entity)
        .one(&txn)
        .await?;
    let Some((token, Some(session))) = found else {
        return Ok(RefreshOutcome::Refused(Refused::Invalid));
    };
    if spent.rows_affected == 0 {
        txn.rollback().await?;
        let refused = presented_again(db, &token, session, lifetimes, ctx).await?;
        return Ok(RefreshOutcome::Refused(refused));
    }
    if token.expires_at <= now || !alive(&session, lifetimes, now) {
        txn.rollback().await?;
        return Ok(RefreshOutcome::Refused(Refused::Invalid));
    }
    let expires = lifetimes.expiry(session.created_at, now);
    let refresh = insert_refresh(&txn, session.id, expires).await?;
    let session = session::ActiveModel {
        id: Set(session.id),
        last_seen_at: Set(now),
        expires_at: Set(expires),
        ..Default::default()
    }
    .update(&txn)
    .await?;
    txn.commit().await?;
    Ok(RefreshOutcome::Rotated { session, refresh })
}

/// A spent refresh token presented again (refresh, or logout without an access token). Spent
/// moments ago on a live session: a concurrent tab ([`Refused::JustSpent`]). Otherwise,
/// on a session not yet ended, whoever holds it copied it: that session (only that one) is
/// revoked and the reuse recorded.
async fn presented_again(
    db: &DatabaseConnection,
    token: &refresh_token::Model,
    session: session::Model,
    lifetimes: Lifetimes,
    ctx: &audit::Context,
) -> domain::Result<Refused> {
    if session.revoked_at.is_some() {
        return Ok(Refused::Invalid);
    }
    // Measured now, not when the request came in: a concurrent request may have spent it.
    let now = Utc::now();
    let grace_end = token
        .spent_at
        .map(|at| at + to_chrono(lifetimes.reuse_grace));
    let in_grace = !lifetimes.reuse_grace.is_zero() && grace_end.is_some_and(|end| now < end);
    if in_grace && session.expires_at > now {
        return Ok(Refused::JustSpent);
    }
    let event = audit::Event::failure(audit::action::REFRESH_TOKEN_REUSE)
        .detail(serde_json::json!({ "session_revoked": true }));
    let ctx = ctx.as_user(session.user_id);
    let session = revoke_session(db, session.id, &ctx, event)
        .await?
        .unwrap_or(session);
    Ok(Refused::Reused { session })
}

/// Whether a session may still be used: not revoked, not expired, not past its absolute end.
fn alive(session: &session::Model, lifetimes: Lifetimes, now: DateTime<Utc>) -> bool {
    session.revoked_at.is_none()
        && session.expires_at > now
        && session.created_at + to_chrono(lifetimes.max_age) > now
}

/// The refresh token `presented` and its session, read only.
async fn find_refresh(
    db: &DatabaseConnection,
    presented: &str,
) -> Result<Option<(refresh_token::Model, session::Model)>, sea_orm::DbErr> {
    if !presented.starts_with(REFRESH_PREFIX) || presented.len() > 128 {
        return Ok(None);
    }
    let found = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(hash(presented)))
        .find_also_related(session::Entity)
        .one(db)
        .await?;
    Ok(found.and_then(|(token, session)| Some((token, session?))))
}

/// The live session `presented` could still refresh (an unspent, unexpired token of a session
/// that is neither revoked nor expired), read only: spends nothing, records nothing. For pages
/// that must know whether a browser whose access token is gone is still signed in.
pub async fn live_by_refresh(
    db: &DatabaseConnection,
    presented: &str,
    lifetimes: Lifetimes,
) -> Result<Option<session::Model>, sea_orm::DbErr> {
    let now = Utc::now();
    Ok(find_refresh(db, presented)
        .await?
        .filter(|(token, session)| {
            token.spent_at.is_none() && token.expires_at > now && alive(session, lifetimes, now)
        })
        .map(|(_, session)| session))
}

/// The session a refresh token may end (logout without an access token), judged as a refresh
/// would judge it but without spending it: an unspent, unexpired token of a live session. A
/// spent one is reuse, handled exactly as on refresh (its own session alone is revoked and the
/// reuse recorded), so an old token can never stand in for the user.
pub async fn to_end_by_refresh(
    db: &DatabaseConnection,
    presented: &str,
    lifetimes: Lifetimes,
    ctx: &audit::Context,
) -> domain::Result<Result<session::Model, Refused>> {
    let now = Utc::now();
    let Some((token, session)) = find_refresh(db, presented).await? else {
        return Ok(Err(Refused::Invalid));
    };
    if token.spent_at.is_some() {
        return Ok(Err(
            presented_again(db, &token, session, lifetimes, ctx).await?
        ));
    }
    if token.expires_at > now && alive(&session, lifetimes, now) {
        Ok(Ok(session))
    } else {
        Ok(Err(Refused::Invalid))
    }
}

/// Marks the session revoked and spends its live refresh tokens, recording `event` (about
/// this session) in the same transaction if the session was live until now.
pub async fn revoke_session(
    db: &DatabaseConnection,
    id: Uuid,
    ctx: &audit::Context,
    event: audit::Event,
) -> domain::Result<Option<session::Model>> {
    let now = Utc::now();
    let txn = db.begin_write().await?;
    let revoked = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(Some(now)))
        .filter(session::Column::Id.eq(id))
        .filter(session::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?;
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::SpentAt, Expr::value(Some(now)))
        .filter(refresh_token::Column::SessionId.eq(id))
        .filter(refresh_token::Column::SpentAt.is_null())
        .exec(&txn)
        .await?;
    let session = session::Entity::find_by_id(id).one(&txn).await?;
    // Recorded once, when it happens: ending an ended session again is no event.
    if revoked.rows_affected > 0 {
        audit::write(&txn, ctx, event.target("session", id)).await?;
    }
    txn.commit().await?;
    Ok(session)
}

/// The provider a session logged in through.
pub async fn provider_of(
    db: &DatabaseConnection,
    session: Uuid,
) -> Result<Option<String>, sea_orm::DbErr> {
    Ok(session::Entity::find_by_id(session)
        .one(db)
        .await?
        .map(|s| s.provider))
}

/// Every live session of the user.
pub async fn live_sessions(
    db: &DatabaseConnection,
    user: Uuid,
) -> Result<Vec<session::Model>, sea_orm::DbErr> {
    session::Entity::find()
        .filter(session::Column::UserId.eq(user))
        .filter(session::Column::RevokedAt.is_null())
        .all(db)
        .await
}

/// Puts the session (and optionally one token) on the revocation list until any access token
/// of it has expired: with Redis every instance refuses it at once.
pub async fn announce_revoked(
    store: &Store,
    sid: Uuid,
    jti: Option<Uuid>,
    access_ttl: Duration,
) -> Result<(), StoreError> {
    store
        .set(&revoked_session_key(sid), b"1", access_ttl)
        .await?;
    if let Some(jti) = jti {
        store.set(&revoked_token_key(jti), b"1", access_ttl).await?;
    }
    Ok(())
}

/// Ends a session: the database first (its refresh tokens die even if the store is down),
/// then the revocation list (every instance refuses its access tokens at once).
pub async fn end(
    state: &crate::state::AppState,
    session: Uuid,
    token: Option<Uuid>,
    ctx: &audit::Context,
    action: &'static str,
) -> crate::error::ApiResult<()> {
    revoke_session(&state.db, session, ctx, audit::Event::success(action)).await?;
    announce_revoked(
        &state.store,
        session,
        token,
        state.settings.auth.revocation_ttl(),
    )
    .await
    .map_err(|err| {
        tracing::error!(error = %err, "session revocation unavailable");
        crate::error::ApiError::Unavailable("sessions are temporarily unavailable".into())
    })
}
