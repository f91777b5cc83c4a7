//! The HTTP API, generated into `/openapi.json` by poem-openapi: one module per resource.
use poem_openapi::{OpenApiService, Tags};

use crate::app::AppState;

mod api_keys;
mod health;
mod json;
mod me;
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
}

const DESCRIPTION: &str = "\
A secure multi-tenant REST service starter. Every error is an RFC 9457 problem document \
(`application/problem+json`) carrying the `request_id` that is also sent in `X-Request-Id`.";

pub type Api = (
    health::HealthApi,
    public::PublicApi,
    me::MeApi,
    tenants::TenantsApi,
    api_keys::ApiKeysApi,
);

/// The OpenAPI service: the operations and the document describing them.
pub fn service(state: AppState) -> OpenApiService<Api, ()> {
    OpenApiService::new(
        (
            health::HealthApi::new(state.clone()),
            public::PublicApi::new(state.clone()),
            me::MeApi::new(state.clone()),
            tenants::TenantsApi::new(state.clone()),
            api_keys::ApiKeysApi::new(state),
        ),
        "ironquill",
        env!("CARGO_PKG_VERSION"),
    )
    .description(DESCRIPTION)
}
