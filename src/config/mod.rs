//! Typed settings, layered: `config/default.toml` < `config/{APP_ENV}.toml` < the platform
//! variables `DATABASE_URL`, `REDIS_URL`, `PORT` < `APP__SECTION__KEY` variables. The files
//! are built into the binary; a file in `APP_CONFIG_DIR` (default `./config`) overrides
//! them key by key (see [`files`]).
//!
//! Unknown keys are refused, so a typo in a file or variable fails loudly at start-up instead
//! of silently keeping a default.
use std::{fmt, str::FromStr};

use figment::{
    Figment,
    providers::{Env, Format, Toml},
};
use secrecy::{ExposeSecret, SecretString};

mod auth;
pub mod files;
mod rate_limit;
mod tls;

pub use auth::{
    AuthSettings, GithubProviderSettings, Linking, OidcProviderSettings, ProviderSettings,
    SigningKeySettings, check_outbound_url, is_loopback_host,
};
pub use files::ConfigDir;
pub use rate_limit::{MAX_LOGIN_FLOWS_TOTAL, Quota, RateLimitSettings};
use serde::{Deserialize, Serialize};
pub use tls::{AcmeChallenge, AcmeSettings, TlsSettings};

/// Which deployment this process is: picks the config file and the secure-default checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppEnv {
    Development,
    Test,
    Production,
}

impl AppEnv {
    pub fn as_str(self) -> &'static str {
        match self {
            AppEnv::Development => "development",
            AppEnv::Test => "test",
            AppEnv::Production => "production",
        }
    }

    /// Reads `APP_ENV`; `development` when unset.
    pub fn from_env() -> Result<Self, ConfigError> {
        match std::env::var("APP_ENV") {
            Ok(value) => value.parse(),
            Err(std::env::VarError::NotPresent) => Ok(AppEnv::Development),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(ConfigError::new("APP_ENV is not valid UTF-8"))
            }
        }
    }
}

impl FromStr for AppEnv {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "development" => Ok(AppEnv::Development),
            "test" => Ok(AppEnv::Test),
            "production" => Ok(AppEnv::Production),
            other => Err(ConfigError::new(format!(
                "APP_ENV: unknown environment {other:?}, expected one of development, test, production"
            ))),
        }
    }
}

impl fmt::Display for AppEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Set from `APP_ENV`, never from a file.
    #[serde(skip_deserializing, default = "default_env")]
    pub env: AppEnv,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub log: LogSettings,
    pub auth: AuthSettings,
    pub tenants: TenantSettings,
    pub rate_limit: RateLimitSettings,
    #[serde(default)]
    pub metrics: MetricsSettings,
    pub audit: AuditSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// Audit events older than this are deleted (with expired sessions, refresh tokens and
    /// invitations) by the hourly purge and by `ironquill admin purge`.
    pub retention_days: u32,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// Where `/metrics` (Prometheus) is served, e.g. `127.0.0.1:9464`: a listener of its own,
    /// so the metrics are never reachable through the public one. Unset: no metrics.
    pub listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    /// How many tenants one user may own through the API (the operator's CLI is not capped):
    /// each new tenant costs every instance a policy reload, so a loop of creations is abuse.
    pub max_owned_per_user: u32,
}

fn default_env() -> AppEnv {
    AppEnv::Development
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// The externally visible base URL (used for redirect URIs and HSTS decisions).
    pub public_url: Option<url::Url>,
    /// Largest accepted request body; larger ones get 413.
    pub body_limit_bytes: usize,
    /// Whole-request deadline; slower requests get 503.
    pub request_timeout_secs: u64,
    /// A request head (line and headers) must arrive within this, or the connection is closed:
    /// a client dripping its headers (slowloris) cannot hold a connection open.
    pub header_read_timeout_secs: u64,
    /// A connection with no traffic for this long is closed. Longer than the request deadline.
    pub idle_timeout_secs: u64,
    /// Open connections one client address may hold (trusted proxies are exempt).
    pub max_connections_per_ip: u32,
    /// Serve HTTP/2 over plain TCP too (clients with prior knowledge, e.g. a proxy in front).
    /// Off: browsers speak HTTP/2 over TLS only.
    pub http2_cleartext: bool,
    /// Send `Strict-Transport-Security`. Forced on when `public_url` is https.
    pub hsts: bool,
    /// Proxies (CIDRs or addresses) whose `Forwarded` / `X-Forwarded-For` headers are
    /// believed. Empty: the peer is the client, and those headers are ignored.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Which header the trusted proxies write: `x-forwarded-for` (nginx, most load balancers)
    /// or `forwarded` (RFC 7239). Only that one is read: a proxy passes the other through
    /// from the client untouched, so believing it would let the client name its address.
    #[serde(default)]
    pub forwarded_header: ForwardedHeader,
    /// HTTPS served by this process (off: plain HTTP, for development or behind a proxy).
    #[serde(default)]
    pub tls: TlsSettings,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    #[default]
    XForwardedFor,
    Forwarded,
}

impl ServerSettings {
    /// `trusted_proxies`, parsed; a bare address is a network of one.
    pub fn trusted_proxy_networks(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        self.trusted_proxies
            .iter()
            .map(|entry| {
                crate::http::parse_network(entry).ok_or_else(|| {
                    ConfigError::new(format!(
                        "server.trusted_proxies: {:?} is neither a CIDR nor an address",
                        entry.trim()
                    ))
                })
            })
            .collect()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://path?mode=rwc`, `sqlite::memory:` or `postgres://...`. Secret: it may hold a
    /// password, so it never appears in `Debug` output or logs.
    pub url: SecretString,
    pub max_connections: u32,
    /// How long the start waits for the database to come up.
    pub connect_timeout_secs: u64,
    /// How long a request waits for a pooled connection; past it, the request answers 503.
    pub acquire_timeout_ms: u64,
    /// Apply pending migrations when the server starts.
    pub migrate_on_start: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// When set, ephemeral state (login flows, revocations, rate limits) lives in Redis and is
    /// shared by every instance; otherwise it stays in this process.
    pub url: Option<SecretString>,
    /// Prefix of every key this service writes, so several services can share one Redis.
    pub key_prefix: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// An `EnvFilter` directive; `RUST_LOG` overrides it.
    pub filter: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// A configuration problem, reported as one line naming the key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl ConfigError {
    pub(crate) fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

impl From<figment::Error> for ConfigError {
    fn from(err: figment::Error) -> Self {
        // Our own wording: the key in the dotted lowercase form the docs use, then the cause and
        // the source (file or variable) it came from. A key that holds a secret never has its
        // value echoed, even when the value is of the wrong type.
        let all: Vec<String> = err
            .into_iter()
            .map(|e| {
                let key = e.path.join(".").to_ascii_lowercase();
                let source = e
                    .metadata
                    .as_ref()
                    .map(|m| format!(" (from {})", m.name))
                    .unwrap_or_default();
                let cause = if is_secret_key(&e.path) {
                    redacted(&e.kind)
                } else {
                    e.kind.to_string()
                };
                if key.is_empty() {
                    format!("{cause}{source}")
                } else {
                    format!("{key}: {cause}{source}")
                }
            })
            .collect();
        Self(all.join("; "))
    }
}

/// `localhost` or a loopback address: reachable from this machine only.
fn is_local_listen_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether the value at `path` is, or may contain, a secret: a secret key itself, or any key
/// above one (figment reports a whole `database` table, or a provider of the internally
/// tagged `auth.providers.<name>`, at that level).
fn is_secret_key(path: &[String]) -> bool {
    let path: Vec<String> = path.iter().map(|p| p.to_ascii_lowercase()).collect();
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    match path.as_slice() {
        [] | ["database" | "redis" | "auth"] | ["auth", "providers", ..] => true,
        ["database" | "redis", "url"] => true,
        _ => path
            .iter()
            .any(|p| *p == "signing_keys" || *p == "client_secret"),
    }
}

/// The cause of an error at a secret key, without the value that was given.
fn redacted(kind: &figment::error::Kind) -> String {
    use figment::error::Kind;
    match kind {
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
            let found = match actual {
                figment::error::Actual::Str(_) | figment::error::Actual::Other(_) => "a string",
                figment::error::Actual::Seq => "a sequence",
                figment::error::Actual::Map => "a map",
                _ => "a value",
            };
            format!("invalid value (not shown: it is a secret): found {found}, expected {expected}")
        }
        Kind::MissingField(_) | Kind::UnknownField(..) | Kind::DuplicateField(_) => {
            kind.to_string()
        }
        _ => "invalid value (not shown: it is a secret)".to_owned(),
    }
}

impl Settings {
    /// Loads the settings for the environment named by `APP_ENV`.
    pub fn load() -> Result<Self, ConfigError> {
        let env = AppEnv::from_env()?;
        ConfigDir::from_env().check()?;
        let settings = Self::from_figment(Self::figment(env), env)?;
        // Development is the default so that `cargo run` just works; a forgotten APP_ENV on a
        // server must not quietly run development settings on the network.
        if std::env::var_os("APP_ENV").is_none() && !is_local_listen_host(&settings.server.host) {
            return Err(ConfigError::new(format!(
                "APP_ENV is not set and server.host is {:?}, which is reachable from other machines: \
                 set APP_ENV=production for a deployment (or APP_ENV=development to serve \
                 development beyond this machine on purpose)",
                settings.server.host
            )));
        }
        Ok(settings)
    }

    /// The layered sources for `env`; callers (tests) may merge overrides on top.
    pub fn figment(env: AppEnv) -> Figment {
        let dir = ConfigDir::from_env();
        let mut figment = Figment::new();
        for name in ["default.toml".to_owned(), format!("{env}.toml")] {
            if let Some(text) = files::built_in(&name) {
                figment = figment.merge(Toml::string(text));
            }
            if let Some(path) = dir.file(&name) {
                figment = figment.merge(Toml::file(path));
            }
        }
        figment
            .merge(platform_env())
            .merge(Env::prefixed("APP__").split("__"))
    }

    pub fn from_figment(figment: Figment, env: AppEnv) -> Result<Self, ConfigError> {
        let mut settings: Settings = figment.extract()?;
        settings.env = env;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let production = self.env == AppEnv::Production;
        self.server.trusted_proxy_networks()?;
        self.auth.validate(production)?;
        self.rate_limit.validate()?;
        if !(1..=36_500).contains(&self.audit.retention_days) {
            return Err(ConfigError::new(
                "audit.retention_days must be between 1 and 36500",
            ));
        }
        if self
            .server
            .public_url
            .as_ref()
            .is_some_and(|u| u.path() != "/" || u.query().is_some())
        {
            return Err(ConfigError::new(
                "server.public_url: give the origin only (scheme, host, port); the service is served at its root",
            ));
        }
        let https_public_url = self
            .server
            .public_url
            .as_ref()
            .is_some_and(|u| u.scheme() == "https");
        self.server.tls.validate()?;
        if self.server.tls.enabled() && self.server.public_url.is_some() && !https_public_url {
            return Err(ConfigError::new(
                "server.public_url: with server.tls on, clients reach the service by https",
            ));
        }
        self.validate_tls_public_url()?;
        if production && !https_public_url {
            return Err(ConfigError::new(
                "server.public_url: production needs the https URL clients reach (cookies are Secure, redirect URIs derive from it)",
            ));
        }
        if self.server.body_limit_bytes == 0 {
            return Err(ConfigError::new(
                "server.body_limit_bytes must be greater than 0",
            ));
        }
        if self.server.request_timeout_secs == 0 {
            return Err(ConfigError::new(
                "server.request_timeout_secs must be greater than 0",
            ));
        }
        if self.server.header_read_timeout_secs == 0 || self.server.max_connections_per_ip == 0 {
            return Err(ConfigError::new(
                "server.header_read_timeout_secs and server.max_connections_per_ip must be greater than 0",
            ));
        }
        // Bounded, so that deadline arithmetic can never overflow.
        let bounded = [
            (
                "request_timeout_secs",
                self.server.request_timeout_secs,
                3_600,
            ),
            (
                "header_read_timeout_secs",
                self.server.header_read_timeout_secs,
                600,
            ),
            ("idle_timeout_secs", self.server.idle_timeout_secs, 86_400),
        ];
        if let Some((key, _, max)) = bounded.iter().find(|(_, value, max)| value > max) {
            return Err(ConfigError::new(format!(
                "server.{key} must be at most {max}"
            )));
        }
        if self.server.idle_timeout_secs <= self.server.request_timeout_secs {
            return Err(ConfigError::new(
                "server.idle_timeout_secs must be longer than server.request_timeout_secs (a request may be silent that long)",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::new(
                "database.max_connections must be greater than 0",
            ));
        }
        let scheme = self
            .database
            .url
            .expose_secret()
            .split(':')
            .next()
            .unwrap_or_default();
        if !matches!(scheme, "sqlite" | "postgres" | "postgresql") {
            return Err(ConfigError::new(
                "database.url must start with sqlite: or postgres:// (other databases are not supported)",
            ));
        }
        let redis_url = self.redis.url.as_ref().map(ExposeSecret::expose_secret);
        if redis_url
            .is_some_and(|url| !(url.starts_with("redis://") || url.starts_with("rediss://")))
        {
            return Err(ConfigError::new(
                "redis.url must start with redis:// or rediss://",
            ));
        }
        Ok(())
    }

    /// What `server.public_url` must be for the TLS settings.
    fn validate_tls_public_url(&self) -> Result<(), ConfigError> {
        let tls = &self.server.tls;
        let public_host = self.server.public_url.as_ref().and_then(|u| u.host_str());
        // Without a public URL the redirect goes to the listening address. A specific one
        // (loopback in development and tests) is an origin; the unspecified address is none:
        // `https://0.0.0.0` would send every browser nowhere.
        let unspecified_host = self
            .server
            .host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified());
        if tls.redirect_http.is_some() && public_host.is_none() && unspecified_host {
            return Err(ConfigError::new(
                "server.public_url: server.tls.redirect_http redirects to it; set it when server.host is 0.0.0.0 or ::",
            ));
        }
        // The certificate is for the ACME domains only: another public host fails every
        // handshake.
        if let (Some(acme), Some(host)) = (&tls.acme, public_host)
            && !acme.domains.iter().any(|d| d.eq_ignore_ascii_case(host))
        {
            return Err(ConfigError::new(format!(
                "server.public_url: its host {host:?} is not among server.tls.acme.domains, so the certificate would not be valid for it"
            )));
        }
        Ok(())
    }

    /// Whether responses should carry HSTS: configured, the public URL is https (as it must be
    /// in production), or production served over TLS by this process. Outside production, TLS
    /// alone does not turn it on: a browser would then refuse plain HTTP to `localhost` (or the
    /// test host) for two years.
    pub fn hsts_enabled(&self) -> bool {
        let https_public_url = self
            .server
            .public_url
            .as_ref()
            .is_some_and(|u| u.scheme() == "https");
        let production = self.env == AppEnv::Production;
        self.server.hsts || https_public_url || (production && self.server.tls.enabled())
    }
}

/// The variables hosting platforms set, mapped onto our keys (empty ones ignored).
fn platform_env() -> Env {
    Env::raw()
        .filter(|key| std::env::var(key.as_str()).is_ok_and(|v| !v.is_empty()))
        .filter_map(|key| match key.as_str().to_ascii_uppercase().as_str() {
            "DATABASE_URL" => Some("database.url".into()),
            "REDIS_URL" => Some("redis.url".into()),
            "PORT" => Some("server.port".into()),
            _ => None,
        })
}
