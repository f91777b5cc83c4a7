//! The in-process limiter: one keyed GCRA limiter (governor) per policy.
use std::{num::NonZeroU32, time::Duration};

use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    middleware::StateInformationMiddleware,
    state::keyed::DefaultKeyedStateStore,
};

use super::{Decision, Limit, Policy};

type Keyed =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

pub struct LocalLimits {
    limiters: Vec<Keyed>,
    clock: DefaultClock,
}

impl LocalLimits {
    pub fn new(limits: &[Limit]) -> Self {
        let limiters = limits
            .iter()
            .map(|limit| {
                let burst = NonZeroU32::new(limit.burst).unwrap_or(NonZeroU32::MIN);
                let quota = Quota::with_period(limit.emission())
                    .unwrap_or_else(|| Quota::per_second(burst))
                    .allow_burst(burst);
                RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>()
            })
            .collect();
        Self {
            limiters,
            clock: DefaultClock::default(),
        }
    }

    pub fn check(&self, policy: Policy, limit: Limit, key: &str) -> Decision {
        let key = key.to_owned();
        match self.limiters[policy.index()].check_key(&key) {
            Ok(state) => {
                let remaining = state.remaining_burst_capacity();
                // Whole again once every spent allowance has come back.
                let spent = limit.burst.saturating_sub(remaining);
                Decision {
                    policy,
                    limit,
                    allowed: true,
                    remaining,
                    reset: limit.emission().saturating_mul(spent),
                }
            }
            Err(not_until) => Decision {
                policy,
                limit,
                allowed: false,
                remaining: 0,
                reset: not_until
                    .wait_time_from(self.clock.now())
                    .max(Duration::from_millis(1)),
            },
        }
    }

    pub fn retain_recent(&self) {
        for limiter in &self.limiters {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}
