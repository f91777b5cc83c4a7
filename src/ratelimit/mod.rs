//! Rate limits (GCRA): per client address, per principal, strict ones on the login and refresh
//! endpoints, pending login flows, and the cooling period after repeated failed
//! authentications.
//!
//! With Redis configured every decision is one atomic script call, so all instances share
//! one budget. If Redis cannot be reached the decision is taken by the in-process limiter
//! instead (logged), never skipped: an outage must not switch limiting off.
use std::{
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use crate::{
    cache::TtlCache,
    config::{Quota, RateLimitSettings},
    store::Store,
};

mod local;
mod middleware;
mod shared;

pub use middleware::{
    PrincipalLimit, RateLimit, client_of, credentialed, principal_key, sampling_key, site_of,
    spend, user_key,
};

/// What is being limited. The name appears in the `RateLimit-Policy` / `RateLimit` fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    PerIp,
    PerPrincipal,
    Auth,
    FailedAuth,
    LoginFlowsPerIp,
    LoginFlowsTotal,
}

impl Policy {
    pub const ALL: [Policy; 6] = [
        Policy::PerIp,
        Policy::PerPrincipal,
        Policy::Auth,
        Policy::FailedAuth,
        Policy::LoginFlowsPerIp,
        Policy::LoginFlowsTotal,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Policy::PerIp => "ip",
            Policy::PerPrincipal => "principal",
            Policy::Auth => "auth",
            Policy::FailedAuth => "failed-auth",
            Policy::LoginFlowsPerIp => "login-flows",
            Policy::LoginFlowsTotal => "login-flows-total",
        }
    }

    /// Its place in [`Policy::ALL`] (checked by a test).
    fn index(self) -> usize {
        self as usize
    }

    fn quota(self, settings: &RateLimitSettings) -> Quota {
        let flows = |requests| Quota {
            requests,
            window_secs: crate::auth::login::FLOW_TTL.as_secs(),
        };
        match self {
            Policy::PerIp => settings.per_ip,
            Policy::PerPrincipal => settings.per_principal,
            Policy::Auth => settings.auth,
            Policy::FailedAuth => settings.failed_auth,
            Policy::LoginFlowsPerIp => flows(settings.login_flows_per_ip),
            Policy::LoginFlowsTotal => flows(settings.login_flows_total),
        }
    }
}

/// A quota as GCRA sees it: a burst, and the time one request's allowance takes to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub burst: u32,
    pub window: Duration,
}

impl Limit {
    fn from_quota(quota: Quota) -> Self {
        Self {
            burst: quota.requests.max(1),
            window: quota.window().max(Duration::from_micros(1)),
        }
    }

    /// The time one request's allowance takes to come back (at least a microsecond).
    pub fn emission(&self) -> Duration {
        (self.window / self.burst).max(Duration::from_micros(1))
    }
}

/// One limiter's answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub policy: Policy,
    pub limit: Limit,
    pub allowed: bool,
    /// Requests still allowed right now.
    pub remaining: u32,
    /// Until the allowance is whole again (allowed), or until the next request is (refused).
    pub reset: Duration,
}

impl Decision {
    /// Seconds for `Retry-After` / the `t` parameter: rounded up, never 0 when refused.
    pub fn reset_secs(&self) -> u64 {
        let secs = self.reset.as_secs() + u64::from(self.reset.subsec_nanos() > 0);
        if self.allowed { secs } else { secs.max(1) }
    }
}

/// The bucket of a client address. IPv6 clients are counted per /64: a single host usually
/// holds a whole /64, so counting single addresses would let it rotate past every limit.
pub fn client_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => crate::http::ipv6_network(v6, 64).to_string(),
    }
}

/// All the limits of this service.
pub struct RateLimiter {
    limits: [Limit; Policy::ALL.len()],
    local: local::LocalLimits,
    shared: Option<shared::SharedLimits>,
    cooldown: Duration,
    /// Cooling addresses decided in process (no Redis, or Redis unreachable at the time).
    cooling: TtlCache<String, Instant>,
}

/// Bound on the in-process cooling list; under a flood of distinct addresses the oldest go.
const MAX_COOLING: usize = 100_000;

impl RateLimiter {
    pub fn new(settings: &RateLimitSettings, store: &Store) -> Arc<Self> {
        let limits = Policy::ALL.map(|p| Limit::from_quota(p.quota(settings)));
        let shared = match store {
            Store::Redis(redis) => Some(shared::SharedLimits::new(redis.clone())),
            Store::Memory(_) => None,
        };
        Arc::new(Self {
            local: local::LocalLimits::new(&limits),
            limits,
            shared,
            cooldown: settings.failed_auth_cooldown(),
            // Bounded: a new cooling entry is always admitted; under a flood of addresses the
            // entries nobody comes back to go first (an address that keeps trying is kept).
            cooling: TtlCache::new(MAX_COOLING, settings.failed_auth_cooldown()),
        })
    }

    pub fn limit(&self, policy: Policy) -> Limit {
        self.limits[policy.index()]
    }

    /// Spends one request of `key`'s allowance under `policy`.
    pub async fn check(&self, policy: Policy, key: &str) -> Decision {
        let limit = self.limit(policy);
        if let Some(shared) = &self.shared
            && let Some(decision) = shared.check(policy, limit, key).await
        {
            return decision;
        }
        self.local.check(policy, limit, key)
    }

    /// How long `client` still cools down after too many failed authentications, if it does.
    pub async fn cooling(&self, client: &str) -> Option<Duration> {
        if let Some(until) = self.cooling.get(client) {
            let left = until.saturating_duration_since(Instant::now());
            if !left.is_zero() {
                return Some(left);
            }
        }
        let left = match &self.shared {
            Some(shared) => shared.cooling(client).await.flatten(),
            None => None,
        }?;
        // Kept here too: should Redis stall, this instance still knows the address cools.
        self.cooling
            .insert(client.to_owned(), Instant::now() + left);
        Some(left)
    }

    /// Counts a failed authentication from `client`; past the quota the address cools down.
    pub async fn failed(&self, client: &str) {
        let decision = self.check(Policy::FailedAuth, client).await;
        if decision.allowed {
            return;
        }
        tracing::warn!(
            client,
            cooldown_secs = self.cooldown.as_secs(),
            "too many failed authentications: cooling down"
        );
        if let Some(shared) = &self.shared {
            shared.start_cooling(client, self.cooldown).await;
        }
        self.cooling
            .insert(client.to_owned(), Instant::now() + self.cooldown);
    }

    /// Drops in-process state of keys whose allowance is whole again (called periodically).
    pub fn forget_idle(&self) {
        self.local.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_share_their_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.7");
    }

    #[test]
    fn each_policy_indexes_its_own_limit() {
        for (i, policy) in Policy::ALL.iter().enumerate() {
            assert_eq!(policy.index(), i);
        }
    }

    #[test]
    fn refused_decisions_ask_for_at_least_a_second() {
        let limit = Limit {
            burst: 10,
            window: Duration::from_secs(1),
        };
        let refused = Decision {
            policy: Policy::PerIp,
            limit,
            allowed: false,
            remaining: 0,
            reset: Duration::from_millis(100),
        };
        assert_eq!(refused.reset_secs(), 1);
        assert_eq!(limit.emission(), Duration::from_millis(100));
    }
}
