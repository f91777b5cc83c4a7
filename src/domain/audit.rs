//! Security events, stored for the record (logins, refresh token reuse, ...).
use sea_orm::{ActiveModelTrait, ConnectionTrait, Set};
use uuid::Uuid;

use crate::db::entities::audit_event;

pub struct Event<'a> {
    pub tenant_id: Option<Uuid>,
    pub actor_user_id: Option<Uuid>,
    pub action: &'a str,
    pub outcome: &'a str,
    pub target_type: Option<&'a str>,
    pub target_id: Option<String>,
}

/// Records an event; a failure to record is logged, never fatal to the request.
pub async fn record(db: &impl ConnectionTrait, event: Event<'_>) {
    let row = audit_event::ActiveModel {
        tenant_id: Set(event.tenant_id),
        actor_user_id: Set(event.actor_user_id),
        actor_api_key_id: Set(None),
        action: Set(event.action.to_owned()),
        outcome: Set(event.outcome.to_owned()),
        target_type: Set(event.target_type.map(str::to_owned)),
        target_id: Set(event.target_id),
        ip: Set(None),
        request_id: Set(None),
        detail: Set(None),
        ..Default::default()
    };
    if let Err(err) = row.insert(db).await {
        tracing::error!(error = %err, action = event.action, "could not record an audit event");
    }
}
