//! Members of a tenant: owners and admins manage them; only owners touch owners.
use chrono::{DateTime, Utc};
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};
use uuid::Uuid;

use super::{ApiTags, JsonBody, Resource};
use crate::{
    authz::{TenantAccess, TenantRoute, perms::*},
    db::entities::{Role, invitation},
    domain::{
        PageRequest,
        members::{self, Actor, Added},
    },
    error::ApiResult,
    state::AppState,
};

crate::tenant_routes! {
    GET    "/members" => MEMBERS_READ;
    POST   "/members" => MEMBERS_MANAGE;
    PATCH  "/members/{user}" => MEMBERS_MANAGE;
    DELETE "/members/{user}" => MEMBERS_MANAGE;
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
    email: Option<String>,
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

#[derive(Object)]
struct Invitation {
    email: String,
    role: Role,
    expires_at: DateTime<Utc>,
}

impl From<invitation::Model> for Invitation {
    fn from(i: invitation::Model) -> Self {
        Self {
            email: i.email,
            role: i.role,
            expires_at: i.expires_at,
        }
    }
}

#[derive(Object)]
struct MemberPage {
    #[oai(flatten)]
    page: super::Page<Member>,
    /// Addresses invited but not yet joined (at most 100).
    invitations: Vec<Invitation>,
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
enum AddResponse {
    /// The address belongs to an account: it is a member now.
    #[oai(status = 201)]
    Added(Json<Member>),
    /// No account has this address yet: it joins at its first login with the address verified.
    #[oai(status = 202)]
    Invited(Json<Invitation>),
}

#[derive(ApiResponse)]
enum Removed {
    #[oai(status = 204)]
    Removed,
}

fn actor(tenant: &TenantAccess) -> Actor {
    Actor::from(tenant)
}

#[OpenApi(prefix_path = "/api/v1/tenants/:tenant", tag = "ApiTags::Members")]
impl MembersApi {
    /// Members and pending invitations.
    #[oai(path = "/members", method = "get")]
    async fn list(
        &self,
        tenant: TenantAccess,
        /// Page size, 1 to 100.
        limit: Query<Option<u64>>,
        /// Rows to skip, at most 10000.
        offset: Query<Option<u64>>,
    ) -> ApiResult<Json<MemberPage>> {
        let page = PageRequest::parse(limit.0, offset.0)?;
        let db = &self.state.db;
        let page = members::list(db, &tenant.scope, page).await?;
        let invitations = members::pending_invitations(db, &tenant.scope).await?;
        Ok(Json(MemberPage {
            page: super::Page::from_domain(page),
            invitations: invitations.into_iter().map(Invitation::from).collect(),
        }))
    }

    /// Adds a member by email, or invites an address that has no account yet. Admins cannot
    /// grant `owner`.
    #[oai(path = "/members", method = "post")]
    async fn add(&self, tenant: TenantAccess, body: JsonBody<AddMember>) -> ApiResult<AddResponse> {
        let AddMember { email, role } = body.0;
        let added = members::add(&self.state, &tenant.scope, &email, role, actor(&tenant)).await?;
        Ok(match added {
            Added::Member(m) => AddResponse::Added(Json(m.into())),
            Added::Invited(i) => AddResponse::Invited(Json(i.into())),
        })
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
    ) -> ApiResult<Json<Member>> {
        let (scope, role) = (&tenant.scope, body.0.role);
        let member = members::change_role(&self.state, scope, user.0, role, actor(&tenant)).await?;
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
    ) -> ApiResult<Removed> {
        members::remove(&self.state, &tenant.scope, user.0, actor(&tenant)).await?;
        Ok(Removed::Removed)
    }
}
