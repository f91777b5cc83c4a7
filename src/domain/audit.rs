//! The audit trail: every security-relevant action, who did it, from where, and how it ended.
//!
//! An event about a change is written with [`write`] inside the change's transaction, so both
//! commit or neither does. Events that change nothing (failed authentications, denials,
//! rate-limit trips) go through [`AuditLog::sampled`], which records the first of a kind per
//! client per minute: enough to see an attack, without letting it fill the table. Never a
//! secret, token or key: only ids and fixed words, and a small JSON detail.
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use super::{Error, Result};
use crate::db::entities::audit_event;

/// Who acted, and from where: taken from the request.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub actor_user_id: Option<Uuid>,
    pub actor_api_key_id: Option<Uuid>,
    /// The `jti` of the machine token the key's request came with, if it came with one: kept
    /// in the event's detail as `"via_token"`, so a token's actions can be told from its key's.
    pub actor_token_id: Option<Uuid>,
    pub client_ip: Option<String>,
    /// Cut to [`USER_AGENT_MAX`] characters.
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

pub const USER_AGENT_MAX: usize = 200;

impl Context {
    /// The operator at the command line: no user, no address.
    pub fn operator() -> Self {
        Self {
            user_agent: Some("ironquill admin (command line)".into()),
            ..Self::default()
        }
    }

    /// The same request, acting as `user` (a login names its user only once it succeeds).
    pub fn as_user(&self, user: Uuid) -> Self {
        Self {
            actor_user_id: Some(user),
            ..self.clone()
        }
    }
}

/// What happened.
#[derive(Debug, Clone)]
pub struct Event {
    pub action: &'static str,
    /// `success`, `failure` or `denied`.
    pub outcome: &'static str,
    pub tenant_id: Option<Uuid>,
    pub target_type: Option<&'static str>,
    pub target_id: Option<String>,
    pub detail: Option<serde_json::Value>,
}

impl Event {
    pub fn success(action: &'static str) -> Self {
        Self {
            action,
            outcome: "success",
            tenant_id: None,
            target_type: None,
            target_id: None,
            detail: None,
        }
    }

    pub fn failure(action: &'static str) -> Self {
        Self {
            outcome: "failure",
            ..Self::success(action)
        }
    }

    pub fn denied(action: &'static str) -> Self {
        Self {
            outcome: "denied",
            ..Self::success(action)
        }
    }

    pub fn in_tenant(mut self, tenant: Uuid) -> Self {
        self.tenant_id = Some(tenant);
        self
    }

    pub fn target(mut self, kind: &'static str, id: impl ToString) -> Self {
        self.target_type = Some(kind);
        self.target_id = Some(id.to_string());
        self
    }

    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }
}

/// The actions a user sees on their own security page (`/me/security-events`).
pub const PERSONAL_ACTIONS: &[&str] = &[
    action::LOGIN,
    action::LOGOUT,
    action::LOGOUT_ALL,
    action::REFRESH_TOKEN_REUSE,
    action::API_KEY_CREATED,
    action::API_KEY_ROTATED,
    action::API_KEY_REVOKED,
];

/// Every action name, in one place (they are what the audit API filters on).
pub mod action {
    pub const LOGIN: &str = "login";
    pub const LOGOUT: &str = "logout";
    pub const LOGOUT_ALL: &str = "logout_all";
    pub const REFRESH_TOKEN_REUSE: &str = "refresh_token_reuse";
    pub const AUTHENTICATION_FAILED: &str = "authentication_failed";
    pub const API_KEY_CREATED: &str = "api_key_created";
    pub const API_KEY_ROTATED: &str = "api_key_rotated";
    pub const API_KEY_REVOKED: &str = "api_key_revoked";
    /// An API key was exchanged for a machine token (`POST /oauth/token`).
    pub const CLIENT_TOKEN_ISSUED: &str = "client_token_issued";
    pub const MEMBER_INVITED: &str = "member_invited";
    pub const MEMBER_ROLE_CHANGED: &str = "member_role_changed";
    pub const MEMBER_REMOVED: &str = "member_removed";
    pub const INVITATION_ACCEPTED: &str = "invitation_accepted";
    pub const TENANT_CREATED: &str = "tenant_created";
    pub const PERMISSION_DENIED: &str = "permission_denied";
    pub const RATE_LIMITED: &str = "rate_limited";
}

/// Writes `event` on `db`, which is the transaction of the change it records: if the event
/// cannot be written, the change fails with it.
pub async fn write(db: &impl ConnectionTrait, ctx: &Context, event: Event) -> Result<()> {
    audit_event::ActiveModel {
        tenant_id: Set(event.tenant_id),
        actor_user_id: Set(ctx.actor_user_id),
        actor_api_key_id: Set(ctx.actor_api_key_id),
        action: Set(event.action.to_owned()),
        outcome: Set(event.outcome.to_owned()),
        target_type: Set(event.target_type.map(str::to_owned)),
        target_id: Set(event.target_id),
        ip: Set(ctx.client_ip.clone()),
        user_agent: Set(ctx
            .user_agent
            .as_deref()
            .map(|ua| ua.chars().take(USER_AGENT_MAX).collect())),
        request_id: Set(ctx.request_id.clone()),
        detail: Set(with_token(event.detail, ctx.actor_token_id)),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// `detail` with `"via_token": jti` added when the actor used a machine token.
fn with_token(detail: Option<serde_json::Value>, token: Option<Uuid>) -> Option<serde_json::Value> {
    let Some(jti) = token else {
        return detail;
    };
    let mut detail = match detail {
        Some(serde_json::Value::Object(map)) => map,
        None => serde_json::Map::new(),
        Some(other) => serde_json::Map::from_iter([("detail".to_owned(), other)]),
    };
    detail.insert("via_token".to_owned(), jti.to_string().into());
    Some(detail.into())
}

/// Records an event that changes nothing else: a failure to record is logged, not fatal.
pub async fn record(db: &impl ConnectionTrait, ctx: &Context, event: Event) {
    let action = event.action;
    if let Err(err) = write(db, ctx, event).await {
        crate::telemetry::metrics::audit_write_failed();
        tracing::error!(error = %err, action, "could not record an audit event");
    }
}

/// How often one kind of repeated event is recorded per client.
const SAMPLE_WINDOW: Duration = Duration::from_secs(60);

/// At most this many sampled events per second per instance (bursts to a minute's worth):
/// an attack from many addresses is still visible, but cannot turn into a write flood.
const SAMPLED_PER_SECOND: u32 = 10;

/// The audit trail of one instance, with the sampling of repeated events.
pub struct AuditLog {
    db: DatabaseConnection,
    recent: crate::cache::TtlCache<String, ()>,
    budget: governor::DefaultDirectRateLimiter,
}

impl AuditLog {
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            recent: crate::cache::TtlCache::new(100_000, SAMPLE_WINDOW),
            budget: governor::RateLimiter::direct(
                governor::Quota::per_second(nonzero(SAMPLED_PER_SECOND))
                    .allow_burst(nonzero(SAMPLED_PER_SECOND * 60)),
            ),
        }
    }

    /// Records `event` unless one with the same `key` (action, client, kind) was recorded in
    /// the last minute by this instance, or the instance's budget for sampled events is spent
    /// (counted in `audit_events_suppressed_total`); the metrics count every event anyway.
    pub async fn sampled(&self, key: String, ctx: &Context, event: Event) {
        let first = self
            .recent
            .upsert(key.as_str(), SAMPLE_WINDOW, || ((), true), |()| false);
        if !first {
            return;
        }
        if self.budget.check().is_err() {
            crate::telemetry::metrics::audit_suppressed(event.action);
            return;
        }
        record(&self.db, ctx, event).await;
    }
}

fn nonzero(n: u32) -> std::num::NonZeroU32 {
    std::num::NonZeroU32::new(n).unwrap_or(std::num::NonZeroU32::MIN)
}

/// A page of events, newest first; `next_cursor` continues after the last one.
pub struct EventPage {
    pub items: Vec<audit_event::Model>,
    pub next_cursor: Option<Uuid>,
}

/// Which events to read.
#[derive(Debug, Default)]
pub struct Filter {
    pub tenant_id: Option<Uuid>,
    pub actor: Option<Uuid>,
    pub action: Option<String>,
    /// Restricts to these actions (the personal page).
    pub actions: Option<&'static [&'static str]>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Events older than this one (ids are UUIDv7: time-ordered).
    pub before: Option<Uuid>,
}

/// Events matching `filter`, newest first, at most `limit`.
pub async fn list(db: &impl ConnectionTrait, filter: Filter, limit: u64) -> Result<EventPage> {
    let mut query = audit_event::Entity::find();
    if let Some(tenant) = filter.tenant_id {
        query = query.filter(audit_event::Column::TenantId.eq(tenant));
    }
    if let Some(actor) = filter.actor {
        query = query.filter(audit_event::Column::ActorUserId.eq(actor));
    }
    if let Some(action) = filter.action {
        query = query.filter(audit_event::Column::Action.eq(action));
    }
    if let Some(actions) = filter.actions {
        query = query.filter(audit_event::Column::Action.is_in(actions.iter().copied()));
    }
    if let Some(since) = filter.since {
        query = query.filter(audit_event::Column::CreatedAt.gte(since));
    }
    if let Some(until) = filter.until {
        query = query.filter(audit_event::Column::CreatedAt.lt(until));
    }
    if let Some(before) = filter.before {
        query = query.filter(audit_event::Column::Id.lt(before));
    }
    let mut items = query
        .order_by_desc(audit_event::Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let more = items.len() as u64 > limit;
    items.truncate(usize::try_from(limit).map_err(|_| Error::invalid("limit", "too large"))?);
    let next_cursor = more.then(|| items.last().map(|e| e.id)).flatten();
    Ok(EventPage { items, next_cursor })
}

/// Deletes events older than `cutoff`; returns how many.
pub async fn purge_before(
    db: &impl ConnectionTrait,
    cutoff: DateTime<Utc>,
) -> std::result::Result<u64, DbErr> {
    Ok(audit_event::Entity::delete_many()
        .filter(audit_event::Column::CreatedAt.lt(cutoff))
        .exec(db)
        .await?
        .rows_affected)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_machine_tokens_jti_joins_the_detail() {
        let jti = Uuid::nil();
        assert_eq!(
            with_token(Some(json!({"a": 1})), None),
            Some(json!({"a": 1}))
        );
        assert_eq!(
            with_token(Some(json!({"a": 1})), Some(jti)),
            Some(json!({"a": 1, "via_token": jti.to_string()}))
        );
        assert_eq!(
            with_token(None, Some(jti)),
            Some(json!({"via_token": jti.to_string()}))
        );
    }
}
