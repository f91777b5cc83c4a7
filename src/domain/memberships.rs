//! Who belongs to which tenant, with which role. Every change here also marks the policy
//! snapshots stale (inside the caller's transaction), so no change can forget it.
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use super::{TenantOwned, TenantScope};
use crate::db::entities::{Role, authz_state, membership, tenant};

/// The user's role in the tenant, if a member.
pub async fn role_of(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    user_id: Uuid,
) -> Result<Option<Role>, sea_orm::DbErr> {
    Ok(membership::Entity::find_id_in(scope, user_id)
        .one(db)
        .await?
        .map(|m| m.role))
}

/// The user's tenants with their role, by slug.
pub async fn of_user(
    db: &impl ConnectionTrait,
    user_id: Uuid,
) -> Result<Vec<(tenant::Model, Role)>, sea_orm::DbErr> {
    let rows = membership::Entity::find()
        .filter(membership::Column::UserId.eq(user_id))
        .find_also_related(tenant::Entity)
        .order_by_asc(membership::Column::CreatedAt)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(m, t)| t.map(|t| (t, m.role)))
        .collect())
}

/// Marks every policy snapshot stale.
async fn bump_version(db: &impl ConnectionTrait) -> Result<(), sea_orm::DbErr> {
    authz_state::Entity::update_many()
        .col_expr(
            authz_state::Column::Version,
            Expr::col(authz_state::Column::Version).add(1),
        )
        .filter(authz_state::Column::Id.eq(1))
        .exec(db)
        .await?;
    Ok(())
}

/// The current version of all role assignments.
pub async fn version(db: &impl ConnectionTrait) -> Result<i64, sea_orm::DbErr> {
    Ok(authz_state::Entity::find_by_id(1)
        .one(db)
        .await?
        .map(|s| s.version)
        .unwrap_or(0))
}

/// Removes the membership.
pub async fn remove(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    user_id: Uuid,
) -> Result<(), sea_orm::DbErr> {
    membership::Entity::delete_in(scope)
        .filter(membership::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    bump_version(db).await
}

/// Makes the user a member with `role`, or changes the role of an existing member.
pub async fn set_role(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    user_id: Uuid,
    role: Role,
) -> Result<(), sea_orm::DbErr> {
    bump_version(db).await?;
    match membership::Entity::find_id_in(scope, user_id)
        .one(db)
        .await?
    {
        Some(existing) if existing.role == role => {}
        Some(existing) => {
            let mut row: membership::ActiveModel = existing.into();
            row.role = Set(role);
            row.updated_at = sea_orm::ActiveValue::NotSet;
            row.update(db).await?;
        }
        None => {
            membership::Entity::insert_in(
                scope,
                membership::ActiveModel {
                    user_id: Set(user_id),
                    role: Set(role),
                    ..Default::default()
                },
                db,
            )
            .await?;
        }
    }
    Ok(())
}
