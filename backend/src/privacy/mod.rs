//! Privacy per tenant (DESIGN §5): the mode of a site, per-visitor export and deletion, and the
//! retention job that deletes raw events when their time is up.
//!
//! | mode | raw events kept | pointer paths |
//! |---|---|---|
//! | `strict` | `retention_days` | never stored (the ingest strips them, see `ingest::payload`) |
//! | `balanced` | `retention_days` | unflagged sessions: `unflagged_pointer_path_hours`; flagged: `flagged_pointer_path_days` |
//! | `forensic` | `forensic_retention_days` | with the other events |
//!
//! The job is idempotent and safe on several nodes: each pass deletes what is past its time in
//! bounded batches; two nodes deleting the same rows simply find fewer.

use std::collections::HashMap;
use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio::sync::watch;

use crate::billing::Entitlements;
use crate::billing::settings::BillingSettings;
use crate::domain::{PrivacyMode, SiteId, UnixMillis};
use crate::settings::PrivacySettings;
use crate::storage::{StorageError, TenantScope, privacy};

/// Events deleted per statement.
pub const SWEEP_BATCH: u64 = 5_000;
/// Event kind of tracker pointer paths.
const POINTER_PATH: &str = "pp";

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// The cut-offs of one site at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    /// Every raw event older than this goes.
    pub events_before: UnixMillis,
    /// Pointer paths of unflagged sessions older than this go (balanced only).
    pub unflagged_pointer_paths_before: Option<UnixMillis>,
    /// Pointer paths of any session older than this go (balanced only).
    pub pointer_paths_before: Option<UnixMillis>,
}

/// How long a mode keeps raw data under the settings (what the panel's Privacy page shows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionDays {
    /// Raw events, days.
    pub raw_events: u32,
    /// Balanced only: pointer paths of sessions no verdict flagged, hours.
    pub unflagged_pointer_path_hours: Option<u32>,
    /// Balanced only: pointer paths of flagged sessions, days.
    pub flagged_pointer_path_days: Option<u32>,
}

/// The retention of `mode`: strict sites store no pointer paths, forensic sites keep them with
/// the rest of their events.
pub fn retention_days(mode: PrivacyMode, settings: &PrivacySettings) -> RetentionDays {
    let raw_events = match mode {
        PrivacyMode::Forensic => settings.forensic_retention_days,
        PrivacyMode::Strict | PrivacyMode::Balanced => settings.retention_days,
    };
    let balanced = mode == PrivacyMode::Balanced;
    RetentionDays {
        raw_events,
        unflagged_pointer_path_hours: balanced.then_some(settings.unflagged_pointer_path_hours),
        flagged_pointer_path_days: balanced.then_some(settings.flagged_pointer_path_days),
    }
}

/// What the mode and the settings allow at `now`.
pub fn cutoffs(mode: PrivacyMode, settings: &PrivacySettings, now: UnixMillis) -> Cutoffs {
    let days = retention_days(mode, settings);
    Cutoffs {
        events_before: UnixMillis(now.0 - i64::from(days.raw_events) * DAY_MS),
        unflagged_pointer_paths_before: days
            .unflagged_pointer_path_hours
            .map(|h| UnixMillis(now.0 - i64::from(h) * HOUR_MS)),
        pointer_paths_before: days.flagged_pointer_path_days.map(|d| UnixMillis(now.0 - i64::from(d) * DAY_MS)),
    }
}

impl Cutoffs {
    /// The plan's retention (`billing.<plan>.retention_days`, when plans are enforced) caps the
    /// mode's: whichever keeps raw events for less time wins.
    pub fn capped_by_plan(mut self, plan_days: Option<u32>, now: UnixMillis) -> Cutoffs {
        if let Some(days) = plan_days {
            self.events_before = self.events_before.max(UnixMillis(now.0 - i64::from(days) * DAY_MS));
        }
        self
    }
}

/// Everything stored about one visitor, with encrypted event payloads opened
/// (`keys::events`): what the panel's export and `ghosttrack privacy export` return.
pub async fn export_visitor(
    db: &DatabaseConnection,
    keys: &crate::keys::EventKeys,
    scope: TenantScope,
    visitor: crate::domain::VisitorId,
) -> Result<privacy::VisitorExport, crate::keys::KeyError> {
    let mut export = privacy::export_visitor(db, scope, visitor).await?;
    for event in &mut export.events {
        if let Some(serde_json::Value::String(stored)) = &event.props {
            let plain = keys.open(db, scope, stored).await?;
            event.props = Some(serde_json::from_str(&plain).unwrap_or(serde_json::Value::String(plain)));
        }
    }
    Ok(export)
}

/// Rows one pass deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub events: u64,
    pub pointer_paths: u64,
}

async fn drain<F, Fut>(mut step: F) -> Result<u64, StorageError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u64, StorageError>>,
{
    let mut total = 0;
    loop {
        let n = step().await?;
        total += n;
        if n < SWEEP_BATCH {
            return Ok(total);
        }
    }
}

/// Applies the cut-offs of one site.
pub async fn sweep_site(db: &DatabaseConnection, scope: TenantScope, cut: Cutoffs) -> Result<Swept, StorageError> {
    let events = drain(|| privacy::delete_events_before(db, scope, cut.events_before, None, SWEEP_BATCH)).await?;
    let mut pointer_paths = 0;
    if let Some(before) = cut.unflagged_pointer_paths_before {
        pointer_paths +=
            drain(|| privacy::delete_unflagged_before(db, scope, before, POINTER_PATH, SWEEP_BATCH)).await?;
    }
    if let Some(before) = cut.pointer_paths_before {
        pointer_paths +=
            drain(|| privacy::delete_events_before(db, scope, before, Some(POINTER_PATH), SWEEP_BATCH)).await?;
    }
    Ok(Swept { events, pointer_paths })
}

/// One pass over every site. With plans enforced, each site's plan retention caps its mode's.
pub async fn sweep(
    db: &DatabaseConnection,
    settings: &PrivacySettings,
    billing: &BillingSettings,
    now: UnixMillis,
) -> Result<Swept, StorageError> {
    let plans: HashMap<SiteId, Entitlements> = if billing.enabled {
        crate::storage::billing::all_subscriptions(db)
            .await?
            .into_iter()
            .map(|row| (row.site_id, Entitlements::from_row(billing, Some(row))))
            .collect()
    } else {
        HashMap::new()
    };
    let free = Entitlements::from_row(billing, None);
    let mut total = Swept::default();
    for (scope, mode) in privacy::site_modes(db).await? {
        let plan_days = billing.enabled.then(|| plans.get(&scope.site_id()).unwrap_or(&free).retention_days());
        let swept = sweep_site(db, scope, cutoffs(mode, settings, now).capped_by_plan(plan_days, now)).await?;
        total.events += swept.events;
        total.pointer_paths += swept.pointer_paths;
    }
    Ok(total)
}

/// The retention job: a pass every `sweep_interval_secs` until `stopped` flips.
pub async fn run(
    db: DatabaseConnection,
    settings: PrivacySettings,
    billing: BillingSettings,
    mut stopped: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(settings.sweep_interval_secs.max(1)));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.changed() => break,
        }
        match sweep(&db, &settings, &billing, UnixMillis::now()).await {
            Ok(Swept { events: 0, pointer_paths: 0 }) => {}
            Ok(s) => {
                tracing::info!(events.deleted = s.events, pointer_paths.deleted = s.pointer_paths, "retention pass")
            }
            Err(error) => tracing::warn!(error = %error, "retention pass failed; will retry"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mode_has_its_own_cutoffs() {
        let s = PrivacySettings::default();
        let now = UnixMillis(1_000 * DAY_MS);
        let balanced = cutoffs(PrivacyMode::Balanced, &s, now);
        assert_eq!(balanced.events_before, UnixMillis(now.0 - 90 * DAY_MS));
        assert_eq!(balanced.unflagged_pointer_paths_before, Some(UnixMillis(now.0 - 24 * HOUR_MS)));
        assert_eq!(balanced.pointer_paths_before, Some(UnixMillis(now.0 - 7 * DAY_MS)));
        let forensic = cutoffs(PrivacyMode::Forensic, &s, now);
        assert_eq!(forensic.events_before, UnixMillis(now.0 - 30 * DAY_MS));
        assert_eq!(forensic.pointer_paths_before, None);
        let strict = cutoffs(PrivacyMode::Strict, &s, now);
        assert_eq!(strict.events_before, balanced.events_before);
        assert_eq!(strict.unflagged_pointer_paths_before, None);
    }

    #[test]
    fn the_shorter_of_mode_and_plan_retention_wins() {
        let s = PrivacySettings::default();
        let now = UnixMillis(1_000 * DAY_MS);
        let forensic = cutoffs(PrivacyMode::Forensic, &s, now);
        // A 7-day plan cuts a 30-day forensic mode to 7 days; a 365-day plan changes nothing.
        assert_eq!(forensic.capped_by_plan(Some(7), now).events_before, UnixMillis(now.0 - 7 * DAY_MS));
        assert_eq!(forensic.capped_by_plan(Some(365), now), forensic);
        assert_eq!(forensic.capped_by_plan(None, now), forensic);
    }

    #[test]
    fn the_panel_sees_each_modes_retention() {
        let s = PrivacySettings::default();
        let balanced = retention_days(PrivacyMode::Balanced, &s);
        assert_eq!(
            (balanced.raw_events, balanced.unflagged_pointer_path_hours, balanced.flagged_pointer_path_days),
            (90, Some(24), Some(7))
        );
        let forensic = retention_days(PrivacyMode::Forensic, &s);
        assert_eq!((forensic.raw_events, forensic.unflagged_pointer_path_hours), (30, None));
        let strict = retention_days(PrivacyMode::Strict, &s);
        assert_eq!((strict.raw_events, strict.flagged_pointer_path_days), (90, None));
    }
}
