//! Hourly dashboard rollups (`stats_rollups`) and page rollups (`page_rollups`,
//! `page_rollup_cells`, built in `storage::page_rollups`), maintained by a background job from
//! a watermark per family, off the ingest path. The job rolls up an hour only once it is `ROLLUP_LAG_MS`
//! old: by then its sessions have closed (30 min idle) and late events are past
//! `ingest.max_event_age_secs` (1 h). `storage::stats` and `storage::panel_maps` read rollups
//! for whole rolled-up hours and raw rows for the edges.

use std::time::Duration;

use std::sync::Arc;

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, Statement, TransactionTrait, Value,
};
use tokio::sync::watch;

use super::StorageError;
use crate::keys::{EventKeys, KeyError};

pub const HOUR_MS: i64 = 3_600_000;
/// How old an hour must be before it is rolled up (see the module doc).
pub const ROLLUP_LAG_MS: i64 = 2 * HOUR_MS;
/// Hours end this long before they are rolled up provisionally: events of a closed hour
/// arrive within seconds (batching), so ten minutes leave a wide margin; later ones are
/// picked up by the next run.
pub const PROVISIONAL_LAG_MS: i64 = 10 * 60_000;
/// Hours rolled up per transaction. Small steps keep each write transaction short (on SQLite
/// it holds the one write lock the ingest writer also needs).
const HOURS_PER_STEP: i64 = 6;
/// How often a node checks for hours to roll up.
const INTERVAL: Duration = Duration::from_secs(300);

/// Session attributes rolled up per value, with their column.
pub const SESSION_DIMS: &[(&str, &str)] = &[
    ("referrer", "referrer_host"),
    ("country", "country"),
    ("browser", "browser"),
    ("os", "os"),
    ("device", "device"),
];

/// A statement written with `?` placeholders, numbered for PostgreSQL.
pub fn stmt(db: &impl ConnectionTrait, sql: &str, values: Vec<Value>) -> Statement {
    let backend = db.get_database_backend();
    // Written with `?`; PostgreSQL numbers its placeholders.
    let sql = if backend == DbBackend::Postgres {
        let mut n = 0;
        sql.chars()
            .map(|c| {
                if c == '?' {
                    n += 1;
                    format!("${n}")
                } else {
                    c.to_string()
                }
            })
            .collect()
    } else {
        sql.to_owned()
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// The rollup families, each with its own watermark row in `stats_rollup_state` (the row's
/// `id`): a family added later starts from the oldest session instead of finding the older
/// hours already marked done by the other family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// `stats_rollups`: the dashboard's sessions, pageviews and dimensions.
    Stats = 1,
    /// `page_rollups` and `page_rollup_cells`: the panel's Pages list and page maps
    /// (`storage::panel_maps`).
    Pages = 2,
}

impl Family {
    fn id(self) -> i32 {
        self as i32
    }
}

/// How far rollups reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watermarks {
    /// Hours before this are final (and whole UTC days before it have daily rows).
    pub final_until: i64,
    /// Hours before this (and after `final_until`) are rolled up provisionally.
    pub readable_until: i64,
}

/// The stats family's watermarks; `None` while the job has never run (then all stats come from
/// raw rows).
pub async fn watermarks(db: &impl ConnectionTrait) -> Result<Option<Watermarks>, DbErr> {
    watermarks_of(db, Family::Stats).await
}

/// A family's watermarks; `None` while the job has never run it.
pub async fn watermarks_of(db: &impl ConnectionTrait, family: Family) -> Result<Option<Watermarks>, DbErr> {
    let sql = "SELECT rolled_until, provisional_until FROM stats_rollup_state WHERE id = ?";
    let Some(row) = db.query_one_raw(stmt(db, sql, vec![family.id().into()])).await? else { return Ok(None) };
    let final_until = row.try_get::<i64>("", "rolled_until")?;
    let provisional = row.try_get::<i64>("", "provisional_until")?;
    Ok(Some(Watermarks { final_until, readable_until: final_until.max(provisional) }))
}

/// The stats family's final watermark (see `watermarks`).
pub async fn watermark(db: &impl ConnectionTrait) -> Result<Option<i64>, DbErr> {
    Ok(watermarks(db).await?.map(|w| w.final_until))
}

/// Rolls up every closed hour after each family's watermark (finally), then the recent ones
/// provisionally; returns the most hours a family finalised. `keys` opens encrypted event
/// payloads for the page maps. The stats family runs first and is committed even when the
/// pages family then fails (the error is returned; the next run retries it).
pub async fn roll_up(db: &DatabaseConnection, keys: &EventKeys, now: i64) -> Result<i64, RollupError> {
    let stats = roll_up_family(db, keys, Family::Stats, now).await?;
    let pages = roll_up_family(db, keys, Family::Pages, now).await?;
    Ok(stats.max(pages))
}

async fn roll_up_family(
    db: &DatabaseConnection,
    keys: &EventKeys,
    family: Family,
    now: i64,
) -> Result<i64, RollupError> {
    let closed = (now - ROLLUP_LAG_MS).div_euclid(HOUR_MS) * HOUR_MS;
    let mut rolled = 0;
    loop {
        let from = match watermarks_of(db, family).await?.map(|w| w.final_until) {
            Some(w) => w,
            None => {
                let first = db.query_one_raw(stmt(db, "SELECT MIN(started_at) AS m FROM sessions", vec![])).await?;
                // No sessions yet: stay unstarted (stats read raw rows), so data loaded later
                // with old timestamps is still rolled up from its first hour. A session's events
                // never precede its start, so this hour also bounds the page events.
                let Some(first) = first.and_then(|r| r.try_get::<Option<i64>>("", "m").ok().flatten()) else {
                    return Ok(rolled);
                };
                let start = first.div_euclid(HOUR_MS) * HOUR_MS;
                let sql = "INSERT INTO stats_rollup_state (id, rolled_until) VALUES (?, ?) ON CONFLICT (id) DO NOTHING";
                db.execute_raw(stmt(db, sql, vec![family.id().into(), start.into()])).await?;
                continue;
            }
        };
        if from >= closed {
            provisional(db, keys, family, from, now).await?;
            return Ok(rolled);
        }
        let to = (from + HOURS_PER_STEP * HOUR_MS).min(closed);
        let txn = db.begin().await?;
        // Compare-and-set: if another node moved the watermark, it did (or is doing) this step.
        let sql = "UPDATE stats_rollup_state SET rolled_until = ? WHERE id = ? AND rolled_until = ?";
        let cas = vec![to.into(), family.id().into(), from.into()];
        if txn.execute_raw(stmt(&txn, sql, cas)).await?.rows_affected() != 1 {
            txn.rollback().await?;
            continue;
        }
        family_step(&txn, keys, family, from, to, true).await?;
        txn.commit().await?;
        rolled += (to - from) / HOUR_MS;
    }
}

async fn family_step(
    txn: &DatabaseTransaction,
    keys: &EventKeys,
    family: Family,
    from: i64,
    to: i64,
    days: bool,
) -> Result<(), RollupError> {
    match family {
        Family::Stats => Ok(step(txn, from, to, days).await?),
        Family::Pages => super::page_rollups::step(txn, keys, from, to, days).await,
    }
}

/// Rolls up the hours between the final watermark and `PROVISIONAL_LAG_MS` ago, so reads use
/// raw rows only for about the last hour. Redone on every run until the hours are final; the
/// state row's lock (taken first) serializes this with every other node's rollup writes.
async fn provisional(
    db: &DatabaseConnection,
    keys: &EventKeys,
    family: Family,
    final_until: i64,
    now: i64,
) -> Result<(), RollupError> {
    let to = (now - PROVISIONAL_LAG_MS).div_euclid(HOUR_MS) * HOUR_MS;
    if to <= final_until {
        return Ok(());
    }
    let txn = db.begin().await?;
    let sql = "UPDATE stats_rollup_state SET provisional_until = ? WHERE id = ? AND rolled_until = ?";
    let cas = vec![to.into(), family.id().into(), final_until.into()];
    if txn.execute_raw(stmt(&txn, sql, cas)).await?.rows_affected() != 1 {
        // Another node finalised meanwhile; the next run catches up.
        return Ok(txn.rollback().await?);
    }
    family_step(&txn, keys, family, final_until, to, false).await?;
    Ok(txn.commit().await?)
}

/// Why a rollup run stopped (its transaction rolled back; the next run retries).
#[derive(Debug, thiserror::Error)]
pub enum RollupError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// An encrypted tenant's page events could not be opened for a configuration reason (no
    /// `GHOSTTRACK_SECRET_KEY`, a data key wrapped by an unknown master key).
    #[error("page rollups: {0}")]
    Keys(#[from] KeyError),
}

impl From<DbErr> for RollupError {
    fn from(e: DbErr) -> Self {
        RollupError::Storage(e.into())
    }
}

/// Replaces the hourly rows of `[from, to)`; with `days`, also the daily rows of every UTC day
/// that ends in `(from, to]`.
async fn step(txn: &impl ConnectionTrait, from: i64, to: i64, days: bool) -> Result<(), DbErr> {
    let range = || vec![Value::from(from), Value::from(to)];
    txn.execute_raw(stmt(txn, "DELETE FROM stats_rollups WHERE grain = 'h' AND hour >= ? AND hour < ?", range()))
        .await?;
    let insert = "INSERT INTO stats_rollups \
        (site_id, grain, hour, dim, value, visitors, sessions, pageviews, bounces, duration_ms, automated) ";
    let hour = format!("(started_at / {HOUR_MS}) * {HOUR_MS}");
    let session_sums = "COUNT(DISTINCT visitor_id), COUNT(*), 0, \
        SUM(CASE WHEN pageviews <= 1 THEN 1 ELSE 0 END), SUM(last_seen_at - started_at), \
        SUM(CASE WHEN automated THEN 1 ELSE 0 END)";
    let total = format!(
        "{insert} SELECT site_id, 'h', {hour}, 'total', NULL, {session_sums} FROM sessions \
         WHERE started_at >= ? AND started_at < ? GROUP BY site_id, {hour}"
    );
    txn.execute_raw(stmt(txn, &total, range())).await?;
    for (dim, col) in SESSION_DIMS {
        let sql = format!(
            "{insert} SELECT site_id, 'h', {hour}, '{dim}', {col}, {session_sums} FROM sessions \
             WHERE started_at >= ? AND started_at < ? GROUP BY site_id, {hour}, {col}"
        );
        txn.execute_raw(stmt(txn, &sql, range())).await?;
    }
    let ev_hour = format!("(ts / {HOUR_MS}) * {HOUR_MS}");
    let pv = format!(
        "{insert} SELECT site_id, 'h', {ev_hour}, 'pv', NULL, COUNT(DISTINCT visitor_id), 0, COUNT(*), 0, 0, 0 FROM events \
         WHERE ts >= ? AND ts < ? AND kind = 'pv' GROUP BY site_id, {ev_hour}"
    );
    txn.execute_raw(stmt(txn, &pv, range())).await?;
    let pages = format!(
        "{insert} SELECT site_id, 'h', {ev_hour}, 'page', path, COUNT(DISTINCT visitor_id), 0, COUNT(*), 0, 0, 0 FROM events \
         WHERE ts >= ? AND ts < ? AND kind = 'pv' GROUP BY site_id, {ev_hour}, path"
    );
    txn.execute_raw(stmt(txn, &pages, range())).await?;
    // Flagged sessions per country, attributed to the hour of the verdict (Geography's threats).
    let at_hour = format!("(t.\"at\" / {HOUR_MS}) * {HOUR_MS}");
    let flagged = format!(
        "{insert} SELECT t.\"site_id\", 'h', {at_hour}, '{dim}', s.\"country\", 0, COUNT(DISTINCT s.\"id\"), 0, 0, 0, 0 \
         FROM \"threats\" t JOIN \"sessions\" s \
           ON s.\"id\" = CAST(SUBSTR(t.\"subject\", 9) AS BIGINT) AND s.\"site_id\" = t.\"site_id\" \
         WHERE t.\"at\" >= ? AND t.\"at\" < ? AND t.\"decision\" <> 'ALLOW' AND t.\"subject\" LIKE 'session:%' \
         GROUP BY t.\"site_id\", {at_hour}, s.\"country\"",
        dim = super::stats::FLAGGED_COUNTRY_DIM,
    );
    txn.execute_raw(stmt(txn, &flagged, range())).await?;
    // Every UTC day this step completed gets its daily rows: the sums of its hourly rows.
    let day = crate::domain::UnixMillis::DAY;
    let mut d = from.div_euclid(day) * day;
    while days && d + day <= to {
        if d + day > from {
            let days = || vec![Value::from(d), Value::from(d + day)];
            txn.execute_raw(stmt(
                txn,
                "DELETE FROM stats_rollups WHERE grain = 'd' AND hour >= ? AND hour < ?",
                days(),
            ))
            .await?;
            let sql = format!(
                "{insert} SELECT site_id, 'd', {d}, dim, value, SUM(visitors), SUM(sessions), SUM(pageviews), \
                 SUM(bounces), SUM(duration_ms), SUM(automated) FROM stats_rollups \
                 WHERE grain = 'h' AND hour >= ? AND hour < ? GROUP BY site_id, dim, value"
            );
            txn.execute_raw(stmt(txn, &sql, days())).await?;
        }
        d += day;
    }
    Ok(())
}

/// The background job of one node: roll up at start, then every `INTERVAL`, until stopped.
pub async fn run(db: DatabaseConnection, keys: Arc<EventKeys>, mut stopped: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(INTERVAL);
    let mut first_run = true;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.changed() => break,
        }
        let started = std::time::Instant::now();
        // Stopping drops a step in flight: its transaction rolls back, the watermark stays.
        let result = tokio::select! {
            r = roll_up(&db, &keys, crate::domain::UnixMillis::now().0) => r,
            _ = stopped.changed() => break,
        };
        let first = std::mem::replace(&mut first_run, false);
        match result {
            Ok(0) if first => tracing::info!("stats rollups are up to date"),
            Ok(0) => {}
            Ok(hours) => tracing::info!(hours, duration_ms = started.elapsed().as_millis() as u64, "stats rolled up"),
            Err(error) => tracing::warn!(error = %error, "could not roll up stats or pages; will retry"),
        }
    }
}
