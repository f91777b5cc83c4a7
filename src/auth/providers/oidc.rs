//! OpenID Connect with the `openidconnect` crate: discovery fetched lazily and cached, PKCE S256,
//! state and nonce, and an ID token validated in full (signature by the issuer's JWKS, `iss`,
//! `aud`, `azp`, `exp`, `iat`, nonce, and an allow-list of asymmetric algorithms: never `none`,
//! never HMAC, so a token "signed" with the public key as an HMAC secret is refused).
use std::time::{Duration, Instant};

use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse,
    core::{
        CoreAuthenticationFlow, CoreClient, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
        CoreProviderMetadata,
    },
    reqwest,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use super::{AuthorizationStart, ExternalIdentity, ProviderError};
use crate::config::{OidcProviderSettings, check_outbound_url};

fn is_loopback(url: &url::Url) -> bool {
    matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
}

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// After a failed discovery, how long logins fail fast before it is tried again.
const DISCOVERY_BACKOFF: Duration = Duration::from_secs(5);
/// At most one JWKS refresh per this interval, whatever tokens arrive.
const JWKS_REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// How far an ID token's `iat` may be from now (clock skew, then staleness).
const IAT_FUTURE_SKEW: i64 = 60;
const IAT_MAX_AGE: i64 = 600;

const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 7] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

struct Discovered {
    metadata: CoreProviderMetadata,
    client: Client,
    jwks_refreshed_at: Option<Instant>,
}

pub struct OidcProvider {
    config: OidcProviderSettings,
    secret: SecretString,
    redirect: url::Url,
    http: reqwest::Client,
    discovered: Mutex<Option<Discovered>>,
    failed_at: std::sync::Mutex<Option<Instant>>,
}

fn unavailable(e: impl std::fmt::Display) -> ProviderError {
    ProviderError::Unavailable(e.to_string())
}

fn invalid(e: impl std::fmt::Display) -> ProviderError {
    ProviderError::Invalid(e.to_string())
}

impl OidcProvider {
    pub fn new(
        config: OidcProviderSettings,
        secret: SecretString,
        redirect: url::Url,
        http: reqwest::Client,
    ) -> Self {
        Self {
            config,
            secret,
            redirect,
            http,
            discovered: Mutex::new(None),
            failed_at: std::sync::Mutex::new(None),
        }
    }

    fn client(&self, metadata: CoreProviderMetadata) -> Result<Client, ProviderError> {
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            Some(ClientSecret::new(self.secret.expose_secret().to_owned())),
        )
        .set_redirect_uri(RedirectUrl::from_url(self.redirect.clone())))
    }

    /// The cached discovery, fetched on first use. One request fetches while the others wait;
    /// after a failure, requests fail fast for a few seconds instead of queueing up behind
    /// more fetches of an unreachable issuer.
    async fn discovered(
        &self,
    ) -> Result<tokio::sync::MutexGuard<'_, Option<Discovered>>, ProviderError> {
        let mut guard = self.discovered.lock().await;
        if guard.is_none() {
            let failed_at = *self
                .failed_at
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if failed_at.is_some_and(|at| at.elapsed() < DISCOVERY_BACKOFF) {
                return Err(unavailable("discovery failed moments ago"));
            }
            match self.discover().await {
                Ok(discovered) => *guard = Some(discovered),
                Err(err) => {
                    *self
                        .failed_at
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
                    return Err(err);
                }
            }
        }
        Ok(guard)
    }

    async fn discover(&self) -> Result<Discovered, ProviderError> {
        // Exactly as configured: the issuer must match the provider's byte for byte.
        let issuer = IssuerUrl::new(self.config.issuer.clone()).map_err(invalid)?;
        let issuer_is_local = is_loopback(issuer.url());
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(unavailable)?;
        // The endpoints the issuer names: https, and on loopback only if the issuer itself
        // is (a remote issuer must not make us send the client secret to a local service).
        let mut endpoints = vec![
            (
                "authorization_endpoint",
                metadata.authorization_endpoint().url(),
            ),
            ("jwks_uri", metadata.jwks_uri().url()),
        ];
        if let Some(token) = metadata.token_endpoint() {
            endpoints.push(("token_endpoint", token.url()));
        }
        for (what, url) in endpoints {
            check_outbound_url(what, url).map_err(invalid)?;
            if is_loopback(url) && !issuer_is_local {
                return Err(invalid(format!(
                    "{what}: a remote issuer named a local endpoint"
                )));
            }
        }
        let client = self.client(metadata.clone())?;
        Ok(Discovered {
            metadata,
            client,
            jwks_refreshed_at: None,
        })
    }

    pub async fn start(&self) -> Result<AuthorizationStart, ProviderError> {
        let guard = self.discovered().await?;
        let discovered = guard
            .as_ref()
            .ok_or_else(|| unavailable("discovery missing"))?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = discovered
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in self.config.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.url();
        Ok(AuthorizationStart {
            url,
            state: state.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            nonce: Some(nonce.secret().clone()),
        })
    }

    pub async fn finish(
        &self,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
    ) -> Result<ExternalIdentity, ProviderError> {
        // Work on a copy of the client: the lock is held only to read or refresh discovery.
        let client = {
            let guard = self.discovered().await?;
            guard
                .as_ref()
                .ok_or_else(|| unavailable("discovery missing"))?
                .client
                .clone()
        };
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(invalid)?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(|e| invalid(format!("token exchange: {e}")))?;
        let id_token = response
            .id_token()
            .ok_or_else(|| invalid("no ID token in the token response"))?;
        let nonce = Nonce::new(nonce.to_owned());
        match verify(&client, id_token, &nonce) {
            Ok(identity) => Ok(identity),
            // A key we have not seen: the issuer may have rotated. Refresh the JWKS once (at
            // most once a minute, so forged kids cannot make us hammer the issuer) and retry.
            Err(openidconnect::ClaimsVerificationError::SignatureVerification(
                openidconnect::SignatureVerificationError::NoMatchingKey,
            )) => {
                let client = self.refresh_jwks().await?;
                verify(&client, id_token, &nonce).map_err(invalid)
            }
            Err(e) => Err(invalid(e)),
        }
    }

    async fn refresh_jwks(&self) -> Result<Client, ProviderError> {
        let mut guard = self.discovered().await?;
        let discovered = guard
            .as_mut()
            .ok_or_else(|| unavailable("discovery missing"))?;
        if discovered
            .jwks_refreshed_at
            .is_some_and(|at| at.elapsed() < JWKS_REFRESH_INTERVAL)
        {
            return Ok(discovered.client.clone());
        }
        discovered.jwks_refreshed_at = Some(Instant::now());
        let jwks = CoreJsonWebKeySet::fetch_async(discovered.metadata.jwks_uri(), &self.http)
            .await
            .map_err(unavailable)?;
        discovered.metadata = discovered.metadata.clone().set_jwks(jwks);
        discovered.client = self.client(discovered.metadata.clone())?;
        Ok(discovered.client.clone())
    }
}

/// Validates the ID token in full and reads the identity from it.
fn verify(
    client: &Client,
    id_token: &openidconnect::core::CoreIdToken,
    nonce: &Nonce,
) -> Result<ExternalIdentity, openidconnect::ClaimsVerificationError> {
    let now = chrono::Utc::now();
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(ALLOWED_ALGS)
        .set_issue_time_verifier_fn(move |iat| {
            let age = (now - iat).num_seconds();
            if age < -IAT_FUTURE_SKEW {
                Err("issued in the future".into())
            } else if age > IAT_MAX_AGE {
                Err("issued too long ago".into())
            } else {
                Ok(())
            }
        });
    let claims = id_token.claims(&verifier, nonce)?;
    // openidconnect leaves `azp` to the client: if present, it must name us.
    if claims
        .authorized_party()
        .is_some_and(|azp| azp.as_str() != client.client_id().as_str())
    {
        return Err(openidconnect::ClaimsVerificationError::InvalidAudience(
            "azp names another client".into(),
        ));
    }
    Ok(ExternalIdentity {
        subject: claims.subject().as_str().to_owned(),
        email: claims.email().map(|e| e.as_str().to_lowercase()),
        email_verified: claims.email_verified() == Some(true),
        name: claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_owned()),
    })
}
