//! `/api/v1/me/invitations`: the invitations waiting for the caller, who accepts or declines
//! each. Only a person in a session answers an invitation: an API key acts in its own tenant.
use chrono::{DateTime, Utc};
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, payload::Json};
use uuid::Uuid;

use super::{ApiTags, Audit, Auth, Resource};
use crate::{
    db::entities::{Role, invitation, tenant, user},
    domain::{invitations, users},
    error::{ApiError, ApiResult},
    state::AppState,
};

pub struct InvitationsApi {
    state: AppState,
}

impl Resource for InvitationsApi {
    fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// An invitation as its invitee sees it.
#[derive(Object)]
struct WaitingInvitation {
    id: Uuid,
    /// The tenant's slug.
    tenant: String,
    tenant_name: String,
    role: Role,
    expires_at: DateTime<Utc>,
}

impl From<(invitation::Model, tenant::Model)> for WaitingInvitation {
    fn from((i, t): (invitation::Model, tenant::Model)) -> Self {
        Self {
            id: i.id,
            tenant: t.slug,
            tenant_name: t.name,
            role: i.role,
            expires_at: i.expires_at,
        }
    }
}

#[derive(Object)]
struct WaitingList {
    items: Vec<WaitingInvitation>,
}

/// The membership an accepted invitation made.
#[derive(Object)]
struct Joined {
    tenant: String,
    role: Role,
}

#[derive(ApiResponse)]
enum Declined {
    /// Declined: the invitation is gone.
    #[oai(status = 204)]
    Declined,
}

impl InvitationsApi {
    /// The user in a session; keys are refused, whoever they belong to.
    async fn person(&self, auth: &Auth) -> ApiResult<user::Model> {
        let principal = auth.principal();
        principal.require_session("answer invitations")?;
        users::find(&self.state.db, principal.user_id)
            .await?
            .ok_or(ApiError::Unauthorized)
    }
}

#[OpenApi(prefix_path = "/api/v1/me/invitations", tag = "ApiTags::Account")]
impl InvitationsApi {
    /// Invitations to the address you signed in with (verified by your identity provider),
    /// pending and unexpired.
    #[oai(path = "/", method = "get")]
    async fn list(&self, auth: Auth) -> ApiResult<Json<WaitingList>> {
        let user = self.person(&auth).await?;
        let waiting = invitations::waiting_for(&self.state.db, &user).await?;
        Ok(Json(WaitingList {
            items: waiting.into_iter().map(WaitingInvitation::from).collect(),
        }))
    }

    /// Accepts an invitation: you become a member of its tenant with its role, at once.
    #[oai(path = "/:id/accept", method = "post")]
    async fn accept(&self, auth: Auth, id: Path<Uuid>, audit: Audit) -> ApiResult<Json<Joined>> {
        let user = self.person(&auth).await?;
        let (scope, role) = invitations::accept(&self.state, &user, id.0, &audit.0).await?;
        Ok(Json(Joined {
            tenant: scope.slug().to_owned(),
            role,
        }))
    }

    /// Declines an invitation.
    #[oai(path = "/:id/decline", method = "post")]
    async fn decline(&self, auth: Auth, id: Path<Uuid>) -> ApiResult<Declined> {
        let user = self.person(&auth).await?;
        invitations::decline(&self.state, &user, id.0).await?;
        Ok(Declined::Declined)
    }
}
