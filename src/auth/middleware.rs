//! The one authentication path: resolves the [`Principal`] of every request to `/api/...` (and
//! to logout), or refuses.
//!
//! Accepted: `Authorization: apikey <key>`; `X-API-Key: <key>` (the key alone, as the CLI prints
//! it: what the docs UI and many tools send); HTTP Basic with user `apikey` and the key as
//! password; `Authorization: Bearer <access token>`; and the access token cookie. A request
//! with both `Authorization` and `X-API-Key` is refused rather than guessed at. Every failure
//! (a key used from outside its `allowed_ips` too) is the same 401, so a client cannot learn
//! which part of its credential was wrong. A cookie is sent by the browser on its own, so
//! unsafe methods authenticated by cookie also need CSRF proof: the `X-CSRF-Token` header
//! matching the CSRF cookie, or an `Origin` / `Sec-Fetch-Site` showing the request comes from
//! this site.
use std::{borrow::Cow, net::IpAddr, sync::Arc};

use chrono::Utc;
use poem::{Endpoint, Middleware, Request, Result, http::header};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::{
    Credential, Principal, SessionGrant, TokenUse,
    api_keys::{KeyVerifier, VerifyError},
    cookies,
    dpop::{self, ProofError},
    permissions::{Permission, Permissions},
    sessions,
    tokens::{AccessClaims, Holder, Rejected, TokenIssuer},
};
use crate::{
    domain::audit::{self, AuditLog},
    error::ApiError,
    http::ClientIp,
    http::audit_context,
    ratelimit::{self, RateLimiter},
    store::{EphemeralStore, Store, StoreError},
    telemetry::metrics,
};

/// Paths under this prefix require a principal. (`/auth/logout` and `/auth/logout-all`
/// resolve their caller themselves: an expired access token can still log out, and a page's
/// form sends its CSRF token in a field, which only the handler reads.)
pub const PROTECTED_PREFIX: &str = "/api/";

/// Everything needed to turn a request into a principal.
pub struct Authenticator {
    pub keys: Arc<KeyVerifier>,
    pub tokens: Arc<TokenIssuer>,
    pub store: Store,
    /// Failed authentications count against the client address.
    pub limiter: Arc<RateLimiter>,
    /// And are recorded (sampled) in the audit trail.
    pub audit: Arc<AuditLog>,
    /// `scheme://host[:port]` of `server.public_url`, for the Origin check.
    pub origin: String,
}

/// Borrowed from the request's headers (a key in HTTP Basic is decoded, so owned).
enum Presented<'a> {
    ApiKey(Cow<'a, str>),
    Bearer(&'a str),
    /// `Authorization: DPoP <token>`: a token bound to the client's key, with a proof.
    Dpop(&'a str),
    Cookie(String),
}

impl Presented<'_> {
    /// The credential kind, as metrics and the audit trail name it.
    fn kind(&self) -> &'static str {
        match self {
            Presented::ApiKey(_) => "api_key",
            Presented::Bearer(_) => "bearer",
            Presented::Dpop(_) => "dpop",
            Presented::Cookie(_) => "cookie",
        }
    }
}

/// The API key header beside `Authorization: apikey`.
pub const X_API_KEY: &str = "x-api-key";

/// The credential a request presents (`Ok(None)`: none usable), or the 400 for one that
/// presents two ways at once.
fn presented(req: &Request) -> Result<Option<Presented<'_>>, ApiError> {
    let headers = req.headers();
    let mut api_keys = headers.get_all(X_API_KEY).iter();
    match (headers.get(header::AUTHORIZATION), api_keys.next()) {
        (Some(_), Some(_)) => Err(ApiError::BadRequest(
            "send one credential: Authorization or X-API-Key, not both".into(),
        )),
        (None, Some(_)) if api_keys.next().is_some() => Err(ApiError::BadRequest(
            "send one credential: X-API-Key more than once".into(),
        )),
        (None, Some(key)) => Ok(key
            .to_str()
            .ok()
            .map(|key| Presented::ApiKey(Cow::Borrowed(key.trim())))),
        (Some(authorization), None) => Ok(from_authorization(authorization)),
        (None, None) => Ok(req
            .cookie()
            .get(cookies::ACCESS)
            .map(|c| Presented::Cookie(c.value_str().to_owned()))),
    }
}

fn from_authorization(value: &header::HeaderValue) -> Option<Presented<'_>> {
    let (scheme, rest) = value.to_str().ok()?.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("apikey") {
        return Some(Presented::ApiKey(Cow::Borrowed(rest)));
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(Presented::Bearer(rest));
    }
    if scheme.eq_ignore_ascii_case(dpop::SCHEME) {
        return Some(Presented::Dpop(rest));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let (user, key) = super::basic_credentials(rest)?;
        return (user == "apikey").then_some(Presented::ApiKey(Cow::Owned(key)));
    }
    None
}

/// Set by the outermost middleware on every request; without it a confined key is refused.
fn client_ip(req: &Request) -> Option<IpAddr> {
    req.extensions().get::<ClientIp>().map(|c| c.0)
}

fn store_down(err: StoreError) -> ApiError {
    // Fail closed: if revocations cannot be checked, nobody gets in.
    tracing::error!(error = %err, "credential check impossible: store unavailable");
    ApiError::Unavailable("authentication is temporarily unavailable".into())
}

/// How an access token came.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Carrier {
    Bearer,
    Dpop,
    Cookie,
}

/// Why a presented credential was refused.
enum Refusal {
    /// Wrong, forged, revoked or unknown (the reason, for metrics and the audit trail): counts
    /// as a failed authentication.
    Failed(&'static str),
    /// Genuine but expired: routine for every client, so it is not counted.
    Expired,
    /// A DPoP-bound token without its valid proof (counted as failed): `error` for the
    /// `WWW-Authenticate: DPoP` challenge.
    Dpop {
        error: &'static str,
        reason: &'static str,
    },
    Error(ApiError),
}

/// A key's verification as the principal or the refusal (`reason` for a refused key).
fn key_refusal(
    verified: Result<Option<Principal>, VerifyError>,
    reason: &'static str,
) -> Result<Principal, Refusal> {
    match verified {
        Ok(Some(principal)) => Ok(principal),
        Ok(None) => Err(Refusal::Failed(reason)),
        Err(VerifyError::Store(err)) => Err(Refusal::Error(store_down(err))),
        Err(VerifyError::Db(err)) => Err(Refusal::Error(err.into())),
    }
}

impl Authenticator {
    /// The principal of a request, or the error to answer with. A wrong credential counts
    /// against the client address ([`RateLimiter::failed`]).
    pub async fn resolve(&self, req: &Request) -> Result<Principal, ApiError> {
        let presented = presented(req)?.ok_or(ApiError::Unauthorized)?;
        let credential = presented.kind();
        match self.principal(presented, req).await {
            Ok(principal) => Ok(principal),
            Err(Refusal::Failed(reason)) => {
                self.failed(req, credential, reason).await;
                Err(ApiError::Unauthorized)
            }
            Err(Refusal::Dpop { error, reason }) => {
                self.failed(req, credential, reason).await;
                Err(ApiError::DpopUnauthorized { error })
            }
            Err(Refusal::Expired) => {
                metrics::auth_failure(credential, "expired");
                Err(ApiError::Unauthorized)
            }
            Err(Refusal::Error(err)) => Err(err),
        }
    }

    /// A failed authentication from the request's client address: counted in the metrics and
    /// against the address's failed-authentication quota.
    pub async fn failed(&self, req: &Request, credential: &'static str, reason: &'static str) {
        metrics::auth_failure(credential, reason);
        let event = audit::Event::failure(audit::action::AUTHENTICATION_FAILED)
            .detail(serde_json::json!({ "credential": credential, "reason": reason }));
        let key = format!(
            "authn:{}:{credential}:{reason}",
            ratelimit::sampling_key(req)
        );
        self.audit.sampled(key, &audit_context(req), event).await;
        self.limiter.failed(&ratelimit::client_of(req)).await;
    }

    async fn principal(
        &self,
        presented: Presented<'_>,
        req: &Request,
    ) -> Result<Principal, Refusal> {
        let client = client_ip(req);
        match presented {
            Presented::ApiKey(key) => key_refusal(self.keys.verify(&key, client).await, "rejected"),
            Presented::Bearer(token) => self.access_token(token, Carrier::Bearer, req).await,
            Presented::Dpop(token) => self.access_token(token, Carrier::Dpop, req).await,
            Presented::Cookie(token) => self.access_token(&token, Carrier::Cookie, req).await,
        }
    }

    async fn access_token(
        &self,
        token: &str,
        carrier: Carrier,
        req: &Request,
    ) -> Result<Principal, Refusal> {
        let claims = self
            .tokens
            .verify(token)
            .map_err(|rejected| match rejected {
                Rejected::Expired => Refusal::Expired,
                Rejected::Invalid => Refusal::Failed("invalid"),
            })?;
        match (claims.holder(), carrier) {
            (Some(Holder::Session(sid)), Carrier::Bearer | Carrier::Cookie) => {
                self.session(&claims, sid, carrier == Carrier::Cookie).await
            }
            // A machine token comes in the Authorization header only: no cookie ever holds one.
            (
                Some(Holder::Client {
                    lookup_id,
                    scope,
                    jkt,
                }),
                Carrier::Bearer | Carrier::Dpop,
            ) => {
                self.possession(token, jkt, carrier, req).await?;
                let used = TokenUse {
                    jti: claims.jti,
                    exp: claims.exp,
                    jkt: jkt.map(str::to_owned),
                };
                self.machine(lookup_id, scope, used, client_ip(req)).await
            }
            _ => Err(Refusal::Failed("invalid")),
        }
    }

    /// A token bound to a DPoP key comes as `Authorization: DPoP` with a valid proof of that
    /// key for this request and token (RFC 9449 §7); an unbound one as `Bearer` only.
    async fn possession(
        &self,
        token: &str,
        jkt: Option<&str>,
        carrier: Carrier,
        req: &Request,
    ) -> Result<(), Refusal> {
        let invalid_token = Refusal::Dpop {
            error: "invalid_token",
            reason: "dpop_scheme",
        };
        let invalid_proof = |reason| Refusal::Dpop {
            error: "invalid_dpop_proof",
            reason,
        };
        let bound_to = match (jkt, carrier) {
            (None, Carrier::Dpop) | (Some(_), Carrier::Bearer | Carrier::Cookie) => {
                return Err(invalid_token);
            }
            (None, _) => return Ok(()),
            (Some(jkt), Carrier::Dpop) => jkt,
        };
        let mut proofs = req.headers().get_all(dpop::HEADER).iter();
        let (Some(proof), None) = (proofs.next(), proofs.next()) else {
            return Err(invalid_proof("dpop_proof_missing"));
        };
        let proof = proof
            .to_str()
            .map_err(|_| invalid_proof("dpop_proof_invalid"))?;
        let url = format!("{}{}", self.tokens.issuer(), req.uri().path());
        let expected = dpop::Expected {
            method: req.method().as_str(),
            url: &url,
            access_token: Some(token),
        };
        match dpop::verify(&self.store, proof, &expected).await {
            Ok(jkt) if jkt == bound_to => Ok(()),
            Ok(_) => Err(invalid_proof("dpop_other_key")),
            Err(ProofError::Invalid(why)) => {
                tracing::debug!(why, "DPoP proof refused");
                Err(invalid_proof("dpop_proof_invalid"))
            }
            Err(ProofError::Store(err)) => Err(Refusal::Error(store_down(err))),
        }
    }

    /// A machine token is as good as its key right now (revoked, rotated, expired or out of
    /// its `allowed_ips`: refused), narrowed to the token's scope.
    async fn machine(
        &self,
        lookup_id: &str,
        scope: &str,
        used: TokenUse,
        client: Option<IpAddr>,
    ) -> Result<Principal, Refusal> {
        let mut principal = key_refusal(
            self.keys.verify_issued_to(lookup_id, client).await,
            "revoked",
        )?;
        let scope = Permissions::from_scope(scope).map_err(|_| Refusal::Failed("invalid"))?;
        if let Credential::ApiKey(grant) = &mut principal.credential {
            grant.permissions = grant
                .permissions
                .intersection(&scope)
                .ok_or(Refusal::Failed("invalid"))?;
            grant.via_token = Some(used);
        }
        Ok(principal)
    }

    async fn session(
        &self,
        claims: &AccessClaims,
        sid: Uuid,
        via_cookie: bool,
    ) -> Result<Principal, Refusal> {
        // The session and this token's revocation markers, in one round trip.
        let revoked = self
            .store
            .any_exists(&[
                &sessions::revoked_session_key(sid),
                &sessions::revoked_token_key(claims.jti),
            ])
            .await
            .map_err(|err| Refusal::Error(store_down(err)))?;
        if revoked {
            return Err(Refusal::Failed("revoked"));
        }
        Ok(Principal {
            user_id: claims.sub,
            credential: Credential::Session(SessionGrant {
                session_id: sid,
                token_id: claims.jti,
                expires_at: claims.exp,
                via_cookie,
            }),
        })
    }

    /// For unsafe methods on cookie authentication: proof that this site sent the request.
    pub fn csrf_ok(&self, req: &Request) -> bool {
        let header_str = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        if header_str("sec-fetch-site") == Some("same-origin") {
            return true;
        }
        if header_str("origin").is_some_and(|o| o == self.origin) {
            return true;
        }
        header_str("x-csrf-token").is_some_and(|sent| Self::matches_csrf_cookie(req, sent))
    }

    /// [`Self::csrf_ok`], or the token a form sent in a field (a plain HTML form cannot set
    /// the header; the page rendered the cookie's value into the form).
    pub fn csrf_ok_with_form(&self, req: &Request, form_token: Option<&str>) -> bool {
        self.csrf_ok(req) || form_token.is_some_and(|sent| Self::matches_csrf_cookie(req, sent))
    }

    /// The double submit: `sent` equals the CSRF cookie, compared in constant time.
    fn matches_csrf_cookie(req: &Request, sent: &str) -> bool {
        req.cookie().get(cookies::CSRF).is_some_and(|cookie| {
            !sent.is_empty() && bool::from(sent.as_bytes().ct_eq(cookie.value_str().as_bytes()))
        })
    }

    /// Seconds until this session's access token expires (how long revocations must last).
    pub fn remaining(grant: &SessionGrant) -> std::time::Duration {
        std::time::Duration::from_secs(
            u64::try_from(grant.expires_at - Utc::now().timestamp())
                .unwrap_or(0)
                .max(1),
        )
    }
}

pub struct Authenticate {
    auth: Arc<Authenticator>,
}

impl Authenticate {
    pub fn new(auth: Arc<Authenticator>) -> Self {
        Self { auth }
    }
}

impl<E: Endpoint> Middleware<E> for Authenticate {
    type Output = AuthenticateEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        AuthenticateEndpoint {
            inner: ep,
            auth: self.auth.clone(),
        }
    }
}

pub struct AuthenticateEndpoint<E> {
    inner: E,
    auth: Arc<Authenticator>,
}

impl<E: Endpoint> Endpoint for AuthenticateEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        if !req.uri().path().starts_with(PROTECTED_PREFIX) {
            return self.inner.call(req).await;
        }
        let principal = self.auth.resolve(&req).await?;
        let needed = Permission::for_method(req.method());
        if !principal.credential_allows(needed) {
            return Err(ApiError::missing_permission(needed).into());
        }
        if needed == Permission::Write
            && principal.session().is_some_and(|s| s.via_cookie)
            && !self.auth.csrf_ok(&req)
        {
            return Err(ApiError::Forbidden(
                "CSRF check failed: send X-CSRF-Token with the CSRF cookie's value".into(),
            )
            .into());
        }
        req.extensions_mut().insert(principal);
        self.inner.call(req).await
    }
}
