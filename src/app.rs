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
        BodyLimit, ClientAddress, HeadLimits, ProblemDetails, RedirectToHttps, SecurityHeaders,
        ServeOptions, Timeout, TrustedProxies, serve, tls::Tls,
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
    /// HTTPS on `listener`, when `server.tls` is on.
    tls: Option<Tls>,
    /// `server.tls.redirect_http`: plain HTTP, redirecting to https.
    redirect: Option<(tokio::net::TcpListener, SocketAddr)>,
    metrics: Option<MetricsListener>,
}

struct MetricsListener {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    handle: PrometheusHandle,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        // The recorder before the certificates, so that their expiry is recorded.
        let metrics_handle = settings
            .metrics
            .listen
            .map(|_| telemetry::metrics::install());
        // Certificates first: a bad file refuses to start before any port is taken.
        let tls = Tls::from_settings(&settings.server.tls)
            .await
            .context("invalid configuration")?;
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
        let redirect = match settings.server.tls.redirect_http {
            Some(listen) => {
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .with_context(|| {
                        format!("could not listen on {listen} (server.tls.redirect_http)")
                    })?;
                let addr = listener.local_addr().context("redirect listener address")?;
                Some((listener, addr))
            }
            None => None,
        };
        let metrics = match (settings.metrics.listen, metrics_handle) {
            (Some(listen), Some(handle)) => {
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("could not listen on {listen} (metrics.listen)"))?;
                let addr = listener.local_addr().context("metrics listener address")?;
                Some(MetricsListener {
                    listener,
                    addr,
                    handle,
                })
            }
            _ => None,
        };
        let public_url = default_public_url(&settings, Some(addr))?;
        let state = AppState::connect_at(settings, public_url).await?;
        Ok(Self {
            state,
            listener,
            addr,
            tls,
            redirect,
            metrics,
        })
    }

    /// Where the plain-HTTP redirect to https listens, when `server.tls.redirect_http` is set.
    pub fn redirect_addr(&self) -> Option<SocketAddr> {
        self.redirect.as_ref().map(|(_, addr)| *addr)
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
                None,
                ep,
                options.clone(),
                until_stopped(stopped.clone()),
            )
            .await
        };
        let http01 = self.tls.as_ref().and_then(Tls::http01_answers);
        let (acceptor, certificates) = match self.tls {
            Some(tls) => (Some(tls.acceptor), Some(tls.source)),
            None => (None, None),
        };
        let redirect = async {
            let Some((listener, _)) = self.redirect else {
                return Ok(());
            };
            let ep = RedirectToHttps::new(&self.state.public_url, http01);
            serve(
                listener,
                None,
                ep,
                options.clone(),
                until_stopped(stopped.clone()),
            )
            .await
        };
        let renewal = async {
            if let Some(source) = certificates {
                source.maintain(until_stopped(stopped.clone())).await;
            }
        };
        let api = serve(
            self.listener,
            acceptor,
            endpoint(self.state.clone()),
            options.clone(),
            until_stopped(stopped.clone()),
        );
        let signal = async {
            shutdown.await;
            let _ = stop.send(true);
        };
        let ((), api, metrics, redirect, ()) =
            tokio::join!(signal, api, metrics, redirect, renewal);
        api.context("server error")?;
        redirect.context("redirect server error")?;
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
