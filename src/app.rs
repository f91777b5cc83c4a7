//! Assembles the application: state, routes, middleware, and the server.
use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use poem::{
    Endpoint, EndpointExt, IntoResponse, Route, Server,
    endpoint::make_sync,
    listener::TcpAcceptor,
    middleware::{CatchPanic, CookieJarManager},
};
use sea_orm::DatabaseConnection;

use crate::{
    api,
    auth::{
        Authenticate, Authenticator, api_keys::KeyVerifier, providers::Providers,
        tokens::TokenIssuer,
    },
    authz::{Authorizer, TenantAuthz},
    config::{self, Settings},
    db,
    http::{BodyLimit, ProblemDetails, SecurityHeaders, Timeout},
    store::{MemoryStore, Store},
    telemetry::RequestSpan,
};

/// What every handler may reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    /// `server.public_url`, or the address actually bound (tests, local runs).
    pub public_url: url::Url,
    pub db: DatabaseConnection,
    pub store: Store,
    pub keys: Arc<KeyVerifier>,
    pub tokens: Arc<TokenIssuer>,
    pub auth: Arc<Authenticator>,
    pub authz: Arc<Authorizer>,
    pub providers: Arc<Providers>,
}

/// `server.public_url`, else `http://host:port` as configured.
fn default_public_url(settings: &Settings, addr: Option<SocketAddr>) -> anyhow::Result<url::Url> {
    if let Some(url) = &settings.server.public_url {
        return Ok(url.clone());
    }
    let authority = match addr {
        Some(addr) => addr.to_string(),
        None => format!("{}:{}", settings.server.host, settings.server.port),
    };
    url::Url::parse(&format!("http://{authority}"))
        .context("invalid configuration: server.host/server.port")
}

impl AppState {
    /// Connects the database (migrating it when configured) and the ephemeral store.
    pub async fn connect(settings: Settings) -> anyhow::Result<Self> {
        let public_url = default_public_url(&settings, None)?;
        Self::connect_at(settings, public_url).await
    }

    async fn connect_at(settings: Settings, public_url: url::Url) -> anyhow::Result<Self> {
        let db = db::connect(&settings.database).await?;
        if settings.database.migrate_on_start {
            db::migrate(&db).await?;
        }
        let store = Store::from_settings(&settings.redis)?;
        Self::new(settings, public_url, db, store).await
    }

    /// Loads keys and the authorization policy; touches no database yet.
    pub async fn new(
        settings: Settings,
        public_url: url::Url,
        db: DatabaseConnection,
        store: Store,
    ) -> anyhow::Result<Self> {
        let authz = Authorizer::load(db.clone(), store.clone(), &config::config_dir()).await?;
        let keys = Arc::new(KeyVerifier::new(db.clone(), store.clone()));
        let tokens = Arc::new(TokenIssuer::from_settings(&settings, &public_url)?);
        let auth = Arc::new(Authenticator {
            keys: keys.clone(),
            tokens: tokens.clone(),
            store: store.clone(),
            origin: public_url.origin().ascii_serialization(),
        });
        let providers = Arc::new(Providers::from_settings(&settings, &public_url)?);
        Ok(Self {
            keys,
            tokens,
            auth,
            providers,
            authz: Arc::new(authz),
            settings: Arc::new(settings),
            public_url,
            db,
            store,
        })
    }
}

/// The whole HTTP application.
///
/// Middleware, outermost first: request id and span; security headers; problem rendering;
/// cookies; panic catching; the request deadline; authentication, then tenant authorization
/// (both before any body is buffered); the body limit; then the routes.
pub fn endpoint(state: AppState) -> impl Endpoint + 'static {
    let settings = state.settings.clone();
    let auth = state.auth.clone();
    let authz = TenantAuthz::new(state.authz.clone(), state.db.clone());
    let (api, spec) = api::service_and_document(state);
    let docs = api::docs_ui(&api, &spec);
    Route::new()
        .nest("/", api)
        .at(
            "/openapi.json",
            make_sync(move |_| spec.clone().with_content_type("application/json")),
        )
        .nest("/docs", docs)
        .with(BodyLimit::new(settings.server.body_limit_bytes))
        .with(authz)
        .with(Authenticate::new(auth))
        .with(Timeout::new(Duration::from_secs(
            settings.server.request_timeout_secs,
        )))
        .with(CatchPanic::new())
        .with(CookieJarManager::new())
        .with(ProblemDetails)
        .with(SecurityHeaders::new(settings.hsts_enabled()))
        .with(RequestSpan)
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
        let public_url = default_public_url(&settings, Some(addr))?;
        let state = AppState::connect_at(settings, public_url).await?;
        Ok(Self {
            state,
            listener,
            addr,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish (up to 10 s).
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let acceptor =
            TcpAcceptor::from_tokio(self.listener).context("could not use the listener")?;
        Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(
                endpoint(self.state),
                shutdown,
                Some(Duration::from_secs(10)),
            )
            .await
            .context("server error")
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
