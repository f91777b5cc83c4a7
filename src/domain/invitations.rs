//! Invitations: how a person joins a tenant. Adding a member always invites the address, and
//! answers the same whether or not an account has it, so the API reveals nothing about other
//! accounts. The invitee sees the invitation once signed in with that address verified, and
//! accepts or declines it: nobody is enrolled in a tenant without consenting.
use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

use super::{
    Error, OnUnique, Page, PageRequest, Paginate, Result, TenantOwned, TenantScope, audit,
    members::Actor,
    memberships, tenants,
    users::{self, Email},
};
use crate::{
    db::{
        BeginWrite,
        entities::{Role, invitation, tenant, user},
    },
    state::AppState,
};

/// Invites `email` to the tenant with `role`, or refreshes its pending invitation (role and
/// expiry). Granting or replacing `owner` needs owner rights. A member's address is refused:
/// the tenant's admins see its members anyway.
pub async fn invite(
    state: &AppState,
    scope: &TenantScope,
    email: &str,
    role: Role,
    actor: Actor,
    ctx: &audit::Context,
) -> Result<invitation::Model> {
    actor.may_touch(&[role])?;
    let email = Email::parse(email)?;
    let expires_at = Utc::now() + state.settings.auth.invitation_ttl();
    let txn = state.db.begin_write().await?;
    if let Some(user) = users::find_by_email(&txn, &email).await?
        && memberships::role_of(&txn, scope, user.id).await?.is_some()
    {
        return Err(Error::conflict("already a member; change the role instead"));
    }
    let existing = invitation::Entity::find_in(scope)
        .filter(invitation::Column::Email.eq(email.as_str()))
        .one(&txn)
        .await?;
    let invitation = match existing {
        Some(existing) => {
            // Replacing a pending owner invitation needs owner rights; an accepted one is
            // history (its holder has since left, or the check above refused).
            if existing.accepted_at.is_none() {
                actor.may_touch(&[existing.role])?;
            }
            invitation::ActiveModel {
                id: Set(existing.id),
                role: Set(role),
                invited_by: Set(actor.user_id()),
                expires_at: Set(expires_at),
                accepted_at: Set(None),
                ..Default::default()
            }
            .update(&txn)
            .await?
        }
        None => {
            let row = invitation::ActiveModel {
                email: Set(email.as_str().to_owned()),
                role: Set(role),
                invited_by: Set(actor.user_id()),
                expires_at: Set(expires_at),
                accepted_at: Set(None),
                ..Default::default()
            };
            invitation::Entity::insert_in(scope, row, &txn)
                .await
                .on_unique(|| Error::conflict("this address was invited at the same time"))?
        }
    };
    // The address is personal data the tenant's admins see anyway; the trail keeps the role.
    let event = audit::Event::success(audit::action::MEMBER_INVITED)
        .in_tenant(scope.id())
        .target("invitation", invitation.id)
        .detail(serde_json::json!({ "role": role }));
    audit::write(&txn, ctx, event).await?;
    txn.commit().await?;
    Ok(invitation)
}

/// The tenant's pending invitations, oldest first.
pub async fn pending_in(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    page: PageRequest,
) -> Result<Page<invitation::Model>, sea_orm::DbErr> {
    pending(invitation::Entity::find_in(scope))
        .order_by_asc(invitation::Column::CreatedAt)
        .order_by_asc(invitation::Column::Id)
        .page(db, page)
        .await
}

/// Withdraws a pending invitation of the tenant; withdrawing an `owner` one needs owner rights.
pub async fn revoke(state: &AppState, scope: &TenantScope, id: Uuid, actor: Actor) -> Result<()> {
    let txn = state.db.begin_write().await?;
    let found = pending(invitation::Entity::find_id_in(scope, id))
        .one(&txn)
        .await?
        .ok_or(Error::NotFound)?;
    actor.may_touch(&[found.role])?;
    // Still pending as the row is deleted: an acceptance that won a race stays accepted.
    let deleted = pending_delete(invitation::Entity::delete_in(scope), found.id)
        .exec(&txn)
        .await?;
    if deleted.rows_affected == 0 {
        return Err(Error::NotFound);
    }
    txn.commit().await?;
    Ok(())
}

/// Not yet accepted, and not expired: the one definition of a pending invitation.
fn pending<Q: QueryFilter>(query: Q) -> Q {
    query
        .filter(invitation::Column::AcceptedAt.is_null())
        .filter(invitation::Column::ExpiresAt.gt(Utc::now()))
}

fn pending_delete(
    query: sea_orm::DeleteMany<invitation::Entity>,
    id: Uuid,
) -> sea_orm::DeleteMany<invitation::Entity> {
    query
        .filter(invitation::Column::Id.eq(id))
        .filter(invitation::Column::AcceptedAt.is_null())
}

/// The invitations waiting for this user: those to the address the user holds, which is
/// always one a provider verified.
pub async fn waiting_for(
    db: &impl ConnectionTrait,
    user: &user::Model,
) -> Result<Vec<(invitation::Model, tenant::Model)>, sea_orm::DbErr> {
    let Some(email) = &user.email else {
        return Ok(Vec::new());
    };
    let rows = pending(invitation::Entity::find())
        .filter(invitation::Column::Email.eq(email.as_str()))
        .find_also_related(tenant::Entity)
        .order_by_asc(invitation::Column::CreatedAt)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(i, t)| t.map(|t| (i, t)))
        .collect())
}

/// One invitation waiting for this user, or not found (someone else's look the same).
async fn waiting(
    db: &impl ConnectionTrait,
    user: &user::Model,
    id: Uuid,
) -> Result<invitation::Model> {
    let email = user.email.as_deref().ok_or(Error::NotFound)?;
    pending(invitation::Entity::find_by_id(id))
        .filter(invitation::Column::Email.eq(email))
        .one(db)
        .await?
        .ok_or(Error::NotFound)
}

/// Accepts an invitation to the user's verified address: the user becomes a member with the
/// invited role, at once on every instance.
pub async fn accept(
    state: &AppState,
    user: &user::Model,
    id: Uuid,
    ctx: &audit::Context,
) -> Result<(TenantScope, Role)> {
    let txn = state.db.begin_write().await?;
    let found = waiting(&txn, user, id).await?;
    let scope = tenants::resolve_id(&txn, found.tenant_id)
        .await?
        .ok_or(Error::NotFound)?;
    if memberships::role_of(&txn, &scope, user.id).await?.is_some() {
        return Err(Error::conflict("already a member of this tenant"));
    }
    // Spent first, and only if still pending: of an acceptance and a withdrawal (or two
    // acceptances) at once, exactly one wins.
    let spent = pending(invitation::Entity::update_many())
        .col_expr(
            invitation::Column::AcceptedAt,
            sea_orm::sea_query::Expr::value(Some(Utc::now())),
        )
        .filter(invitation::Column::Id.eq(found.id))
        .exec(&txn)
        .await?;
    if spent.rows_affected == 0 {
        return Err(Error::NotFound);
    }
    memberships::set_role(&txn, &scope, user.id, found.role).await?;
    let event = audit::Event::success(audit::action::INVITATION_ACCEPTED)
        .in_tenant(scope.id())
        .target("invitation", found.id)
        .detail(serde_json::json!({ "role": found.role }));
    audit::write(&txn, ctx, event).await?;
    txn.commit().await?;
    state.authz.membership_changed().await;
    Ok((scope, found.role))
}

/// Declines an invitation to the user's verified address: it is gone, and the tenant's admins
/// may invite again.
pub async fn decline(state: &AppState, user: &user::Model, id: Uuid) -> Result<()> {
    let txn = state.db.begin_write().await?;
    let found = waiting(&txn, user, id).await?;
    invitation::Entity::delete_by_id(found.id)
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(())
}
