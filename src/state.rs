//! What every handler may reach: settings, database, store and the security services, built
//! once at start. `api/` and the domain's multi-step operations read it from here; the wiring
//! of routes and middleware lives in `app.rs`, which nothing here or below imports. (Building
//! the state asks `api` for the permissions its resources declare, to check the policy.)
use std::{net::SocketAddr, sync::Arc};

use anyhow::Context;
use sea_orm::DatabaseConnection;
use secrecy::ExposeSecret;

use crate::{
    auth::{Authenticator, api_keys::KeyVerifier, providers::Providers, tokens::TokenIssuer},
    authz::Authorizer,
    config::{ConfigDir, Settings},
    db,
    domain::{audit::AuditLog, tenants::SlugCache},
    ratelimit::RateLimiter,
    store::Store,
};

/// What every handler may reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    /// `server.public_url`, or the address actually bound (tests, local runs).
    pub public_url: url::Url,
    pub db: DatabaseConnection,
    /// The hot reads (pages of posts): on the calling thread for a SQLite file.
    pub reads: db::Reader,
    pub store: Store,
    pub keys: Arc<KeyVerifier>,
    pub tokens: Arc<TokenIssuer>,
    pub auth: Arc<Authenticator>,
    pub authz: Arc<Authorizer>,
    pub providers: Arc<Providers>,
    pub limiter: Arc<RateLimiter>,
    pub audit: Arc<AuditLog>,
    /// Tenants by slug, briefly (the tenant middleware and the public pages).
    pub tenant_slugs: SlugCache,
}

/// `server.public_url`, else `http(s)://host:port` as configured.
pub(crate) fn default_public_url(
    settings: &Settings,
    addr: Option<SocketAddr>,
) -> anyhow::Result<url::Url> {
    if let Some(url) = &settings.server.public_url {
        return Ok(url.clone());
    }
    let authority = match addr {
        Some(addr) => addr.to_string(),
        None => format!("{}:{}", settings.server.host, settings.server.port),
    };
    let scheme = if settings.server.tls.enabled() {
        "https"
    } else {
        "http"
    };
    url::Url::parse(&format!("{scheme}://{authority}"))
        .context("invalid configuration: server.host/server.port")
}

impl AppState {
    /// Connects the database (migrating it when configured) and the ephemeral store.
    pub async fn connect(settings: Settings) -> anyhow::Result<Self> {
        let public_url = default_public_url(&settings, None)?;
        Self::connect_at(settings, public_url).await
    }

    pub(crate) async fn connect_at(
        settings: Settings,
        public_url: url::Url,
    ) -> anyhow::Result<Self> {
        let db = db::connect(&settings.database).await?;
        if settings.database.migrate_on_start {
            db::migrate(&db).await?;
        }
        let store = Store::from_settings(&settings.redis)?;
        if let Some(warning) = store.eviction_warning().await {
            tracing::warn!("{warning}");
        }
        Self::new(settings, public_url, db, store).await
    }

    /// Loads keys and the authorization policy; touches no database yet.
    pub async fn new(
        settings: Settings,
        public_url: url::Url,
        db: DatabaseConnection,
        store: Store,
    ) -> anyhow::Result<Self> {
        let config_dir = ConfigDir::from_env();
        for path in config_dir.overrides() {
            let casbin = path.extension().is_some_and(|e| e == "csv" || e == "conf");
            if casbin {
                tracing::warn!(path = %path.display(), "authorization policy overridden by a file");
            } else {
                tracing::info!(path = %path.display(), "settings overridden by a file");
            }
        }
        let known = crate::api::permissions();
        let authz = Authorizer::load(db.clone(), store.clone(), &config_dir, &known).await?;
        let keys = Arc::new(KeyVerifier::new(db.clone(), store.clone()));
        let tokens = Arc::new(TokenIssuer::from_settings(&settings, &public_url)?);
        let limiter = RateLimiter::new(&settings.rate_limit, &store);
        let audit = Arc::new(AuditLog::new(db.clone()));
        forget_idle_periodically(&limiter);
        purge_periodically(db.clone(), settings.audit.retention_days);
        let auth = Arc::new(Authenticator {
            keys: keys.clone(),
            tokens: tokens.clone(),
            store: store.clone(),
            limiter: limiter.clone(),
            audit: audit.clone(),
            origin: public_url.origin().ascii_serialization(),
        });
        let providers = Arc::new(Providers::from_settings(&settings, &public_url)?);
        Ok(Self {
            keys,
            tokens,
            auth,
            providers,
            limiter,
            audit,
            tenant_slugs: SlugCache::default(),
            reads: db::Reader::new(db.clone(), settings.database.url.expose_secret()),
            authz: Arc::new(authz),
            settings: Arc::new(settings),
            public_url,
            db,
            store,
        })
    }
}

/// Keeps the in-process limiter's memory to the clients seen within their window: a flood of
/// distinct addresses is forgotten once it stops.
fn forget_idle_periodically(limiter: &Arc<RateLimiter>) {
    let limiter = Arc::downgrade(limiter);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(limiter) = limiter.upgrade() else {
                return;
            };
            limiter.forget_idle();
        }
    });
}

/// Deletes what is past keeping a minute after start, then hourly (every instance does; the
/// deletes are idempotent). The first run is early so that instances restarted more often
/// than hourly still purge.
fn purge_periodically(db: DatabaseConnection, retention_days: u32) {
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if db.ping().await.is_err() {
                continue;
            }
            match crate::domain::retention::purge(&db, chrono::Utc::now(), retention_days).await {
                Ok(purged) => tracing::info!(?purged, "purged expired records"),
                Err(err) => tracing::warn!(error = %err, "purge failed; retrying in an hour"),
            }
        }
    });
}
