//! Members of a tenant: owners and admins manage them; only owners touch owners.
use chrono::{DateTime, Utc};
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};
use uuid::Uuid;

use super::{ApiTags, Audit, JsonBody, Page, Resource};
use crate::{
    authz::{TenantAccess, TenantRoute, perms::*},
    db::entities::{Role, invitation},
    domain::{
        PageRequest, invitations,
        members::{self, Actor},
    },
    error::ApiResult,
    state::AppState,
};

crate::tenant_routes! {
    GET    "/members" => MEMBERS_READ;
    POST   "/members" => MEMBERS_MANAGE;
    PATCH  "/members/{user}" => MEMBERS_MANAGE;
    DELETE "/members/{user}" => MEMBERS_MANAGE;
    GET    "/invitations" => MEMBERS_READ;
    DELETE "/invitations/{id}" => MEMBERS_MANAGE;
}

pub struct MembersApi {
    state: AppState,
}

impl Resource for MembersApi {
    fn new(state: AppState) -> Self {
        Self { state }
    }

    const ROUTES: &'static [TenantRoute] = ROUTES;
}

#[derive(Object)]
struct Member {
    user_id: Uuid,
    #[oai(nullable)]
    email: Option<String>,
    #[oai(nullable)]
    display_name: Option<String>,
    role: Role,
}

impl From<members::Member> for Member {
    fn from(m: members::Member) -> Self {
        Self {
            user_id: m.user.id,
            email: m.user.email,
            display_name: m.user.display_name,
            role: m.role,
        }
    }
}

/// An invitation as the tenant's admins see it.
#[derive(Object)]
struct Invitation {
    id: Uuid,
    email: String,
    role: Role,
    expires_at: DateTime<Utc>,
}

impl From<invitation::Model> for Invitation {
    fn from(i: invitation::Model) -> Self {
        Self {
            id: i.id,
            email: i.email,
            role: i.role,
            expires_at: i.expires_at,
        }
    }
}

#[derive(Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AddMember {
    email: String,
    role: Role,
}

#[derive(Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeRole {
    role: Role,
}

#[derive(ApiResponse)]
enum Invited {
    /// Invited: whoever holds this address, signed in with it verified, may accept. The answer
    /// is the same whether or not an account has the address.
    #[oai(status = 202)]
    Invited(Json<Invitation>),
}

#[derive(ApiResponse)]
enum Removed {
    #[oai(status = 204)]
    Removed,
}

#[OpenApi(prefix_path = "/api/v1/tenants/:tenant", tag = "ApiTags::Members")]
impl MembersApi {
    /// Members of the tenant, oldest first.
    #[oai(path = "/members", method = "get")]
    async fn list(
        &self,
        tenant: TenantAccess,
        /// Page size, 1 to 100.
        limit: Query<Option<u64>>,
        /// Rows to skip, at most 10000.
        offset: Query<Option<u64>>,
    ) -> ApiResult<Json<Page<Member>>> {
        let page = PageRequest::parse(limit.0, offset.0)?;
        let page = members::list(&self.state.db, tenant.scope(), page).await?;
        Ok(Json(Page::from_domain(page)))
    }

    /// Invites an address to the tenant with a role; the person joins by accepting it. Admins
    /// cannot invite an `owner`. Inviting an address again refreshes its role and expiry.
    #[oai(path = "/members", method = "post")]
    async fn add(
        &self,
        tenant: TenantAccess,
        body: JsonBody<AddMember>,
        audit: Audit,
    ) -> ApiResult<Invited> {
        let AddMember { email, role } = body.0;
        let (scope, actor) = (tenant.scope(), Actor::from(&tenant));
        let invited =
            invitations::invite(&self.state, scope, &email, role, actor, &audit.0).await?;
        Ok(Invited::Invited(Json(invited.into())))
    }

    /// Pending invitations of the tenant, oldest first.
    #[oai(path = "/invitations", method = "get")]
    async fn invitations(
        &self,
        tenant: TenantAccess,
        /// Page size, 1 to 100.
        limit: Query<Option<u64>>,
        /// Rows to skip, at most 10000.
        offset: Query<Option<u64>>,
    ) -> ApiResult<Json<Page<Invitation>>> {
        let page = PageRequest::parse(limit.0, offset.0)?;
        let page = invitations::pending_in(&self.state.db, tenant.scope(), page).await?;
        Ok(Json(Page::from_domain(page)))
    }

    /// Withdraws a pending invitation. Only owners withdraw an `owner` invitation.
    #[oai(path = "/invitations/:id", method = "delete")]
    async fn revoke_invitation(&self, tenant: TenantAccess, id: Path<Uuid>) -> ApiResult<Removed> {
        invitations::revoke(&self.state, tenant.scope(), id.0, Actor::from(&tenant)).await?;
        Ok(Removed::Removed)
    }

    /// Changes a member's role; takes effect on the next request. Only owners grant or change
    /// `owner`; the last owner cannot be demoted.
    #[oai(path = "/members/:user", method = "patch")]
    async fn change_role(
        &self,
        tenant: TenantAccess,
        /// The member's user id.
        user: Path<Uuid>,
        body: JsonBody<ChangeRole>,
        audit: Audit,
    ) -> ApiResult<Json<Member>> {
        let (scope, role, actor) = (tenant.scope(), body.0.role, Actor::from(&tenant));
        let member =
            members::change_role(&self.state, scope, user.0, role, actor, &audit.0).await?;
        Ok(Json(member.into()))
    }

    /// Removes a member and revokes their API keys for this tenant. Only owners remove owners;
    /// the last owner cannot be removed.
    #[oai(path = "/members/:user", method = "delete")]
    async fn remove(
        &self,
        tenant: TenantAccess,
        /// The member's user id.
        user: Path<Uuid>,
        audit: Audit,
    ) -> ApiResult<Removed> {
        let actor = Actor::from(&tenant);
        members::remove(&self.state, tenant.scope(), user.0, actor, &audit.0).await?;
        Ok(Removed::Removed)
    }
}
