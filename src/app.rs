//! Assembles the application: state, routes, middleware, and the server.
use std::{future::Future, net::SocketAddr, time::Duration};

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use poem::{
    Endpoint, EndpointExt, IntoResponse, Route,
    endpoint::make_sync,
    middleware::{CatchPanic, CookieJarManager},
};
use sea_orm::DatabaseConnection;

pub use crate::state::AppState;
use crate::{
    api,
    auth::Authenticate,
    authz::TenantAuthz,
    config::Settings,
    http::{
        BodyLimit, ClientAddress, HeadLimits, ProblemDetails, SecurityHeaders, ServeOptions,
        Timeout, TrustedProxies, serve,
    },
    ratelimit::{PrincipalLimit, RateLimit},
    state::default_public_url,
    store::{MemoryStore, Store},
    telemetry::{self, RequestSpan, RouteTemplates},
};

/// The whole HTTP application.
///
/// Middleware, outermost first: the client address (trusted proxies only); request id and
/// span; security headers; error pages for people in the login flow; rate limits per client
/// address (before any other work); cookies (outside problem rendering, so a refusal keeps
/// its cookie changes); problem rendering; URI and header size limits; panic catching; the
/// request deadline; authentication, the limit per principal, then tenant authorization (all
/// before any body is buffered); the body limit; then the routes.
pub fn endpoint(state: AppState) -> impl Endpoint + 'static {
    let settings = state.settings.clone();
    let auth = state.auth.clone();
    let limiter = state.limiter.clone();
    let audit = state.audit.clone();
    let authz = TenantAuthz::new(&state, api::tenant_routes());
    let (api, spec) = api::service_and_document(state);
    let routes = RouteTemplates::from_openapi(&spec);
    let docs = api::docs_ui(&api, &spec);
    Route::new()
        .nest("/", api)
        .at(
            "/openapi.json",
            make_sync(move |_| spec.clone().with_content_type("application/json")),
        )
        .nest("/docs", docs)
        .at("/favicon.ico", api::favicon())
        .at("/favicon.svg", api::favicon())
        .with(BodyLimit::new(settings.server.body_limit_bytes))
        .with(authz)
        .with(PrincipalLimit::new(limiter.clone()))
        .with(Authenticate::new(auth))
        .with(Timeout::new(Duration::from_secs(
            settings.server.request_timeout_secs,
        )))
        .with(CatchPanic::new())
        .with(HeadLimits)
        .with(ProblemDetails)
        // Outside problem rendering: the jar writes its changes only onto a response, never
        // onto an error, and a refusal that clears a dead session's cookies must clear them.
        // (Parsing cookies before the head limits costs little: hyper bounds the head.)
        .with(CookieJarManager::new())
        .with(RateLimit::new(limiter, audit))
        .with(api::BrowserErrorPages)
        .with(SecurityHeaders::new(settings.hsts_enabled()))
        .with(RequestSpan::new(routes))
        .with(ClientAddress::new(trusted_proxies(&settings)))
}

fn trusted_proxies(settings: &Settings) -> TrustedProxies {
    // Validated when the settings were loaded.
    let networks = settings.server.trusted_proxy_networks().unwrap_or_default();
    TrustedProxies::new(networks, settings.server.forwarded_header)
}

/// The OpenAPI document, as `cargo run -- openapi` prints it. Needs no database.
pub async fn openapi_json(settings: Settings) -> anyhow::Result<String> {
    let public_url = default_public_url(&settings, None)?;
    let state = AppState::new(
        settings,
        public_url,
        DatabaseConnection::default(),
        Store::Memory(MemoryStore::new(1)),
    )
    .await?;
    Ok(api::service_and_document(state).1)
}

/// A bound, not yet running server. Binding first lets tests use port 0 and learn the port.
pub struct Application {
    state: AppState,
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    metrics: Option<MetricsListener>,
}

struct MetricsListener {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    handle: PrometheusHandle,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let bind = (settings.server.host.clone(), settings.server.port);
        let listener = tokio::net::TcpListener::bind(&bind)
            .await
            .with_context(|| {
                format!(
                    "could not listen on {}:{} (server.host, server.port)",
                    bind.0, bind.1
                )
            })?;
        let addr = listener
            .local_addr()
            .context("could not read the listening address")?;
        let metrics = match settings.metrics.listen {
            Some(listen) => {
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("could not listen on {listen} (metrics.listen)"))?;
                let addr = listener.local_addr().context("metrics listener address")?;
                let handle = telemetry::metrics::install();
                Some(MetricsListener {
                    listener,
                    addr,
                    handle,
                })
            }
            None => None,
        };
        let public_url = default_public_url(&settings, Some(addr))?;
        let state = AppState::connect_at(settings, public_url).await?;
        Ok(Self {
            state,
            listener,
            addr,
            metrics,
        })
    }

    /// Where `/metrics` is served, when `metrics.listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|m| m.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish (up to 10 s).
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let server = &self.state.settings.server;
        let options = ServeOptions {
            header_read_timeout: Duration::from_secs(server.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(server.idle_timeout_secs),
            max_connections_per_ip: server.max_connections_per_ip,
            proxies: trusted_proxies(&self.state.settings),
            http2_cleartext: server.http2_cleartext,
            grace: Duration::from_secs(10),
        };
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let until_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let metrics = async {
            let Some(m) = self.metrics else {
                return Ok(());
            };
            let db = self.state.db.clone();
            let handle = m.handle;
            let ep = Route::new().at(
                "/metrics",
                poem::get(make_sync(move |_| {
                    telemetry::metrics::render(&handle, &db)
                        .with_content_type("text/plain; version=0.0.4")
                })),
            );
            serve(
                m.listener,
                ep,
                options.clone(),
                until_stopped(stopped.clone()),
            )
            .await
        };
        let api = serve(
            self.listener,
            endpoint(self.state.clone()),
            options.clone(),
            until_stopped(stopped.clone()),
        );
        let signal = async {
            shutdown.await;
            let _ = stop.send(true);
        };
        let ((), api, metrics) = tokio::join!(signal, api, metrics);
        api.context("server error")?;
        metrics.context("metrics server error")
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received, finishing in-flight requests");
}
