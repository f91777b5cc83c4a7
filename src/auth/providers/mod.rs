//! External identity providers: OpenID Connect issuers and GitHub's plain OAuth2.
//!
//! Outbound calls go only to configured URLs and the endpoints the configured issuer's
//! discovery document names, through [`outbound::ProviderHttp`]: timeouts, no redirects, public
//! addresses only unless the provider is on a private network, and a cap on answer sizes.
use std::{collections::BTreeMap, sync::Arc};

use anyhow::Context;
use secrecy::SecretString;

use crate::config::{ProviderSettings, Settings};

mod freshness;
mod github;
mod oidc;
mod outbound;

pub use github::GithubProvider;
pub use oidc::OidcProvider;

/// Who the provider says logged in.
#[derive(Debug, Clone)]
pub struct ExternalIdentity {
    pub subject: String,
    pub email: Option<String>,
    /// Only an address the provider says it verified may link accounts or accept invitations.
    pub email_verified: bool,
    pub name: Option<String>,
}

/// What the login redirect carries, and what the callback needs back (kept server-side).
pub struct AuthorizationStart {
    pub url: url::Url,
    pub state: String,
    pub pkce_verifier: String,
    pub nonce: Option<String>,
}

/// Why a callback failed; the detail is logged, the client learns only that it failed.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("the identity provider is unreachable: {0}")]
    Unavailable(String),
    #[error("the identity provider's answer failed validation: {0}")]
    Invalid(String),
}

pub enum Provider {
    Oidc(Box<OidcProvider>),
    Github(Box<GithubProvider>),
}

impl Provider {
    pub async fn start(&self) -> Result<AuthorizationStart, ProviderError> {
        match self {
            Provider::Oidc(p) => p.start().await,
            Provider::Github(p) => Ok(p.start()),
        }
    }

    pub async fn finish(
        &self,
        code: &str,
        pkce_verifier: &str,
        nonce: Option<&str>,
    ) -> Result<ExternalIdentity, ProviderError> {
        match self {
            Provider::Oidc(p) => {
                p.finish(code, pkce_verifier, nonce.unwrap_or_default())
                    .await
            }
            Provider::Github(p) => p.finish(code, pkce_verifier).await,
        }
    }

    /// Where to send the browser to end its session at the provider, coming back to
    /// `post_logout`; `None` where the provider offers no such endpoint.
    pub async fn end_session_url(
        &self,
        post_logout: &url::Url,
    ) -> Result<Option<url::Url>, ProviderError> {
        match self {
            Provider::Oidc(p) => p.end_session_url(post_logout).await,
            Provider::Github(_) => Ok(None),
        }
    }
}

pub struct ProviderEntry {
    pub name: String,
    pub display_name: String,
    pub provider: Provider,
    /// Whether its verified addresses sign in as the existing users who hold them.
    pub linking: crate::config::Linking,
    /// Whether logout offers to end the provider's session too.
    pub end_session: bool,
}

/// The configured providers, by name.
pub struct Providers {
    by_name: BTreeMap<String, Arc<ProviderEntry>>,
}

impl Providers {
    pub fn from_settings(settings: &Settings, public_url: &url::Url) -> anyhow::Result<Self> {
        let mut by_name = BTreeMap::new();
        for (name, config) in &settings.auth.providers {
            let redirect = public_url
                .join(&format!("/auth/callback/{name}"))
                .with_context(|| format!("auth.providers.{name}: redirect URI"))?;
            let secret: SecretString = config.client_secret(name)?;
            let http = outbound::ProviderHttp::new(config.allow_private_network())?;
            let provider = match config {
                ProviderSettings::Oidc(c) => Provider::Oidc(Box::new(OidcProvider::new(
                    c.clone(),
                    secret,
                    redirect,
                    http,
                ))),
                ProviderSettings::Github(c) => Provider::Github(Box::new(GithubProvider::new(
                    c.clone(),
                    secret,
                    redirect,
                    http,
                )?)),
            };
            let entry = ProviderEntry {
                name: name.clone(),
                display_name: config.display_name(name),
                provider,
                linking: config.linking(),
                end_session: config.end_session(),
            };
            by_name.insert(name.clone(), Arc::new(entry));
        }
        Ok(Self { by_name })
    }

    pub fn get(&self, name: &str) -> Option<Arc<ProviderEntry>> {
        self.by_name.get(name).cloned()
    }

    pub fn all(&self) -> impl Iterator<Item = &ProviderEntry> {
        self.by_name.values().map(AsRef::as_ref)
    }
}
