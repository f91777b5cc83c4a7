//! Reading the audit trail: a tenant's events (owners and admins), and the caller's own
//! security events (logins, sessions, API keys), newest first, cursor-paginated.
use chrono::{DateTime, Utc};
use poem_openapi::{Object, OpenApi, param::Query, payload::Json};
use uuid::Uuid;

use super::{ApiTags, Auth, Resource};
use crate::{
    authz::{Permission, TenantAccess, TenantRoute, perms},
    db::entities::audit_event,
    domain::{
        audit::{self, Filter},
        pagination::{DEFAULT_LIMIT, MAX_LIMIT},
    },
    error::{ApiError, ApiResult},
    state::AppState,
};

crate::tenant_routes! {
    GET "/audit-events" => perms::AUDIT_READ;
}

pub struct AuditApi {
    state: AppState,
}

impl Resource for AuditApi {
    fn new(state: AppState) -> Self {
        Self { state }
    }

    const ROUTES: &'static [TenantRoute] = ROUTES;
    const PERMISSIONS: &'static [Permission] = &[perms::AUDIT_READ];
}

/// One recorded event. Never a secret, token or key: ids, fixed words and a small detail.
#[derive(Object)]
struct AuditEvent {
    id: Uuid,
    time: DateTime<Utc>,
    #[oai(skip_serializing_if_is_none)]
    tenant_id: Option<Uuid>,
    /// The user who acted (absent for an anonymous request or the operator's CLI).
    #[oai(skip_serializing_if_is_none)]
    actor_user_id: Option<Uuid>,
    /// The API key the user acted through, if any.
    #[oai(skip_serializing_if_is_none)]
    actor_api_key_id: Option<Uuid>,
    #[oai(skip_serializing_if_is_none)]
    client_ip: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    user_agent: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    request_id: Option<String>,
    /// E.g. `login`, `api_key_created`, `member_role_changed`, `permission_denied`.
    action: String,
    /// `success`, `failure` or `denied`.
    outcome: String,
    #[oai(skip_serializing_if_is_none)]
    target_type: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    target_id: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    detail: Option<serde_json::Value>,
}

impl From<audit_event::Model> for AuditEvent {
    fn from(e: audit_event::Model) -> Self {
        Self {
            id: e.id,
            time: e.created_at,
            tenant_id: e.tenant_id,
            actor_user_id: e.actor_user_id,
            actor_api_key_id: e.actor_api_key_id,
            client_ip: e.ip,
            user_agent: e.user_agent,
            request_id: e.request_id,
            action: e.action,
            outcome: e.outcome,
            target_type: e.target_type,
            target_id: e.target_id,
            detail: e.detail,
        }
    }
}

/// Events, newest first. `next_cursor` is absent on the last page.
#[derive(Object)]
struct AuditPage {
    items: Vec<AuditEvent>,
    /// Pass as `cursor` for the next (older) page.
    #[oai(skip_serializing_if_is_none)]
    next_cursor: Option<String>,
}

/// `cursor` and `limit`, validated: the cursor is the id of the last event of a page.
fn paging(cursor: Option<String>, limit: Option<u64>) -> ApiResult<(Option<Uuid>, u64)> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::validation(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let before = cursor
        .map(|c| Uuid::parse_str(&c))
        .transpose()
        .map_err(|_| ApiError::validation("cursor", "not a cursor this API returned"))?;
    Ok((before, limit))
}

fn page(events: audit::EventPage) -> Json<AuditPage> {
    Json(AuditPage {
        items: events.items.into_iter().map(AuditEvent::from).collect(),
        next_cursor: events.next_cursor.map(|id| id.to_string()),
    })
}

#[OpenApi(tag = "ApiTags::Audit")]
impl AuditApi {
    /// The tenant's audit trail, newest first: logins into it excepted, every security-relevant
    /// change and refusal in it. Filter by `action`, acting user (`actor`) and time.
    #[oai(path = "/api/v1/tenants/:tenant/audit-events", method = "get")]
    #[allow(clippy::too_many_arguments)] // each argument is a documented query parameter
    async fn tenant_events(
        &self,
        tenant: TenantAccess,
        /// Only this action.
        action: Query<Option<String>>,
        /// Only events by this user id.
        actor: Query<Option<Uuid>>,
        /// Only events at or after this time (RFC 3339).
        since: Query<Option<DateTime<Utc>>>,
        /// Only events before this time (RFC 3339).
        until: Query<Option<DateTime<Utc>>>,
        /// The `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Page size, 1 to 100.
        limit: Query<Option<u64>>,
    ) -> ApiResult<Json<AuditPage>> {
        let (before, limit) = paging(cursor.0, limit.0)?;
        let filter = Filter {
            tenant_id: Some(tenant.scope().id()),
            actor: actor.0,
            action: action.0,
            since: since.0,
            until: until.0,
            before,
            ..Filter::default()
        };
        Ok(page(audit::list(&self.state.db, filter, limit).await?))
    }

    /// Your own security events, newest first: logins, logouts, refresh-token reuse and your
    /// API keys' creation, rotation and revocation. In a session only (not with an API key).
    #[oai(path = "/api/v1/me/security-events", method = "get")]
    async fn my_events(
        &self,
        auth: Auth,
        /// The `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Page size, 1 to 100.
        limit: Query<Option<u64>>,
    ) -> ApiResult<Json<AuditPage>> {
        // A key acts in its one tenant; the user's sessions and keys everywhere are not its own.
        auth.principal()
            .require_session("read your security events")?;
        let (before, limit) = paging(cursor.0, limit.0)?;
        let filter = Filter {
            actor: Some(auth.principal().user_id),
            actions: Some(audit::PERSONAL_ACTIONS),
            before,
            ..Filter::default()
        };
        Ok(page(audit::list(&self.state.db, filter, limit).await?))
    }
}
