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

fn stmt(db: &impl ConnectionTrait, sql: &str, values: Vec<Value>) -> Statement {
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

/// Every hour before this is rolled up; `None` while the job has never run (then all stats
/// come from raw rows).
pub async fn watermark(db: &impl ConnectionTrait) -> Result<Option<i64>, DbErr> {
    let row = db.query_one_raw(stmt(db, "SELECT rolled_until FROM stats_rollup_state WHERE id = 1", vec![])).await?;
    row.map(|r| r.try_get::<i64>("", "rolled_until")).transpose()
}

/// Rolls up every closed hour after the watermark; returns the hours rolled up.
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
        step(&txn, from, to).await?;
        txn.commit().await?;
        rolled += (to - from) / HOUR_MS;
    }
}

async fn step(txn: &impl ConnectionTrait, from: i64, to: i64) -> Result<(), DbErr> {
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
    while d + day <= to {
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
        match result {
            Ok(0) => {}
            Ok(hours) => tracing::info!(hours, duration_ms = started.elapsed().as_millis() as u64, "stats rolled up"),
            Err(error) => tracing::warn!(error = %error, "could not roll up stats; will retry"),
        }
    }
}
