//! The group-commit writer's PostgreSQL path: a whole group is one statement, whatever its
//! size: each table's rows are bound as one array per column and expanded with `UNNEST`.
//!
//! The portable multi-row `VALUES` statements need a statement per chunk size and a bound
//! parameter per value; with arrays every group is three statements with a fixed shape, which
//! PostgreSQL plans once per connection. The SQL is rendered once from the same sea-query
//! definitions the portable writer uses (`events_insert`, `sessions_upsert`,
//! `visitors_upsert`): only their `VALUES (…)` list is replaced by `SELECT * FROM UNNEST(…)`
//! with the column types below. The ON CONFLICT clauses stay theirs. A test checks that both
//! writers leave identical rows.
//!
//! `ON CONFLICT DO UPDATE` may not touch a row twice in one statement; the writer merges the
//! deltas of one session (and of one visitor) before calling [`PgBatchWriter::commit`].

use std::slice;
use std::sync::Arc;

use sea_orm::DatabaseConnection;
use sea_orm::sea_query::{InsertStatement, PostgresQueryBuilder};
use sqlx::AssertSqlSafe;

use super::events::{EventRow, SessionDelta, VisitorDelta, events_insert, sessions_upsert, visitors_upsert};

const EVENT_TYPES: [&str; 8] = ["int8", "int8", "int8", "int8", "int8", "text", "text", "text"];
const SESSION_TYPES: [&str; 24] = [
    "int8", "int8", "int8", "int8", "int8", "int4", "int4", "text", "text", "text", "text", "text", "text", "text",
    "int8", "text", "int4", "text", "text", "text", "text", "text", "bool", "bool",
];
const VISITOR_TYPES: [&str; 5] = ["int8", "int8", "int8", "int8", "int4"];

#[derive(Clone)]
pub struct PgBatchWriter {
    pool: sqlx::PgPool,
    // Rendered once from our own statement definitions: no outside input reaches this SQL.
    group_sql: Arc<str>,
}

impl PgBatchWriter {
    /// Uses the sea-orm connection's pool; `db` must be PostgreSQL.
    pub fn new(db: &DatabaseConnection) -> Self {
        PgBatchWriter { pool: db.get_postgres_connection_pool().clone(), group_sql: Arc::from(group_statement()) }
    }

    /// Writes one group as one statement, so in one implicit transaction and one round trip:
    /// nothing of it is visible unless all of it is. Empty arrays insert nothing.
    pub async fn commit(
        &self,
        rows: &[EventRow],
        sessions: &[SessionDelta],
        visitors: &[VisitorDelta],
    ) -> Result<(), sqlx::Error> {
        let (s, v) = (sessions, visitors);
        sqlx::query(AssertSqlSafe(self.group_sql.clone()))
            // events
            .bind(rows.iter().map(|r| r.site_id.0).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.session_id.0).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.visitor_id.0).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.ts.0).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.received_at.0).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.kind).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.path.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.props.as_deref()).collect::<Vec<_>>())
            // sessions
            .bind(s.iter().map(|d| d.id.0).collect::<Vec<_>>())
            .bind(s.iter().map(|d| d.site_id.0).collect::<Vec<_>>())
            .bind(s.iter().map(|d| d.visitor_id.0).collect::<Vec<_>>())
            .bind(s.iter().map(|d| d.started_at.0).collect::<Vec<_>>())
            .bind(s.iter().map(|d| d.last_seen_at.0).collect::<Vec<_>>())
            .bind(s.iter().map(|d| d.pageviews).collect::<Vec<_>>())
            .bind(s.iter().map(|d| d.events).collect::<Vec<_>>())
            .bind(s.iter().map(|d| d.entry_path.as_str()).collect::<Vec<_>>())
            .bind(s.iter().map(|d| d.exit_path.as_str()).collect::<Vec<_>>())
            .bind(s.iter().map(|d| d.referrer_host.as_deref()).collect::<Vec<_>>())
            .bind(s.iter().map(|d| d.ip_prefix.as_deref()).collect::<Vec<_>>())
            .bind(s.iter().map(|d| d.country.as_deref()).collect::<Vec<_>>())
            .bind(s.iter().map(|d| d.region.as_deref()).collect::<Vec<_>>())
            .bind(s.iter().map(|d| d.city.as_deref()).collect::<Vec<_>>())
            .bind(s.iter().map(|d| d.asn).collect::<Vec<_>>())
            .bind(s.iter().map(|d| d.as_org.as_deref()).collect::<Vec<_>>())
            .bind(s.iter().map(|d| d.net_flags).collect::<Vec<_>>())
            .bind(s.iter().map(|d| d.browser.as_str()).collect::<Vec<_>>())
            .bind(s.iter().map(|d| d.browser_version.as_deref()).collect::<Vec<_>>())
            .bind(s.iter().map(|d| d.os.as_str()).collect::<Vec<_>>())
            .bind(s.iter().map(|d| d.device.as_str()).collect::<Vec<_>>())
            .bind(s.iter().map(|d| d.bot_family.as_deref()).collect::<Vec<_>>())
            .bind(s.iter().map(|d| d.automated).collect::<Vec<_>>())
            .bind(s.iter().map(|d| d.consent).collect::<Vec<_>>())
            // visitors
            .bind(v.iter().map(|d| d.site_id.0).collect::<Vec<_>>())
            .bind(v.iter().map(|d| d.visitor_id.0).collect::<Vec<_>>())
            .bind(v.iter().map(|d| d.first_seen_at.0).collect::<Vec<_>>())
            .bind(v.iter().map(|d| d.last_seen_at.0).collect::<Vec<_>>())
            .bind(v.iter().map(|d| d.sessions).collect::<Vec<_>>())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// The three writes of a group as data-modifying CTEs of one statement. PostgreSQL runs every
/// one of them (referenced or not) in the statement's single snapshot and transaction, and
/// checks foreign keys at the end of the statement. Before, a group was BEGIN, three
/// statements and COMMIT: five round trips, each waking this server and a backend process.
fn group_statement() -> String {
    let (event, session, visitor) = example_rows();
    let events = unnest(events_insert(slice::from_ref(&event)), &EVENT_TYPES, 1);
    let sessions = unnest(sessions_upsert(slice::from_ref(&session)), &SESSION_TYPES, 1 + EVENT_TYPES.len());
    let visitors =
        unnest(visitors_upsert(slice::from_ref(&visitor)), &VISITOR_TYPES, 1 + EVENT_TYPES.len() + SESSION_TYPES.len());
    format!("WITH e AS ({events}), s AS ({sessions}), v AS ({visitors}) SELECT 1")
}

/// Replaces the single-row `VALUES ($1, …, $n)` of a rendered INSERT with an `UNNEST` of one
/// typed array per column, keeping everything after it (the ON CONFLICT clause). The arrays
/// are the parameters `$first`, `$first + 1`, ….
fn unnest(statement: InsertStatement, types: &[&str], first: usize) -> String {
    let sql = statement.build(PostgresQueryBuilder).0;
    let start = sql.find(" VALUES (").expect("a rendered INSERT has a VALUES list");
    let end = start + sql[start..].find(')').expect("the VALUES list is closed") + 1;
    let placeholders = sql[start + " VALUES (".len()..end - 1].split(", ").count();
    assert_eq!(placeholders, types.len(), "one array type per column of {sql}");
    let arrays: Vec<String> = types.iter().enumerate().map(|(i, ty)| format!("${}::{ty}[]", i + first)).collect();
    format!("{} SELECT * FROM UNNEST({}){}", &sql[..start], arrays.join(", "), &sql[end..])
}

/// Rows used only to render the SQL text (their values never reach the database).
fn example_rows() -> (EventRow, SessionDelta, VisitorDelta) {
    use crate::domain::{SessionId, SiteId, UnixMillis, VisitorId};
    let (site, session, visitor, at) = (SiteId(0), SessionId(0), VisitorId(0), UnixMillis(0));
    (
        EventRow {
            site_id: site,
            session_id: session,
            visitor_id: visitor,
            ts: at,
            received_at: at,
            kind: "pv",
            path: String::new(),
            props: None,
        },
        SessionDelta {
            id: session,
            site_id: site,
            visitor_id: visitor,
            started_at: at,
            last_seen_at: at,
            pageviews: 0,
            events: 0,
            entry_path: String::new(),
            exit_path: String::new(),
            referrer_host: None,
            ip_prefix: None,
            country: None,
            region: None,
            city: None,
            asn: None,
            as_org: None,
            net_flags: 0,
            browser: String::new(),
            browser_version: None,
            os: String::new(),
            device: String::new(),
            bot_family: None,
            automated: false,
            consent: false,
        },
        VisitorDelta { site_id: site, visitor_id: visitor, first_seen_at: at, last_seen_at: at, sessions: 0 },
    )
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, Database, DatabaseConnection};

    use super::*;
    use crate::settings::DatabaseUrl;
    use crate::storage::test_rows::{assert_same_rows, commits};
    use crate::storage::{self, events, sites};

    /// A fresh, migrated database on the `GHOSTTRACK_TEST_DATABASE_URL` server (dropped by
    /// `.ci/run` with the other `gt_test_*` databases).
    async fn fresh(server: &str) -> DatabaseConnection {
        let name = format!("gt_test_{:016x}", rand::random::<u64>());
        let admin = Database::connect(server).await.unwrap();
        admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
        let mut url = url::Url::parse(server).unwrap();
        url.set_path(&format!("/{name}"));
        let db = storage::connect(&DatabaseUrl::new(url.to_string())).await.unwrap();
        storage::migrate(&db).await.unwrap();
        sites::create(&db, "shop.example", sites::SiteKind::Standalone).await.unwrap();
        db
    }

    #[test]
    fn values_lists_become_typed_unnests_and_keep_their_conflict_clause() {
        let (event, session, visitor) = example_rows();
        let sql = unnest(sessions_upsert(slice::from_ref(&session)), &SESSION_TYPES, 1);
        assert!(sql.contains(r#"SELECT * FROM UNNEST($1::int8[], $2::int8[]"#), "{sql}");
        assert!(sql.contains("$24::bool[]) ON CONFLICT (\"id\") DO UPDATE SET"), "{sql}");
        assert!(!sql.contains("VALUES"), "{sql}");
        unnest(events_insert(slice::from_ref(&event)), &EVENT_TYPES, 1);
        unnest(visitors_upsert(slice::from_ref(&visitor)), &VISITOR_TYPES, 1);

        // One statement: events $1–$8, sessions $9–$32, visitors $33–$37.
        let group = group_statement();
        assert!(group.starts_with("WITH e AS (INSERT INTO \"events\""), "{group}");
        assert!(group.contains("$8::text[])), s AS (INSERT INTO \"sessions\""), "{group}");
        assert!(group.contains("UNNEST($9::int8[]"), "{group}");
        assert!(group.contains("UNNEST($33::int8[]") && group.contains("$37::int4[])"), "{group}");
        assert!(group.ends_with(") SELECT 1"), "{group}");
    }

    #[tokio::test]
    async fn unnest_writer_leaves_the_same_rows_as_the_portable_writer() {
        let Some(server) = std::env::var("GHOSTTRACK_TEST_DATABASE_URL").ok().filter(|s| !s.is_empty()) else {
            eprintln!("skipped: set GHOSTTRACK_TEST_DATABASE_URL to run the PostgreSQL writer test");
            return;
        };
        let (portable, unnested) = (fresh(&server).await, fresh(&server).await);
        let site = sites::find_by_domain(&portable, "shop.example").await.unwrap().unwrap().id;
        for (rows, sessions, visitors) in commits(site) {
            events::insert_events(&portable, &rows).await.unwrap();
            events::upsert_sessions(&portable, &sessions).await.unwrap();
            events::upsert_visitors(&portable, &visitors).await.unwrap();
        }
        let writer = PgBatchWriter::new(&unnested);
        for (rows, sessions, visitors) in commits(site) {
            writer.commit(&rows, &sessions, &visitors).await.unwrap();
        }
        assert_same_rows(&portable, &unnested).await;
    }
}
