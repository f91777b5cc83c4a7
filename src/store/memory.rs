//! In-process backend: bounded caches whose entries carry their own deadline.
use std::{sync::Arc, time::Duration};

use super::{EphemeralStore, StoreError};
use crate::cache::TtlCache;

#[derive(Clone)]
enum Value {
    Bytes(Arc<[u8]>),
    Counter(u64),
}

/// Bounded so that a flood of distinct keys (login flows, rate-limit counters per IP) cannot
/// exhaust memory. Revocations, policy epochs and spent DPoP `jti`s live in a cache of their
/// own, which never evicts a live entry (a lost revocation would let a token back in, a lost
/// `jti` a proof be replayed): only authenticated actions write them, and when it is full of
/// live entries a new one is refused (the action fails closed) rather than another dropped.
#[derive(Clone)]
pub struct MemoryStore {
    cache: Arc<TtlCache<String, Value>>,
    protected: Arc<TtlCache<String, Value>>,
}

/// Key prefixes kept in the protected cache.
const PROTECTED_PREFIXES: &[&str] = &["revoked:", "apikey:revoked:", "authz:", "dpop:jti:"];

impl MemoryStore {
    pub fn new(max_entries: usize) -> Self {
        // Each entry has its own time to live; the caches add no cap of their own.
        Self {
            cache: Arc::new(TtlCache::new(max_entries, Duration::MAX)),
            protected: Arc::new(TtlCache::keeping_live(
                max_entries.saturating_mul(10),
                Duration::MAX,
            )),
        }
    }

    /// The cache for a write to `key`, or the refusal when that is the protected cache and it
    /// is full of live entries.
    fn cache_to_write(&self, key: &str) -> Result<&TtlCache<String, Value>, StoreError> {
        let cache = self.cache_for(key);
        if std::ptr::eq(cache, &*self.protected) && cache.is_full() {
            tracing::error!("in-process store: protected entries at capacity, write refused");
            return Err(StoreError::Unavailable(
                "protected entries at capacity".into(),
            ));
        }
        Ok(cache)
    }

    fn cache_for(&self, key: &str) -> &TtlCache<String, Value> {
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
        Ok(bytes(self.cache_for(key).get(key)))
    }

    async fn any_exists(&self, keys: &[&str]) -> Result<bool, StoreError> {
        Ok(keys
            .iter()
            .any(|key| self.cache_for(key).contains_key(*key)))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        self.cache_to_write(key)?
            .insert_for(key.to_owned(), Value::Bytes(value.into()), ttl);
        Ok(())
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(bytes(self.cache_for(key).remove(key)))
    }

    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, StoreError> {
        // One key's upserts run one after another, so concurrent increments are never lost; a
        // live counter keeps its deadline (a fixed window).
        self.cache_to_write(key)?.upsert(
            key,
            ttl,
            || (Value::Counter(1), Ok(1)),
            |value| match value {
                Value::Counter(n) => {
                    *n = n.saturating_add(1);
                    Ok(*n)
                }
                Value::Bytes(_) => Err(StoreError::Unavailable("counter key holds a value".into())),
            },
        )
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_revocation_outlives_a_flood_of_other_entries() {
        let store = MemoryStore::new(10);
        // Short-lived protected entries, read once (so hot in the cache), then expired.
        for i in 0..100 {
            let key = format!("dpop:jti:{i}");
            store
                .set(&key, b"1", Duration::from_millis(5))
                .await
                .unwrap();
            assert!(store.any_exists(&[&key]).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        store
            .set("revoked:sid:a", b"1", Duration::from_secs(60))
            .await
            .unwrap();
        for i in 0..99 {
            let key = format!("dpop:jti:new{i}");
            store
                .set(&key, b"1", Duration::from_secs(60))
                .await
                .unwrap();
        }
        assert!(store.any_exists(&["revoked:sid:a"]).await.unwrap());
        // Full of live entries: a new one is refused, none is dropped.
        assert!(
            store
                .set("revoked:sid:b", b"1", Duration::from_secs(60))
                .await
                .is_err()
        );
        assert!(store.any_exists(&["revoked:sid:a"]).await.unwrap());
    }

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
                std::ptr::eq(store.cache_for(key), &*store.protected),
                "{key}"
            );
        }
        for key in ["ratelimit:ip:1.2.3.4", "oidc:flow:abc"] {
            assert!(std::ptr::eq(store.cache_for(key), &*store.cache), "{key}");
        }
    }
}
