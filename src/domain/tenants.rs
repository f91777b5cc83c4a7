//! Tenants, and their resolution: the only way to a [`TenantScope`].
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Set,
    TransactionSession, TransactionTrait,
};
use uuid::Uuid;

use super::{Error, OnUnique, Result, TenantScope, audit, memberships};
use crate::db::{
    BeginWrite,
    entities::{Role, membership, tenant},
};

fn scope_of(t: tenant::Model) -> TenantScope {
    TenantScope::resolved(t.id, t.slug)
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

/// Resolves the tenant with this slug into its scope. A string no slug could be (from a URL:
/// any bytes, a NUL) is no tenant, without asking the database.
pub async fn resolve(db: &impl ConnectionTrait, slug: &str) -> Result<Option<TenantScope>> {
    if !super::fields::could_be_slug(slug) {
        return Ok(None);
    }
    Ok(find_by_slug(db, slug).await?.map(scope_of))
}

/// Tenants by slug, for half a minute: a slug never changes tenant and tenants are not
/// deleted, so this spares every tenant and public request a query. Shared by the tenant
/// middleware and the public pages (one per process, in [`crate::state::AppState`]).
#[derive(Clone)]
pub struct SlugCache(std::sync::Arc<crate::cache::TtlCache<String, TenantScope>>);

impl Default for SlugCache {
    fn default() -> Self {
        Self(std::sync::Arc::new(crate::cache::TtlCache::new(
            10_000,
            std::time::Duration::from_secs(30),
        )))
    }
}

impl SlugCache {
    /// [`resolve`], remembered. Unknown slugs are not remembered (a tenant created meanwhile
    /// is found at once, and a scan of made-up slugs cannot fill the cache).
    pub async fn resolve(
        &self,
        db: &impl ConnectionTrait,
        slug: &str,
    ) -> Result<Option<TenantScope>> {
        if let Some(hit) = self.0.get(slug) {
            return Ok(Some(hit));
        }
        let found = resolve(db, slug).await?;
        if let Some(scope) = &found {
            self.0.insert(slug.to_owned(), scope.clone());
        }
        Ok(found)
    }
}

/// Resolves a tenant by id (an invitation or key names its tenant by id).
pub async fn resolve_id(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<TenantScope>> {
    Ok(tenant::Entity::find_by_id(id).one(db).await?.map(scope_of))
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
    pub fn parse(raw: &str) -> Result<Self> {
        let invalid = |message: &str| Error::invalid("slug", message);
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

/// Creates a tenant with `owner` as its first owner, in one transaction; refused when the
/// owner already owns `max_owned` tenants (when given).
pub async fn create_with_owner<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    slug: &TenantSlug,
    name: &str,
    owner: Uuid,
    max_owned: Option<u32>,
    ctx: &audit::Context,
) -> Result<(tenant::Model, TenantScope)> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "name",
            "must be 1 to 200 printable characters",
        ));
    }
    let txn = db.begin_write().await?;
    if let Some(max) = max_owned {
        let owned = membership::Entity::find()
            .filter(membership::Column::UserId.eq(owner))
            .filter(membership::Column::Role.eq(Role::Owner))
            .count(&txn)
            .await?;
        if owned >= u64::from(max) {
            return Err(Error::Limit(format!(
                "you own {owned} tenants, the most one user may create"
            )));
        }
    }
    let created = tenant::ActiveModel {
        slug: Set(slug.as_str().to_owned()),
        name: Set(name.to_owned()),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .on_unique(|| Error::conflict("this slug is taken"))?;
    let scope = scope_of(created.clone());
    memberships::set_role(&txn, &scope, owner, Role::Owner).await?;
    let event = audit::Event::success(audit::action::TENANT_CREATED)
        .in_tenant(scope.id())
        .target("tenant", scope.id())
        .detail(serde_json::json!({ "slug": slug.as_str(), "owner": owner }));
    audit::write(&txn, ctx, event).await?;
    txn.commit().await?;
    Ok((created, scope))
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
