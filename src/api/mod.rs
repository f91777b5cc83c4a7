//! The HTTP API, generated into `/openapi.json` by poem-openapi: one module per resource,
//! each registered once in [`resources!`] below.
//!
//! A resource module holds its `#[OpenApi]` impl, its request and response types and, for
//! tenant routes, its permissions ([`crate::permissions!`]) and the permission of each route
//! ([`crate::tenant_routes!`]) beside the handlers. Everything else reads those declarations:
//! the tenant middleware, the policy check at start and the `x-permission` fields of the
//! document.
use poem::Endpoint;
use poem_openapi::{OpenApi, OpenApiService, Tags};

use crate::{
    authz::{Permission, RouteTable, TenantRoute, perms},
    state::AppState,
};

mod document;
mod extract;
mod json;
mod json_reply;
mod page;
mod pages;
mod respond;
mod security;

pub use extract::{Audit, IfMatch, etag};
pub use json::{JsonBody, OptionalJsonBody};
pub use json_reply::JsonReply;
#[cfg(test)]
pub(crate) use json_reply::sample_times;
pub use page::Page;
pub use pages::{BrowserErrorPages, favicon};
pub use respond::{Deleted, Tagged};
pub use security::Auth;

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
    /// The audit trail: a tenant's (owners and admins) and your own security events.
    Audit,
}

/// What a resource module gives the registry.
pub trait Resource: OpenApi {
    fn new(state: AppState) -> Self;

    /// The permission of each of its routes under `/api/v1/tenants/{tenant}`.
    const ROUTES: &'static [TenantRoute] = &[];

    /// Every permission it checks (routes and handlers), each to be granted in `policy.csv`.
    const PERMISSIONS: &'static [Permission] = &[];
}

/// Registers the resource modules (declared above as plain `mod`s, so rustfmt and the
/// compiler's lints see them): `module::Api,` serves its routes and reads its permissions.
macro_rules! resources {
    ($($module:ident :: $api:ident),* $(,)?) => {
        pub type Api = ($($module::$api,)*);

        fn apis(state: AppState) -> Api {
            ($(<$module::$api as Resource>::new(state.clone()),)*)
        }

        /// Every tenant route and the permission it needs.
        pub fn tenant_routes() -> RouteTable {
            RouteTable::new([$(<$module::$api as Resource>::ROUTES),*].into_iter().flatten())
        }

        /// Every permission the code checks.
        pub fn permissions() -> Vec<Permission> {
            let mut all = perms::PERMISSIONS.to_vec();
            $(all.extend_from_slice(<$module::$api as Resource>::PERMISSIONS);)*
            all
        }
    };
}

mod api_keys;
mod audit;
mod health;
mod invitations;
mod jwks;
mod landing;
mod login;
mod me;
mod members;
mod oauth;
mod posts;
mod public;
mod sessions;
mod tenants;

resources! {
    health::HealthApi,
    public::PublicApi,
    me::MeApi,
    tenants::TenantsApi,
    api_keys::ApiKeysApi,
    invitations::InvitationsApi,
    members::MembersApi,
    posts::PostsApi,
    login::LoginApi,
    sessions::SessionsApi,
    landing::LandingApi,
    jwks::JwksApi,
    oauth::OAuthApi,
    audit::AuditApi,
}

/// The service's name: the document's title, the docs tab's and every page's.
pub const SERVICE_NAME: &str = "ironquill";

const DESCRIPTION: &str = "\
A secure multi-tenant REST service starter. Every error is an RFC 9457 problem document \
(`application/problem+json`) carrying the `request_id` that is also sent in `X-Request-Id`. \
Operations under `/api/v1/tenants/{tenant}/` state the permission they need (`x-permission`) \
and the roles that hold it (`x-roles`), read from the same policy the server enforces.";

/// The OpenAPI service, and its document annotated with each route's permission.
pub fn service_and_document(state: AppState) -> (OpenApiService<Api, ()>, String) {
    let authz = state.authz.clone();
    let service = OpenApiService::new(apis(state), SERVICE_NAME, env!("CARGO_PKG_VERSION"))
        .description(DESCRIPTION);
    let document = document::annotate(&service.spec(), &tenant_routes(), &authz);
    (service, document)
}

/// The interactive docs, showing the annotated document.
pub fn docs_ui(service: &OpenApiService<Api, ()>, document: &str) -> impl Endpoint + 'static {
    // poem-openapi inlines the document into its page; swap in the annotated one, and name the
    // tab after the service rather than "Swagger UI".
    let html = service
        .swagger_ui_html()
        .replace(&service.spec(), document)
        .replacen(
            "<title>Swagger UI</title>",
            &format!("<title>{SERVICE_NAME} API docs</title>"),
            1,
        );
    poem::Route::new().at(
        "/",
        poem::endpoint::make_sync(move |_| poem::web::Html(html.clone())),
    )
}
