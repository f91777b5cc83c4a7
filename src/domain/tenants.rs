//! Tenants, and the scope that every tenant-owned query requires.
use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, SqlErr,
    TransactionSession, TransactionTrait,
};
use uuid::Uuid;

use super::memberships;
use crate::{
    db::entities::{Role, tenant},
    error::ApiError,
};

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

/// A valid tenant slug: 3–63 characters of `a-z`, `0-9` and single inner hyphens, starting with
/// a letter, and not a reserved word (names the service or its routes use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSlug(String);

const RESERVED_SLUGS: &[&str] = &[
    "admin",
    "api",
    "app",
    "assets",
    "auth",
    "billing",
    "callback",
    "dashboard",
    "docs",
    "healthz",
    "help",
    "internal",
    "login",
    "logout",
    "me",
    "metrics",
    "new",
    "null",
    "openapi",
    "public",
    "readyz",
    "root",
    "settings",
    "signup",
    "static",
    "status",
    "support",
    "system",
    "tenants",
    "undefined",
    "well-known",
    "www",
];

impl TenantSlug {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let invalid = |message: &str| ApiError::validation("slug", message);
        if !(3..=63).contains(&raw.len()) {
            return Err(invalid("must be 3 to 63 characters"));
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(invalid(
                "may contain only lowercase letters, digits and hyphens",
            ));
        }
        if !raw.as_bytes()[0].is_ascii_lowercase() || raw.ends_with('-') || raw.contains("--") {
            return Err(invalid(
                "must start with a letter, and hyphens must sit between letters or digits",
            ));
        }
        if RESERVED_SLUGS.contains(&raw) {
            return Err(invalid("is reserved"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Creates a tenant with `owner` as its first owner, in one transaction.
pub async fn create_with_owner<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    slug: &TenantSlug,
    name: &str,
    owner: Uuid,
) -> Result<tenant::Model, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::validation(
            "name",
            "must be 1 to 200 printable characters",
        ));
    }
    let txn = db.begin().await?;
    let created = tenant::ActiveModel {
        id: Set(Uuid::now_v7()),
        slug: Set(slug.as_str().to_owned()),
        name: Set(name.to_owned()),
        created_at: Set(Utc::now()),
    }
    .insert(&txn)
    .await
    .map_err(|err| match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => {
            ApiError::Conflict("this slug is taken".into())
        }
        _ => err.into(),
    })?;
    memberships::set_role(&txn, created.id, owner, Role::Owner).await?;
    txn.commit().await?;
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::TenantSlug;

    #[test]
    fn slugs_follow_the_rules() {
        for ok in ["acme", "acme-blog", "a1b2", "abc"] {
            assert!(TenantSlug::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "Acme",
            "1acme",
            "acme-",
            "ac--me",
            "acme_blog",
            "api",
            "admin",
            "a b c",
            &"a".repeat(64),
        ] {
            assert!(TenantSlug::parse(bad).is_err(), "{bad}");
        }
    }
}
