//! GitHub: plain OAuth2 (the `oauth2` client) with state and PKCE; identity from `/user`, the
//! address from `/user/emails` (primary and verified only).
//!
//! GitHub answers token errors with status 200 and an `error` field. The HTTP client below
//! turns those into 400s so the `oauth2` client reports them as the errors they are.
use std::{future::Future, pin::Pin};

use anyhow::Context;
use openidconnect::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    HttpRequest, HttpResponse, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RequestTokenError, Scope, TokenUrl, http,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{
    AuthorizationStart, ExternalIdentity, ProviderError,
    outbound::{OutboundError, ProviderHttp},
};
use crate::config::GithubProviderSettings;

type Client = oauth2::basic::BasicClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

pub struct GithubProvider {
    client: Client,
    api: url::Url,
    http: ProviderHttp,
}

#[derive(Deserialize)]
struct User {
    id: u64,
    login: String,
    name: Option<String>,
}

#[derive(Deserialize)]
struct Email {
    email: String,
    primary: bool,
    verified: bool,
}

fn invalid(e: impl std::fmt::Display) -> ProviderError {
    ProviderError::Invalid(e.to_string())
}

fn unavailable(e: impl std::fmt::Display) -> ProviderError {
    ProviderError::Unavailable(e.to_string())
}

/// Sends through `http`, reporting GitHub's `200 {"error": ...}` as a 400.
type HttpResult = Result<HttpResponse, OutboundError>;

fn github_http(
    http: ProviderHttp,
) -> impl Fn(HttpRequest) -> Pin<Box<dyn Future<Output = HttpResult> + Send>> {
    move |request: HttpRequest| {
        let http = http.clone();
        Box::pin(async move {
            let mut response = http.send(request).await?;
            let has_error = serde_json::from_slice::<serde_json::Value>(response.body())
                .ok()
                .is_some_and(|v| v.get("error").is_some());
            if response.status().is_success() && has_error {
                *response.status_mut() = openidconnect::http::StatusCode::BAD_REQUEST;
            }
            Ok(response)
        })
    }
}

impl GithubProvider {
    pub fn new(
        config: GithubProviderSettings,
        secret: SecretString,
        redirect: url::Url,
        http: ProviderHttp,
    ) -> anyhow::Result<Self> {
        let client = oauth2::basic::BasicClient::new(ClientId::new(config.client_id.clone()))
            .set_client_secret(ClientSecret::new(secret.expose_secret().to_owned()))
            .set_auth_uri(AuthUrl::from_url(config.auth_url.clone()))
            .set_token_uri(TokenUrl::from_url(config.token_url.clone()))
            .set_redirect_uri(RedirectUrl::from_url(redirect));
        let api = if config.api_url.as_str().ends_with('/') {
            config.api_url.clone()
        } else {
            url::Url::parse(&format!("{}/", config.api_url)).context("auth.providers.*.api_url")?
        };
        Ok(Self { client, api, http })
    }

    pub fn start(&self) -> AuthorizationStart {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state) = self
            .client
            .authorize_url(CsrfToken::new_random)
            .add_scope(Scope::new("read:user".into()))
            .add_scope(Scope::new("user:email".into()))
            .set_pkce_challenge(challenge)
            .url();
        AuthorizationStart {
            url,
            state: state.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            nonce: None,
        }
    }

    pub async fn finish(
        &self,
        code: &str,
        pkce_verifier: &str,
    ) -> Result<ExternalIdentity, ProviderError> {
        let token = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&github_http(self.http.clone()))
            .await
            .map_err(|e| match e {
                // Not reached, or answered too much: GitHub is unavailable, not wrong.
                RequestTokenError::Request(e) => unavailable(format!("token exchange: {e}")),
                e => invalid(format!("token exchange: {e}")),
            })?;
        let bearer = token.access_token().secret().clone();
        let user: User = self.get("user", &bearer).await?;
        let emails: Vec<Email> = self.get("user/emails", &bearer).await?;
        let email = emails.into_iter().find(|e| e.primary && e.verified);
        Ok(ExternalIdentity {
            subject: user.id.to_string(),
            email_verified: email.is_some(),
            email: email.map(|e| e.email.to_lowercase()),
            name: user.name.or(Some(user.login)),
        })
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        bearer: &str,
    ) -> Result<T, ProviderError> {
        let url = self.api.join(path).map_err(invalid)?;
        let request = http::Request::get(url.as_str())
            .header(http::header::AUTHORIZATION, format!("Bearer {bearer}"))
            .header(http::header::ACCEPT, "application/vnd.github+json")
            .header(http::header::USER_AGENT, "ironquill")
            .body(Vec::new())
            .map_err(invalid)?;
        let response = self
            .http
            .send(request)
            .await
            .map_err(|e| unavailable(format!("GitHub {path}: {e}")))?;
        if !response.status().is_success() {
            return Err(invalid(format!("GitHub {path}: {}", response.status())));
        }
        serde_json::from_slice(response.body()).map_err(|e| invalid(format!("GitHub {path}: {e}")))
    }
}
