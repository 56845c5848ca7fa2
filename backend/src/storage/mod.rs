//! Everything that touches the database. Plain functions taking a connection (or transaction)
//! and, for tenant data, the tenant scope first; sea-orm already abstracts SQLite/PostgreSQL,
//! so there is no repository trait on top.

pub mod accounts;
pub mod alerts;
pub mod billing;
pub mod data_keys;
pub mod drops;
pub mod entities;
pub mod events;
pub mod invitations;
pub mod login_attempts;
pub mod page_rollups;
pub mod panel;
pub mod panel_audit;
pub mod panel_maps;
pub mod partitions;
pub mod pg_writer;
pub mod privacy;
pub mod rollups;
pub mod rule_settings;
pub mod salts;
pub mod shopify_orders;
pub mod shopify_setup;
pub mod shops;
pub mod sites;
pub mod sqlite_writer;
pub mod stats;
#[cfg(test)]
mod test_rows;
pub mod threats;
pub mod webhook_inbox;

use std::path::PathBuf;
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend, DbErr};
use sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};

use crate::domain::SiteId;
use crate::settings::DatabaseUrl;

/// Proof that the caller resolved the tenant from a verified credential (an API token, a site
/// key on the collect path, later a Shopify session token or webhook HMAC). Tenant-scoped
/// storage functions take it first and put `site_id = ?` in their base condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TenantScope(SiteId);

impl TenantScope {
    /// Only the modules that verify credentials create scopes.
    pub(crate) fn verified(site: SiteId) -> Self {
        TenantScope(site)
    }

    pub fn site_id(self) -> SiteId {
        self.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    // Not `#[from]`: that would also make the DbErr the `source`, and error chains would
    // print it twice.
    #[error("database error: {0}")]
    Db(DbErr),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
}

impl From<DbErr> for StorageError {
    fn from(e: DbErr) -> Self {
        StorageError::Db(e)
    }
}

/// SQLite page cache per connection, in KiB (64 MiB): the hot tail of events, sessions and
/// their indexes stays in memory instead of being re-read for every group commit. Used by the
/// pool and by the dedicated writer (`sqlite_writer`).
pub(crate) const SQLITE_CACHE_KIB: i64 = 65_536;

/// Opens the database, creating the SQLite file (and its directory) when needed, and applies
/// pending migrations. SQLite runs in WAL mode with `synchronous=NORMAL`: a commit survives a
/// process crash (the acknowledgement guarantee of `/collect`); only an OS crash or power loss
/// can lose the last commits before a checkpoint.
pub async fn connect(url: &DatabaseUrl) -> Result<DatabaseConnection, StorageError> {
    if url.is_sqlite() {
        ensure_sqlite_dir(url)?;
    }
    let mut opts = ConnectOptions::new(url.expose().to_owned());
    opts.sqlx_logging(false).acquire_timeout(Duration::from_secs(5)).connect_timeout(Duration::from_secs(5));
    if url.is_sqlite() {
        opts.max_connections(8).min_connections(1).map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                .pragma("cache_size", format!("-{SQLITE_CACHE_KIB}"))
                .pragma("temp_store", "memory")
        });
    } else {
        opts.max_connections(16).min_connections(2);
    }
    let db = Database::connect(opts).await?;
    Ok(db)
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), StorageError> {
    Migrator::up(db, None).await?;
    Ok(())
}

pub fn backend_name(db: &DatabaseConnection) -> &'static str {
    match sea_orm::ConnectionTrait::get_database_backend(db) {
        DbBackend::Sqlite => "sqlite",
        DbBackend::Postgres => "postgres",
        _ => "other",
    }
}

/// The file behind a `sqlite:` URL; `None` for an in-memory database.
pub fn sqlite_file(url: &DatabaseUrl) -> Option<PathBuf> {
    let path = url.expose().trim_start_matches("sqlite:").trim_start_matches("//");
    let path = path.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.starts_with(":memory:")).then(|| PathBuf::from(path))
}

fn ensure_sqlite_dir(url: &DatabaseUrl) -> Result<(), StorageError> {
    let Some(path) = sqlite_file(url) else { return Ok(()) };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|source| StorageError::DataDir { path: dir.display().to_string(), source })?;
    }
    Ok(())
}
