//! Session quotas. The meter counts each tenant's sessions of the current calendar month (UTC)
//! straight from the sessions table on a schedule — exact, and off the ingest hot path — stores
//! the count (and, once, the moment the tenant went over) in `usage_counters`, and publishes which tenants are over their plan's quota in a
//! [`QuotaBook`]. Ingest asks the book per batch (a hash-map read): sessions that START after the
//! tenant went over are sampled deterministically by session id (all or none of a session's
//! events are kept); sessions already running continue; the browser still gets 202. Webhooks
//! (orders, transactions, checkouts) never pass through here. The first time a tenant is over in
//! a month, one `quota_exceeded` notice is recorded for the alerts worker to send.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{Datelike, TimeZone, Utc};
use parking_lot::RwLock;
use tokio::sync::watch;

use super::BillingError;
use super::entitlements::Entitlements;
use super::settings::BillingSettings;
use crate::domain::{SessionId, SiteId, UnixMillis};
use crate::ingest::writer::WriteJob;
use crate::startup::AppState;
use crate::storage::billing as store;

/// Kind of the notice recorded when a tenant first exceeds its quota in a month.
pub const QUOTA_EXCEEDED: &str = "quota_exceeded";

/// A tenant over its quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverQuota {
    /// When a meter run (on any node) first saw the tenant over this month; sessions starting
    /// from then on are sampled, the same on every node.
    pub since: UnixMillis,
    /// `YYYYMM` of the quota period.
    pub month: i32,
    /// Percent of new sessions kept.
    pub sample_percent: u8,
}

/// Which tenants are over quota right now, as of the last meter run.
#[derive(Default)]
pub struct QuotaBook {
    over: RwLock<HashMap<SiteId, OverQuota>>,
}

impl QuotaBook {
    pub fn gate(&self, site: SiteId) -> Option<OverQuota> {
        self.over.read().get(&site).copied()
    }

    fn replace(&self, over: HashMap<SiteId, OverQuota>) {
        *self.over.write() = over;
    }
}

/// Whether a new session of an over-quota tenant is kept: a stable hash of its id, so every
/// batch of the session gets the same answer on every node.
pub fn keep_session(session: SessionId, percent: u8) -> bool {
    let mut z = session.0 as u64 ^ 0x9e37_79b9_7f4a_7c15;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    z % 100 < u64::from(percent.min(100))
}

/// Removes the sessions sampled out by `gate` (their events, session and visitor rows) from a
/// write job. Returns how many events were dropped.
pub fn sample(job: &mut WriteJob, gate: OverQuota) -> usize {
    let dropped: HashSet<SessionId> = job
        .sessions
        .iter()
        .filter(|s| s.started_at >= gate.since && !keep_session(s.id, gate.sample_percent))
        .map(|s| s.id)
        .collect();
    if dropped.is_empty() {
        return 0;
    }
    let before = job.events.len();
    job.events.retain(|e| !dropped.contains(&e.session_id));
    let dropped_starts: Vec<UnixMillis> =
        job.sessions.iter().filter(|s| dropped.contains(&s.id)).map(|s| s.started_at).collect();
    job.sessions.retain(|s| !dropped.contains(&s.id));
    // A visitor row counts a session start; drop the ones of dropped sessions.
    job.visitors.retain(|v| !dropped_starts.contains(&v.first_seen_at));
    before - job.events.len()
}

/// `YYYYMM` (UTC) of a moment.
pub fn month_of(t: UnixMillis) -> i32 {
    let d = chrono::DateTime::from_timestamp_millis(t.0).unwrap_or_default();
    d.year() * 100 + d.month() as i32
}

/// `[first ms, first ms of the next month)` of a `YYYYMM` month.
pub fn month_bounds(month: i32) -> (UnixMillis, UnixMillis) {
    let (y, m) = (month / 100, (month % 100) as u32);
    let start = |y: i32, m: u32| Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).single().map_or(0, |t| t.timestamp_millis());
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    (UnixMillis(start(y, m)), UnixMillis(start(ny, nm)))
}

/// What one meter run found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MeterReport {
    pub tenants: usize,
    pub over: usize,
    pub notices: usize,
}

/// Counts this month's sessions per tenant, stores the counts, publishes who is over quota, and
/// records one notice per tenant and month.
pub async fn meter(
    db: &impl sea_orm::ConnectionTrait,
    billing: &BillingSettings,
    book: &QuotaBook,
    now: UnixMillis,
) -> Result<MeterReport, BillingError> {
    let month = month_of(now);
    let (from, to) = month_bounds(month);
    let counts = store::sessions_by_site(db, from, to).await?;
    let subscriptions: HashMap<SiteId, store::SubscriptionRow> =
        store::all_subscriptions(db).await?.into_iter().map(|r| (r.site_id, r)).collect();
    let mut over = HashMap::new();
    let mut report = MeterReport { tenants: counts.len(), ..Default::default() };
    for (site, sessions, latest_start) in counts {
        let ent = Entitlements::from_row(billing, subscriptions.get(&site).cloned());
        let is_over = billing.enabled && sessions as u64 >= ent.session_quota();
        // The quota ran out when the latest counted session started (event time, the clock
        // sessions are sampled by): it and every earlier session continue; later ones are new.
        let over_at = UnixMillis(latest_start.0.saturating_add(1));
        let over_since = store::set_usage(db, site, month, sessions, is_over, now, over_at).await?;
        if !is_over {
            continue;
        }
        let since = over_since.unwrap_or(now);
        over.insert(site, OverQuota { since, month, sample_percent: billing.over_quota_sample_percent });
        report.over += 1;
        let detail = serde_json::json!({
            "plan": ent.plan, "sessions": sessions, "quota": ent.session_quota(),
            "sample_percent": billing.over_quota_sample_percent,
        });
        if store::notice_once(db, site, month, QUOTA_EXCEEDED, &detail, now).await? {
            report.notices += 1;
            tracing::info!(site.id = site.0, sessions, quota = ent.session_quota(), "tenant over its session quota");
        }
    }
    book.replace(over);
    Ok(report)
}

/// The meter loop of a node (every `billing.meter_interval_secs`).
pub async fn run(state: Arc<AppState>, mut stopped: watch::Receiver<bool>) {
    let every = Duration::from_secs(state.settings.billing.meter_interval_secs.max(1));
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.changed() => break,
        }
        if let Err(error) = meter(&state.db, &state.settings.billing, &state.quota, UnixMillis::now()).await {
            tracing::warn!(error = %error, "quota meter failed; will retry");
        }
        if let Some(detector) = &state.detector
            && let Err(error) =
                super::entitlements::sync_rule_limits(&state.db, &state.settings.billing, detector).await
        {
            tracing::warn!(error = %error, "plan rule limits not refreshed; will retry");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_calendar_months_in_utc() {
        let t = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap().timestamp_millis();
        assert_eq!(month_of(UnixMillis(t)), 202612);
        assert_eq!(month_of(UnixMillis(t + 1000)), 202701);
        let (from, to) = month_bounds(202612);
        assert_eq!(month_of(from), 202612);
        assert_eq!(month_of(UnixMillis(to.0 - 1)), 202612);
        assert_eq!(month_of(to), 202701);
    }

    #[test]
    fn sampling_is_deterministic_and_near_the_percentage() {
        let ids: Vec<SessionId> = (0..10_000i64).map(|i| SessionId((1_763_700_000_000 + i * 7919) << 20 | i)).collect();
        let kept = ids.iter().filter(|id| keep_session(**id, 10)).count();
        assert!((800..1200).contains(&kept), "{kept}");
        assert!(ids.iter().all(|id| keep_session(*id, 10) == keep_session(*id, 10)));
        assert!(ids.iter().all(|id| !keep_session(*id, 0)));
        assert!(ids.iter().all(|id| keep_session(*id, 100)));
    }
}
