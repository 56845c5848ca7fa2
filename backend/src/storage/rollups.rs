//! Hourly dashboard rollups (`stats_rollups`), maintained by a background job from a
//! watermark, off the ingest path. The job rolls up an hour only once it is `ROLLUP_LAG_MS`
//! old: by then its sessions have closed (30 min idle) and late events are past
//! `ingest.max_event_age_secs` (1 h). `storage::stats` reads rollups for whole rolled-up hours
//! and raw rows for the edges.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, TransactionTrait, Value};
use tokio::sync::watch;

use super::StorageError;

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
pub(crate) fn stmt(db: &impl ConnectionTrait, sql: &str, values: Vec<Value>) -> Statement {
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

/// How far rollups reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watermarks {
    /// Hours before this are final (and whole UTC days before it have daily rows).
    pub final_until: i64,
    /// Hours before this (and after `final_until`) are rolled up provisionally.
    pub readable_until: i64,
}

/// `None` while the job has never run (then all stats come from raw rows).
pub async fn watermarks(db: &impl ConnectionTrait) -> Result<Option<Watermarks>, DbErr> {
    let sql = "SELECT rolled_until, provisional_until FROM stats_rollup_state WHERE id = 1";
    let Some(row) = db.query_one_raw(stmt(db, sql, vec![])).await? else { return Ok(None) };
    let final_until = row.try_get::<i64>("", "rolled_until")?;
    let provisional = row.try_get::<i64>("", "provisional_until")?;
    Ok(Some(Watermarks { final_until, readable_until: final_until.max(provisional) }))
}

/// The final watermark (see `watermarks`).
pub async fn watermark(db: &impl ConnectionTrait) -> Result<Option<i64>, DbErr> {
    Ok(watermarks(db).await?.map(|w| w.final_until))
}

/// Rolls up every closed hour after the watermark (finally), then the recent ones
/// provisionally; returns the hours finalised.
pub async fn roll_up(db: &DatabaseConnection, now: i64) -> Result<i64, StorageError> {
    let closed = (now - ROLLUP_LAG_MS).div_euclid(HOUR_MS) * HOUR_MS;
    let mut rolled = 0;
    loop {
        let from = match watermark(db).await? {
            Some(w) => w,
            None => {
                let first = db.query_one_raw(stmt(db, "SELECT MIN(started_at) AS m FROM sessions", vec![])).await?;
                // No sessions yet: stay unstarted (stats read raw rows), so data loaded later
                // with old timestamps is still rolled up from its first hour.
                let Some(first) = first.and_then(|r| r.try_get::<Option<i64>>("", "m").ok().flatten()) else {
                    return Ok(rolled);
                };
                let start = first.div_euclid(HOUR_MS) * HOUR_MS;
                let sql = "INSERT INTO stats_rollup_state (id, rolled_until) VALUES (1, ?) ON CONFLICT (id) DO NOTHING";
                db.execute_raw(stmt(db, sql, vec![start.into()])).await?;
                continue;
            }
        };
        if from >= closed {
            provisional(db, from, now).await?;
            return Ok(rolled);
        }
        let to = (from + HOURS_PER_STEP * HOUR_MS).min(closed);
        let txn = db.begin().await?;
        // Compare-and-set: if another node moved the watermark, it did (or is doing) this step.
        let sql = "UPDATE stats_rollup_state SET rolled_until = ? WHERE id = 1 AND rolled_until = ?";
        if txn.execute_raw(stmt(&txn, sql, vec![to.into(), from.into()])).await?.rows_affected() != 1 {
            txn.rollback().await?;
            continue;
        }
        step(&txn, from, to, true).await?;
        txn.commit().await?;
        rolled += (to - from) / HOUR_MS;
    }
}

/// Rolls up the hours between the final watermark and `PROVISIONAL_LAG_MS` ago, so stats read
/// raw rows only for about the last hour. Redone on every run until the hours are final; the
/// state row's lock (taken first) serializes this with every other node's rollup writes.
async fn provisional(db: &DatabaseConnection, final_until: i64, now: i64) -> Result<(), DbErr> {
    let to = (now - PROVISIONAL_LAG_MS).div_euclid(HOUR_MS) * HOUR_MS;
    if to <= final_until {
        return Ok(());
    }
    let txn = db.begin().await?;
    let sql = "UPDATE stats_rollup_state SET provisional_until = ? WHERE id = 1 AND rolled_until = ?";
    if txn.execute_raw(stmt(&txn, sql, vec![to.into(), final_until.into()])).await?.rows_affected() != 1 {
        // Another node finalised meanwhile; the next run catches up.
        return txn.rollback().await;
    }
    step(&txn, final_until, to, false).await?;
    txn.commit().await
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
pub async fn run(db: DatabaseConnection, mut stopped: watch::Receiver<bool>) {
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
            r = roll_up(&db, crate::domain::UnixMillis::now().0) => r,
            _ = stopped.changed() => break,
        };
        let first = std::mem::replace(&mut first_run, false);
        match result {
            Ok(0) if first => tracing::info!("stats rollups are up to date"),
            Ok(0) => {}
            Ok(hours) => tracing::info!(hours, duration_ms = started.elapsed().as_millis() as u64, "stats rolled up"),
            Err(error) => tracing::warn!(error = %error, "could not roll up stats; will retry"),
        }
    }
}
