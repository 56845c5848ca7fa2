//! Writing ingested events, and the session and visitor rows they update, in bulk.
//! Called by the group-commit writer inside one transaction per batch.

use sea_orm::sea_query::{Expr, InsertStatement, OnConflict, Query};
use sea_orm::{ConnectionTrait, DbErr};

use super::entities::{events, sessions, visitors};
use crate::domain::{SessionId, SiteId, UnixMillis, VisitorId};

/// Row counts of event INSERT statements, largest first. A batch is cut into chunks of these
/// sizes so only a handful of distinct statements exist and the driver's prepared-statement
/// cache hits (a new row count would be a new statement to parse and plan). 512 rows × 8
/// columns stays well under SQLite's 32,766 bound parameters.
const EVENT_CHUNK_SIZES: [usize; 4] = [512, 64, 8, 1];
const SESSION_ROWS_PER_STATEMENT: usize = 500;
const VISITOR_ROWS_PER_STATEMENT: usize = 2_000;

#[derive(Clone, Debug)]
pub struct EventRow {
    pub site_id: SiteId,
    pub session_id: SessionId,
    pub visitor_id: VisitorId,
    pub ts: UnixMillis,
    pub received_at: UnixMillis,
    pub kind: &'static str,
    pub path: String,
    pub props: Option<String>,
}

/// What one batch contributes to a session. Deltas for the same session are merged before
/// writing; the row is inserted when new and its counters advanced otherwise.
#[derive(Clone, Debug)]
pub struct SessionDelta {
    pub id: SessionId,
    pub site_id: SiteId,
    pub visitor_id: VisitorId,
    pub started_at: UnixMillis,
    pub last_seen_at: UnixMillis,
    pub pageviews: i32,
    pub events: i32,
    pub entry_path: String,
    pub exit_path: String,
    pub referrer_host: Option<String>,
    pub ip_prefix: Option<String>,
    pub country: Option<String>,
    pub region: Option<String>,
    pub city: Option<String>,
    pub asn: Option<i64>,
    pub as_org: Option<String>,
    pub net_flags: i32,
    pub browser: String,
    pub browser_version: Option<String>,
    pub os: String,
    pub device: String,
    pub bot_family: Option<String>,
    pub automated: bool,
    pub consent: bool,
}

impl SessionDelta {
    /// Folds a later delta of the same session into this one.
    pub fn merge(&mut self, other: SessionDelta) {
        debug_assert_eq!(self.id, other.id);
        if other.started_at < self.started_at {
            self.started_at = other.started_at;
            self.entry_path = other.entry_path;
        }
        if other.last_seen_at >= self.last_seen_at {
            self.last_seen_at = other.last_seen_at;
            self.exit_path = other.exit_path;
        }
        self.pageviews += other.pageviews;
        self.events += other.events;
        self.automated |= other.automated;
        self.referrer_host = self.referrer_host.take().or(other.referrer_host);
    }
}

/// A visitor starting `sessions` new sessions; `last_seen_at` is the latest session start.
#[derive(Clone, Copy, Debug)]
pub struct VisitorDelta {
    pub site_id: SiteId,
    pub visitor_id: VisitorId,
    pub first_seen_at: UnixMillis,
    pub last_seen_at: UnixMillis,
    pub sessions: i32,
}

impl VisitorDelta {
    pub fn merge(&mut self, other: VisitorDelta) {
        self.first_seen_at = self.first_seen_at.min(other.first_seen_at);
        self.last_seen_at = self.last_seen_at.max(other.last_seen_at);
        self.sessions += other.sessions;
    }
}

/// Splits `len` rows into `(start, size)` chunks with sizes from [`EVENT_CHUNK_SIZES`].
fn chunk_plan(len: usize) -> Vec<(usize, usize)> {
    let mut plan = Vec::new();
    let mut start = 0;
    for size in EVENT_CHUNK_SIZES {
        while len - start >= size {
            plan.push((start, size));
            start += size;
        }
    }
    plan
}

pub async fn insert_events(db: &impl ConnectionTrait, rows: &[EventRow]) -> Result<(), DbErr> {
    for (start, size) in chunk_plan(rows.len()) {
        db.execute(&events_insert(&rows[start..start + size])).await?;
    }
    Ok(())
}

pub async fn upsert_sessions(db: &impl ConnectionTrait, deltas: &[SessionDelta]) -> Result<(), DbErr> {
    for chunk in deltas.chunks(SESSION_ROWS_PER_STATEMENT) {
        db.execute(&sessions_upsert(chunk)).await?;
    }
    Ok(())
}

pub async fn upsert_visitors(db: &impl ConnectionTrait, deltas: &[VisitorDelta]) -> Result<(), DbErr> {
    for chunk in deltas.chunks(VISITOR_ROWS_PER_STATEMENT) {
        db.execute(&visitors_upsert(chunk)).await?;
    }
    Ok(())
}

// The three statements of a group commit, defined once. The portable writer sends them with
// many rows each; the SQLite writer renders them for one row and reuses the prepared statement
// (see `sqlite_writer`), binding values in the same column order.

pub(super) fn events_insert(rows: &[EventRow]) -> InsertStatement {
    use events::Column as C;
    let mut insert = Query::insert();
    insert.into_table(events::Entity).columns([
        C::SiteId,
        C::SessionId,
        C::VisitorId,
        C::Ts,
        C::ReceivedAt,
        C::Kind,
        C::Path,
        C::Props,
    ]);
    for row in rows {
        insert.values_panic([
            row.site_id.0.into(),
            row.session_id.0.into(),
            row.visitor_id.0.into(),
            row.ts.0.into(),
            row.received_at.0.into(),
            row.kind.into(),
            row.path.as_str().into(),
            row.props.clone().into(),
        ]);
    }
    insert
}

/// `CASE WHEN excluded.col > table.col THEN excluded.col ELSE table.col END`, portable to
/// SQLite and PostgreSQL (which spell max() differently).
fn greater(col: &str) -> Expr {
    Expr::cust(format!(
        r#"CASE WHEN excluded."{col}" > "sessions"."{col}" THEN excluded."{col}" ELSE "sessions"."{col}" END"#
    ))
}

/// Inserts new sessions and advances existing ones. Every update is commutative (sums,
/// maxima, OR), so deltas of one session may be written in any order by any writer.
pub(super) fn sessions_upsert(deltas: &[SessionDelta]) -> InsertStatement {
    use sessions::Column as C;
    let mut insert = Query::insert();
    insert.into_table(sessions::Entity).columns([
        C::Id,
        C::SiteId,
        C::VisitorId,
        C::StartedAt,
        C::LastSeenAt,
        C::Pageviews,
        C::Events,
        C::EntryPath,
        C::ExitPath,
        C::ReferrerHost,
        C::IpPrefix,
        C::Country,
        C::Region,
        C::City,
        C::Asn,
        C::AsOrg,
        C::NetFlags,
        C::Browser,
        C::BrowserVersion,
        C::Os,
        C::Device,
        C::BotFamily,
        C::Automated,
        C::Consent,
    ]);
    for d in deltas {
        insert.values_panic([
            d.id.0.into(),
            d.site_id.0.into(),
            d.visitor_id.0.into(),
            d.started_at.0.into(),
            d.last_seen_at.0.into(),
            d.pageviews.into(),
            d.events.into(),
            d.entry_path.as_str().into(),
            d.exit_path.as_str().into(),
            d.referrer_host.clone().into(),
            d.ip_prefix.clone().into(),
            d.country.clone().into(),
            d.region.clone().into(),
            d.city.clone().into(),
            d.asn.into(),
            d.as_org.clone().into(),
            d.net_flags.into(),
            d.browser.as_str().into(),
            d.browser_version.clone().into(),
            d.os.as_str().into(),
            d.device.as_str().into(),
            d.bot_family.clone().into(),
            d.automated.into(),
            d.consent.into(),
        ]);
    }
    insert.on_conflict(
        OnConflict::column(C::Id)
            .value(C::LastSeenAt, greater("last_seen_at"))
            .value(
                C::ExitPath,
                Expr::cust(
                    r#"CASE WHEN excluded."last_seen_at" >= "sessions"."last_seen_at" THEN excluded."exit_path" ELSE "sessions"."exit_path" END"#,
                ),
            )
            .value(C::Pageviews, Expr::cust(r#""sessions"."pageviews" + excluded."pageviews""#))
            .value(C::Events, Expr::cust(r#""sessions"."events" + excluded."events""#))
            .value(C::Automated, Expr::cust(r#""sessions"."automated" OR excluded."automated""#))
            .to_owned(),
    );
    insert
}

pub(super) fn visitors_upsert(deltas: &[VisitorDelta]) -> InsertStatement {
    use visitors::Column as C;
    let mut insert = Query::insert();
    insert.into_table(visitors::Entity).columns([C::SiteId, C::VisitorId, C::FirstSeenAt, C::LastSeenAt, C::Sessions]);
    for d in deltas {
        insert.values_panic([
            d.site_id.0.into(),
            d.visitor_id.0.into(),
            d.first_seen_at.0.into(),
            d.last_seen_at.0.into(),
            d.sessions.into(),
        ]);
    }
    insert.on_conflict(
        OnConflict::columns([C::SiteId, C::VisitorId])
            .value(
                C::LastSeenAt,
                Expr::cust(
                    r#"CASE WHEN excluded."last_seen_at" > "visitors"."last_seen_at" THEN excluded."last_seen_at" ELSE "visitors"."last_seen_at" END"#,
                ),
            )
            .value(C::Sessions, Expr::cust(r#""visitors"."sessions" + excluded."sessions""#))
            .to_owned(),
    );
    insert
}

/// How long before a restart a session may have started and still be re-opened by it. A
/// session busy for longer than this across a restart continues as a new session.
pub const REOPEN_LOOKBACK_MS: i64 = 24 * 3_600_000;

/// Sessions still open at `since` (last event after it) that started at most
/// [`REOPEN_LOOKBACK_MS`] before it, to re-open after a restart. Read per site through
/// `idx_sessions_site_started`: there is no index on `last_seen_at`, which the writer changes
/// with every event.
pub async fn open_sessions_since(db: &impl ConnectionTrait, since: UnixMillis) -> Result<Vec<sessions::Model>, DbErr> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

    use super::entities::sites;
    let every_site = Query::select().column(sites::Column::Id).from(sites::Entity).to_owned();
    sessions::Entity::find()
        .filter(sessions::Column::SiteId.in_subquery(every_site))
        .filter(sessions::Column::StartedAt.gt(since.0 - REOPEN_LOOKBACK_MS))
        .filter(sessions::Column::LastSeenAt.gt(since))
        .all(db)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::DatabaseUrl;
    use crate::storage::{self, sites, test_rows};

    #[tokio::test]
    async fn a_restart_reopens_recent_sessions_of_every_site_within_the_lookback() {
        let dir = tempfile::tempdir().unwrap();
        let url = DatabaseUrl::new(format!("sqlite://{}?mode=rwc", dir.path().join("gt.db").display()));
        let db = storage::connect(&url).await.unwrap();
        storage::migrate(&db).await.unwrap();
        let (a, _) = sites::create(&db, "a.example", sites::SiteKind::Standalone).await.unwrap();
        let (b, _) = sites::create(&db, "b.example", sites::SiteKind::Standalone).await.unwrap();
        let (now, minute) = (10 * REOPEN_LOOKBACK_MS, 60_000);
        let session = |site: SiteId, id: i64, started: i64, last_seen: i64| {
            let mut d = test_rows::delta(site, id, started, "/", 1, false);
            d.last_seen_at = UnixMillis(last_seen);
            d
        };
        upsert_sessions(
            &db,
            &[
                session(a.id, 1, now - 60 * minute, now - minute),      // open
                session(b.id, 2, now - 5 * minute, now - 2 * minute),   // open, other site
                session(a.id, 3, now - 60 * minute, now - 40 * minute), // idle for 40 min
                session(a.id, 4, now - REOPEN_LOOKBACK_MS - 31 * minute, now - minute), // started too long ago
            ],
        )
        .await
        .unwrap();

        let since = UnixMillis(now - 30 * minute);
        let mut open: Vec<i64> = open_sessions_since(&db, since).await.unwrap().iter().map(|s| s.id.0).collect();
        open.sort();
        assert_eq!(open, [1, 2]);
    }

    #[test]
    fn chunk_plan_covers_every_row_once_with_few_statement_shapes() {
        for len in [0, 1, 7, 8, 9, 63, 64, 100, 511, 512, 1000, 10_000] {
            let plan = chunk_plan(len);
            assert_eq!(plan.iter().map(|(_, n)| n).sum::<usize>(), len);
            let mut next = 0;
            for (start, size) in plan {
                assert_eq!(start, next);
                assert!(EVENT_CHUNK_SIZES.contains(&size));
                next += size;
            }
        }
    }
}
