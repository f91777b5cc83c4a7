//! One span per request, carrying a request id that is echoed in `X-Request-Id`.
use std::{sync::Arc, time::Instant};

use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result, http::HeaderValue};
use tracing::Instrument;

use super::{RouteTemplates, metrics};

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The id of the current request, available to handlers and error rendering.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Middleware: accepts a well-formed incoming `X-Request-Id` (so a proxy's id carries through),
/// otherwise generates one; opens the request span; logs one line per request and counts it
/// in the metrics, by route template.
pub struct RequestSpan {
    routes: Arc<RouteTemplates>,
}

impl RequestSpan {
    pub fn new(routes: RouteTemplates) -> Self {
        Self {
            routes: Arc::new(routes),
        }
    }
}

impl<E: Endpoint> Middleware<E> for RequestSpan {
    type Output = RequestSpanEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        RequestSpanEndpoint {
            inner: ep,
            routes: self.routes.clone(),
        }
    }
}

pub struct RequestSpanEndpoint<E> {
    inner: E,
    routes: Arc<RouteTemplates>,
}

/// An incoming id is reused only if it is short and plain, so it cannot inject into logs.
fn acceptable(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl<E: Endpoint> Endpoint for RequestSpanEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        let id = req
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| acceptable(v))
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        req.extensions_mut().insert(RequestId(id.clone()));

        let client = req
            .extensions()
            .get::<crate::http::ClientIp>()
            .map(|c| c.0.to_string())
            .unwrap_or_default();
        let span = tracing::info_span!(
            "request",
            request_id = %id,
            client_ip = %client,
            method = %req.method(),
            path = %req.uri().path(),
        );
        let started = Instant::now();
        let route = self.routes.template(req.uri().path());
        let method = req.method().clone();
        async move {
            let mut resp = match self.inner.call(req).await {
                Ok(resp) => resp.into_response(),
                Err(err) => err.into_response(),
            };
            let status = resp.status();
            let elapsed = started.elapsed();
            metrics::http_request(route, method.as_str(), status.as_u16(), elapsed);
            let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
            if status.is_server_error() {
                tracing::error!(status = status.as_u16(), elapsed_ms, "request failed");
            } else {
                tracing::info!(status = status.as_u16(), elapsed_ms, "request done");
            }
            if let Ok(value) = HeaderValue::from_str(&id) {
                resp.headers_mut().insert(REQUEST_ID_HEADER, value);
            }
            Ok(resp)
        }
        .instrument(span)
        .await
    }
}
