//! The group-commit writer's SQLite path: one dedicated connection, driven synchronously from
//! the writer's own thread, executing cached single-row prepared statements.
//!
//! Why not the pooled sea-orm connection: sqlx runs each SQLite connection on a worker thread
//! and every statement is a round trip to it (two thread wake-ups), and multi-row statements
//! have to be rebuilt and re-bound for every batch. SQLite executes a prepared single-row
//! INSERT in about a microsecond when it is called directly, so for the ingest hot path the
//! writer talks to SQLite itself. The SQL text is rendered once from the same sea-query
//! statements the portable writer uses (`events_insert`, `sessions_upsert`,
//! `visitors_upsert`), so the schema knowledge lives in one place; a test below checks that
//! both writers leave identical rows.
//!
//! SQLite has one writer at a time anyway: this connection takes the write lock with
//! `BEGIN IMMEDIATE` and the pooled connections wait for it (`busy_timeout`) for their rare
//! writes (sites, salts, drop counters).

use std::path::Path;
use std::slice;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};
use sea_orm::sea_query::{InsertStatement, SqliteQueryBuilder};

use super::events::{EventRow, SessionDelta, VisitorDelta, events_insert, sessions_upsert, visitors_upsert};

pub struct SqliteBatchWriter {
    conn: Connection,
    /// SQL of the three statements, rendered from the first row that needed each.
    events_sql: Option<String>,
    sessions_sql: Option<String>,
    visitors_sql: Option<String>,
}

impl SqliteBatchWriter {
    /// Opens a writer connection on an existing, migrated database file, with the same
    /// durability settings as the pool (WAL, `synchronous=NORMAL`).
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.busy_timeout(Duration::from_secs(10))?;
        let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(journal_mode = %mode, "SQLite did not switch to WAL mode");
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.pragma_update(None, "cache_size", -super::SQLITE_CACHE_KIB)?;
        conn.set_prepared_statement_cache_capacity(8);
        Ok(SqliteBatchWriter { conn, events_sql: None, sessions_sql: None, visitors_sql: None })
    }

    /// Writes one group in one transaction. Nothing of it is visible unless all of it is.
    pub fn commit(
        &mut self,
        rows: &[EventRow],
        sessions: &[SessionDelta],
        visitors: &[VisitorDelta],
    ) -> rusqlite::Result<()> {
        let SqliteBatchWriter { conn, events_sql, sessions_sql, visitors_sql } = self;
        let txn = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(first) = rows.first() {
            let sql = events_sql.get_or_insert_with(|| render(events_insert(slice::from_ref(first))));
            let mut stmt = txn.prepare_cached(sql)?;
            for r in rows {
                stmt.execute(params![
                    r.site_id.0,
                    r.session_id.0,
                    r.visitor_id.0,
                    r.ts.0,
                    r.received_at.0,
                    r.kind,
                    r.path,
                    r.props
                ])?;
            }
        }
        if let Some(first) = sessions.first() {
            let sql = sessions_sql.get_or_insert_with(|| render(sessions_upsert(slice::from_ref(first))));
            let mut stmt = txn.prepare_cached(sql)?;
            for d in sessions {
                stmt.execute(params![
                    d.id.0,
                    d.site_id.0,
                    d.visitor_id.0,
                    d.started_at.0,
                    d.last_seen_at.0,
                    d.pageviews,
                    d.events,
                    d.entry_path,
                    d.exit_path,
                    d.referrer_host,
                    d.ip_prefix,
                    d.country,
                    d.region,
                    d.city,
                    d.asn,
                    d.as_org,
                    d.net_flags,
                    d.browser,
                    d.browser_version,
                    d.os,
                    d.device,
                    d.bot_family,
                    d.automated,
                    d.consent
                ])?;
            }
        }
        if let Some(first) = visitors.first() {
            let sql = visitors_sql.get_or_insert_with(|| render(visitors_upsert(slice::from_ref(first))));
            let mut stmt = txn.prepare_cached(sql)?;
            for d in visitors {
                stmt.execute(params![d.site_id.0, d.visitor_id.0, d.first_seen_at.0, d.last_seen_at.0, d.sessions])?;
            }
        }
        txn.commit()
    }
}

fn render(statement: InsertStatement) -> String {
    statement.build(SqliteQueryBuilder).0
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

    use super::*;
    use crate::domain::SiteId;
    use crate::settings::DatabaseUrl;
    use crate::storage::test_rows::{commits, event};
    use crate::storage::{self, events, sites};

    async fn fresh(dir: &Path) -> (DatabaseConnection, SiteId, std::path::PathBuf) {
        let file = dir.join("gt.db");
        let url = DatabaseUrl::new(format!("sqlite://{}?mode=rwc", file.display()));
        let db = storage::connect(&url).await.unwrap();
        storage::migrate(&db).await.unwrap();
        let (site, _) = sites::create(&db, "shop.example", sites::SiteKind::Standalone).await.unwrap();
        (db, site.id, file)
    }

    async fn number(db: &DatabaseConnection, sql: &str) -> i64 {
        let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
        row.try_get_by_index(0).unwrap()
    }

    #[tokio::test]
    async fn dedicated_writer_leaves_the_same_rows_as_the_portable_writer() {
        let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (portable, site_a, _) = fresh(a_dir.path()).await;
        let (reader, site_b, file) = fresh(b_dir.path()).await;
        assert_eq!(site_a, site_b);

        for (rows, sessions, visitors) in commits(site_a) {
            events::insert_events(&portable, &rows).await.unwrap();
            events::upsert_sessions(&portable, &sessions).await.unwrap();
            events::upsert_visitors(&portable, &visitors).await.unwrap();
        }
        let mut dedicated = SqliteBatchWriter::open(&file).unwrap();
        for (rows, sessions, visitors) in commits(site_b) {
            dedicated.commit(&rows, &sessions, &visitors).unwrap();
        }

        crate::storage::test_rows::assert_same_rows(&portable, &reader).await;
        // The upsert advanced the session rather than inserting a second one.
        assert_eq!(
            number(
                &reader,
                "SELECT COUNT(*) FROM sessions WHERE id = 1 AND pageviews = 2 AND events = 4 \
                             AND exit_path = '/checkout' AND automated AND last_seen_at = 5000"
            )
            .await,
            1
        );
    }

    #[tokio::test]
    async fn a_failed_commit_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let (reader, site, file) = fresh(dir.path()).await;
        let mut writer = SqliteBatchWriter::open(&file).unwrap();
        let [(mut rows, sessions, visitors), _] = commits(site);
        // An event of a site that does not exist violates the foreign key: the whole group fails.
        rows.push(event(SiteId(site.0 + 99), 7, 2_000, "click", None));
        assert!(writer.commit(&rows, &sessions, &visitors).is_err());
        for table in ["events", "sessions", "visitors"] {
            assert_eq!(number(&reader, &format!("SELECT COUNT(*) FROM {table}")).await, 0, "{table}");
        }
        // The connection is usable afterwards.
        let [(rows, sessions, visitors), _] = commits(site);
        writer.commit(&rows, &sessions, &visitors).unwrap();
    }
}
