//! Enforcement on every `/api/v1/tenants/{tenant}/...` route, before any handler runs:
//! resolve the tenant, check membership (404 for non-members: no existence oracle), then the
//! route's permission (403 naming it). Routes without a permission are refused.
use std::sync::Arc;

use poem::{Endpoint, Middleware, Request, Result};
use sea_orm::DatabaseConnection;

use super::{Authorizer, AuthzError, RouteTable, TenantAccess, perms, routes};
use crate::{
    auth::Principal,
    domain::{
        audit::{self, AuditLog},
        tenants::SlugCache,
    },
    error::ApiError,
    http::audit_context,
    state::AppState,
    telemetry::metrics,
};

pub struct TenantAuthz {
    authorizer: Arc<Authorizer>,
    db: DatabaseConnection,
    routes: Arc<RouteTable>,
    tenants: SlugCache,
    audit: Arc<AuditLog>,
}

impl TenantAuthz {
    pub fn new(state: &AppState, routes: RouteTable) -> Self {
        Self {
            authorizer: state.authz.clone(),
            db: state.db.clone(),
            audit: state.audit.clone(),
            routes: Arc::new(routes),
            tenants: state.tenant_slugs.clone(),
        }
    }
}

impl<E: Endpoint> Middleware<E> for TenantAuthz {
    type Output = TenantAuthzEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        TenantAuthzEndpoint {
            inner: ep,
            authorizer: self.authorizer.clone(),
            db: self.db.clone(),
            routes: self.routes.clone(),
            tenants: self.tenants.clone(),
            audit: self.audit.clone(),
        }
    }
}

pub struct TenantAuthzEndpoint<E> {
    inner: E,
    authorizer: Arc<Authorizer>,
    db: DatabaseConnection,
    routes: Arc<RouteTable>,
    tenants: SlugCache,
    audit: Arc<AuditLog>,
}

impl<E: Endpoint> Endpoint for TenantAuthzEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        let Some(slug) = routes::tenant_slug(req.uri().path()) else {
            return self.inner.call(req).await;
        };
        let principal = req
            .extensions()
            .get::<Principal>()
            .cloned()
            .ok_or(ApiError::Unauthorized)?;
        let access = self.decide(&req, slug, principal).await?;
        req.extensions_mut().insert(access);
        self.inner.call(req).await
    }
}

impl<E> TenantAuthzEndpoint<E> {
    async fn decide(
        &self,
        req: &Request,
        slug: &str,
        principal: Principal,
    ) -> Result<TenantAccess, ApiError> {
        let scope = self
            .tenants
            .resolve(&self.db, slug)
            .await?
            .ok_or(ApiError::NotFound)?;
        // A key bound to another tenant is useless here, and says nothing about this one.
        if !principal.can_reach(scope.id()) {
            return Err(ApiError::NotFound);
        }
        let snapshot = self.authorizer.snapshot().await.map_err(|err| match err {
            AuthzError::Store(err) => {
                tracing::error!(error = %err, "authorization impossible: store unavailable");
                ApiError::Unavailable("authorization is temporarily unavailable".into())
            }
            AuthzError::Load(err) => err.into(),
        })?;
        let access = TenantAccess::of_member(scope, principal, &snapshot)
            .filter(|access| access.role_allows(perms::TENANT_ACCESS))
            .ok_or(ApiError::NotFound)?;
        let path = req.uri().path();
        let Some(permission) = self.routes.permission_for(req.method(), path) else {
            // A declared path with another method (`OPTIONS`, `PUT`) is the client's mistake,
            // told to members only (after the membership check, so nothing leaks).
            let allowed = self.routes.methods_for(path);
            return Err(if allowed.is_empty() {
                ApiError::Forbidden("no authorization policy covers this route".into())
            } else {
                ApiError::MethodNotAllowed { allowed }
            });
        };
        if let Err(denied) = access.require(permission) {
            metrics::authz_denied(permission);
            let user = access.user_id();
            let event = audit::Event::denied(audit::action::PERMISSION_DENIED)
                .in_tenant(access.scope().id())
                .detail(serde_json::json!({
                    "permission": permission.to_string(),
                    "method": req.method().as_str(),
                    "path": path.chars().take(128).collect::<String>(),
                }));
            let key = format!("denied:{user}:{}:{permission}", access.scope().id());
            self.audit.sampled(key, &audit_context(req), event).await;
            return Err(denied);
        }
        Ok(access)
    }
}
