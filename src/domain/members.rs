//! Members of a tenant and pending invitations. Each change is one call here, used by the API
//! and the admin CLI alike: it runs in one transaction, revokes what must be revoked, and
//! announces the new roles to every instance after the commit.
//!
//! The last owner can be neither demoted nor removed: the owner rows are locked (on
//! PostgreSQL; SQLite serialises writers) while the count is checked, so two owners demoting
//! each other at once cannot leave the tenant without one.
use chrono::{Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, sea_query::Expr,
};
use uuid::Uuid;

use super::{
    Error, OnUnique, Page, PageRequest, Result, TenantOwned, TenantScope, memberships,
    users::{self, Email},
};
use crate::{
    authz::{TenantAccess, perms},
    db::{
        BeginWrite,
        entities::{Role, api_key, invitation, membership, user},
    },
    state::AppState,
};

const INVITATION_LIFETIME: Duration = Duration::days(14);

pub struct Member {
    pub user: user::Model,
    pub role: Role,
}

pub enum Added {
    Member(Member),
    /// No account has this address yet: it joins at its first login with it verified.
    Invited(invitation::Model),
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

    fn may_touch(&self, roles: &[Role]) -> Result<()> {
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

pub async fn pending_invitations(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
) -> Result<Vec<invitation::Model>, sea_orm::DbErr> {
    invitation::Entity::find_in(scope)
        .filter(invitation::Column::AcceptedAt.is_null())
        .filter(invitation::Column::ExpiresAt.gt(Utc::now()))
        .order_by_asc(invitation::Column::CreatedAt)
        .limit(100)
        .all(db)
        .await
}

/// Adds an existing user by email, or invites the address. Replacing a pending `owner`
/// invitation needs owner rights, like granting `owner` does.
pub async fn add(
    state: &AppState,
    scope: &TenantScope,
    email: &str,
    role: Role,
    actor: Actor,
) -> Result<Added> {
    actor.may_touch(&[role])?;
    let email = Email::parse(email)?;
    let txn = state.db.begin_write().await?;
    let added = add_or_invite(&txn, scope, &email, role, actor).await?;
    txn.commit().await?;
    state.authz.membership_changed().await;
    Ok(added)
}

async fn add_or_invite(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    email: &Email,
    role: Role,
    actor: Actor,
) -> Result<Added> {
    let already = || Error::conflict("already a member or invited");
    if let Some(user) = users::find_by_email(db, email).await? {
        if memberships::role_of(db, scope, user.id).await?.is_some() {
            return Err(Error::conflict("already a member; change the role instead"));
        }
        memberships::set_role(db, scope, user.id, role)
            .await
            .on_unique(already)?;
        return Ok(Added::Member(Member { user, role }));
    }
    let existing = invitation::Entity::find_in(scope)
        .filter(invitation::Column::Email.eq(email.as_str()))
        .one(db)
        .await?;
    if let Some(existing) = &existing {
        actor.may_touch(&[existing.role])?;
    }
    let expires_at = Utc::now() + INVITATION_LIFETIME;
    let invitation = match existing {
        // Re-inviting refreshes the role and the expiry.
        Some(existing) => {
            invitation::ActiveModel {
                id: Set(existing.id),
                role: Set(role),
                invited_by: Set(actor.user_id),
                expires_at: Set(expires_at),
                accepted_at: Set(None),
                ..Default::default()
            }
            .update(db)
            .await?
        }
        None => {
            let row = invitation::ActiveModel {
                email: Set(email.as_str().to_owned()),
                role: Set(role),
                invited_by: Set(actor.user_id),
                expires_at: Set(expires_at),
                accepted_at: Set(None),
                ..Default::default()
            };
            invitation::Entity::insert_in(scope, row, db)
                .await
                .on_unique(already)?
        }
    };
    Ok(Added::Invited(invitation))
}

/// Changes a member's role; 404 if not a member. Only owners grant or change `owner`; the
/// last owner cannot be demoted.
pub async fn change_role(
    state: &AppState,
    scope: &TenantScope,
    user_id: Uuid,
    role: Role,
    actor: Actor,
) -> Result<Member> {
    let txn = state.db.begin_write().await?;
    let current = locked_role(&txn, scope, user_id).await?;
    actor.may_touch(&[current, role])?;
    set_role_guarded(&txn, scope, user_id, current, role).await?;
    txn.commit().await?;
    state.authz.membership_changed().await;
    let user = users::find(&state.db, user_id)
        .await?
        .ok_or(Error::NotFound)?;
    Ok(Member { user, role })
}

/// Gives the user `role` in the tenant, as a new member or by changing the current role
/// (with the same last-owner guard), inside the caller's transaction: the operator's CLI
/// issues the user's key in the same one. After the commit, announce it with
/// `authz.membership_changed()`.
pub async fn grant_in(
    txn: &impl ConnectionTrait,
    scope: &TenantScope,
    user_id: Uuid,
    role: Role,
) -> Result<()> {
    match locked_role(txn, scope, user_id).await {
        Ok(current) => set_role_guarded(txn, scope, user_id, current, role).await,
        Err(Error::NotFound) => Ok(memberships::set_role(txn, scope, user_id, role).await?),
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
