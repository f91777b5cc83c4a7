//! `GET /api/v1/me`: who the caller is and how it authenticated.
use chrono::{DateTime, Utc};
use poem_openapi::{Object, OpenApi, payload::Json};
use uuid::Uuid;

use super::{ApiTags, Auth};
use crate::{
    auth::{Credential, permissions::Permission},
    db::entities::Role,
    domain::{PageRequest, memberships, pagination::MAX_LIMIT, users},
    error::{ApiError, ApiResult},
    state::AppState,
};

pub struct MeApi {
    state: AppState,
}

impl super::Resource for MeApi {
    fn new(state: AppState) -> Self {
        Self { state }
    }
}

#[derive(Object)]
struct Me {
    user_id: Uuid,
    #[oai(nullable)]
    email: Option<String>,
    #[oai(nullable)]
    display_name: Option<String>,
    authentication: Authentication,
    /// The tenants this credential can reach, with the user's role in each (the first 100;
    /// `GET /api/v1/tenants` pages through all).
    memberships: Vec<Membership>,
}

#[derive(Object)]
struct Authentication {
    /// `api_key` or `session`.
    method: String,
    /// For a key: its id, non-secret prefix, tenant and permissions.
    #[oai(nullable)]
    api_key_id: Option<Uuid>,
    #[oai(nullable)]
    api_key_prefix: Option<String>,
    #[oai(nullable)]
    tenant: Option<String>,
    #[oai(nullable)]
    permissions: Option<Vec<Permission>>,
    /// Set when a key's machine token (`POST /oauth/token`) was presented rather than the key.
    #[oai(nullable)]
    client_token: Option<MachineToken>,
}

/// The machine token a request came with.
#[derive(Object)]
struct MachineToken {
    /// Its `jti`, as the audit trail names it (`detail.via_token`).
    id: Uuid,
    expires_at: DateTime<Utc>,
    /// Whether it is bound to a DPoP key (RFC 9449).
    dpop_bound: bool,
}

#[derive(Object)]
pub struct Membership {
    pub tenant: String,
    pub tenant_name: String,
    pub role: Role,
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Account")]
impl MeApi {
    /// The calling user, how it authenticated, and its memberships. A key sees only the
    /// membership of the tenant it is bound to.
    #[oai(path = "/me", method = "get")]
    async fn me(&self, auth: Auth) -> ApiResult<Json<Me>> {
        let principal = auth.principal();
        let db = &self.state.db;
        let user = users::find(db, principal.user_id)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        // The first page of memberships; `GET /api/v1/tenants` pages through all of them.
        let first = PageRequest::parse(Some(MAX_LIMIT), None)?;
        let memberships: Vec<Membership> =
            memberships::of_user(db, user.id, principal.bound_tenant(), first)
                .await?
                .items
                .into_iter()
                .map(|(tenant, role)| Membership {
                    tenant: tenant.slug,
                    tenant_name: tenant.name,
                    role,
                })
                .collect();
        let authentication = match &principal.credential {
            Credential::ApiKey(grant) => Authentication {
                method: "api_key".into(),
                api_key_id: Some(grant.key_id),
                api_key_prefix: Some(crate::auth::api_keys::token::display_prefix(
                    &grant.lookup_id,
                )),
                tenant: memberships.first().map(|m| m.tenant.clone()),
                permissions: Some(grant.permissions.to_vec()),
                client_token: grant.via_token.as_ref().map(|token| MachineToken {
                    id: token.jti,
                    expires_at: DateTime::from_timestamp(token.exp, 0).unwrap_or_default(),
                    dpop_bound: token.jkt.is_some(),
                }),
            },
            Credential::Session(_) => Authentication {
                method: "session".into(),
                api_key_id: None,
                api_key_prefix: None,
                tenant: None,
                permissions: None,
                client_token: None,
            },
        };
        Ok(Json(Me {
            user_id: user.id,
            email: user.email,
            display_name: user.display_name,
            authentication,
            memberships,
        }))
    }
}
