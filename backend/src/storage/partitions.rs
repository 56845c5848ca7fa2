//! Day partitions of `events` on PostgreSQL (migration `m20261124_600001`): a job on every node
//! keeps a partition per UTC day created [`AHEAD_DAYS`] ahead, and drops whole partitions once
//! every event in them is past the longest retention any tenant can have (the retention sweep
//! still deletes per tenant inside younger partitions). Nodes serialise on an advisory lock, so
//! running it everywhere is safe. SQLite has no partitions: the job does nothing there.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, TransactionTrait};
use tokio::sync::watch;

use crate::domain::UnixMillis;

/// Days created ahead of today (a node may be down this long without rows landing in the
/// default partition).
pub const AHEAD_DAYS: i64 = 7;
/// How often the job runs.
const INTERVAL: Duration = Duration::from_secs(3600);
/// Advisory lock key of the job ("gt-part" in ASCII).
const LOCK_KEY: i64 = 0x0067_742d_7061_7274;

/// What one pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pass {
    pub created_or_kept: usize,
    pub dropped: Vec<String>,
}

/// Creates the partitions of `today ..= today + AHEAD_DAYS` and drops those wholly older than
/// `keep_days` before `today` (days since the epoch, UTC).
pub async fn maintain(db: &DatabaseConnection, today: i64, keep_days: i64) -> Result<Pass, DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(Pass::default());
    }
    let txn = db.begin().await?;
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1)",
        [LOCK_KEY.into()],
    ))
    .await?;
    let mut pass = Pass::default();
    for day in today..=today + AHEAD_DAYS {
        txn.execute_unprepared(&migration::create_partition_sql(day)).await?;
        pass.created_or_kept += 1;
    }
    // Names are fixed-width dates: comparing them compares days.
    let oldest_kept = migration::partition_name(today - keep_days);
    let rows = txn
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT c.relname::TEXT FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'events' AND c.relname LIKE 'events\\_p%' \
             ORDER BY 1",
        ))
        .await?;
    for row in rows {
        let name: String = row.try_get_by_index(0)?;
        if name.len() == oldest_kept.len() && name < oldest_kept {
            // The name comes from the catalogue and matched `events_pYYYYMMDD`.
            txn.execute_unprepared(&format!("DROP TABLE {name}")).await?;
            pass.dropped.push(name);
        }
    }
    txn.commit().await?;
    Ok(pass)
}

/// Runs [`maintain`] at start and then hourly until `stopped` flips.
pub async fn run(db: DatabaseConnection, keep_days: i64, mut stopped: watch::Receiver<bool>) {
    if db.get_database_backend() != DbBackend::Postgres {
        return;
    }
    loop {
        match maintain(&db, UnixMillis::now().day().into(), keep_days).await {
            Ok(pass) if !pass.dropped.is_empty() => {
                tracing::info!(partitions.dropped = ?pass.dropped, "expired event partitions dropped")
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(error = %error, "event partition maintenance failed; will retry"),
        }
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = stopped.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::DatabaseUrl;
    use crate::storage;

    async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
        let row = db.query_one_raw(Statement::from_string(DbBackend::Postgres, sql)).await.unwrap().unwrap();
        row.try_get_by_index(0).unwrap()
    }

    #[tokio::test]
    async fn partitions_are_created_ahead_and_whole_old_days_are_dropped() {
        let Some(server) = std::env::var("GHOSTTRACK_TEST_DATABASE_URL").ok().filter(|s| !s.is_empty()) else {
            eprintln!("skipped: set GHOSTTRACK_TEST_DATABASE_URL to run the partition test");
            return;
        };
        let name = format!("gt_test_{:016x}", rand::random::<u64>());
        let admin = sea_orm::Database::connect(&server).await.unwrap();
        admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
        let mut url = url::Url::parse(&server).unwrap();
        url.set_path(&format!("/{name}"));
        let db = storage::connect(&DatabaseUrl::new(url.to_string())).await.unwrap();
        storage::migrate(&db).await.unwrap();

        let today: i64 = UnixMillis::now().day().into();
        let day_ms = 86_400_000;
        // An old day with a partition, and a very old row that only the default partition takes.
        db.execute_unprepared(&migration::create_partition_sql(today - 100)).await.unwrap();
        for ts in [(today - 100) * day_ms + 5, (today - 1000) * day_ms, today * day_ms + 7] {
            db.execute_unprepared(&format!(
                "INSERT INTO events (site_id, session_id, visitor_id, ts, received_at, kind, path) VALUES (1, 1, 1, {ts}, {ts}, 'pv', '/')"
            ))
            .await
            .unwrap();
        }
        assert_eq!(count(&db, "SELECT COUNT(*) FROM events_default").await, 1);

        let pass = maintain(&db, today, 90).await.unwrap();
        assert_eq!(pass.created_or_kept, 8);
        assert_eq!(pass.dropped, vec![migration::partition_name(today - 100)]);
        let ahead = migration::partition_name(today + AHEAD_DAYS);
        assert_eq!(count(&db, &format!("SELECT COUNT(*) FROM pg_class WHERE relname = '{ahead}'")).await, 1);
        // The old day's row went with its partition; today's and the default partition's stay.
        assert_eq!(count(&db, "SELECT COUNT(*) FROM events").await, 2);
        assert_eq!(maintain(&db, today, 90).await.unwrap().dropped, Vec::<String>::new(), "idempotent");
    }
}
