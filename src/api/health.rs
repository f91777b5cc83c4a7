//! `/healthz` (the process answers) and `/readyz` (its dependencies answer).
use std::time::Duration;

use poem::Request;
use poem_openapi::{Object, OpenApi, payload::Json};

use super::ApiTags;
use crate::{
    error::{ApiError, ApiResult},
    http::ClientIp,
    state::AppState,
    store::EphemeralStore,
};

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub struct HealthApi {
    state: AppState,
}

impl super::Resource for HealthApi {
    fn new(state: AppState) -> Self {
        Self { state }
    }
}

#[derive(Object)]
struct Health {
    /// `ok` when the process is serving.
    status: String,
}

/// Which backends serve, for callers on this machine only.
#[derive(Object)]
struct Readiness {
    /// `ready` when every dependency answered.
    status: String,
    /// `sqlite` or `postgres` (to loopback callers only).
    #[oai(skip_serializing_if_is_none)]
    database: Option<String>,
    /// `memory` or `redis` (to loopback callers only).
    #[oai(skip_serializing_if_is_none)]
    store: Option<String>,
    /// Configuration that works but is unsafe, e.g. a Redis that may evict revocations (to
    /// loopback callers only).
    #[oai(skip_serializing_if_is_none)]
    warnings: Option<Vec<String>>,
}

/// Whether the client is on this machine (a probe, an operator): only they learn what runs
/// here and what is down. Everyone else gets the status alone; the log has the names. The
/// client, not the peer: behind a local reverse proxy every peer is loopback.
fn from_this_machine(req: &Request) -> bool {
    req.extensions()
        .get::<ClientIp>()
        .is_some_and(ClientIp::is_loopback)
}

#[OpenApi(tag = "ApiTags::Operations")]
impl HealthApi {
    /// Liveness: the process is up and serving requests.
    #[oai(path = "/healthz", method = "get")]
    async fn healthz(&self) -> Json<Health> {
        Json(Health {
            status: "ok".into(),
        })
    }

    /// Readiness: the database and (if configured) Redis answer. 503 names what is down.
    #[oai(path = "/readyz", method = "get")]
    async fn readyz(&self, req: &Request) -> ApiResult<Json<Readiness>> {
        let local = from_this_machine(req);
        let down = |what: String| {
            tracing::warn!(%what, "not ready");
            ApiError::Unavailable(if local { what } else { "not ready".into() })
        };
        let db = tokio::time::timeout(CHECK_TIMEOUT, self.state.db.ping()).await;
        if !matches!(db, Ok(Ok(()))) {
            return Err(down("database unreachable".into()));
        }
        let store = tokio::time::timeout(CHECK_TIMEOUT, self.state.store.ping()).await;
        if !matches!(store, Ok(Ok(()))) {
            return Err(down(format!(
                "{} store unreachable",
                self.state.store.backend()
            )));
        }
        let database = match self.state.db.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => "postgres",
            _ => "sqlite",
        };
        let warnings = if local {
            Some(
                self.state
                    .store
                    .eviction_warning()
                    .await
                    .into_iter()
                    .collect(),
            )
        } else {
            None
        };
        Ok(Json(Readiness {
            status: "ready".into(),
            database: local.then(|| database.into()),
            store: local.then(|| self.state.store.backend().into()),
            warnings,
        }))
    }
}
