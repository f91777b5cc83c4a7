//! The HTTP API, generated into `/openapi.json` by poem-openapi: one module per resource.
use poem::Endpoint;
use poem_openapi::{OpenApiService, Tags};

use crate::app::AppState;

mod api_keys;
mod auth;
mod health;
mod json;
mod me;
mod members;
mod permissions_doc;
mod posts;
mod public;
mod security;
mod tenants;

#[derive(Tags)]
pub enum ApiTags {
    /// Liveness and readiness probes.
    Operations,
    /// Published posts, readable without authentication.
    Public,
    /// The calling user.
    Account,
    /// API keys for programs: created, listed, revoked, rotated.
    ApiKeys,
    /// Tenants the caller belongs to.
    Tenants,
    /// Members of a tenant and invitations (owners and admins).
    Members,
    /// Posts and comments in a tenant.
    Posts,
    /// Login through identity providers, and sessions.
    Auth,
}

const DESCRIPTION: &str = "\
A secure multi-tenant REST service starter. Every error is an RFC 9457 problem document \
(`application/problem+json`) carrying the `request_id` that is also sent in `X-Request-Id`. \
Operations under `/api/v1/tenants/{tenant}/` state the permission they need (`x-permission`) \
and the roles that hold it (`x-roles`), read from the same policy the server enforces.";

pub type Api = (
    (
        health::HealthApi,
        public::PublicApi,
        me::MeApi,
        tenants::TenantsApi,
    ),
    (
        api_keys::ApiKeysApi,
        members::MembersApi,
        posts::PostsApi,
        auth::AuthApi,
    ),
);

/// The OpenAPI service, and its document annotated with each route's permission.
pub fn service_and_document(state: AppState) -> (OpenApiService<Api, ()>, String) {
    let authz = state.authz.clone();
    let service = OpenApiService::new(
        (
            (
                health::HealthApi::new(state.clone()),
                public::PublicApi::new(state.clone()),
                me::MeApi::new(state.clone()),
                tenants::TenantsApi::new(state.clone()),
            ),
            (
                api_keys::ApiKeysApi::new(state.clone()),
                members::MembersApi::new(state.clone()),
                posts::PostsApi::new(state.clone()),
                auth::AuthApi::new(state),
            ),
        ),
        "ironquill",
        env!("CARGO_PKG_VERSION"),
    )
    .description(DESCRIPTION);
    let document = permissions_doc::annotate(&service.spec(), &authz);
    (service, document)
}

/// The interactive docs, showing the annotated document.
pub fn docs_ui(service: &OpenApiService<Api, ()>, document: &str) -> impl Endpoint + 'static {
    // poem-openapi inlines the document into its page; swap in the annotated one.
    let html = service.swagger_ui_html().replace(&service.spec(), document);
    poem::Route::new().at(
        "/",
        poem::endpoint::make_sync(move |_| poem::web::Html(html.clone())),
    )
}
