//! Redis backend (deadpool-redis), shared by every instance.
//!
//! Every call has a deadline, so a hung Redis turns into a prompt error (and a 503 upstream)
//! rather than requests piling up.
use std::time::Duration;

use deadpool_redis::{Config, Pool, PoolConfig, Runtime, Timeouts, redis};

use super::{EphemeralStore, StoreError};

const CALL_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct RedisStore {
    pool: Pool,
    prefix: String,
}

impl RedisStore {
    pub fn new(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let mut config = Config::from_url(url);
        config.pool = Some(PoolConfig {
            max_size: 32,
            timeouts: Timeouts {
                wait: Some(CALL_TIMEOUT),
                create: Some(CALL_TIMEOUT),
                recycle: Some(CALL_TIMEOUT),
            },
            ..PoolConfig::default()
        });
        let pool = config
            .create_pool(Some(Runtime::Tokio1))
            .map_err(|e| anyhow::anyhow!("invalid configuration: redis.url: {e}"))?;
        Ok(Self {
            pool,
            prefix: prefix.to_owned(),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        cmd: impl FnOnce() -> redis::Pipeline,
    ) -> Result<T, StoreError> {
        self.run_within(CALL_TIMEOUT, cmd).await
    }

    async fn run_within<T: redis::FromRedisValue>(
        &self,
        deadline: Duration,
        cmd: impl FnOnce() -> redis::Pipeline,
    ) -> Result<T, StoreError> {
        let call = async {
            let mut conn = self.pool.get().await.map_err(unavailable)?;
            cmd().query_async::<T>(&mut conn).await.map_err(unavailable)
        };
        tokio::time::timeout(deadline, call)
            .await
            .map_err(|_| StoreError::Unavailable("redis call timed out".into()))?
    }

    /// Runs a Lua `script` on `keys` (prefixed here) with `args`: one round trip, atomic,
    /// and given only `deadline` (a limiter must not hold a request for a hung Redis).
    pub async fn invoke<T: redis::FromRedisValue>(
        &self,
        script: &redis::Script,
        keys: &[&str],
        args: &[u64],
        deadline: Duration,
    ) -> Result<T, StoreError> {
        let call = async {
            let mut conn = self.pool.get().await.map_err(unavailable)?;
            let mut invocation = script.prepare_invoke();
            for key in keys {
                invocation.key(self.key(key));
            }
            for arg in args {
                invocation.arg(*arg);
            }
            invocation
                .invoke_async::<T>(&mut conn)
                .await
                .map_err(unavailable)
        };
        tokio::time::timeout(deadline, call)
            .await
            .map_err(|_| StoreError::Unavailable("redis call timed out".into()))?
    }

    /// How long `key` still lives (`None` when it does not exist), asked within `deadline`.
    pub async fn ttl(&self, key: &str, deadline: Duration) -> Result<Option<Duration>, StoreError> {
        let key = self.key(key);
        let (millis,): (i64,) = self
            .run_within(deadline, || redis::pipe().cmd("PTTL").arg(&key).clone())
            .await?;
        Ok(u64::try_from(millis).ok().map(Duration::from_millis))
    }

    /// The server's `maxmemory-policy` (from `INFO memory`, which managed Redis services allow
    /// where `CONFIG GET` is often disabled).
    pub async fn maxmemory_policy(&self) -> Result<Option<String>, StoreError> {
        let (info,): (String,) = self
            .run(|| redis::pipe().cmd("INFO").arg("memory").clone())
            .await?;
        Ok(info.lines().find_map(|line| {
            line.strip_prefix("maxmemory_policy:")
                .map(|p| p.trim().to_owned())
        }))
    }
}

fn unavailable(err: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(err.to_string())
}

fn ttl_millis(ttl: Duration) -> u64 {
    // Redis refuses a zero expiry; the shortest window it keeps is a millisecond.
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl EphemeralStore for RedisStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = self.key(key);
        let (value,): (Option<Vec<u8>>,) = self.run(|| redis::pipe().get(&key).clone()).await?;
        Ok(value)
    }

    async fn any_exists(&self, keys: &[&str]) -> Result<bool, StoreError> {
        let keys: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        let (count,): (u64,) = self
            .run(|| redis::pipe().cmd("EXISTS").arg(&keys).clone())
            .await?;
        Ok(count > 0)
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        let key = self.key(key);
        self.run::<()>(|| {
            redis::pipe()
                .cmd("SET")
                .arg(&key)
                .arg(value)
                .arg("PX")
                .arg(ttl_millis(ttl))
                .ignore()
                .clone()
        })
        .await
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = self.key(key);
        // GETDEL is atomic: two instances racing for the same login state cannot both win.
        let (value,): (Option<Vec<u8>>,) = self
            .run(|| redis::pipe().cmd("GETDEL").arg(&key).clone())
            .await?;
        Ok(value)
    }

    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, StoreError> {
        let key = self.key(key);
        // One transaction: create the window with its expiry if absent, then count.
        let (count,): (u64,) = self
            .run(|| {
                redis::pipe()
                    .atomic()
                    .cmd("SET")
                    .arg(&key)
                    .arg(0)
                    .arg("PX")
                    .arg(ttl_millis(ttl))
                    .arg("NX")
                    .ignore()
                    .cmd("INCR")
                    .arg(&key)
                    .clone()
            })
            .await?;
        Ok(count)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let (pong,): (String,) = self.run(|| redis::pipe().cmd("PING").clone()).await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(StoreError::Unavailable(format!(
                "unexpected PING reply {pong:?}"
            )))
        }
    }
}
