//! Verifying a presented key, without a database round-trip for a key seen moments ago.
//!
//! Verified keys are cached per instance for [`CACHE_TTL`], keyed by the non-secret lookup id.
//! A cache hit still compares the hash of the presented key (constant time), so the cache never
//! accepts a wrong secret. Revocation is immediate everywhere: revoking writes a marker to the
//! ephemeral store (Redis when configured, so every instance sees it) that outlives any cache
//! entry, and every verification checks it. If the store cannot be asked, verification fails
//! closed. A key confined to client networks (`allowed_ips`) is refused from any other address,
//! on a cache hit too, and that use is not recorded.
use std::{net::IpAddr, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use super::{AllowedIps, token};
use crate::{
    auth::{ApiKeyGrant, Credential, Principal, permissions::Permissions},
    cache::TtlCache,
    db::entities::api_key,
    store::{EphemeralStore, Store, StoreError},
};

/// How long a verified key is trusted without asking the database again.
pub const CACHE_TTL: Duration = Duration::from_secs(10);
/// A revocation marker must outlive every cache entry that could still hold the key, including
/// one inserted by a verification that read the row just before the revocation and then ran
/// as long as a request may (the request timeout). Markers are tiny, so be generous.
const REVOCATION_TTL: Duration = Duration::from_secs(600);
/// `last_used_at` is written at most this often per key.
const LAST_USED_GRANULARITY: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Db(#[from] sea_orm::DbErr),
}

/// What the cache keeps about a verified key: enough to build the principal, no secret.
#[derive(Debug)]
struct ActiveKey {
    id: Uuid,
    user_id: Uuid,
    tenant_id: Uuid,
    hash: String,
    permissions: Permissions,
    expires_at: Option<DateTime<Utc>>,
    allowed_ips: Option<AllowedIps>,
    require_dpop: bool,
}

impl ActiveKey {
    /// An unknown address passes no restriction: a confined key then fails closed.
    fn admits(&self, client: Option<IpAddr>) -> bool {
        match &self.allowed_ips {
            None => true,
            Some(allowed) => client.is_some_and(|ip| allowed.admits(ip)),
        }
    }
}

/// Where [`KeyVerifier::lookup`] found a key: a cache hit records no use.
enum Source {
    Cache,
    Database { last_used_at: Option<DateTime<Utc>> },
}

pub struct KeyVerifier {
    db: DatabaseConnection,
    store: Store,
    cache: TtlCache<String, Arc<ActiveKey>>,
    /// Compared against when the lookup id is unknown, so that path costs the same.
    dummy_hash: String,
}

pub(crate) fn revocation_key(lookup_id: &str) -> String {
    format!("apikey:revoked:{lookup_id}")
}

impl KeyVerifier {
    pub fn new(db: DatabaseConnection, store: Store) -> Self {
        Self {
            db,
            store,
            cache: TtlCache::new(10_000, CACHE_TTL),
            dummy_hash: token::hash("iq_dummy"),
        }
    }

    /// The principal for a key presented by a client at `client`, or `None` for any invalid,
    /// unknown, revoked or expired key, or one used from outside its `allowed_ips` (the caller
    /// answers 401 without saying which). `client` is `None` when the address is unknown.
    pub async fn verify(
        &self,
        presented: &str,
        client: Option<IpAddr>,
    ) -> Result<Option<Principal>, VerifyError> {
        let Ok(parsed) = token::parse(presented) else {
            return Ok(None);
        };
        let Some((key, source)) = self.lookup(parsed.lookup_id()).await? else {
            // Same work as a found key, so an unknown id is not told apart by timing.
            let _ = parsed.hash_matches(&self.dummy_hash);
            return Ok(None);
        };
        if !parsed.hash_matches(&key.hash) {
            return Ok(None);
        }
        self.admit(parsed.lookup_id(), key, source, client).await
    }

    /// The principal of the key a machine token was issued for (its lookup id, from the
    /// token's signed claims), with the key's full permissions; `None` once the key is
    /// revoked, rotated or expired, or from outside its `allowed_ips`: the same checks as a
    /// presented key, on every request.
    pub async fn verify_issued_to(
        &self,
        lookup_id: &str,
        client: Option<IpAddr>,
    ) -> Result<Option<Principal>, VerifyError> {
        let Some((key, source)) = self.lookup(lookup_id).await? else {
            return Ok(None);
        };
        self.admit(lookup_id, key, source, client).await
    }

    /// The checks after the key is known: expiry, client address, revocation marker.
    async fn admit(
        &self,
        lookup_id: &str,
        key: Arc<ActiveKey>,
        source: Source,
        client: Option<IpAddr>,
    ) -> Result<Option<Principal>, VerifyError> {
        if key.expires_at.is_some_and(|at| at <= Utc::now()) {
            return Ok(None);
        }
        if !key.admits(client) {
            // The secret was right, so say so to whoever debugs a refused deployment; the
            // client hears the same 401 as for a wrong key.
            tracing::debug!(key_id = %key.id, client = ?client, "API key used from outside its allowed_ips");
            return Ok(None);
        }
        if self.store.any_exists(&[&revocation_key(lookup_id)]).await? {
            self.cache.remove(lookup_id);
            return Ok(None);
        }
        if let Source::Database { last_used_at } = source
            && let Err(err) = self.touch(key.id, last_used_at).await
        {
            // Bookkeeping: a busy database must not refuse a valid key.
            tracing::warn!(error = %err, key_id = %key.id, "could not record API key use");
        }
        Ok(Some(Principal {
            user_id: key.user_id,
            credential: Credential::ApiKey(ApiKeyGrant {
                key_id: key.id,
                lookup_id: lookup_id.to_owned(),
                tenant_id: key.tenant_id,
                permissions: key.permissions.clone(),
                expires_at: key.expires_at,
                allowed_ips: key.allowed_ips.clone(),
                require_dpop: key.require_dpop,
                via_token: None,
            }),
        }))
    }

    /// From the cache, or from the database (then cached). `None` if no live row.
    async fn lookup(
        &self,
        lookup_id: &str,
    ) -> Result<Option<(Arc<ActiveKey>, Source)>, VerifyError> {
        if let Some(hit) = self.cache.get(lookup_id) {
            return Ok(Some((hit, Source::Cache)));
        }
        let row = api_key::Entity::find()
            .filter(api_key::Column::LookupId.eq(lookup_id))
            .filter(api_key::Column::RevokedAt.is_null())
            .one(&self.db)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let Ok(permissions) = serde_json::from_value::<Permissions>(row.permissions.clone()) else {
            tracing::warn!(key_id = %row.id, "API key with unreadable permissions refused");
            return Ok(None);
        };
        let Ok(allowed_ips) = row
            .allowed_ips
            .clone()
            .map(serde_json::from_value::<AllowedIps>)
            .transpose()
        else {
            tracing::warn!(key_id = %row.id, "API key with unreadable allowed_ips refused");
            return Ok(None);
        };
        let key = Arc::new(ActiveKey {
            id: row.id,
            user_id: row.user_id,
            tenant_id: row.tenant_id,
            hash: row.secret_hash,
            permissions,
            expires_at: row.expires_at,
            allowed_ips,
            require_dpop: row.require_dpop,
        });
        self.cache.insert(lookup_id.to_owned(), key.clone());
        let source = Source::Database {
            last_used_at: row.last_used_at,
        };
        Ok(Some((key, source)))
    }

    /// Records use, at most once per [`LAST_USED_GRANULARITY`], and only on a cache miss.
    async fn touch(
        &self,
        id: Uuid,
        last_used_at: Option<DateTime<Utc>>,
    ) -> Result<(), sea_orm::DbErr> {
        let now = Utc::now();
        if last_used_at.is_some_and(|at| now - at < LAST_USED_GRANULARITY) {
            return Ok(());
        }
        api_key::ActiveModel {
            id: Set(id),
            last_used_at: Set(Some(now)),
            ..Default::default()
        }
        .update(&self.db)
        .await?;
        Ok(())
    }

    /// Makes a key dead on every instance: called before its row is revoked or rotated.
    pub async fn announce_revocation(&self, lookup_id: &str) -> Result<(), StoreError> {
        self.store
            .set(&revocation_key(lookup_id), b"1", REVOCATION_TTL)
            .await?;
        self.cache.remove(lookup_id);
        Ok(())
    }
}
