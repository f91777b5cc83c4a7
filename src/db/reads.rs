//! Reads on the request path that SQLite runs on the calling thread.
//!
//! sqlx's SQLite driver runs each statement on a thread of its own: the statement goes over a
//! channel, every row comes back over another, and the connection is pinged on its way back to
//! the pool, so one query wakes a thread four times. For the reads the API serves most (a page
//! of posts) those hand-offs cost more CPU than SQLite's own work. On a SQLite file, [`Reader`]
//! runs them here instead, on read-only connections of its own, synchronously, in the calling
//! task. That holds a runtime thread while SQLite works, so only reads bounded by an index go
//! here (a page read in index order that stops after `limit + 1` rows; `domain::posts` decides
//! which), and a budget of SQLite VM steps interrupts any read that runs long anyway. A read
//! that cannot finish here for any reason (busy, interrupted, a value it cannot decode, a file
//! it cannot open) is sent to the pool, which answers as it always did. PostgreSQL and an
//! in-memory SQLite database use the pool only.
use std::{
    collections::VecDeque,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, NaiveDate, NaiveTime, SecondsFormat, Utc};
use rusqlite::{
    Connection, ErrorCode, OpenFlags, Row,
    config::DbConfig,
    types::{ToSqlOutput, Type, Value as Sql, ValueRef},
};
use sea_orm::{
    ActiveEnum, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryTrait, Select, Statement,
    sea_query::{OptionEnum, Value},
};
use uuid::Uuid;

use super::{
    entities::{PostStatus, post},
    sqlite_file,
};
use crate::telemetry::metrics;

/// SQLite VM steps between two looks at the budget, and the budget in looks: a page of 101
/// posts takes a few thousand steps; past 50,000 (well under a millisecond, or a deep `offset`)
/// the read is interrupted and the pool takes it.
const STEPS_PER_CHECK: i32 = 1_000;
const STEP_BUDGET: u32 = 50;

/// An idle read connection older than this is closed, so a database file replaced under a
/// running server (a restore) is not read from its old copy for long; sqlx's pool does as much.
const MAX_CONNECTION_AGE: Duration = Duration::from_secs(30 * 60);

/// Runs the hot reads on the calling thread for a SQLite file, else through the pool.
#[derive(Clone)]
pub struct Reader {
    db: DatabaseConnection,
    inline: Option<Arc<InlineSqlite>>,
}

impl Reader {
    /// Reads through `db`'s pool, or on the calling thread when `url` names a SQLite file.
    pub fn new(db: DatabaseConnection, url: &str) -> Self {
        let inline = sqlite_file(url).map(|path| Arc::new(InlineSqlite::new(path)));
        Self { db, inline }
    }

    /// Whether reads run on the calling thread (a SQLite file).
    pub fn is_inline(&self) -> bool {
        self.inline.is_some()
    }

    /// The pool, for the reads that may not run on the calling thread.
    pub fn pool(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Reads served on the calling thread and reads it handed to the pool, since start.
    pub fn inline_counts(&self) -> (u64, u64) {
        self.inline.as_ref().map_or((0, 0), |inline| {
            (
                inline.served.load(Ordering::Relaxed),
                inline.handed_over.load(Ordering::Relaxed),
            )
        })
    }

    /// Every row `select` finds. Only for a `select` bounded by an index: on a SQLite file it
    /// holds the calling thread while it runs (up to the step budget).
    pub(crate) async fn all_bounded<E>(&self, select: Select<E>) -> Result<Vec<E::Model>, DbErr>
    where
        E: EntityTrait,
        E::Model: FromSqliteRow,
    {
        if let Some(inline) = &self.inline {
            match inline.all(&select.build(DbBackend::Sqlite)) {
                Ok(rows) => {
                    inline.served.fetch_add(1, Ordering::Relaxed);
                    metrics::inline_read("served");
                    return Ok(rows);
                }
                Err(InlineError::Mismatch(err)) => return Err(err),
                Err(InlineError::Retry(reason)) => {
                    inline.handed_over.fetch_add(1, Ordering::Relaxed);
                    metrics::inline_read("handed_to_pool");
                    // Busy and long reads are expected now and then; anything else is worth a
                    // look, once a minute at most (a bad row on a hot page fails every read;
                    // the metric counts them all).
                    if matches!(reason, Retry::Busy | Retry::TooLong) || !inline.warn_now() {
                        tracing::debug!(?reason, "inline SQLite read handed to the pool");
                    } else {
                        tracing::warn!(?reason, "inline SQLite read handed to the pool");
                    }
                }
            }
        }
        select.all(&self.db).await
    }
}

/// A row type read on the inline path, column by column in the order of its entity's `SELECT`.
pub trait FromSqliteRow: Sized {
    /// The column names, in order: a query whose columns differ is refused, not misread.
    const COLUMNS: &'static [&'static str];

    fn from_sqlite_row(row: &Row<'_>) -> rusqlite::Result<Self>;
}

impl FromSqliteRow for post::Model {
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "tenant_id",
        "author_id",
        "title",
        "slug",
        "body",
        "status",
        "version",
        "published_at",
        "created_at",
        "updated_at",
    ];

    fn from_sqlite_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: uuid(row, 0)?,
            tenant_id: uuid(row, 1)?,
            author_id: uuid(row, 2)?,
            title: row.get(3)?,
            slug: row.get(4)?,
            body: row.get(5)?,
            status: status(row, 6)?,
            version: row.get(7)?,
            published_at: optional_timestamp(row, 8)?,
            created_at: timestamp(row, 9)?,
            updated_at: timestamp(row, 10)?,
        })
    }
}

/// A UUID as sqlx writes it to SQLite: 16 bytes.
fn uuid(row: &Row<'_>, idx: usize) -> rusqlite::Result<Uuid> {
    let bytes = row.get_ref(idx)?.as_blob()?;
    Uuid::from_slice(bytes).map_err(|err| conversion(idx, Type::Blob, err))
}

/// A timestamp as sqlx writes it to SQLite: RFC 3339 text.
fn timestamp(row: &Row<'_>, idx: usize) -> rusqlite::Result<DateTime<Utc>> {
    let text = row.get_ref(idx)?.as_str()?;
    parse_rfc3339(text).map_err(|err| conversion(idx, Type::Text, err))
}

/// `DateTime::parse_from_rfc3339`, with a fast path for the one shape sqlx writes in UTC
/// (`YYYY-MM-DDTHH:MM:SS[.f…]+00:00`): chrono's general parser was a twentieth of a page's CPU.
fn parse_rfc3339(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    match parse_utc_fast(text.as_bytes()) {
        Some(at) => Ok(at),
        None => DateTime::parse_from_rfc3339(text).map(|at| at.with_timezone(&Utc)),
    }
}

fn parse_utc_fast(text: &[u8]) -> Option<DateTime<Utc>> {
    let (head, offset) = text.split_at_checked(text.len().checked_sub(6)?)?;
    if offset != b"+00:00" || head.len() < 19 {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        head.get(range)?.iter().try_fold(0u32, |n, b| {
            b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
        })
    };
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if separators.iter().any(|&(at, byte)| head[at] != byte) {
        return None;
    }
    let nanos = match &head[19..] {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
            number(20..head.len())? * 10u32.pow(9 - digits.len() as u32)
        }
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(number(0..4)? as i32, number(5..7)?, number(8..10)?)?;
    // A leap second (`:60`) is left to chrono, which represents it its own way.
    let time =
        NaiveTime::from_hms_nano_opt(number(11..13)?, number(14..16)?, number(17..19)?, nanos)
            .filter(|_| number(17..19) < Some(60))?;
    Some(date.and_time(time).and_utc())
}

fn optional_timestamp(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    match row.get_ref(idx)? {
        ValueRef::Null => Ok(None),
        _ => timestamp(row, idx).map(Some),
    }
}

fn status(row: &Row<'_>, idx: usize) -> rusqlite::Result<PostStatus> {
    let text: String = row.get(idx)?;
    PostStatus::try_from_value(&text).map_err(|err| conversion(idx, Type::Text, err))
}

/// A value of SQLite type `stored` that does not decode into its field.
fn conversion(
    idx: usize,
    stored: Type,
    err: impl std::error::Error + Send + Sync + 'static,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, stored, Box::new(err))
}

enum InlineError {
    /// The query's columns are not the decoder's: a bug, never retried.
    Mismatch(DbErr),
    /// The read could not finish here; the pool answers it.
    Retry(Retry),
}

#[derive(Debug)]
enum Retry {
    /// Locked for now (WAL recovery, a checkpoint restarting the log): the pool's
    /// connections wait it out, this thread does not.
    Busy,
    /// Ran past the step budget.
    TooLong,
    /// Anything else: an error opening or reading, a value this decoder does not read.
    #[allow(dead_code)] // read through `Debug`, in the log
    Failed(String),
}

impl From<rusqlite::Error> for InlineError {
    fn from(err: rusqlite::Error) -> Self {
        InlineError::Retry(match err.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Retry::Busy,
            Some(ErrorCode::OperationInterrupted) => Retry::TooLong,
            _ => Retry::Failed(err.to_string()),
        })
    }
}

/// Read-only connections to one SQLite file, each used by one thread at a time.
struct InlineSqlite {
    path: PathBuf,
    idle: Mutex<VecDeque<ReadConnection>>,
    /// Idle connections kept: one per thread that may read at once (the runtime's workers).
    keep: usize,
    served: AtomicU64,
    handed_over: AtomicU64,
    started: Instant,
    /// Seconds after `started` from which the next warning may be logged.
    next_warning: AtomicU64,
}

const WARN_EVERY_SECS: u64 = 60;

struct ReadConnection {
    conn: Connection,
    opened: Instant,
    /// Budget checks left for the current read; the progress handler counts it down.
    budget: Arc<AtomicU32>,
}

impl InlineSqlite {
    fn new(path: PathBuf) -> Self {
        let threads = std::thread::available_parallelism().map_or(8, usize::from);
        Self {
            path,
            idle: Mutex::new(VecDeque::new()),
            keep: threads.max(8),
            served: AtomicU64::new(0),
            handed_over: AtomicU64::new(0),
            started: Instant::now(),
            next_warning: AtomicU64::new(0),
        }
    }

    /// Whether a minute has passed since the last warning (and this one is it).
    fn warn_now(&self) -> bool {
        let now = self.started.elapsed().as_secs();
        let next = self.next_warning.load(Ordering::Relaxed);
        now >= next
            && self
                .next_warning
                .compare_exchange(
                    next,
                    now + WARN_EVERY_SECS,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    fn all<T: FromSqliteRow>(&self, statement: &Statement) -> Result<Vec<T>, InlineError> {
        // First in, first out: every idle connection comes round, so each one's age is seen.
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop_front());
        let read = match idle {
            Some(read) if read.opened.elapsed() < MAX_CONNECTION_AGE => read,
            _ => open(&self.path)?,
        };
        read.budget.store(STEP_BUDGET, Ordering::Relaxed);
        let rows = run(&read.conn, statement);
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.keep
        {
            idle.push_back(read);
        }
        rows
    }
}

fn open(path: &Path) -> Result<ReadConnection, InlineError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    // No busy handler: a locked database sends the read to the pool. (SQLite's own retry when
    // a read starts during a WAL checkpoint can still sleep briefly; it is rare.)
    conn.busy_timeout(Duration::ZERO)?;
    // One plan per statement whatever its `LIMIT` (see `db::sqlite::stable_query_plans`).
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    let budget = Arc::new(AtomicU32::new(STEP_BUDGET));
    let left = budget.clone();
    // Returning `true` interrupts the statement (SQLITE_INTERRUPT): the pool takes the read.
    conn.progress_handler(
        STEPS_PER_CHECK,
        Some(move || {
            left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_err()
        }),
    )?;
    Ok(ReadConnection {
        conn,
        opened: Instant::now(),
        budget,
    })
}

fn run<T: FromSqliteRow>(conn: &Connection, statement: &Statement) -> Result<Vec<T>, InlineError> {
    let mut prepared = conn.prepare_cached(&statement.sql)?;
    let columns = prepared.column_names();
    if columns != T::COLUMNS {
        return Err(InlineError::Mismatch(DbErr::Custom(format!(
            "inline SQLite read: columns {columns:?}, expected {:?}",
            T::COLUMNS
        ))));
    }
    let values = statement.values.as_ref().map(|v| v.0.as_slice());
    let params = values
        .unwrap_or_default()
        .iter()
        .map(bind)
        .collect::<Result<Vec<_>, _>>()?;
    let mut rows = prepared.query(rusqlite::params_from_iter(params))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(T::from_sqlite_row(row)?);
    }
    Ok(out)
}

/// A parameter as sqlx binds it on SQLite, for the types the inline reads use.
fn bind(value: &Value) -> Result<ToSqlOutput<'_>, InlineError> {
    let sql = match value {
        Value::String(s) => s
            .as_deref()
            .map(|s| ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes()))),
        Value::Enum(OptionEnum::Some(e)) => {
            Some(ToSqlOutput::Borrowed(ValueRef::Text(e.value.as_bytes())))
        }
        Value::Enum(OptionEnum::None(_)) => None,
        Value::Uuid(u) => u.map(|u| ToSqlOutput::Owned(Sql::Blob(u.as_bytes().to_vec()))),
        Value::Bool(b) => b.map(|b| ToSqlOutput::Owned(Sql::Integer(b.into()))),
        Value::Int(i) => i.map(|i| ToSqlOutput::Owned(Sql::Integer(i.into()))),
        Value::BigInt(i) => i.map(|i| ToSqlOutput::Owned(Sql::Integer(i))),
        Value::Unsigned(i) => i.map(|i| ToSqlOutput::Owned(Sql::Integer(i.into()))),
        Value::BigUnsigned(i) => {
            let i = i
                .map(i64::try_from)
                .transpose()
                .map_err(|_| unsupported("an integer beyond i64"))?;
            i.map(|i| ToSqlOutput::Owned(Sql::Integer(i)))
        }
        Value::ChronoDateTimeUtc(t) => t.map(|t| {
            ToSqlOutput::Owned(Sql::Text(t.to_rfc3339_opts(SecondsFormat::AutoSi, false)))
        }),
        other => return Err(unsupported(&format!("{other:?}"))),
    };
    Ok(sql.unwrap_or(ToSqlOutput::Owned(Sql::Null)))
}

fn unsupported(what: &str) -> InlineError {
    InlineError::Retry(Retry::Failed(format!("parameter {what} not supported")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_interrupted_and_failed_reads_go_to_the_pool() {
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert!(matches!(
            InlineError::from(busy),
            InlineError::Retry(Retry::Busy)
        ));
        let corrupt = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            None,
        );
        assert!(matches!(
            InlineError::from(corrupt),
            InlineError::Retry(Retry::Failed(_))
        ));
    }

    #[test]
    fn timestamps_as_sqlx_writes_them_are_read_as_chrono_reads_them() {
        for at in crate::api::sample_times() {
            let text = at.to_rfc3339_opts(SecondsFormat::AutoSi, false);
            assert_eq!(parse_utc_fast(text.as_bytes()), Some(at), "{text}");
        }
    }

    #[test]
    fn every_fraction_width_is_read_as_chrono_reads_it() {
        for fraction in [
            "", ".5", ".12", ".123", ".1234", ".12345", ".123456", ".1234567",
        ] {
            for tail in [".12345678", ".123456789", ".000000001", ".9"] {
                for text in [
                    format!("2026-11-24T15:06:55{fraction}+00:00"),
                    format!("2000-02-29T23:59:59{tail}+00:00"),
                ] {
                    let chrono = DateTime::parse_from_rfc3339(&text).unwrap();
                    assert_eq!(
                        parse_utc_fast(text.as_bytes()),
                        Some(chrono.to_utc()),
                        "{text}"
                    );
                }
            }
        }
    }

    #[test]
    fn other_timestamp_shapes_are_left_to_chrono() {
        for text in [
            "2026-11-24T15:06:55Z",
            "2026-11-24T15:06:55.5+02:00",
            "2026-11-24 15:06:55+00:00",
            "2016-12-31T23:59:60.5+00:00",
            "2026-11-24T15:06:55.1234567890+00:00",
            "2026-11-24T15:06:55.+00:00",
            "2026-02-30T15:06:55+00:00",
            "2026-11-24T15:6:55+00:00",
            "+00:00",
            "",
        ] {
            assert_eq!(parse_utc_fast(text.as_bytes()), None, "{text}");
            assert_eq!(
                parse_rfc3339(text).ok(),
                DateTime::parse_from_rfc3339(text)
                    .ok()
                    .map(|at| at.with_timezone(&Utc)),
                "{text}"
            );
        }
    }

    #[test]
    fn parameters_bind_as_sqlx_binds_them() {
        let at = DateTime::parse_from_rfc3339("2026-11-24T15:06:55.123456+00:00")
            .unwrap()
            .with_timezone(&Utc);
        let id = Uuid::now_v7();
        let text = |v: &Value| match bind(v) {
            Ok(ToSqlOutput::Owned(Sql::Text(t))) => t,
            Ok(ToSqlOutput::Borrowed(ValueRef::Text(t))) => String::from_utf8(t.to_vec()).unwrap(),
            _ => panic!("not text: {v:?}"),
        };
        assert_eq!(text(&Value::from(at)), "2026-11-24T15:06:55.123456+00:00");
        assert_eq!(text(&Value::from("published")), "published");
        assert!(matches!(
            bind(&Value::from(id)),
            Ok(ToSqlOutput::Owned(Sql::Blob(b))) if b == id.as_bytes()
        ));
        assert!(matches!(
            bind(&Value::from(21u64)),
            Ok(ToSqlOutput::Owned(Sql::Integer(21)))
        ));
        assert!(matches!(
            bind(&Value::String(None)),
            Ok(ToSqlOutput::Owned(Sql::Null))
        ));
        for value in [Value::from(u64::MAX), Value::from(1.5f64)] {
            assert!(matches!(
                bind(&value),
                Err(InlineError::Retry(Retry::Failed(_)))
            ));
        }
    }
}
