//! The limiter shared by every instance: GCRA in one Lua script, so each decision is a single
//! atomic Redis round trip and instances never race each other on a counter.
use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use deadpool_redis::redis::Script;

use super::{Decision, Limit, Policy};
use crate::store::{EphemeralStore, RedisStore, StoreError};

/// GCRA over microseconds of Redis's own clock (`TIME`), so instances with skewed clocks
/// still agree. KEYS[1]: the bucket; ARGV: emission interval and burst. Answers
/// `{allowed, remaining, reset_us}`; the key lives exactly as long as it matters.
const GCRA: &str = r"
redis.replicate_commands()
local emission = tonumber(ARGV[1])
local tolerance = emission * tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + emission
local allow_at = new_tat - tolerance
if allow_at > now then
  return {0, 0, allow_at - now}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return {1, math.floor((now - allow_at) / emission), new_tat - now}
";

/// A decision waits at most this long for Redis before the in-process limiter decides.
const DEADLINE: Duration = Duration::from_millis(250);
/// After Redis failed, decisions stay in process this long before Redis is tried again, so
/// an outage costs one timeout per interval, not one per request.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

pub struct SharedLimits {
    redis: RedisStore,
    script: Script,
    started: Instant,
    /// Microseconds since `started` before which Redis is not asked (after a failure).
    down_until: AtomicU64,
}

fn cooling_key(client: &str) -> String {
    format!("rl:cooling:{client}")
}

impl SharedLimits {
    pub fn new(redis: RedisStore) -> Self {
        Self {
            redis,
            script: Script::new(GCRA),
            started: Instant::now(),
            down_until: AtomicU64::new(0),
        }
    }

    fn now_micros(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn available(&self) -> bool {
        self.now_micros() >= self.down_until.load(Ordering::Relaxed)
    }

    fn failed(&self, err: &StoreError) {
        let retry = u64::try_from(RETRY_AFTER_FAILURE.as_micros()).unwrap_or(u64::MAX);
        self.down_until
            .store(self.now_micros().saturating_add(retry), Ordering::Relaxed);
        tracing::warn!(error = %err, "shared rate limits unavailable: limiting in process");
    }

    /// The shared decision, or `None` when Redis cannot give one (the caller decides locally).
    pub async fn check(&self, policy: Policy, limit: Limit, key: &str) -> Option<Decision> {
        if !self.available() {
            return None;
        }
        let bucket = format!("rl:{}:{key}", policy.name());
        let emission = u64::try_from(limit.emission().as_micros()).unwrap_or(u64::MAX);
        let args = [emission, u64::from(limit.burst)];
        let reply: Result<(i64, i64, i64), _> = self
            .redis
            .invoke(&self.script, &[&bucket], &args, DEADLINE)
            .await;
        match reply {
            Ok((allowed, remaining, reset_us)) => Some(Decision {
                policy,
                limit,
                allowed: allowed == 1,
                remaining: u32::try_from(remaining.max(0)).unwrap_or(u32::MAX),
                reset: Duration::from_micros(u64::try_from(reset_us.max(0)).unwrap_or(0)),
            }),
            Err(err) => {
                self.failed(&err);
                None
            }
        }
    }

    /// The cooling time left for `client`: `Some(None)` when not cooling, `None` when Redis
    /// could not say.
    pub async fn cooling(&self, client: &str) -> Option<Option<Duration>> {
        if !self.available() {
            return None;
        }
        match self.redis.ttl(&cooling_key(client), DEADLINE).await {
            Ok(left) => Some(left.filter(|d| !d.is_zero())),
            Err(err) => {
                self.failed(&err);
                None
            }
        }
    }

    /// Starts `client`'s cooling period for every instance (best effort: the caller keeps it
    /// in process as well).
    pub async fn start_cooling(&self, client: &str, cooldown: Duration) {
        if !self.available() {
            return;
        }
        if let Err(err) = self.redis.set(&cooling_key(client), b"1", cooldown).await {
            self.failed(&err);
        }
    }
}
