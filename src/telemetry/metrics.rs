//! Prometheus metrics, served at `/metrics` on a listener of their own (`metrics.listen`), so
//! they are never public by accident. Every label value is bounded: route templates, never raw
//! paths; kinds and reasons from fixed lists; never an id, token or key.
use std::{sync::OnceLock, time::Duration};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sea_orm::DatabaseConnection;

/// Request latency buckets, in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder, once: later calls (a second app in the test process)
/// share it. Until this runs, recording a metric costs next to nothing.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("http_request_duration_seconds".into()),
                    LATENCY_BUCKETS,
                )
                .map(PrometheusBuilder::build_recorder)
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics stays empty");
            }
            // Present from the start at 0, so that `increase()` sees the first event.
            for counter in ["refresh_token_reuse_total", "audit_write_failures_total"] {
                metrics::counter!(counter).absolute(0);
            }
            handle
        })
        .clone()
}

/// The text exposition, with the database pool gauges read now.
pub fn render(handle: &PrometheusHandle, db: &DatabaseConnection) -> String {
    let (size, idle) = match db.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle())
        }
        sea_orm::DatabaseBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle())
        }
        _ => (0, 0),
    };
    let idle = u32::try_from(idle).unwrap_or(u32::MAX);
    metrics::gauge!("db_pool_connections", "state" => "in_use").set(size.saturating_sub(idle));
    metrics::gauge!("db_pool_connections", "state" => "idle").set(idle);
    handle.run_upkeep();
    handle.render()
}

/// One finished HTTP request.
pub fn http_request(route: &'static str, method: &str, status: u16, elapsed: Duration) {
    let method = bounded_method(method);
    metrics::counter!("http_requests_total", "route" => route, "method" => method, "status" => status.to_string())
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route, "method" => method)
        .record(elapsed.as_secs_f64());
}

/// A refused credential: `credential` is `api_key`, `bearer`, `cookie` or `refresh_token`;
/// `reason` one of a few fixed words.
pub fn auth_failure(credential: &'static str, reason: &'static str) {
    metrics::counter!("auth_failures_total", "credential" => credential, "reason" => reason)
        .increment(1);
}

/// A tenant route refused for lack of `permission` (an `obj:act` from the route table, so
/// a fixed set).
pub fn authz_denied(permission: impl std::fmt::Display) {
    metrics::counter!("authz_denied_total", "permission" => permission.to_string()).increment(1);
}

/// A hot read on a SQLite file: `served` on the calling thread, or `handed_to_pool`.
pub fn inline_read(outcome: &'static str) {
    metrics::counter!("sqlite_inline_reads_total", "outcome" => outcome).increment(1);
}

pub fn rate_limited(policy: &'static str) {
    metrics::counter!("rate_limited_total", "policy" => policy).increment(1);
}

/// A sampled audit event not written: the instance's budget for them was spent.
pub fn audit_suppressed(action: &'static str) {
    metrics::counter!("audit_events_suppressed_total", "action" => action).increment(1);
}

/// An audit event that could not be written (outside a change: the change fails with it).
pub fn audit_write_failed() {
    metrics::counter!("audit_write_failures_total").increment(1);
}

pub fn refresh_token_reuse() {
    metrics::counter!("refresh_token_reuse_total").increment(1);
}

/// The ephemeral store (`memory` or `redis`) failed a call.
pub fn store_error(backend: &'static str) {
    metrics::counter!("store_errors_total", "backend" => backend).increment(1);
}

/// A database call failed: `kind` is `unavailable`, `contention` or `other`.
pub fn database_error(kind: &'static str) {
    metrics::counter!("database_errors_total", "kind" => kind).increment(1);
}

/// The certificate now served over TLS expires at `not_after` (Unix seconds); `source` is
/// `files` or `acme`.
pub fn tls_certificate_expiry(source: &'static str, not_after: i64) {
    // Seconds since 1970 fit an f64 exactly (below 2^53).
    #[allow(clippy::cast_precision_loss)]
    let not_after = not_after as f64;
    metrics::gauge!("tls_certificate_expiry_timestamp_seconds", "source" => source).set(not_after);
}

/// Methods outside the standard set are one label, so a client cannot mint label values.
fn bounded_method(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}
