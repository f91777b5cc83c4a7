//! Tenants, and the scope that every tenant-owned query requires.
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::db::entities::tenant;

/// Proof that a tenant was resolved. Fields are private: only this module creates one, so a
/// data-access function that takes a `TenantScope` cannot be handed a made-up tenant id.
#[derive(Debug, Clone)]
pub struct TenantScope {
    id: Uuid,
    slug: String,
}

impl TenantScope {
    pub fn id(&self) -> Uuid {
        self.id
    }

    pub fn slug(&self) -> &str {
        &self.slug
    }
}

impl From<tenant::Model> for TenantScope {
    fn from(t: tenant::Model) -> Self {
        Self {
            id: t.id,
            slug: t.slug,
        }
    }
}

/// Finds a tenant by its slug.
pub async fn find_by_slug(
    db: &impl ConnectionTrait,
    slug: &str,
) -> Result<Option<tenant::Model>, sea_orm::DbErr> {
    tenant::Entity::find()
        .filter(tenant::Column::Slug.eq(slug))
        .one(db)
        .await
}

/// The scope of the tenant with this slug, for public reads.
pub async fn public_scope(
    db: &impl ConnectionTrait,
    slug: &str,
) -> Result<Option<TenantScope>, sea_orm::DbErr> {
    Ok(find_by_slug(db, slug).await?.map(TenantScope::from))
}
