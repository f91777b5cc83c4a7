//! Members of a tenant. Each change is one call here, used by the API and the admin CLI alike:
//! it runs in one transaction, revokes what must be revoked, and announces the new roles to
//! every instance after the commit. New members come through [`super::invitations`].
//!
//! The last owner can be neither demoted nor removed: the owner rows are locked (on
//! PostgreSQL; SQLite serialises writers) while the count is checked, so two owners demoting
//! each other at once cannot leave the tenant without one.
use chrono::Utc;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::Expr,
};
use uuid::Uuid;

use super::{
    Error, Page, PageRequest, Result, TenantOwned, TenantScope, audit, memberships, users,
};
use crate::{
    authz::{TenantAccess, perms},
    db::{
        BeginWrite,
        entities::{Role, api_key, membership, user},
    },
    state::AppState,
};

pub struct Member {
    pub user: user::Model,
    pub role: Role,
}

/// Who asks for a change: granting, changing or removing an owner needs
/// `members:manage_owners` (owners, and the operator's CLI). Built only from the tenant
/// middleware's decision or as the operator, so no caller can claim owner rights.
#[derive(Debug, Clone, Copy)]
pub struct Actor {
    user_id: Option<Uuid>,
    may_manage_owners: bool,
}

impl From<&TenantAccess> for Actor {
    fn from(access: &TenantAccess) -> Self {
        Self {
            user_id: Some(access.user_id()),
            may_manage_owners: access.can(perms::MEMBERS_MANAGE_OWNERS),
        }
    }
}

impl Actor {
    /// The operator at the command line: may do anything to memberships.
    pub const OPERATOR: Actor = Actor {
        user_id: None,
        may_manage_owners: true,
    };

    pub(super) fn user_id(&self) -> Option<Uuid> {
        self.user_id
    }

    pub(super) fn may_touch(&self, roles: &[Role]) -> Result<()> {
        if roles.contains(&Role::Owner) && !self.may_manage_owners {
            return Err(Error::MissingPermission(
                perms::MEMBERS_MANAGE_OWNERS.to_string(),
            ));
        }
        Ok(())
    }
}

pub async fn list(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    page: PageRequest,
) -> Result<Page<Member>, sea_orm::DbErr> {
    let rows = membership::Entity::find_in(scope)
        .find_also_related(user::Entity)
        .order_by_asc(membership::Column::CreatedAt)
        .order_by_asc(membership::Column::UserId)
        .offset(page.offset)
        .limit(page.limit + 1)
        .all(db)
        .await?;
    let members = rows
        .into_iter()
        .filter_map(|(m, u)| u.map(|user| Member { user, role: m.role }))
        .collect();
    Ok(Page::from_overfetch(members, page))
}

/// Changes a member's role; 404 if not a member. Only owners grant or change `owner`; the
/// last owner cannot be demoted.
pub async fn change_role(
    state: &AppState,
    scope: &TenantScope,
    user_id: Uuid,
    role: Role,
    actor: Actor,
    ctx: &audit::Context,
) -> Result<Member> {
    let txn = state.db.begin_write().await?;
    let current = locked_role(&txn, scope, user_id).await?;
    actor.may_touch(&[current, role])?;
    set_role_guarded(&txn, scope, user_id, current, role).await?;
    let event = audit::Event::success(audit::action::MEMBER_ROLE_CHANGED)
        .in_tenant(scope.id())
        .target("user", user_id)
        .detail(serde_json::json!({ "from": current, "to": role }));
    audit::write(&txn, ctx, event).await?;
    txn.commit().await?;
    state.authz.membership_changed().await;
    let user = users::find(&state.db, user_id)
        .await?
        .ok_or(Error::NotFound)?;
    Ok(Member { user, role })
}

/// Gives the user `role` in the tenant, as a new member or by changing the current role
/// (with the same last-owner guard), inside the caller's transaction: the operator's CLI
/// issues the user's key in the same one. Returns the role it replaced. After the commit,
/// announce it with `authz.membership_changed()`.
pub async fn grant_in(
    txn: &impl ConnectionTrait,
    scope: &TenantScope,
    user_id: Uuid,
    role: Role,
) -> Result<Option<Role>> {
    match locked_role(txn, scope, user_id).await {
        Ok(current) => {
            set_role_guarded(txn, scope, user_id, current, role).await?;
            Ok(Some(current))
        }
        Err(Error::NotFound) => {
            memberships::set_role(txn, scope, user_id, role).await?;
            Ok(None)
        }
        Err(other) => Err(other),
    }
}

/// Removes a member and revokes their API keys for this tenant, on every instance. Only
/// owners remove owners; the last owner cannot be removed.
pub async fn remove(
    state: &AppState,
    scope: &TenantScope,
    user_id: Uuid,
    actor: Actor,
    ctx: &audit::Context,
) -> Result<()> {
    let txn = state.db.begin_write().await?;
    let current = locked_role(&txn, scope, user_id).await?;
    actor.may_touch(&[current])?;
    if current == Role::Owner {
        ensure_not_last_owner(&txn, scope, user_id).await?;
    }
    memberships::remove(&txn, scope, user_id).await?;
    // Their keys for this tenant would be refused anyway (not a member); revoke them for the
    // record, and announce it before the commit: if the store is down, nothing changes.
    let keys = api_key::Entity::find()
        .filter(api_key::Column::TenantId.eq(scope.id()))
        .filter(api_key::Column::UserId.eq(user_id))
        .filter(api_key::Column::RevokedAt.is_null())
        .all(&txn)
        .await?;
    api_key::Entity::update_many()
        .col_expr(api_key::Column::RevokedAt, Expr::value(Some(Utc::now())))
        .filter(api_key::Column::TenantId.eq(scope.id()))
        .filter(api_key::Column::UserId.eq(user_id))
        .filter(api_key::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?;
    let event = audit::Event::success(audit::action::MEMBER_REMOVED)
        .in_tenant(scope.id())
        .target("user", user_id)
        .detail(serde_json::json!({ "role": current, "api_keys_revoked": keys.len() }));
    audit::write(&txn, ctx, event).await?;
    for key in &keys {
        state.keys.announce_revocation(&key.lookup_id).await?;
    }
    txn.commit().await?;
    state.authz.membership_changed().await;
    Ok(())
}

/// The member's current role, or 404. Locks the row (PostgreSQL) for the rest of the
/// transaction, so the permission decided on it still holds when the change is written.
async fn locked_role(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    user_id: Uuid,
) -> Result<Role> {
    membership::Entity::find_id_in(scope, user_id)
        .lock_exclusive()
        .one(db)
        .await?
        .map(|m| m.role)
        .ok_or(Error::NotFound)
}

async fn set_role_guarded(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    user_id: Uuid,
    current: Role,
    role: Role,
) -> Result<()> {
    if current == Role::Owner && role != Role::Owner {
        ensure_not_last_owner(db, scope, user_id).await?;
    }
    memberships::set_role(db, scope, user_id, role).await?;
    Ok(())
}

/// Fails with a conflict if `user_id` is the tenant's last owner. Locks the owner rows meanwhile.
async fn ensure_not_last_owner(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    user_id: Uuid,
) -> Result<()> {
    let owners = membership::Entity::find_in(scope)
        .filter(membership::Column::Role.eq(Role::Owner))
        .lock_exclusive()
        .all(db)
        .await?;
    if owners.len() <= 1 && owners.iter().any(|o| o.user_id == user_id) {
        return Err(Error::conflict(
            "the last owner cannot be removed or demoted; add another owner first",
        ));
    }
    Ok(())
}
