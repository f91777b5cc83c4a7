//! Members of a tenant: owners and admins manage them; only owners touch owners.
use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};
use sea_orm::TransactionTrait;
use uuid::Uuid;

use super::{ApiTags, json::JsonBody, security::Auth};
use crate::{
    app::AppState,
    authz::{TenantAccess, perms},
    db::entities::Role,
    domain::{
        PageRequest,
        members::{self, Added},
        users::{self, Email},
    },
    error::{ApiError, ApiResult},
};

pub struct MembersApi {
    state: AppState,
}

impl MembersApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
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

#[derive(Object)]
struct MemberPage {
    items: Vec<Member>,
    /// Addresses invited but not yet joined (at most 100).
    invitations: Vec<Invitation>,
    limit: u64,
    offset: u64,
    next_offset: Option<u64>,
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

/// Granting, changing or removing an owner needs `members:manage_owners` (owners only).
fn require_owner_rights(access: &TenantAccess, roles: &[Role]) -> ApiResult<()> {
    if roles.contains(&Role::Owner) {
        access.require(perms::MEMBERS_MANAGE_OWNERS)?;
    }
    Ok(())
}

#[OpenApi(tag = "ApiTags::Members")]
impl MembersApi {
    /// Members and pending invitations.
    #[oai(path = "/api/v1/tenants/:tenant/members", method = "get")]
    async fn list(
        &self,
        _auth: Auth,
        access: Data<&TenantAccess>,
        /// The tenant's slug.
        #[allow(unused_variables)]
        tenant: Path<String>,
        /// Page size, 1 to 100.
        limit: Query<Option<u64>>,
        /// Rows to skip, at most 10000.
        offset: Query<Option<u64>>,
    ) -> ApiResult<Json<MemberPage>> {
        let page = PageRequest::parse(limit.0, offset.0)?;
        let db = &self.state.db;
        let page = members::list(db, &access.scope, page)
            .await?
            .map(Member::from);
        let invitations = members::pending_invitations(db, &access.scope)
            .await?
            .into_iter()
            .map(|i| Invitation {
                email: i.email,
                role: i.role,
                expires_at: i.expires_at,
            })
            .collect();
        Ok(Json(MemberPage {
            items: page.items,
            invitations,
            limit: page.limit,
            offset: page.offset,
            next_offset: page.next_offset,
        }))
    }

    /// Adds a member by email, or invites an address that has no account yet. Admins cannot
    /// grant `owner`.
    #[oai(path = "/api/v1/tenants/:tenant/members", method = "post")]
    async fn add(
        &self,
        _auth: Auth,
        access: Data<&TenantAccess>,
        #[allow(unused_variables)] tenant: Path<String>,
        body: JsonBody<AddMember>,
    ) -> ApiResult<AddResponse> {
        let body = body.0;
        require_owner_rights(&access, &[body.role])?;
        let email = Email::parse(&body.email)?;
        let authz = &self.state.authz;
        let txn = self.state.db.begin().await?;
        let may_manage_owners = access.can(perms::MEMBERS_MANAGE_OWNERS);
        let added = members::add_or_invite(
            &txn,
            &access.scope,
            &email,
            body.role,
            access.user_id(),
            may_manage_owners,
        )
        .await?;
        txn.commit().await?;
        authz.membership_changed().await;
        Ok(match added {
            Added::Member(m) => AddResponse::Added(Json(m.into())),
            Added::Invited(i) => AddResponse::Invited(Json(Invitation {
                email: i.email,
                role: i.role,
                expires_at: i.expires_at,
            })),
        })
    }

    /// Changes a member's role; takes effect on the next request. Only owners grant or change
    /// `owner`; the last owner cannot be demoted.
    #[oai(path = "/api/v1/tenants/:tenant/members/:user", method = "patch")]
    async fn change_role(
        &self,
        _auth: Auth,
        access: Data<&TenantAccess>,
        #[allow(unused_variables)] tenant: Path<String>,
        /// The member's user id.
        user: Path<Uuid>,
        body: JsonBody<ChangeRole>,
    ) -> ApiResult<Json<Member>> {
        let db = &self.state.db;
        let authz = &self.state.authz;
        let txn = db.begin().await?;
        let current = members::role_of(&txn, &access.scope, user.0).await?;
        require_owner_rights(&access, &[current, body.0.role])?;
        members::change_role(&txn, &access.scope, user.0, current, body.0.role).await?;
        txn.commit().await?;
        authz.membership_changed().await;
        let user = users::find(db, user.0).await?.ok_or(ApiError::NotFound)?;
        Ok(Json(Member {
            user_id: user.id,
            email: user.email,
            display_name: user.display_name,
            role: body.0.role,
        }))
    }

    /// Removes a member and revokes their API keys for this tenant. Only owners remove owners;
    /// the last owner cannot be removed.
    #[oai(path = "/api/v1/tenants/:tenant/members/:user", method = "delete")]
    async fn remove(
        &self,
        _auth: Auth,
        access: Data<&TenantAccess>,
        #[allow(unused_variables)] tenant: Path<String>,
        /// The member's user id.
        user: Path<Uuid>,
    ) -> ApiResult<Removed> {
        let db = &self.state.db;
        let authz = &self.state.authz;
        let txn = db.begin().await?;
        let current = members::role_of(&txn, &access.scope, user.0).await?;
        require_owner_rights(&access, &[current])?;
        let revoked = members::remove(&txn, &access.scope, user.0, current).await?;
        for lookup_id in &revoked {
            self.state.keys.announce_revocation(lookup_id).await?;
        }
        txn.commit().await?;
        authz.membership_changed().await;
        Ok(Removed::Removed)
    }
}
