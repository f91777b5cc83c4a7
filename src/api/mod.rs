//! The HTTP API, generated into `/openapi.json` by poem-openapi: one module per resource.
use poem_openapi::{OpenApiService, Tags};

use crate::app::AppState;

mod health;
mod public;

#[derive(Tags)]
pub enum ApiTags {
    /// Liveness and readiness probes.
    Operations,
    /// Published posts, readable without authentication.
    Public,
}

const DESCRIPTION: &str = "\
A secure multi-tenant REST service starter. Every error is an RFC 9457 problem document \
(`application/problem+json`) carrying the `request_id` that is also sent in `X-Request-Id`.";

pub type Api = (health::HealthApi, public::PublicApi);

/// The OpenAPI service: the operations and the document describing them.
pub fn service(state: AppState) -> OpenApiService<Api, ()> {
    OpenApiService::new(
        (
            health::HealthApi::new(state.clone()),
            public::PublicApi::new(state),
        ),
        "ironquill",
        env!("CARGO_PKG_VERSION"),
    )
    .description(DESCRIPTION)
}
