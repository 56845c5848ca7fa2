//! PostgreSQL only: `events` becomes a table range-partitioned by day on `ts` (milliseconds,
//! UTC days), with a default partition for rows no day partition takes (very late events, or
//! days the maintenance job has not created). Whole days can then be dropped by retention
//! instead of deleted row by row, and each day's indexes stay small.
//!
//! Partitions are named `events_pYYYYMMDD`; the maintenance job (`storage::partitions`) keeps
//! them created a week ahead. This migration creates one per day from the oldest stored event
//! (at most 400 days back; older rows go to the default partition) to a week ahead, then moves
//! the rows. The primary key becomes (`id`, `ts`): PostgreSQL requires the partition key in
//! every unique index. Ids continue from the largest moved id (a plain sequence: PostgreSQL 15
//! has no identity columns on partitioned tables).
//!
//! SQLite is unchanged. `down` folds the partitions back into one plain table.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};

#[derive(DeriveMigrationName)]
pub struct Migration;

const DAY_MS: i64 = 86_400_000;
/// Days created ahead of today.
const AHEAD_DAYS: i64 = 7;
/// Oldest day that gets its own partition when existing rows are moved.
const MAX_BACKFILL_DAYS: i64 = 400;

async fn exec(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    manager.get_connection().execute_unprepared(sql).await.map(|_| ())
}

async fn scalar_i64(manager: &SchemaManager<'_>, sql: &str) -> Result<Option<i64>, DbErr> {
    let db = manager.get_connection();
    let row = db.query_one_raw(Statement::from_string(DbBackend::Postgres, sql.to_owned())).await?;
    Ok(match row {
        Some(row) => row.try_get_by_index::<Option<i64>>(0)?,
        None => None,
    })
}

/// `events_pYYYYMMDD` for a day number (days since the Unix epoch).
pub fn partition_name(day: i64) -> String {
    let date = chrono_free_date(day);
    format!("events_p{:04}{:02}{:02}", date.0, date.1, date.2)
}

/// (year, month, day) of a day number; civil-from-days (Howard Hinnant's algorithm), so the
/// migration crate needs no date library.
fn chrono_free_date(day: i64) -> (i64, i64, i64) {
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The statement creating one day's partition (idempotent).
pub fn create_partition_sql(day: i64) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} PARTITION OF events FOR VALUES FROM ({}) TO ({})",
        partition_name(day),
        day * DAY_MS,
        (day + 1) * DAY_MS
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        exec(manager, "ALTER TABLE events RENAME TO events_unpartitioned").await?;
        exec(manager, "ALTER INDEX idx_events_site_ts RENAME TO idx_events_unpartitioned_site_ts").await?;
        exec(manager, "ALTER INDEX idx_events_site_session RENAME TO idx_events_unpartitioned_site_session").await?;
        exec(manager, "ALTER INDEX idx_events_site_kind_ts_path RENAME TO idx_events_unpartitioned_site_kind_ts_path")
            .await?;
        // PostgreSQL 15 has no identity columns on partitioned tables: ids come from a plain
        // sequence, set past the moved rows below.
        exec(manager, "CREATE SEQUENCE events_day_id_seq").await?;
        exec(
            manager,
            "CREATE TABLE events (
                id BIGINT NOT NULL DEFAULT nextval('events_day_id_seq'),
                site_id BIGINT NOT NULL,
                session_id BIGINT NOT NULL,
                visitor_id BIGINT NOT NULL,
                ts BIGINT NOT NULL,
                received_at BIGINT NOT NULL,
                kind VARCHAR(8) NOT NULL,
                path VARCHAR(512) NOT NULL,
                props TEXT,
                PRIMARY KEY (id, ts)
            ) PARTITION BY RANGE (ts)",
        )
        .await?;
        exec(manager, "ALTER SEQUENCE events_day_id_seq OWNED BY events.id").await?;
        exec(manager, "CREATE INDEX idx_events_site_ts ON events (site_id, ts)").await?;
        exec(manager, "CREATE INDEX idx_events_site_session ON events (site_id, session_id)").await?;
        // The Pages maps' index (m20261124_510002).
        exec(manager, "CREATE INDEX idx_events_site_kind_ts_path ON events (site_id, kind, ts, path)").await?;
        exec(manager, "CREATE TABLE events_default PARTITION OF events DEFAULT").await?;

        let today =
            scalar_i64(manager, "SELECT (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT").await?.unwrap_or(0) / DAY_MS;
        let since = (today - MAX_BACKFILL_DAYS) * DAY_MS;
        let oldest = scalar_i64(manager, &format!("SELECT MIN(ts) FROM events_unpartitioned WHERE ts >= {since}"))
            .await?
            .map_or(today, |ts| Ord::min(ts.div_euclid(DAY_MS), today));
        for day in oldest..=today + AHEAD_DAYS {
            exec(manager, &create_partition_sql(day)).await?;
        }
        exec(manager, "INSERT INTO events SELECT id, site_id, session_id, visitor_id, ts, received_at, kind, path, props FROM events_unpartitioned").await?;
        exec(manager, "SELECT setval('events_day_id_seq', COALESCE((SELECT MAX(id) FROM events), 0) + 1, false)")
            .await?;
        exec(manager, "DROP TABLE events_unpartitioned").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        exec(manager, "ALTER TABLE events RENAME TO events_partitioned").await?;
        exec(manager, "ALTER INDEX idx_events_site_ts RENAME TO idx_events_partitioned_site_ts").await?;
        exec(manager, "ALTER INDEX idx_events_site_session RENAME TO idx_events_partitioned_site_session").await?;
        exec(manager, "ALTER INDEX idx_events_site_kind_ts_path RENAME TO idx_events_partitioned_site_kind_ts_path")
            .await?;
        exec(
            manager,
            "CREATE TABLE events (
                id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                site_id BIGINT NOT NULL,
                session_id BIGINT NOT NULL,
                visitor_id BIGINT NOT NULL,
                ts BIGINT NOT NULL,
                received_at BIGINT NOT NULL,
                kind VARCHAR(8) NOT NULL,
                path VARCHAR(512) NOT NULL,
                props TEXT
            )",
        )
        .await?;
        exec(manager, "INSERT INTO events SELECT id, site_id, session_id, visitor_id, ts, received_at, kind, path, props FROM events_partitioned").await?;
        exec(
            manager,
            "SELECT setval(pg_get_serial_sequence('events', 'id'), COALESCE((SELECT MAX(id) FROM events), 0) + 1, false)",
        )
        .await?;
        exec(manager, "DROP TABLE events_partitioned").await?;
        exec(manager, "CREATE INDEX idx_events_site_ts ON events (site_id, ts)").await?;
        exec(manager, "CREATE INDEX idx_events_site_session ON events (site_id, session_id)").await?;
        exec(manager, "CREATE INDEX idx_events_site_kind_ts_path ON events (site_id, kind, ts, path)").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_are_utc_dates() {
        assert_eq!(partition_name(0), "events_p19700101");
        assert_eq!(partition_name(20_781), "events_p20261124");
        assert_eq!(partition_name(20_819), "events_p20270101");
        assert_eq!(partition_name(20_513), "events_p20260301");
        assert_eq!(
            create_partition_sql(1),
            "CREATE TABLE IF NOT EXISTS events_p19700102 PARTITION OF events FOR VALUES FROM (86400000) TO (172800000)"
        );
    }
}
