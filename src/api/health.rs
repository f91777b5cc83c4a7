//! `/healthz` (the process answers) and `/readyz` (its dependencies answer).
use std::time::Duration;

use poem_openapi::{Object, OpenApi, payload::Json};

use super::ApiTags;
use crate::{
    state::AppState,
    error::{ApiError, ApiResult},
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

#[derive(Object)]
struct Readiness {
    /// `ready` when every dependency answered.
    status: String,
    /// `sqlite` or `postgres`.
    database: String,
    /// `memory` or `redis`.
    store: String,
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
    async fn readyz(&self) -> ApiResult<Json<Readiness>> {
        let db = tokio::time::timeout(CHECK_TIMEOUT, self.state.db.ping()).await;
        if !matches!(db, Ok(Ok(()))) {
            return Err(ApiError::Unavailable("database unreachable".into()));
        }
        let store = tokio::time::timeout(CHECK_TIMEOUT, self.state.store.ping()).await;
        if !matches!(store, Ok(Ok(()))) {
            return Err(ApiError::Unavailable(format!(
                "{} store unreachable",
                self.state.store.backend()
            )));
        }
        Ok(Json(Readiness {
            status: "ready".into(),
            database: match self.state.db.get_database_backend() {
                sea_orm::DatabaseBackend::Postgres => "postgres",
                _ => "sqlite",
            }
            .into(),
            store: self.state.store.backend().into(),
        }))
    }
}
