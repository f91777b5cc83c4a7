//! In-process backend: a bounded moka cache with a per-entry deadline.
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use moka::{Expiry, sync::Cache};

use super::{EphemeralStore, StoreError};

#[derive(Clone)]
enum Value {
    Bytes(Arc<[u8]>),
    Counter(u64),
}

#[derive(Clone)]
struct Entry {
    value: Value,
    expires_at: Instant,
}

impl Entry {
    fn live(self) -> Option<Value> {
        (self.expires_at > Instant::now()).then_some(self.value)
    }
}

struct UntilDeadline;

impl Expiry<String, Entry> for UntilDeadline {
    fn expire_after_create(&self, _: &String, entry: &Entry, now: Instant) -> Option<Duration> {
        Some(entry.expires_at.saturating_duration_since(now))
    }

    fn expire_after_update(
        &self,
        _: &String,
        entry: &Entry,
        now: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.expires_at.saturating_duration_since(now))
    }
}

/// Bounded so that a flood of distinct keys (login flows, rate-limit counters per IP) cannot
/// exhaust memory. Revocations, policy epochs and spent DPoP `jti`s live in a cache of their
/// own: only authenticated actions write them, so anonymous traffic cannot crowd them out (a
/// bounded cache may refuse or evict entries when full, and a lost revocation would let a token
/// back in, a lost `jti` a proof be replayed).
#[derive(Clone)]
pub struct MemoryStore {
    cache: Cache<String, Entry>,
    protected: Cache<String, Entry>,
}

/// Key prefixes kept in the protected cache.
const PROTECTED_PREFIXES: &[&str] = &["revoked:", "apikey:revoked:", "authz:", "dpop:jti:"];

impl MemoryStore {
    pub fn new(max_entries: u64) -> Self {
        let build = |capacity| {
            Cache::builder()
                .max_capacity(capacity)
                .expire_after(UntilDeadline)
                .build()
        };
        Self {
            cache: build(max_entries),
            protected: build(max_entries.saturating_mul(10)),
        }
    }

    fn cache_for(&self, key: &str) -> &Cache<String, Entry> {
        if PROTECTED_PREFIXES.iter().any(|p| key.starts_with(p)) {
            &self.protected
        } else {
            &self.cache
        }
    }
}

fn bytes(value: Option<Value>) -> Option<Vec<u8>> {
    match value? {
        Value::Bytes(b) => Some(b.to_vec()),
        Value::Counter(n) => Some(n.to_string().into_bytes()),
    }
}

impl EphemeralStore for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(bytes(self.cache_for(key).get(key).and_then(Entry::live)))
    }

    async fn any_exists(&self, keys: &[&str]) -> Result<bool, StoreError> {
        Ok(keys.iter().any(|key| {
            self.cache_for(key)
                .get(*key)
                .and_then(Entry::live)
                .is_some()
        }))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        let entry = Entry {
            value: Value::Bytes(value.into()),
            expires_at: Instant::now() + ttl,
        };
        self.cache_for(key).insert(key.to_owned(), entry);
        Ok(())
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(bytes(self.cache_for(key).remove(key).and_then(Entry::live)))
    }

    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, StoreError> {
        // `and_upsert_with` runs serially per key, so concurrent increments are never lost.
        let entry = self
            .cache_for(key)
            .entry(key.to_owned())
            .and_upsert_with(|current| {
                let now = Instant::now();
                match current.map(|e| e.into_value()) {
                    Some(Entry {
                        value: Value::Counter(n),
                        expires_at,
                    }) if expires_at > now => Entry {
                        value: Value::Counter(n.saturating_add(1)),
                        expires_at,
                    },
                    _ => Entry {
                        value: Value::Counter(1),
                        expires_at: now + ttl,
                    },
                }
            });
        match entry.into_value().value {
            Value::Counter(n) => Ok(n),
            Value::Bytes(_) => Err(StoreError::Unavailable("counter key holds a value".into())),
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spent_dpop_jtis_are_kept_apart_from_anonymous_traffic() {
        let store = MemoryStore::new(10);
        for key in [
            "dpop:jti:abc",
            "revoked:abc",
            "apikey:revoked:abc",
            "authz:epoch",
        ] {
            assert!(
                std::ptr::eq(store.cache_for(key), &store.protected),
                "{key}"
            );
        }
        for key in ["ratelimit:ip:1.2.3.4", "oidc:flow:abc"] {
            assert!(std::ptr::eq(store.cache_for(key), &store.cache), "{key}");
        }
    }
}
