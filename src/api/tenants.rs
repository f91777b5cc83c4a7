//! `GET|POST /api/v1/tenants`: the caller's tenants, and creating one.
use chrono::{DateTime, Utc};
use poem_openapi::{ApiResponse, Object, OpenApi, param::Query, payload::Json};
use uuid::Uuid;

use super::{ApiTags, Audit, Auth, JsonBody, Page};
use crate::{
    db::entities::{Role, tenant},
    domain::{
        PageRequest, memberships,
        tenants::{self, TenantSlug},
    },
    error::ApiResult,
    state::AppState,
};

pub struct TenantsApi {
    state: AppState,
}

impl super::Resource for TenantsApi {
    fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// A new tenant: only these fields can be set.
#[derive(Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateTenant {
    /// 3–63 of `a-z`, `0-9`, `-`; starts with a letter; some words are reserved.
    slug: String,
    /// Display name, 1–200 characters.
    name: String,
}

#[derive(Object)]
struct Tenant {
    id: Uuid,
    slug: String,
    name: String,
    /// The caller's role in this tenant.
    role: Role,
    created_at: DateTime<Utc>,
}

impl From<(tenant::Model, Role)> for Tenant {
    fn from((t, role): (tenant::Model, Role)) -> Self {
        Self::new(t, role)
    }
}

impl Tenant {
    fn new(t: tenant::Model, role: Role) -> Self {
        Self {
            id: t.id,
            slug: t.slug,
            name: t.name,
            role,
            created_at: t.created_at,
        }
    }
}

#[derive(ApiResponse)]
enum Created {
    /// The tenant was created; the caller is its owner.
    #[oai(status = 201)]
    Tenant(Json<Tenant>),
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Tenants")]
impl TenantsApi {
    /// The caller's tenants (for an API key: the one it is bound to).
    #[oai(path = "/tenants", method = "get")]
    async fn list(
        &self,
        auth: Auth,
        /// Page size, 1 to 100.
        limit: Query<Option<u64>>,
        /// Rows to skip, at most 10000.
        offset: Query<Option<u64>>,
    ) -> ApiResult<Json<Page<Tenant>>> {
        let page = PageRequest::parse(limit.0, offset.0)?;
        let principal = auth.principal();
        let (user, only) = (principal.user_id, principal.bound_tenant());
        let page = memberships::of_user(&self.state.db, user, only, page).await?;
        Ok(Json(Page::from_domain(page)))
    }

    /// Creates a tenant; the caller becomes its `owner`. 409 if the slug is taken.
    #[oai(path = "/tenants", method = "post")]
    async fn create(
        &self,
        auth: Auth,
        body: JsonBody<CreateTenant>,
        audit: Audit,
    ) -> ApiResult<Created> {
        auth.principal().require_session("create tenants")?;
        let body = body.0;
        let slug = TenantSlug::parse(&body.slug)?;
        let authz = &self.state.authz;
        let owner = auth.principal().user_id;
        let max = Some(self.state.settings.tenants.max_owned_per_user);
        let db = &self.state.db;
        let (created, _) =
            tenants::create_with_owner(db, &slug, &body.name, owner, max, &audit.0).await?;
        authz.membership_changed().await;
        Ok(Created::Tenant(Json(Tenant::new(created, Role::Owner))))
    }
}
