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
    /// Lifetime of a refresh token; each use replaces it with a new one.
    pub refresh_token_ttl_secs: u64,
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
}

fn default_oidc_scopes() -> Vec<String> {
    vec!["openid".into(), "email".into(), "profile".into()]
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
pub fn check_outbound_url(key: &str, url: &url::Url) -> Result<(), ConfigError> {
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    if url.scheme() == "https" || (url.scheme() == "http" && loopback) {
        Ok(())
    } else {
        Err(ConfigError::new(format!(
            "{key}: must be an https URL (http only for localhost)"
        )))
    }
}

impl AuthSettings {
    pub fn access_ttl(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.access_token_ttl_secs)
    }

    pub fn refresh_ttl(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.refresh_token_ttl_secs)
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

impl ProviderSettings {
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
