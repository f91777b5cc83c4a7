//! `rate_limit.*`: how much one client address or one principal may ask of the service.
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// A quota: `requests` per `window_secs`, refilled evenly (GCRA), so a client may burst up to
/// `requests` at once and then continues at `requests / window_secs` per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    pub requests: u32,
    pub window_secs: u64,
}

impl Quota {
    pub fn window(&self) -> Duration {
        Duration::from_secs(self.window_secs)
    }

    fn check(&self, key: &str) -> Result<(), ConfigError> {
        if self.requests == 0 || self.window_secs == 0 || self.window_secs > MAX_WINDOW_SECS {
            return Err(ConfigError::new(format!(
                "rate_limit.{key}: requests must be greater than 0 and window_secs between 1 and {MAX_WINDOW_SECS}"
            )));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Every request from one client address (`/healthz` excepted), checked before any other work.
    pub per_ip: Quota,
    /// Every authenticated request of one user (all its sessions) or one API key.
    pub per_principal: Quota,
    /// Logins, callbacks and refreshes from one client address: each costs provider round
    /// trips, stored flow state or a database write.
    pub auth: Quota,
    /// Failed authentications from one client address; past them, the address cools down.
    pub failed_auth: Quota,
    /// How long an address that failed too often gets 429 on every credentialed request,
    /// whether or not its next credential is right (brute force gains nothing).
    pub failed_auth_cooldown_secs: u64,
    /// Login flows one client address may start per flow lifetime (10 minutes).
    pub login_flows_per_ip: u32,
    /// Login flows all clients together may start per flow lifetime: what bounds the flow
    /// state, so a flood of flows never crowds out anything else in the store.
    pub login_flows_total: u32,
}

/// A week: longer windows and cooldowns are configuration mistakes (and would overflow the
/// deadline arithmetic long before they made sense).
pub const MAX_WINDOW_SECS: u64 = 604_800;

/// The in-process store's capacity for flows and counters; the total flow quota must fit
/// in it with room to spare (GCRA admits up to twice the quota over one window).
pub const MAX_LOGIN_FLOWS_TOTAL: u32 = 40_000;

impl RateLimitSettings {
    pub fn failed_auth_cooldown(&self) -> Duration {
        Duration::from_secs(self.failed_auth_cooldown_secs)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        self.per_ip.check("per_ip")?;
        self.per_principal.check("per_principal")?;
        self.auth.check("auth")?;
        self.failed_auth.check("failed_auth")?;
        if self.failed_auth_cooldown_secs == 0 || self.failed_auth_cooldown_secs > MAX_WINDOW_SECS {
            return Err(ConfigError::new(format!(
                "rate_limit.failed_auth_cooldown_secs must be between 1 and {MAX_WINDOW_SECS}"
            )));
        }
        if self.login_flows_per_ip == 0 || self.login_flows_total == 0 {
            return Err(ConfigError::new(
                "rate_limit.login_flows_per_ip and rate_limit.login_flows_total must be greater than 0",
            ));
        }
        if self.login_flows_total > MAX_LOGIN_FLOWS_TOTAL {
            return Err(ConfigError::new(format!(
                "rate_limit.login_flows_total must be at most {MAX_LOGIN_FLOWS_TOTAL}"
            )));
        }
        Ok(())
    }
}
