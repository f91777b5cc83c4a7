//! The database: connection (SQLite by default, PostgreSQL by URL), migrations, entities.
use std::{path::PathBuf, str::FromStr, time::Duration};

use anyhow::Context;
use migrations::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DbErr, RuntimeErr, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
    sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode},
};
use secrecy::ExposeSecret;

use crate::config::DatabaseSettings;

pub mod entities;
mod reads;
mod sqlite;

pub use reads::{FromSqliteRow, Reader};

/// How long a SQLite write waits for another connection's write lock before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A pooled connection idle at least this long is pinged before it is handed out.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(30);

/// The pool's options. Acquiring a connection waits at most `database.acquire_timeout_ms`, so
/// a database that cannot be reached costs a request about that long (then 503), not minutes.
pub fn options(settings: &DatabaseSettings) -> ConnectOptions {
    let url = settings.url.expose_secret();
    let is_sqlite = url.starts_with("sqlite:");
    let in_memory = url.contains(":memory:");
    if is_sqlite {
        sqlite::configure_library();
    }
    let mut options = ConnectOptions::new(url.to_owned());
    options
        // An in-memory SQLite database exists per connection: keep exactly one.
        .max_connections(if in_memory {
            1
        } else {
            settings.max_connections
        })
        .min_connections(if is_sqlite { 1 } else { 0 })
        .connect_timeout(Duration::from_secs(settings.connect_timeout_secs))
        .acquire_timeout(Duration::from_millis(settings.acquire_timeout_ms))
        // sqlx pings every connection it hands out: a round trip per query (to the server, or
        // to SQLite's worker thread). Only a connection idle long enough for a server, proxy
        // or firewall to have dropped it is pinged; a query on a connection lost otherwise
        // fails once as `Unavailable` (503, retry) and the pool replaces it.
        .test_before_acquire_if_idle_for(PING_IF_IDLE_FOR)
        // sqlx logs each statement at INFO, with its parameters: off.
        .sqlx_logging(false)
        .map_sqlx_sqlite_pool_opts(|pool| {
            pool.after_connect(|conn, _| Box::pin(sqlite::stable_query_plans(conn)))
        })
        .map_sqlx_sqlite_opts(move |opts| {
            let opts = opts.busy_timeout(SQLITE_BUSY_TIMEOUT);
            // WAL: readers never wait for the writer, and the writer never waits for readers.
            // (An in-memory database has no journal to switch.)
            if in_memory {
                opts
            } else {
                opts.journal_mode(SqliteJournalMode::Wal)
            }
        });
    options
}

/// Opens the pool. A SQLite file's directory is created if missing, so a fresh clone runs.
///
/// At start the database may still be coming up: connecting is retried for
/// `database.connect_timeout_secs`, while each request later waits only the acquire timeout.
pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<DatabaseConnection> {
    let url = settings.url.expose_secret();
    let is_sqlite = url.starts_with("sqlite:");
    if is_sqlite {
        ensure_sqlite_dir(url)?;
    }
    // The URL may carry a password, so the error names the database kind, never the URL.
    let kind = if is_sqlite { "SQLite" } else { "PostgreSQL" };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(settings.connect_timeout_secs);
    loop {
        match Database::connect(options(settings)).await {
            Ok(db) => return Ok(db),
            Err(err)
                if failure(&err) == Some(Failure::Unavailable)
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(err) => {
                return Err(err).with_context(|| {
                    format!("could not connect to the {kind} database (database.url)")
                });
            }
        }
    }
}

/// Starting a transaction that writes: `db.begin_write().await?` instead of `db.begin()`.
pub trait BeginWrite: TransactionTrait {
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = Result<Self::Transaction, DbErr>> + Send;
}

impl<C: TransactionTrait> BeginWrite for C {
    /// On SQLite the write lock is taken at `BEGIN IMMEDIATE`, where the busy timeout lets it
    /// wait its turn. A plain (deferred) transaction reads first and asks for the lock at its
    /// first write, and SQLite refuses that upgrade at once with "database is locked" when
    /// another writer got in between, since waiting could deadlock. PostgreSQL ignores the mode.
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = Result<Self::Transaction, DbErr>> + Send {
        self.begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        })
    }
}

/// The database failures a client can do something about, by retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Lost to a concurrent transaction (PostgreSQL serialization failure or deadlock,
    /// SQLite still locked after the busy timeout): retrying the request may succeed.
    Contention,
    /// The database cannot be reached: no connection within the acquire timeout, refused,
    /// closed, or the server is shutting down or starting.
    Unavailable,
}

/// Classifies a database error; `None` for everything else (a bug, a constraint, bad data).
pub fn failure(err: &DbErr) -> Option<Failure> {
    use sea_orm::sqlx::Error as Sqlx;
    let sqlx = match err {
        DbErr::ConnectionAcquire(_) => return Some(Failure::Unavailable),
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => e.as_ref(),
        _ => return None,
    };
    match sqlx {
        Sqlx::Io(_)
        | Sqlx::Tls(_)
        | Sqlx::PoolTimedOut
        | Sqlx::PoolClosed
        | Sqlx::WorkerCrashed => Some(Failure::Unavailable),
        Sqlx::Database(db) => {
            let sqlite = db
                .try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>()
                .is_some();
            db.code()
                .as_deref()
                .and_then(|code| code_failure(code, sqlite))
        }
        _ => None,
    }
}

/// PostgreSQL SQLSTATEs, or SQLite (extended) result codes when `sqlite`: the two are told
/// apart by the driver, never by the code's shape (an all-digit SQLSTATE such as 22021 would
/// otherwise read as SQLite's "busy").
fn code_failure(code: &str, sqlite: bool) -> Option<Failure> {
    if sqlite {
        // The primary code is the low byte; 5 = SQLITE_BUSY, 6 = SQLITE_LOCKED.
        return match code.parse::<i32>().map(|c| c & 0xff) {
            Ok(5 | 6) => Some(Failure::Contention),
            _ => None,
        };
    }
    // serialization_failure, deadlock_detected, lock_not_available
    if matches!(code, "40001" | "40P01" | "55P03") {
        return Some(Failure::Contention);
    }
    // connection_exception (08xxx), admin/crash shutdown, cannot_connect_now, too_many_connections
    if code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300") {
        return Some(Failure::Unavailable);
    }
    None
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None)
        .await
        .context("could not apply database migrations")
}

fn ensure_sqlite_dir(url: &str) -> anyhow::Result<()> {
    let Some(path) = sqlite_file(url) else {
        return Ok(());
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| {
            format!("could not create the database directory {}", dir.display())
        })?;
    }
    Ok(())
}

/// The database file a SQLite URL names; `None` for PostgreSQL and in-memory databases. Read
/// by sqlx's own parser (percent-decoding included), so it is the file the pool opens.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    if !url.starts_with("sqlite:") || url.contains(":memory:") || url.contains("mode=memory") {
        return None;
    }
    let options = SqliteConnectOptions::from_str(url).ok()?;
    Some(options.get_filename().to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file_as_sqlx_reads_it() {
        assert_eq!(
            sqlite_file("sqlite://data/iq.db?mode=rwc"),
            Some(PathBuf::from("data/iq.db"))
        );
        assert_eq!(
            sqlite_file("sqlite:data/iq.db"),
            Some(PathBuf::from("data/iq.db"))
        );
        assert_eq!(
            sqlite_file("sqlite:///tmp/a%20b.db"),
            Some(PathBuf::from("/tmp/a b.db"))
        );
        for url in [
            "sqlite::memory:",
            "sqlite://file:shared?mode=memory&cache=shared",
            "postgres://postgres@127.0.0.1/iq",
        ] {
            assert_eq!(sqlite_file(url), None, "{url}");
        }
    }

    #[test]
    fn codes_are_classified_by_their_driver() {
        let pg = |code| code_failure(code, false);
        let sqlite = |code| code_failure(code, true);
        assert_eq!(pg("40001"), Some(Failure::Contention));
        assert_eq!(pg("40P01"), Some(Failure::Contention));
        assert_eq!(pg("08006"), Some(Failure::Unavailable));
        assert_eq!(pg("57P01"), Some(Failure::Unavailable));
        // unique_violation, invalid byte sequence (a NUL), insufficient privilege: not a
        // busy database, whatever their low byte says.
        assert_eq!(pg("23505"), None);
        assert_eq!(pg("22021"), None);
        assert_eq!(pg("42501"), None);
        assert_eq!(sqlite("5"), Some(Failure::Contention));
        // SQLITE_BUSY_SNAPSHOT (517) and SQLITE_LOCKED_SHAREDCACHE (262)
        assert_eq!(sqlite("517"), Some(Failure::Contention));
        assert_eq!(sqlite("262"), Some(Failure::Contention));
        // SQLITE_CONSTRAINT_UNIQUE (2067): not ours to retry
        assert_eq!(sqlite("2067"), None);
    }
}
