//! Ephemeral shared state with a time to live: login flow state, revoked token ids, rate-limit
//! counters. In-process by default (one instance); Redis when configured, so every instance
//! sees the same state.
//!
//! Callers that depend on the store for a security decision must fail closed: a
//! [`StoreError`] becomes 503, never "allowed".
use std::{future::Future, time::Duration};

mod memory;
mod redis;

pub use memory::MemoryStore;
pub use redis::RedisStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("ephemeral store unavailable: {0}")]
    Unavailable(String),
}

/// The operations every backend offers, with the same semantics (one shared test suite).
pub trait EphemeralStore: Send + Sync {
    /// The value under `key`, if present and not expired.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// Whether any of `keys` is present and not expired: one round trip for several
    /// revocation markers.
    fn any_exists(&self, keys: &[&str]) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Stores `value` under `key` for `ttl`, replacing any previous value.
    fn set(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes and returns the value atomically: of concurrent callers, at most one gets it.
    fn take(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// Increments the counter under `key` and returns the new count. The first increment starts
    /// a window of `ttl`; later ones do not extend it (a fixed window).
    fn incr(
        &self,
        key: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Checks that the backend answers (used by `/readyz`).
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The configured backend.
#[derive(Clone)]
pub enum Store {
    Memory(MemoryStore),
    Redis(RedisStore),
}

impl Store {
    /// Redis when a URL is given, otherwise in-process.
    pub fn from_settings(settings: &crate::config::RedisSettings) -> anyhow::Result<Self> {
        use secrecy::ExposeSecret;
        Ok(match &settings.url {
            Some(url) => Store::Redis(RedisStore::new(url.expose_secret(), &settings.key_prefix)?),
            None => Store::Memory(MemoryStore::new(100_000)),
        })
    }

    /// A warning when the backend may drop keys before they expire: Redis under any
    /// `maxmemory-policy` but `noeviction` could evict a revocation (every key we write has a
    /// TTL, so the `volatile-*` policies are no safer), letting a revoked token back in.
    pub async fn eviction_warning(&self) -> Option<String> {
        let Store::Redis(redis) = self else {
            return None;
        };
        match redis.maxmemory_policy().await {
            Ok(Some(policy)) if policy == "noeviction" => None,
            Ok(Some(policy)) => Some(format!(
                "redis maxmemory-policy is {policy}: under memory pressure Redis may evict \
                 revocations and rate-limit state; set maxmemory-policy noeviction"
            )),
            Ok(None) | Err(_) => {
                Some("could not read redis's maxmemory-policy; it must be noeviction".into())
            }
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Store::Memory(_) => "memory",
            Store::Redis(_) => "redis",
        }
    }
}

/// Counts a failed store call in the metrics.
fn counted<T>(store: &Store, result: Result<T, StoreError>) -> Result<T, StoreError> {
    if result.is_err() {
        crate::telemetry::metrics::store_error(store.backend());
    }
    result
}

impl EphemeralStore for Store {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let result = match self {
            Store::Memory(s) => s.get(key).await,
            Store::Redis(s) => s.get(key).await,
        };
        counted(self, result)
    }

    async fn any_exists(&self, keys: &[&str]) -> Result<bool, StoreError> {
        let result = match self {
            Store::Memory(s) => s.any_exists(keys).await,
            Store::Redis(s) => s.any_exists(keys).await,
        };
        counted(self, result)
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        let result = match self {
            Store::Memory(s) => s.set(key, value, ttl).await,
            Store::Redis(s) => s.set(key, value, ttl).await,
        };
        counted(self, result)
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let result = match self {
            Store::Memory(s) => s.take(key).await,
            Store::Redis(s) => s.take(key).await,
        };
        counted(self, result)
    }

    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, StoreError> {
        let result = match self {
            Store::Memory(s) => s.incr(key, ttl).await,
            Store::Redis(s) => s.incr(key, ttl).await,
        };
        counted(self, result)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let result = match self {
            Store::Memory(s) => s.ping().await,
            Store::Redis(s) => s.ping().await,
        };
        counted(self, result)
    }
}
