//! Who belongs to which tenant, with which role. Every change here also marks the policy
//! snapshots stale (inside the caller's transaction), so no change can forget it.
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use super::{Page, PageRequest, TenantOwned, TenantScope};
use crate::db::entities::{Role, authz_change, authz_state, membership, tenant};

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

/// The user's tenants with their role, oldest membership first, one page; only `tenant` when
/// given (a key sees the tenant it is bound to).
pub async fn of_user(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    tenant: Option<Uuid>,
    page: PageRequest,
) -> Result<Page<(tenant::Model, Role)>, sea_orm::DbErr> {
    let mut query = membership::Entity::find().filter(membership::Column::UserId.eq(user_id));
    if let Some(tenant) = tenant {
        query = query.filter(membership::Column::TenantId.eq(tenant));
    }
    let rows = query
        .find_also_related(tenant::Entity)
        .order_by_asc(membership::Column::CreatedAt)
        .order_by_asc(membership::Column::TenantId)
        .offset(page.offset)
        .limit(page.limit + 1)
        .all(db)
        .await?;
    let rows = rows
        .into_iter()
        .filter_map(|(m, t)| t.map(|t| (t, m.role)))
        .collect();
    Ok(Page::from_overfetch(rows, page))
}

/// Marks every policy snapshot stale, and records that `tenant` is what changed (instances
/// then reload that tenant only). The update locks the version row until the transaction
/// ends, so versions commit in order.
async fn bump_version(db: &impl ConnectionTrait, tenant: Uuid) -> Result<(), sea_orm::DbErr> {
    authz_state::Entity::update_many()
        .col_expr(
            authz_state::Column::Version,
            Expr::col(authz_state::Column::Version).add(1),
        )
        .filter(authz_state::Column::Id.eq(1))
        .exec(db)
        .await?;
    authz_change::ActiveModel {
        version: Set(version(db).await?),
        tenant_id: Set(tenant),
        created_at: Set(chrono::Utc::now()),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// The tenants changed after version `after` up to `upto`, or `None` when the change log no
/// longer covers all of them (pruned): the caller then reloads everything.
pub async fn changed_tenants(
    db: &impl ConnectionTrait,
    after: i64,
    upto: i64,
) -> Result<Option<Vec<Uuid>>, sea_orm::DbErr> {
    let changes = authz_change::Entity::find()
        .filter(authz_change::Column::Version.gt(after))
        .filter(authz_change::Column::Version.lte(upto))
        .all(db)
        .await?;
    let expected = usize::try_from(upto - after).unwrap_or(usize::MAX);
    if changes.len() != expected {
        return Ok(None);
    }
    let mut tenants: Vec<Uuid> = changes.into_iter().map(|c| c.tenant_id).collect();
    tenants.sort_unstable();
    tenants.dedup();
    Ok(Some(tenants))
}

/// Every member of `tenant` with their role.
pub async fn roles_in(
    db: &impl ConnectionTrait,
    tenant: Uuid,
) -> Result<Vec<membership::Model>, sea_orm::DbErr> {
    membership::Entity::find()
        .filter(membership::Column::TenantId.eq(tenant))
        .all(db)
        .await
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
    bump_version(db, scope.id()).await
}

/// Makes the user a member with `role`, or changes the role of an existing member.
pub async fn set_role(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    user_id: Uuid,
    role: Role,
) -> Result<(), sea_orm::DbErr> {
    bump_version(db, scope.id()).await?;
    match membership::Entity::find_id_in(scope, user_id)
        .one(db)
        .await?
    {
        Some(existing) if existing.role == role => {}
        Some(existing) => {
            let mut row: membership::ActiveModel = existing.into();
            row.role = Set(role);
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
