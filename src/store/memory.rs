//! In-process backend: bounded caches whose entries carry their own deadline.
use std::{sync::Arc, time::Duration};

use super::{EphemeralStore, StoreError};
use crate::cache::TtlCache;

#[derive(Clone)]
enum Value {
    Bytes(Arc<[u8]>),
    Counter(u64),
}

/// Three caches, so that no traffic can push out what a security decision needs:
/// - everything anonymous traffic can write (login flows, rate-limit counters per IP), bounded
///   and evicting, so a flood of distinct keys cannot exhaust memory;
/// - revocations and the policy epoch, written only by revoking or membership changes (signed
///   in, rate limited): a live one is never evicted and never refused, since a lost or refused
///   revocation would let a token back in; memory grows only with those actions;
/// - spent DPoP `jti`s, written by any request with a DPoP proof: a live one is never evicted
///   (a proof could be replayed), and when the cache is full of live ones a new proof is
///   refused (fails closed) rather than one forgotten.
#[derive(Clone)]
pub struct MemoryStore {
    cache: Arc<TtlCache<String, Value>>,
    revocations: Arc<TtlCache<String, Value>>,
    spent_proofs: Arc<TtlCache<String, Value>>,
}

/// Key prefixes of the revocations cache.
const REVOCATION_PREFIXES: &[&str] = &["revoked:", "apikey:revoked:", "authz:"];
/// Key prefix of the spent proofs cache.
const SPENT_PROOF_PREFIX: &str = "dpop:jti:";

impl MemoryStore {
    pub fn new(max_entries: usize) -> Self {
        // Each entry has its own time to live; the caches add no cap of their own.
        let keeping_live = |capacity| Arc::new(TtlCache::keeping_live(capacity, Duration::MAX));
        Self {
            cache: Arc::new(TtlCache::new(max_entries, Duration::MAX)),
            revocations: keeping_live(max_entries),
            spent_proofs: keeping_live(max_entries.saturating_mul(10)),
        }
    }

    fn cache_for(&self, key: &str) -> &TtlCache<String, Value> {
        if key.starts_with(SPENT_PROOF_PREFIX) {
            &self.spent_proofs
        } else if REVOCATION_PREFIXES.iter().any(|p| key.starts_with(p)) {
            &self.revocations
        } else {
            &self.cache
        }
    }

    /// The cache for a write to `key`, or the refusal of a new spent proof when that cache is
    /// full of live ones.
    fn cache_to_write(&self, key: &str) -> Result<&TtlCache<String, Value>, StoreError> {
        let cache = self.cache_for(key);
        if std::ptr::eq(cache, &*self.spent_proofs) && cache.is_full() {
            tracing::error!("in-process store: spent DPoP proofs at capacity, proof refused");
            return Err(StoreError::Unavailable("spent proofs at capacity".into()));
        }
        Ok(cache)
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

    /// Writes a marker that lives `ttl`; the write must succeed.
    async fn put(store: &MemoryStore, key: &str, ttl: Duration) {
        store.set(key, b"1", ttl).await.unwrap();
    }

    #[tokio::test]
    async fn revocations_outlive_a_flood_and_spent_proofs_fail_closed_when_full() {
        let store = MemoryStore::new(10);
        let live = Duration::from_secs(60);
        put(&store, "revoked:sid:a", live).await;
        // Spent proofs, read once (so hot in their cache), then expired; then live ones up
        // to the capacity.
        for i in 0..100 {
            let key = format!("dpop:jti:{i}");
            put(&store, &key, Duration::from_millis(400)).await;
            assert!(store.any_exists(&[&key]).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(450)).await;
        put(&store, "dpop:jti:first", live).await;
        for i in 0..99 {
            put(&store, &format!("dpop:jti:new{i}"), live).await;
        }
        assert!(store.any_exists(&["dpop:jti:first"]).await.unwrap());
        // Full of live proofs: a new one is refused, none is forgotten...
        assert!(store.set("dpop:jti:more", b"1", live).await.is_err());
        assert!(store.any_exists(&["dpop:jti:first"]).await.unwrap());
        // ...and revocations, past their own capacity, are neither refused nor dropped.
        for i in 0..100 {
            put(&store, &format!("revoked:jti:{i}"), live).await;
        }
        assert!(
            store
                .any_exists(&["revoked:sid:a", "revoked:jti:99"])
                .await
                .unwrap()
        );
        assert!(store.any_exists(&["revoked:sid:a"]).await.unwrap());
    }

    #[test]
    fn spent_dpop_jtis_are_kept_apart_from_anonymous_traffic() {
        let store = MemoryStore::new(10);
        assert!(std::ptr::eq(
            store.cache_for("dpop:jti:abc"),
            &*store.spent_proofs
        ));
        // The keys as their owners build them, so a renamed prefix cannot move one silently.
        let revocations = [
            crate::auth::sessions::revoked_session_key(uuid::Uuid::nil()),
            crate::auth::sessions::revoked_token_key(uuid::Uuid::nil()),
            crate::auth::api_keys::revocation_key("abc"),
            crate::authz::EPOCH_KEY.to_owned(),
        ];
        for key in &revocations {
            assert!(
                std::ptr::eq(store.cache_for(key), &*store.revocations),
                "{key}"
            );
        }
        assert!(std::ptr::eq(
            store.cache_for(&crate::auth::dpop::spent_proof_key(b"abc")),
            &*store.spent_proofs
        ));
        for key in ["ratelimit:ip:1.2.3.4", "login:abc"] {
            assert!(std::ptr::eq(store.cache_for(key), &*store.cache), "{key}");
        }
    }
}
