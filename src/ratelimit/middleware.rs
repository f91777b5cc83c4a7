//! Limits applied to requests: per client address and the strict authentication bucket
//! before anything else runs (so anonymous floods cost no database work), the cooling check
//! on credentialed requests, then per principal once authentication has named one.
//!
//! Every limited response carries the `RateLimit-Policy` and `RateLimit` fields
//! (draft-ietf-httpapi-ratelimit-headers) for each limit the request spent; a refusal is a
//! 429 problem with `Retry-After`.
use std::sync::{Arc, Mutex};

use poem::{
    Endpoint, IntoResponse, Middleware, Request, Response, Result,
    http::{HeaderName, HeaderValue, header},
};

use super::{Decision, Policy, RateLimiter, client_key};
use crate::{
    auth::client_credentials::TOKEN_PATH,
    auth::{Principal, X_API_KEY, cookies},
    domain::audit::{self, AuditLog},
    error::ApiError,
    http::{ClientIp, audit_context, ipv6_network},
    telemetry::{RequestId, metrics},
};

/// Never limited: the probes must answer whatever clients do (behind a NAT, or a node's
/// address in Kubernetes, probes and clients share one address).
const UNLIMITED: &[&str] = &["/healthz", "/readyz"];
/// Each request here costs a provider round trip, stored flow state or a database write.
const STRICT_PREFIXES: &[&str] = &["/auth/login/", "/auth/callback/"];
const STRICT_PATHS: &[&str] = &["/auth/refresh", TOKEN_PATH];

/// The decisions taken for one request, for the response headers; and the audit trail,
/// for refusals taken further in.
#[derive(Clone)]
struct Ledger {
    decisions: Arc<Mutex<Vec<Decision>>>,
    audit: Arc<AuditLog>,
}

/// A refusal goes into the audit trail: the first per client and policy each minute.
async fn record_refusal(audit: &AuditLog, req: &Request, decision: &Decision) {
    let policy = decision.policy.name();
    let key = format!("ratelimit:{}:{policy}", sampling_key(req));
    let path: String = req.uri().path().chars().take(PATH_IN_DETAIL).collect();
    let event = audit::Event::denied(audit::action::RATE_LIMITED)
        .detail(serde_json::json!({ "policy": policy, "path": path }));
    audit.sampled(key, &audit_context(req), event).await;
}

impl Ledger {
    fn push(&self, decision: Decision) {
        if let Ok(mut all) = self.decisions.lock() {
            all.push(decision);
        }
    }

    fn take(&self) -> Vec<Decision> {
        self.decisions
            .lock()
            .map(|mut all| std::mem::take(&mut *all))
            .unwrap_or_default()
    }
}

/// How much of a path an audit detail keeps (a path may be kilobytes long).
const PATH_IN_DETAIL: usize = 128;

/// Whom repeated audit events are sampled by: the client's /48 for IPv6 (where one host could
/// rotate through many /64s), its address for IPv4.
pub fn sampling_key(req: &Request) -> String {
    site_of(req).unwrap_or_else(|| client_of(req))
}

/// The rate-limit bucket of the request's client.
pub fn client_of(req: &Request) -> String {
    ClientIp::of(req).map_or_else(|| "unknown".to_owned(), client_key)
}

/// For an IPv6 client, its /48 (a site's usual allocation): where one client could rotate
/// through many /64s, a second, wider bucket.
pub fn site_of(req: &Request) -> Option<String> {
    match ClientIp::of(req)?.to_canonical() {
        std::net::IpAddr::V6(v6) => Some(ipv6_network(v6, 48).to_string()),
        std::net::IpAddr::V4(_) => None,
    }
}

/// Whether the request presents a credential, on any path: every handler that looks at one
/// (the API, refresh, logout, the landing page) is then closed to a cooling address.
pub fn credentialed(req: &Request) -> bool {
    // A token request carries its key in the body (client_secret_post) or the header.
    req.uri().path() == TOKEN_PATH
        || req.headers().contains_key(header::AUTHORIZATION)
        || req.headers().contains_key(X_API_KEY)
        || req.headers().contains_key("x-refresh-token")
        || has_cookie(req, cookies::ACCESS)
        || has_cookie(req, cookies::REFRESH)
}

/// Read from the header: this runs before the cookie jar is parsed.
fn has_cookie(req: &Request, name: &str) -> bool {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .any(|pair| pair.split_once('=').is_some_and(|(n, _)| n.trim() == name))
}

/// Spends `policy` for `key` on behalf of a handler: the decision joins the response headers,
/// a refusal is the 429 to answer with.
pub async fn spend(
    limiter: &RateLimiter,
    req: &Request,
    policy: Policy,
    key: &str,
) -> Result<(), ApiError> {
    let decision = limiter.check(policy, key).await;
    if let Some(ledger) = req.extensions().get::<Ledger>() {
        ledger.push(decision);
        if !decision.allowed {
            record_refusal(&ledger.audit, req, &decision).await;
        }
    }
    refused(&decision)
}

fn refused(decision: &Decision) -> Result<(), ApiError> {
    if decision.allowed {
        return Ok(());
    }
    metrics::rate_limited(decision.policy.name());
    Err(ApiError::TooManyRequests {
        retry_after_secs: decision.reset_secs(),
    })
}

/// `RateLimit-Policy` and `RateLimit` for `decisions`, e.g. `"ip";q=600;w=60` and
/// `"ip";r=599;t=1`.
const POLICY_FIELD: HeaderName = HeaderName::from_static("ratelimit-policy");
const STATE_FIELD: HeaderName = HeaderName::from_static("ratelimit");

fn add_fields(resp: &mut Response, decisions: &[Decision]) {
    if decisions.is_empty() {
        return;
    }
    // Pieces pushed rather than `write!`: these run on every response.
    let (mut policy, mut state) = (String::with_capacity(64), String::with_capacity(64));
    let mut number = itoa::Buffer::new();
    for (i, d) in decisions.iter().enumerate() {
        for field in [&mut policy, &mut state] {
            if i > 0 {
                field.push_str(", ");
            }
            field.push('"');
            field.push_str(d.policy.name());
            field.push('"');
        }
        policy.push_str(";q=");
        policy.push_str(number.format(d.limit.burst));
        policy.push_str(";w=");
        policy.push_str(number.format(d.limit.window.as_secs().max(1)));
        state.push_str(";r=");
        state.push_str(number.format(d.remaining));
        state.push_str(";t=");
        state.push_str(number.format(d.reset_secs()));
    }
    for (field, value) in [(POLICY_FIELD, policy), (STATE_FIELD, state)] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(field, value);
        }
    }
}

pub struct RateLimit {
    limiter: Arc<RateLimiter>,
    audit: Arc<AuditLog>,
}

impl RateLimit {
    pub fn new(limiter: Arc<RateLimiter>, audit: Arc<AuditLog>) -> Self {
        Self { limiter, audit }
    }
}

impl<E: Endpoint> Middleware<E> for RateLimit {
    type Output = RateLimitEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        RateLimitEndpoint {
            inner: ep,
            limiter: self.limiter.clone(),
            audit: self.audit.clone(),
        }
    }
}

pub struct RateLimitEndpoint<E> {
    inner: E,
    limiter: Arc<RateLimiter>,
    audit: Arc<AuditLog>,
}

impl<E: Endpoint> RateLimitEndpoint<E> {
    /// The decisions taken before the request may go on; the last one refused, if any did.
    async fn admit(&self, req: &Request, client: &str) -> Vec<Decision> {
        let path = req.uri().path();
        let mut decisions = vec![self.limiter.check(Policy::PerIp, client).await];
        let strict =
            STRICT_PATHS.contains(&path) || STRICT_PREFIXES.iter().any(|p| path.starts_with(p));
        if decisions[0].allowed && strict {
            decisions.push(self.limiter.check(Policy::Auth, client).await);
        }
        let admitted = decisions.iter().all(|d| d.allowed);
        if admitted
            && credentialed(req)
            && let Some(left) = self.limiter.cooling(client).await
        {
            decisions.push(Decision {
                policy: Policy::FailedAuth,
                limit: self.limiter.limit(Policy::FailedAuth),
                allowed: false,
                remaining: 0,
                reset: left,
            });
        }
        decisions
    }
}

impl<E: Endpoint> Endpoint for RateLimitEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        if UNLIMITED.contains(&req.uri().path()) {
            return self.inner.call(req).await.map(IntoResponse::into_response);
        }
        let client = client_of(&req);
        let decisions = self.admit(&req, &client).await;
        if let Some(decision) = decisions.iter().find(|d| !d.allowed) {
            record_refusal(&self.audit, &req, decision).await;
            metrics::rate_limited(decision.policy.name());
            let err = ApiError::TooManyRequests {
                retry_after_secs: decision.reset_secs(),
            };
            let request_id = req.extensions().get::<RequestId>().map(|id| id.0.clone());
            let mut resp = err.to_response(request_id);
            add_fields(&mut resp, &decisions);
            return Ok(resp);
        }
        let ledger = Ledger {
            decisions: Arc::default(),
            audit: self.audit.clone(),
        };
        req.extensions_mut().insert(ledger.clone());
        let mut resp = self.inner.call(req).await?.into_response();
        let mut all = decisions;
        all.extend(ledger.take());
        add_fields(&mut resp, &all);
        Ok(resp)
    }
}

/// Per principal: after authentication, before authorization and the handler.
pub struct PrincipalLimit {
    limiter: Arc<RateLimiter>,
}

impl PrincipalLimit {
    pub fn new(limiter: Arc<RateLimiter>) -> Self {
        Self { limiter }
    }
}

impl<E: Endpoint> Middleware<E> for PrincipalLimit {
    type Output = PrincipalLimitEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        PrincipalLimitEndpoint {
            inner: ep,
            limiter: self.limiter.clone(),
        }
    }
}

pub struct PrincipalLimitEndpoint<E> {
    inner: E,
    limiter: Arc<RateLimiter>,
}

/// A user's sessions share one budget; each API key has its own.
pub fn principal_key(principal: &Principal) -> String {
    match principal.api_key() {
        Some(key) => bucket("key:", key.key_id),
        None => user_key(principal.user_id),
    }
}

/// The per-principal bucket of a user's sessions, for handlers that resolve their caller
/// themselves (logging out everywhere).
pub fn user_key(user: uuid::Uuid) -> String {
    bucket("user:", user)
}

/// `{prefix}{id}`, without the formatter (once per authenticated request).
fn bucket(prefix: &str, id: uuid::Uuid) -> String {
    let mut key = String::with_capacity(prefix.len() + uuid::fmt::Hyphenated::LENGTH);
    key.push_str(prefix);
    key.push_str(
        id.hyphenated()
            .encode_lower(&mut uuid::Uuid::encode_buffer()),
    );
    key
}

impl<E: Endpoint> Endpoint for PrincipalLimitEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        if let Some(principal) = req.extensions().get::<Principal>() {
            let key = principal_key(principal);
            spend(&self.limiter, &req, Policy::PerPrincipal, &key).await?;
        }
        self.inner.call(req).await
    }
}
