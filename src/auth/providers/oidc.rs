//! OpenID Connect with the `openidconnect` crate: discovery fetched lazily and cached, PKCE S256,
//! state and nonce, and an ID token validated in full (signature by the issuer's JWKS, `iss`,
//! `aud`, `azp`, `exp`, `iat`, nonce, and an allow-list of asymmetric algorithms: never `none`,
//! never HMAC, so a token "signed" with the public key as an HMAC secret is refused).
//!
//! Discovery and keys are trusted for as long as the provider's `Cache-Control` allows, within
//! bounds ([`super::freshness`]); then both are fetched again before the next use, so a key the
//! provider withdrew stops being accepted. If that fetch fails, logins fail (after a short
//! back-off, fast) rather than trust keys past their time.
use std::time::{Duration, Instant};

use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, LogoutRequest, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl,
    RequestTokenError, Scope, SubjectIdentifier, TokenResponse,
    core::{
        CoreAuthenticationFlow, CoreClient, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
        CoreUserInfoClaims,
    },
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

use super::{
    AuthorizationStart, ExternalIdentity, ProviderError,
    freshness::{Bounds, Observed},
    outbound::ProviderHttp,
};
use crate::config::{OidcProviderSettings, check_outbound_url, is_loopback_host};

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
/// At most one JWKS refresh per this interval on unknown `kid`s, whatever tokens arrive.
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
    metadata: ProviderMetadataWithLogout,
    client: Client,
    /// From here on, discovery and keys are fetched again before they are used.
    expires: Instant,
    /// Counts key changes, so a login that verified with older keys retries with the
    /// current ones instead of fetching again.
    keys_version: u64,
    /// The last fetch an unknown `kid` caused (kept across rediscovery: the limit holds).
    kid_refetched_at: Option<Instant>,
}

#[derive(Default)]
struct Cache {
    discovered: Option<Discovered>,
    failed_at: Option<Instant>,
}

pub struct OidcProvider {
    config: OidcProviderSettings,
    secret: SecretString,
    redirect: url::Url,
    http: ProviderHttp,
    bounds: Bounds,
    /// Held while fetching: one fetch at a time, the others wait for its result.
    cache: Mutex<Cache>,
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
        http: ProviderHttp,
    ) -> Self {
        Self {
            bounds: Bounds::from(&config),
            config,
            secret,
            redirect,
            http,
            cache: Mutex::new(Cache::default()),
        }
    }

    fn client(&self, metadata: ProviderMetadataWithLogout) -> Client {
        CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            Some(ClientSecret::new(self.secret.expose_secret().to_owned())),
        )
        .set_redirect_uri(RedirectUrl::from_url(self.redirect.clone()))
    }

    /// Discovery and keys, fetched again first if they are missing or stale. One request
    /// fetches while the others wait; after a failure, requests fail fast for a few seconds
    /// instead of queueing up behind more fetches of an unreachable issuer.
    async fn discovered(&self) -> Result<MappedMutexGuard<'_, Discovered>, ProviderError> {
        let mut cache = self.cache.lock().await;
        let fresh = cache
            .discovered
            .as_ref()
            .is_some_and(|d| Instant::now() < d.expires);
        if !fresh {
            if cache
                .failed_at
                .is_some_and(|at| at.elapsed() < DISCOVERY_BACKOFF)
            {
                return Err(unavailable("discovery failed moments ago"));
            }
            match self.discover().await {
                Ok(mut discovered) => {
                    if let Some(old) = &cache.discovered {
                        discovered.keys_version = old.keys_version + 1;
                        discovered.kid_refetched_at = old.kid_refetched_at;
                    }
                    cache.discovered = Some(discovered);
                    cache.failed_at = None;
                }
                Err(err) => {
                    cache.failed_at = Some(Instant::now());
                    return Err(err);
                }
            }
        }
        MutexGuard::try_map(cache, |c| c.discovered.as_mut())
            .map_err(|_| unavailable("discovery missing"))
    }

    async fn discover(&self) -> Result<Discovered, ProviderError> {
        // Exactly as configured: the issuer must match the provider's byte for byte.
        let issuer = IssuerUrl::new(self.config.issuer.clone()).map_err(invalid)?;
        let issuer_is_local = is_loopback_host(issuer.url());
        let observed = Observed::new(&self.http, self.bounds);
        let metadata = ProviderMetadataWithLogout::discover_async(issuer, &observed)
            .await
            .map_err(|e| unavailable(error_chain(&e)))?;
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
        if let Some(userinfo) = metadata.userinfo_endpoint() {
            endpoints.push(("userinfo_endpoint", userinfo.url()));
        }
        if let Some(end_session) = &metadata.additional_metadata().end_session_endpoint {
            endpoints.push(("end_session_endpoint", end_session.url()));
        }
        for (what, url) in endpoints {
            check_outbound_url(what, url).map_err(invalid)?;
            if is_loopback_host(url) && !issuer_is_local {
                return Err(invalid(format!(
                    "{what}: a remote issuer named a local endpoint"
                )));
            }
        }
        let client = self.client(metadata.clone());
        Ok(Discovered {
            metadata,
            client,
            expires: Instant::now() + observed.lifetime(),
            keys_version: 0,
            kid_refetched_at: None,
        })
    }

    pub async fn start(&self) -> Result<AuthorizationStart, ProviderError> {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let discovered = self.discovered().await?;
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

    /// RP-Initiated Logout: the provider's `end_session_endpoint` with our `client_id` and
    /// where to come back. No `id_token_hint`: we do not keep ID tokens, so the provider asks
    /// the user to confirm, which is what someone logging out of both wants anyway.
    pub async fn end_session_url(
        &self,
        post_logout: &url::Url,
    ) -> Result<Option<url::Url>, ProviderError> {
        let discovered = self.discovered().await?;
        let Some(endpoint) = discovered
            .metadata
            .additional_metadata()
            .end_session_endpoint
            .clone()
        else {
            return Ok(None);
        };
        Ok(Some(
            LogoutRequest::from(endpoint)
                .set_client_id(ClientId::new(self.config.client_id.clone()))
                .set_post_logout_redirect_uri(PostLogoutRedirectUrl::from_url(post_logout.clone()))
                .http_get_url(),
        ))
    }

    pub async fn finish(
        &self,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
    ) -> Result<ExternalIdentity, ProviderError> {
        // Work on a copy of the client: the lock is held only to read or refresh discovery.
        let (client, keys_version) = {
            let discovered = self.discovered().await?;
            (discovered.client.clone(), discovered.keys_version)
        };
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(invalid)?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                // Not reached, or answered too much: the provider is unavailable, not wrong.
                RequestTokenError::Request(e) => unavailable(format!("token exchange: {e}")),
                e => invalid(format!("token exchange: {e}")),
            })?;
        let id_token = response
            .id_token()
            .ok_or_else(|| invalid("no ID token in the token response"))?;
        let nonce = Nonce::new(nonce.to_owned());
        let mut identity = match verify(&client, id_token, &nonce) {
            Ok(identity) => identity,
            // A key we have not seen: the issuer may have rotated. Refresh the JWKS once (at
            // most once a minute, so forged kids cannot make us hammer the issuer) and retry.
            Err(openidconnect::ClaimsVerificationError::SignatureVerification(
                openidconnect::SignatureVerificationError::NoMatchingKey,
            )) => {
                let client = self.keys_newer_than(keys_version).await?;
                verify(&client, id_token, &nonce).map_err(invalid)?
            }
            Err(e) => return Err(invalid(e)),
        };
        if identity.name.is_none() {
            identity.name = self
                .userinfo_name(&client, response.access_token(), &identity.subject)
                .await;
        }
        Ok(identity)
    }

    /// The `name` from the userinfo endpoint, for providers that leave it out of the ID token.
    /// Only the name: who logged in comes from the validated ID token, and the answer must be
    /// about that same subject. Best effort: if userinfo fails, the user logs in nameless.
    async fn userinfo_name(
        &self,
        client: &Client,
        token: &openidconnect::AccessToken,
        subject: &str,
    ) -> Option<String> {
        let expected = SubjectIdentifier::new(subject.to_owned());
        let request = client.user_info(token.clone(), Some(expected)).ok()?;
        let claims: Result<CoreUserInfoClaims, _> = request.request_async(&self.http).await;
        match claims {
            Ok(claims) => claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_owned()),
            Err(err) => {
                tracing::warn!(error = %error_chain(&err), "userinfo failed; no name taken");
                None
            }
        }
    }

    /// A client with keys newer than `version`: the current ones if they already are (another
    /// request fetched them meanwhile), else freshly fetched, at most once a minute.
    async fn keys_newer_than(&self, version: u64) -> Result<Client, ProviderError> {
        let mut discovered = self.discovered().await?;
        if discovered.keys_version != version
            || discovered
                .kid_refetched_at
                .is_some_and(|at| at.elapsed() < JWKS_REFRESH_INTERVAL)
        {
            return Ok(discovered.client.clone());
        }
        // Counted before the fetch: a failing fetch is limited the same way.
        discovered.kid_refetched_at = Some(Instant::now());
        let observed = Observed::new(&self.http, self.bounds);
        let jwks = CoreJsonWebKeySet::fetch_async(discovered.metadata.jwks_uri(), &observed)
            .await
            .map_err(|e| unavailable(error_chain(&e)))?;
        discovered.metadata = discovered.metadata.clone().set_jwks(jwks);
        discovered.client = self.client(discovered.metadata.clone());
        discovered.keys_version += 1;
        // The new set may ask to be fetched again sooner; never later than planned.
        discovered.expires = discovered.expires.min(Instant::now() + observed.lifetime());
        Ok(discovered.client.clone())
    }
}

/// An error with its causes: `openidconnect` puts the interesting part (the refused address,
/// the size cap) in the source.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut chain = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    chain
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
