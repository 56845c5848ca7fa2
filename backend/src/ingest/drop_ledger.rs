//! Counts drops in memory (and on `/metrics` at once) and persists them periodically.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use sea_orm::DatabaseConnection;

use super::DropReason;
use crate::domain::SiteId;
use crate::storage;
use crate::telemetry::metrics::Metrics;

/// Site id recorded for requests that never resolved to a site.
pub const NO_SITE: SiteId = SiteId(0);

pub struct DropLedger {
    pending: Mutex<HashMap<(SiteId, i32, DropReason), i64>>,
    metrics: Arc<Metrics>,
}

impl DropLedger {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        DropLedger { pending: Mutex::new(HashMap::new()), metrics }
    }

    pub fn record(&self, site: SiteId, day: i32, reason: DropReason, count: usize) {
        if count == 0 {
            return;
        }
        self.metrics.record_drop(reason, count as u64);
        *self.pending.lock().entry((site, day, reason)).or_default() += count as i64;
    }

    /// Writes pending counts; on failure they stay pending for the next flush.
    pub async fn flush(&self, db: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
        let taken: Vec<_> = std::mem::take(&mut *self.pending.lock()).into_iter().collect();
        let rows: Vec<(SiteId, i32, &'static str, i64)> =
            taken.iter().map(|((site, day, reason), n)| (*site, *day, reason.as_str(), *n)).collect();
        if let Err(e) = storage::drops::add(db, &rows).await {
            let mut pending = self.pending.lock();
            for (key, n) in taken {
                *pending.entry(key).or_default() += n;
            }
            return Err(e);
        }
        Ok(())
    }
}
