//! The database: connection (SQLite by default, PostgreSQL by URL), migrations, entities.
use std::{path::Path, time::Duration};

use anyhow::Context;
use migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use secrecy::ExposeSecret;

use crate::config::DatabaseSettings;

pub mod entities;

/// Opens the pool. A SQLite file's directory is created if missing, so a fresh clone runs.
pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<DatabaseConnection> {
    let url = settings.url.expose_secret();
    let is_sqlite = url.starts_with("sqlite:");
    if is_sqlite {
        ensure_sqlite_dir(url)?;
    }
    let mut options = ConnectOptions::new(url.to_owned());
    options
        // An in-memory SQLite database exists per connection: keep exactly one.
        .max_connections(if url.contains(":memory:") {
            1
        } else {
            settings.max_connections
        })
        .min_connections(if is_sqlite { 1 } else { 0 })
        .connect_timeout(Duration::from_secs(settings.connect_timeout_secs))
        .acquire_timeout(Duration::from_secs(settings.connect_timeout_secs))
        // sqlx logs each statement at INFO, with its parameters: off.
        .sqlx_logging(false);
    // The URL may carry a password, so the error names the database kind, never the URL.
    let kind = if is_sqlite { "SQLite" } else { "PostgreSQL" };
    Database::connect(options)
        .await
        .with_context(|| format!("could not connect to the {kind} database (database.url)"))
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None)
        .await
        .context("could not apply database migrations")
}

fn ensure_sqlite_dir(url: &str) -> anyhow::Result<()> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() || path.starts_with(":memory:") {
        return Ok(());
    }
    if let Some(dir) = Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).with_context(|| {
            format!("could not create the database directory {}", dir.display())
        })?;
    }
    Ok(())
}
