//! The audit context of a request: who (the principal the middleware resolved, if any), from
//! where (the client address, else the peer), with what (the user agent), and which request.
use poem::{Request, http::header};

use super::ClientIp;
use crate::{auth::Principal, domain::audit, telemetry::RequestId};

pub fn audit_context(req: &Request) -> audit::Context {
    let principal = req.extensions().get::<Principal>();
    let client = ClientIp::of(req);
    audit::Context {
        actor_user_id: principal.map(|p| p.user_id),
        actor_api_key_id: principal.and_then(|p| p.api_key()).map(|k| k.key_id),
        actor_token_id: principal
            .and_then(|p| p.api_key())
            .and_then(|k| k.via_token.as_ref())
            .map(|token| token.jti),
        client_ip: client.map(|ip| ip.to_canonical().to_string()),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(audit::USER_AGENT_MAX).collect()),
        request_id: req.extensions().get::<RequestId>().map(|id| id.0.clone()),
    }
}
