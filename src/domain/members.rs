//! Members of a tenant and pending invitations. Every query here is scoped by [`TenantScope`].
//!
//! The last owner can be neither demoted nor removed: the owner rows are locked (on
//! PostgreSQL; SQLite serialises writers) while the count is checked, so two owners demoting
//! each other at once cannot leave the tenant without one.
use chrono::{Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use uuid::Uuid;

use super::{Page, PageRequest, TenantScope, memberships, users::Email};
use crate::{
    db::entities::{Role, api_key, invitation, membership, user},
    error::ApiError,
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

pub async fn list(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    page: PageRequest,
) -> Result<Page<Member>, sea_orm::DbErr> {
    let rows = membership::Entity::find()
        .filter(membership::Column::TenantId.eq(scope.id()))
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
    invitation::Entity::find()
        .filter(invitation::Column::TenantId.eq(scope.id()))
        .filter(invitation::Column::AcceptedAt.is_null())
        .filter(invitation::Column::ExpiresAt.gt(Utc::now()))
        .order_by_asc(invitation::Column::CreatedAt)
        .limit(100)
        .all(db)
        .await
}

/// Adds an existing user by email, or invites the address. Replacing a pending `owner`
/// invitation needs `may_manage_owners`, like granting `owner` does.
pub async fn add_or_invite(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    email: &Email,
    role: Role,
    invited_by: Uuid,
    may_manage_owners: bool,
) -> Result<Added, ApiError> {
    if let Some(user) = super::users::find_by_email(db, email).await? {
        if memberships::role_of(db, scope.id(), user.id)
            .await?
            .is_some()
        {
            return Err(ApiError::Conflict(
                "already a member; change the role instead".into(),
            ));
        }
        memberships::set_role(db, scope.id(), user.id, role)
            .await
            .map_err(duplicate)?;
        return Ok(Added::Member(Member { user, role }));
    }
    let now = Utc::now();
    let existing = invitation::Entity::find()
        .filter(invitation::Column::TenantId.eq(scope.id()))
        .filter(invitation::Column::Email.eq(email.as_str()))
        .one(db)
        .await?;
    if existing.as_ref().is_some_and(|i| i.role == Role::Owner) && !may_manage_owners {
        return Err(ApiError::missing_permission(
            crate::authz::perms::MEMBERS_MANAGE_OWNERS,
        ));
    }
    let invitation = match existing {
        // Re-inviting refreshes the role and the expiry.
        Some(existing) => {
            invitation::ActiveModel {
                id: Set(existing.id),
                role: Set(role),
                invited_by: Set(Some(invited_by)),
                expires_at: Set(now + INVITATION_LIFETIME),
                accepted_at: Set(None),
                ..Default::default()
            }
            .update(db)
            .await?
        }
        None => invitation::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(scope.id()),
            email: Set(email.as_str().to_owned()),
            role: Set(role),
            invited_by: Set(Some(invited_by)),
            created_at: Set(now),
            expires_at: Set(now + INVITATION_LIFETIME),
            accepted_at: Set(None),
        }
        .insert(db)
        .await
        .map_err(duplicate)?,
    };
    Ok(Added::Invited(invitation))
}

/// The member's current role, or 404.
/// The member's current role, or 404. Locks the row (PostgreSQL) for the rest of the
/// transaction, so the permission decided on it still holds when the change is written.
pub async fn role_of(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    user_id: Uuid,
) -> Result<Role, ApiError> {
    membership::Entity::find_by_id((scope.id(), user_id))
        .lock_exclusive()
        .one(db)
        .await?
        .map(|m| m.role)
        .ok_or(ApiError::NotFound)
}

fn duplicate(err: sea_orm::DbErr) -> ApiError {
    match err.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
            ApiError::Conflict("already a member or invited".into())
        }
        _ => err.into(),
    }
}

/// Fails with 409 if `user_id` is the tenant's last owner. Locks the owner rows meanwhile.
async fn ensure_not_last_owner(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    user_id: Uuid,
) -> Result<(), ApiError> {
    let owners = membership::Entity::find()
        .filter(membership::Column::TenantId.eq(scope.id()))
        .filter(membership::Column::Role.eq(Role::Owner))
        .lock_exclusive()
        .all(db)
        .await?;
    if owners.len() <= 1 && owners.iter().any(|o| o.user_id == user_id) {
        return Err(ApiError::Conflict(
            "the last owner cannot be removed or demoted; add another owner first".into(),
        ));
    }
    Ok(())
}

/// Changes a member's role. Run inside a transaction.
/// Changes a member's role from `current` (read with [`role_of`] in the same transaction).
pub async fn change_role(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    user_id: Uuid,
    current: Role,
    role: Role,
) -> Result<(), ApiError> {
    if current == Role::Owner && role != Role::Owner {
        ensure_not_last_owner(db, scope, user_id).await?;
    }
    memberships::set_role(db, scope.id(), user_id, role).await?;
    Ok(())
}

/// Removes a member (whose role is `current`, read with [`role_of`] in the same transaction)
/// and revokes their API keys for this tenant.
pub async fn remove(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    user_id: Uuid,
    current: Role,
) -> Result<Vec<String>, ApiError> {
    if current == Role::Owner {
        ensure_not_last_owner(db, scope, user_id).await?;
    }
    memberships::remove(db, scope.id(), user_id).await?;
    // Their keys for this tenant would be refused anyway (not a member); revoke them for the
    // record, and return their lookup ids so the caller can announce the revocation.
    let keys = api_key::Entity::find()
        .filter(api_key::Column::TenantId.eq(scope.id()))
        .filter(api_key::Column::UserId.eq(user_id))
        .filter(api_key::Column::RevokedAt.is_null())
        .all(db)
        .await?;
    api_key::Entity::update_many()
        .col_expr(
            api_key::Column::RevokedAt,
            sea_orm::sea_query::Expr::value(Some(Utc::now())),
        )
        .filter(api_key::Column::TenantId.eq(scope.id()))
        .filter(api_key::Column::UserId.eq(user_id))
        .filter(api_key::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(keys.into_iter().map(|k| k.lookup_id).collect())
}
