//! `[auth]`: our own tokens, and the external identity providers.
use std::{collections::BTreeMap, path::PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// Lifetime of our access tokens (JWT).
    pub access_token_ttl_secs: u64,
    /// Lifetime of the access tokens a program gets for its API key (`POST /oauth/token`):
    /// short, so a leaked one is soon worthless.
    pub client_token_ttl_secs: u64,
    /// Lifetime of a refresh token; each use replaces it with a new one.
    pub refresh_token_ttl_secs: u64,
    /// How long an invitation to a tenant can be accepted.
    pub invitation_ttl_secs: u64,
    /// Absolute lifetime of a session, however often it is refreshed: past it the user logs
    /// in again.
    pub session_max_age_secs: u64,
    /// A refresh token presented again within this many seconds of being spent, while its
    /// session lives, gets a retryable 409 (two tabs refreshing at once), not a revocation.
    pub refresh_reuse_grace_secs: u64,
    /// Keys that sign our access tokens; the first signs, all verify (rotation). Required in
    /// production; in development one is generated under `dev_signing_key_file`.
    #[serde(default)]
    pub signing_keys: Vec<SigningKeySettings>,
    /// Where development keeps its generated key (never used in production).
    pub dev_signing_key_file: PathBuf,
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderSettings>,
}

/// An Ed25519 private key in PKCS#8 PEM, given inline (from the environment) or as a file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKeySettings {
    pub kid: String,
    pub private_key_pem: Option<SecretString>,
    pub private_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
#[allow(clippy::large_enum_variant)] // read once at start-up; boxing would only obscure it
pub enum ProviderSettings {
    /// Any OpenID Connect issuer with discovery (Google, Microsoft Entra, Keycloak, ...).
    Oidc(OidcProviderSettings),
    /// GitHub's plain OAuth2 (no OIDC): identity from its REST API.
    Github(GithubProviderSettings),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcProviderSettings {
    /// Shown on the login page.
    pub display_name: Option<String>,
    /// Exactly as the provider spells it (some end in `/`, most do not).
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    pub client_secret_file: Option<PathBuf>,
    #[serde(default = "default_oidc_scopes")]
    pub scopes: Vec<String>,
    /// The provider lives on a private network (loopback, RFC 1918, link-local, ...): allow
    /// connecting there. Off, only public addresses are reached, whatever DNS answers.
    #[serde(default)]
    pub allow_private_network: bool,
    /// Discovery and signing keys are fetched again after the provider's `Cache-Control:
    /// max-age`, kept within these bounds (and after `refresh_default_secs` when it sends
    /// none), so a key the provider withdrew stops being trusted.
    #[serde(default = "default_refresh_min_secs")]
    pub refresh_min_secs: u64,
    #[serde(default = "default_refresh_max_secs")]
    pub refresh_max_secs: u64,
    #[serde(default = "default_refresh_default_secs")]
    pub refresh_default_secs: u64,
    /// Sign in as the existing user who holds the verified address (see [`Linking`]).
    #[serde(default)]
    pub link_verified_email: bool,
    #[serde(default)]
    pub allowed_email_domains: Vec<String>,
    /// Offer to end the provider's own session too on logout (OpenID RP-Initiated Logout, at
    /// the `end_session_endpoint` its discovery names), so the next login asks again. Register
    /// `<public_url>/` as a post-logout redirect URI with the provider.
    #[serde(default)]
    pub end_session: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubProviderSettings {
    pub display_name: Option<String>,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    pub client_secret_file: Option<PathBuf>,
    #[serde(default = "github_auth_url")]
    pub auth_url: url::Url,
    #[serde(default = "github_token_url")]
    pub token_url: url::Url,
    #[serde(default = "github_api_url")]
    pub api_url: url::Url,
    /// As for OIDC providers: GitHub Enterprise on a private network needs it.
    #[serde(default)]
    pub allow_private_network: bool,
    /// Sign in as the existing user who holds the verified address (see [`Linking`]).
    #[serde(default)]
    pub link_verified_email: bool,
    #[serde(default)]
    pub allowed_email_domains: Vec<String>,
}

/// Whether a provider's verified address may sign in as the existing user who holds it.
/// Off by default: one provider that lets its users mark any address verified (a
/// self-service realm, a stale GitHub address) would otherwise take over that account. With
/// it off, a new identity is a new user.
#[derive(Debug, Clone, Default)]
pub struct Linking {
    pub link_verified_email: bool,
    /// When set, only addresses in these domains link (e.g. the company's own domain).
    pub allowed_email_domains: Vec<String>,
}

impl Linking {
    /// Whether this verified address may link to the user who holds it.
    pub fn allows(&self, email: &str) -> bool {
        let Some((_, domain)) = email.rsplit_once('@') else {
            return false;
        };
        self.link_verified_email
            && (self.allowed_email_domains.is_empty()
                || self
                    .allowed_email_domains
                    .iter()
                    .any(|d| d.trim_start_matches('@').eq_ignore_ascii_case(domain)))
    }
}

fn default_oidc_scopes() -> Vec<String> {
    vec!["openid".into(), "email".into(), "profile".into()]
}

/// Five minutes: no provider can make us fetch on every login.
pub const REFRESH_MIN_SECS: u64 = 300;
/// A day: no provider can make us trust a withdrawn key for longer.
pub const REFRESH_MAX_SECS: u64 = 86_400;

fn default_refresh_min_secs() -> u64 {
    REFRESH_MIN_SECS
}

fn default_refresh_max_secs() -> u64 {
    REFRESH_MAX_SECS
}

/// An hour when the provider sends no `max-age`: a withdrawn key is trusted at most that long.
fn default_refresh_default_secs() -> u64 {
    3600
}

fn parse_url(s: &str) -> url::Url {
    url::Url::parse(s).unwrap_or_else(|_| unreachable!("a constant URL"))
}

fn github_auth_url() -> url::Url {
    parse_url("https://github.com/login/oauth/authorize")
}

fn github_token_url() -> url::Url {
    parse_url("https://github.com/login/oauth/access_token")
}

fn github_api_url() -> url::Url {
    parse_url("https://api.github.com")
}

/// A secret given inline or as a file (for container secrets); exactly one of the two.
pub fn resolve_secret(
    key: &str,
    inline: Option<&SecretString>,
    file: Option<&PathBuf>,
) -> Result<SecretString, ConfigError> {
    match (inline, file) {
        (Some(value), None) => Ok(value.clone()),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(|s| SecretString::from(s.trim().to_owned()))
            .map_err(|e| {
                ConfigError::new(format!("{key}_file: cannot read {}: {e}", path.display()))
            }),
        (Some(_), Some(_)) => Err(ConfigError::new(format!(
            "{key}: give the value or a file, not both"
        ))),
        (None, None) => Err(ConfigError::new(format!(
            "{key}: missing (set it or {key}_file)"
        ))),
    }
}

/// Outbound identity-provider URLs must be https, except loopback (local development and the
/// test fakes), so a misconfiguration cannot send client secrets in clear over a network.
/// Which addresses may be reached at all is decided when connecting (`allow_private_network`).
pub fn check_outbound_url(key: &str, url: &url::Url) -> Result<(), ConfigError> {
    if url.scheme() == "https" || (url.scheme() == "http" && is_loopback_host(url)) {
        Ok(())
    } else {
        Err(ConfigError::new(format!(
            "{key}: must be an https URL (http only for localhost)"
        )))
    }
}

/// A loopback host as written in a URL (`localhost`, `*.localhost`, 127/8, `::1`). This is about
/// spelling only; the connection-time guard judges the addresses a name resolves to.
pub fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl AuthSettings {
    pub fn access_ttl(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.access_token_ttl_secs)
    }

    pub fn refresh_ttl(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.refresh_token_ttl_secs)
    }

    pub fn invitation_ttl(&self) -> chrono::Duration {
        chrono::Duration::seconds(i64::try_from(self.invitation_ttl_secs).unwrap_or(604_800))
    }

    pub fn session_max_age(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.session_max_age_secs)
    }

    pub fn refresh_reuse_grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.refresh_reuse_grace_secs)
    }

    /// How long a revocation must be remembered: past the expiry of any access token the
    /// session could still hold, plus the verifier's clock leeway.
    pub fn revocation_ttl(&self) -> std::time::Duration {
        self.access_ttl() + std::time::Duration::from_secs(30)
    }

    pub(super) fn validate(&self, production: bool) -> Result<(), ConfigError> {
        if self.access_token_ttl_secs == 0 || self.access_token_ttl_secs > 3600 {
            return Err(ConfigError::new(
                "auth.access_token_ttl_secs must be 1 to 3600",
            ));
        }
        if self.client_token_ttl_secs == 0 || self.client_token_ttl_secs > 3600 {
            return Err(ConfigError::new(
                "auth.client_token_ttl_secs must be 1 to 3600",
            ));
        }
        if self.refresh_token_ttl_secs < self.access_token_ttl_secs {
            return Err(ConfigError::new(
                "auth.refresh_token_ttl_secs must be at least the access token's",
            ));
        }
        if self.session_max_age_secs < self.access_token_ttl_secs {
            return Err(ConfigError::new(
                "auth.session_max_age_secs must be at least the access token's lifetime",
            ));
        }
        if self.invitation_ttl_secs == 0 || self.invitation_ttl_secs > 90 * 24 * 3600 {
            return Err(ConfigError::new(
                "auth.invitation_ttl_secs must be 1 second to 90 days",
            ));
        }
        if self.refresh_reuse_grace_secs > 60 {
            return Err(ConfigError::new(
                "auth.refresh_reuse_grace_secs must be at most 60 (reuse detection is off meanwhile)",
            ));
        }
        if production && self.signing_keys.is_empty() {
            return Err(ConfigError::new(
                "auth.signing_keys: production needs configured signing keys (development keys are never used there)",
            ));
        }
        for (i, key) in self.signing_keys.iter().enumerate() {
            resolve_secret(
                &format!("auth.signing_keys[{i}].private_key"),
                key.private_key_pem.as_ref(),
                key.private_key_file.as_ref(),
            )?;
        }
        for (name, provider) in &self.providers {
            let valid_name = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !valid_name {
                return Err(ConfigError::new(format!(
                    "auth.providers.{name}: names are lowercase a-z, 0-9, -"
                )));
            }
            let key = format!("auth.providers.{name}");
            match provider {
                ProviderSettings::Oidc(p) => {
                    let issuer = url::Url::parse(&p.issuer)
                        .map_err(|e| ConfigError::new(format!("{key}.issuer: not a URL: {e}")))?;
                    check_outbound_url(&format!("{key}.issuer"), &issuer)?;
                    resolve_secret(
                        &format!("{key}.client_secret"),
                        p.client_secret.as_ref(),
                        p.client_secret_file.as_ref(),
                    )?;
                    if !p.scopes.iter().any(|s| s == "openid") {
                        return Err(ConfigError::new(format!(
                            "{key}.scopes must include openid"
                        )));
                    }
                    p.validate_refresh(&key, production)?;
                }
                ProviderSettings::Github(p) => {
                    for (field, url) in [
                        ("auth_url", &p.auth_url),
                        ("token_url", &p.token_url),
                        ("api_url", &p.api_url),
                    ] {
                        check_outbound_url(&format!("{key}.{field}"), url)?;
                    }
                    resolve_secret(
                        &format!("{key}.client_secret"),
                        p.client_secret.as_ref(),
                        p.client_secret_file.as_ref(),
                    )?;
                }
            }
        }
        Ok(())
    }
}

impl OidcProviderSettings {
    /// Shorter bounds than the defaults exist for tests and local experiments; production
    /// keeps the five-minute floor (the provider is not ours to hammer) and the one-day cap.
    fn validate_refresh(&self, key: &str, production: bool) -> Result<(), ConfigError> {
        let (min, max, default) = (
            self.refresh_min_secs,
            self.refresh_max_secs,
            self.refresh_default_secs,
        );
        if min > max || default < min || default > max || max > REFRESH_MAX_SECS {
            return Err(ConfigError::new(format!(
                "{key}: refresh_min_secs <= refresh_default_secs <= refresh_max_secs <= {REFRESH_MAX_SECS}"
            )));
        }
        if production && min < REFRESH_MIN_SECS {
            return Err(ConfigError::new(format!(
                "{key}.refresh_min_secs: at least {REFRESH_MIN_SECS} in production"
            )));
        }
        Ok(())
    }
}

impl ProviderSettings {
    pub fn allow_private_network(&self) -> bool {
        match self {
            ProviderSettings::Oidc(p) => p.allow_private_network,
            ProviderSettings::Github(p) => p.allow_private_network,
        }
    }

    pub fn linking(&self) -> Linking {
        let (link, domains) = match self {
            ProviderSettings::Oidc(p) => (p.link_verified_email, &p.allowed_email_domains),
            ProviderSettings::Github(p) => (p.link_verified_email, &p.allowed_email_domains),
        };
        Linking {
            link_verified_email: link,
            allowed_email_domains: domains.clone(),
        }
    }

    /// Whether logout offers to end the provider's session too (OIDC only).
    pub fn end_session(&self) -> bool {
        match self {
            ProviderSettings::Oidc(p) => p.end_session,
            ProviderSettings::Github(_) => false,
        }
    }

    pub fn display_name(&self, name: &str) -> String {
        let configured = match self {
            ProviderSettings::Oidc(p) => p.display_name.clone(),
            ProviderSettings::Github(p) => p.display_name.clone(),
        };
        configured.unwrap_or_else(|| name.to_owned())
    }

    pub fn client_secret(&self, name: &str) -> Result<SecretString, ConfigError> {
        let key = format!("auth.providers.{name}.client_secret");
        match self {
            ProviderSettings::Oidc(p) => resolve_secret(
                &key,
                p.client_secret.as_ref(),
                p.client_secret_file.as_ref(),
            ),
            ProviderSettings::Github(p) => resolve_secret(
                &key,
                p.client_secret.as_ref(),
                p.client_secret_file.as_ref(),
            ),
        }
    }
}

impl SigningKeySettings {
    pub fn pem(&self, index: usize) -> Result<String, ConfigError> {
        let key = format!("auth.signing_keys[{index}].private_key");
        resolve_secret(
            &key,
            self.private_key_pem.as_ref(),
            self.private_key_file.as_ref(),
        )
        .map(|s| s.expose_secret().to_owned())
    }
}
