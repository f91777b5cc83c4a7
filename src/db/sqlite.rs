//! SQLite settings that sqlx's options cannot express.
use std::{ffi::c_int, sync::Once};

use libsqlite3_sys::{
    SQLITE_CONFIG_MEMSTATUS, SQLITE_DBCONFIG_ENABLE_QPSG, SQLITE_OK, sqlite3_config,
    sqlite3_db_config,
};
use sea_orm::sqlx::{self, SqliteConnection};

/// Turns off SQLite's memory statistics, once per process, before its first connection.
///
/// With them on (the library's default), every allocation and free inside SQLite takes one
/// process-wide mutex to keep the count; sqlx copies each column of each row, on a thread per
/// connection, and frees the copies on the runtime's threads, so they queue on that lock.
/// Nothing here reads the statistics.
pub fn configure_library() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: this option takes one int. SQLite accepts it only before the library is
        // initialised (else it answers SQLITE_MISUSE and changes nothing); it runs before
        // the first pool of this process opens a connection, since `options` calls it.
        let rc = unsafe { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0 as c_int) };
        if rc != SQLITE_OK {
            tracing::debug!(
                code = rc,
                "SQLite was initialised already; memory statistics stay on"
            );
        }
    });
}

/// Turns on SQLite's query planner stability guarantee (QPSG) for a new connection.
///
/// Without it SQLite plans some statements from their bound values and marks them stale
/// whenever those are bound again; since 3.4x this includes every `LIMIT ?`. A cached paged
/// query was then parsed and planned anew on each execution, a sixth of a list request's CPU.
/// With QPSG a statement keeps one plan, whatever its parameters.
pub async fn stable_query_plans(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    set_qpsg(conn, 1).await.map(drop)
}

/// Sets the connection's QPSG flag (`-1` leaves it) and returns whether it is now on.
async fn set_qpsg(conn: &mut SqliteConnection, value: c_int) -> Result<bool, sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    let mut enabled: c_int = 0;
    // SAFETY: the locked handle is a live connection no other thread uses until the guard
    // drops; this option takes an int and a pointer to an int that receives the new state.
    let rc = unsafe {
        sqlite3_db_config(
            handle.as_raw_handle().as_ptr(),
            SQLITE_DBCONFIG_ENABLE_QPSG,
            value,
            &mut enabled as *mut c_int,
        )
    };
    if rc != SQLITE_OK {
        return Err(sqlx::Error::Configuration(
            format!("sqlite3_db_config(ENABLE_QPSG) failed with code {rc}").into(),
        ));
    }
    Ok(enabled != 0)
}

#[cfg(test)]
mod tests {
    use sea_orm::sqlx::{Connection, SqliteConnection};

    use super::*;

    fn test_settings() -> crate::config::DatabaseSettings {
        crate::config::DatabaseSettings {
            url: "sqlite::memory:".into(),
            max_connections: 1,
            connect_timeout_secs: 5,
            acquire_timeout_ms: 1000,
            migrate_on_start: false,
        }
    }

    #[tokio::test]
    async fn pooled_sqlite_connections_keep_one_plan() {
        let db = sea_orm::Database::connect(crate::db::options(&test_settings()))
            .await
            .expect("connect");
        let mut conn = db
            .get_sqlite_connection_pool()
            .acquire()
            .await
            .expect("connection");
        assert!(
            set_qpsg(&mut conn, -1).await.unwrap(),
            "pool connections have QPSG on"
        );

        let mut plain = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        assert!(!set_qpsg(&mut plain, -1).await.unwrap(), "off by default");

        // SAFETY: reads a counter; with the statistics off it stays at zero.
        let counted = unsafe { libsqlite3_sys::sqlite3_memory_used() };
        assert_eq!(counted, 0, "memory statistics are off");
    }
}
