//! The alert side of recording threats: in one transaction the recorder inserts the threat rows,
//! runs each tenant's alert core on them and writes the resulting outbox rows, so an alert
//! exists exactly when the threat that caused it does. The periodic job (`tick_site`) does the
//! same for digests, quiet-hour roll-ups and the traffic check.

use std::collections::BTreeMap;

use rand::RngCore;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, TransactionTrait};

use super::engine::{self, Alert, AlertState, ReasonFacts, ThreatFacts};
use super::policy::AlertPolicy;
use crate::domain::{SiteId, UnixMillis};
use crate::storage::alerts::{self as store, ChannelRow, NewDelivery};
use crate::storage::threats::{self, NewThreat};

/// Hourly baseline of the traffic check: the previous 7 days.
pub const TRAFFIC_BASELINE_HOURS: i64 = 7 * 24;
/// The traffic check needs at least this much history.
pub const TRAFFIC_MIN_HISTORY_HOURS: i64 = 24;
/// How often a tenant's traffic is checked.
pub const TRAFFIC_CHECK_INTERVAL_MS: i64 = 15 * 60_000;

/// Inserts verdict changes and the alerts they trigger, atomically. Returns the number of
/// outbox rows written.
pub async fn record_threats(db: &DatabaseConnection, rows: &[NewThreat], now: UnixMillis) -> Result<usize, DbErr> {
    if rows.is_empty() {
        return Ok(0);
    }
    let txn = db.begin().await?;
    threats::insert(&txn, rows, now).await?;
    let mut by_site: BTreeMap<SiteId, Vec<&NewThreat>> = BTreeMap::new();
    for row in rows {
        by_site.entry(row.site_id).or_default().push(row);
    }
    let mut written = 0;
    // Sites in id order: two nodes lock tenants in the same order and cannot deadlock.
    for (site, threats) in by_site {
        let (policy, mut state) = load(&txn, site, now).await?;
        let alerts: Vec<Alert> =
            threats.iter().filter_map(|t| engine::observe(&policy, &mut state, &facts(t))).collect();
        store::save_state(&txn, site, &to_json(&state), now).await?;
        written += enqueue(&txn, site, &alerts, now).await?;
    }
    txn.commit().await?;
    Ok(written)
}

/// The periodic step of one tenant at `now`: roll-ups, the digest and (every 15 minutes) the
/// traffic check.
pub async fn tick_site(db: &DatabaseConnection, site: SiteId, now: UnixMillis) -> Result<usize, DbErr> {
    let txn = db.begin().await?;
    let (policy, mut state) = load(&txn, site, now).await?;
    let mut alerts = engine::tick(&policy, &mut state, now.0);
    if policy.traffic && now.0 - state.last_traffic_check >= TRAFFIC_CHECK_INTERVAL_MS {
        let (last_hour, baseline) = traffic_counts(&txn, site, now).await?;
        if let Some(baseline) = baseline {
            alerts.extend(engine::traffic(&policy, &mut state, now.0, last_hour, baseline));
        } else {
            state.last_traffic_check = now.0;
        }
    }
    store::save_state(&txn, site, &to_json(&state), now).await?;
    let written = enqueue(&txn, site, &alerts, now).await?;
    txn.commit().await?;
    Ok(written)
}

/// Whether the periodic step would change anything for this tenant at `now` (a dry run on a
/// copy of its state): most tenants most of the time have nothing due, and skipping them keeps
/// the job from writing every tenant's row every minute.
pub fn needs_tick(policy_json: Option<&str>, state_json: &str, now: UnixMillis) -> bool {
    let policy: AlertPolicy = policy_json.and_then(|p| serde_json::from_str(p).ok()).unwrap_or_default();
    let state: AlertState = serde_json::from_str(state_json).unwrap_or_default();
    if policy.traffic && now.0 - state.last_traffic_check >= TRAFFIC_CHECK_INTERVAL_MS {
        return true;
    }
    let mut dry = state.clone();
    !engine::tick(&policy, &mut dry, now.0).is_empty() || dry != state
}

/// Queues a test alert for one channel.
pub async fn enqueue_test(db: &impl ConnectionTrait, channel: &ChannelRow, now: UnixMillis) -> Result<String, DbErr> {
    let alert = Alert {
        kind: engine::AlertKind::Test,
        title: "Test alert".into(),
        summary: format!(
            "This is a test of the alert channel \"{}\". If you can read it, alerts reach you.",
            channel.name
        ),
        details: vec!["No action is needed.".into()],
        subject: None,
        link_path: "/app/alerts".into(),
        decision: None,
        score: None,
        at: now.0,
        suppressed: 0,
    };
    let delivery = delivery(channel.site_id, channel, &alert);
    let id = delivery.alert_id.clone();
    store::enqueue(db, &[delivery], now).await?;
    Ok(id)
}

/// Turns pending billing notices (a tenant went over its session quota) into one email per
/// enabled email channel. Claiming the notice and writing its outbox rows share a transaction,
/// so each notice becomes its messages exactly once, whichever node gets there first.
pub async fn enqueue_billing_notices(db: &DatabaseConnection, now: UnixMillis) -> Result<usize, DbErr> {
    use crate::storage::billing as notices;
    let storage = |e: crate::storage::StorageError| DbErr::Custom(e.to_string());
    let mut written = 0;
    for notice in notices::pending_notices(db, 100).await.map_err(storage)? {
        let txn = db.begin().await?;
        if !notices::claim_notice(&txn, notice.id, now).await.map_err(storage)? {
            continue;
        }
        let Some(alert) = notice_alert(&notice, now) else {
            txn.commit().await?;
            continue;
        };
        let channels = store::enabled_channels(&txn, notice.site_id).await?;
        let rows: Vec<NewDelivery> =
            channels.iter().filter(|c| c.kind == "email").map(|c| delivery(notice.site_id, c, &alert)).collect();
        store::enqueue(&txn, &rows, now).await?;
        txn.commit().await?;
        if rows.is_empty() {
            tracing::info!(site.id = notice.site_id.0, "quota notice recorded; the site has no email channel");
        }
        written += rows.len();
    }
    Ok(written)
}

/// The message of a billing notice (`None` for a kind this version does not know).
fn notice_alert(notice: &crate::storage::billing::NoticeRow, now: UnixMillis) -> Option<Alert> {
    #[derive(serde::Deserialize)]
    struct Detail {
        plan: String,
        sessions: u64,
        quota: u64,
        sample_percent: u8,
    }
    if notice.kind != crate::billing::quota::QUOTA_EXCEEDED {
        return None;
    }
    let d: Detail = serde_json::from_str(&notice.detail).ok()?;
    Some(Alert {
        kind: engine::AlertKind::QuotaExceeded,
        title: format!("Your site is over its {} plan's monthly session quota", d.plan),
        summary: format!(
            "{} sessions were recorded this month; the {} plan includes {}. New sessions are now sampled \
             ({} % kept) until the month ends or you upgrade.",
            d.sessions, d.plan, d.quota, d.sample_percent
        ),
        details: vec![
            "Security signals from Shopify webhooks (orders, payments, checkouts) are never sampled.".into(),
            "Upgrade on the Billing page to record every session again.".into(),
        ],
        subject: None,
        link_path: "/app/billing".into(),
        decision: None,
        score: None,
        at: now.0,
        suppressed: 0,
    })
}

async fn load(db: &impl ConnectionTrait, site: SiteId, now: UnixMillis) -> Result<(AlertPolicy, AlertState), DbErr> {
    let (policy_json, state_json) = store::lock_state(db, site, now).await?;
    let policy = match policy_json.as_deref().map(serde_json::from_str::<AlertPolicy>) {
        Some(Ok(p)) => p,
        Some(Err(error)) => {
            tracing::error!(site.id = site.0, error = %error, "stored alert policy does not parse; using the default");
            AlertPolicy::default()
        }
        None => AlertPolicy::default(),
    };
    // A state that no longer parses (an older shape) restarts empty: it only holds cooldowns
    // and counters.
    let state = serde_json::from_str(&state_json).unwrap_or_default();
    Ok((policy, state))
}

fn to_json(state: &AlertState) -> String {
    serde_json::to_string(state).unwrap_or_else(|_| "{}".into())
}

async fn enqueue(db: &impl ConnectionTrait, site: SiteId, alerts: &[Alert], now: UnixMillis) -> Result<usize, DbErr> {
    if alerts.is_empty() {
        return Ok(0);
    }
    let channels = store::enabled_channels(db, site).await?;
    if channels.is_empty() {
        tracing::debug!(site.id = site.0, alerts = alerts.len(), "alerts raised but the site has no alert channel");
    }
    let rows: Vec<NewDelivery> =
        alerts.iter().flat_map(|a| channels.iter().map(move |c| delivery(site, c, a))).collect();
    store::enqueue(db, &rows, now).await?;
    Ok(rows.len())
}

fn delivery(site: SiteId, channel: &ChannelRow, alert: &Alert) -> NewDelivery {
    let mut id = [0u8; 12];
    rand::rng().fill_bytes(&mut id);
    let alert_id = hex::encode(id);
    NewDelivery {
        site_id: site,
        channel_id: channel.id,
        idempotency_key: format!("gt-{alert_id}-{}", channel.id.0),
        alert_id,
        kind: alert.kind.as_str().into(),
        payload: serde_json::to_string(alert).unwrap_or_default(),
    }
}

fn facts(t: &NewThreat) -> ThreatFacts {
    ThreatFacts {
        subject: t.subject.clone(),
        decision: t.decision.to_owned(),
        score: t.score,
        reasons: serde_json::from_str::<Vec<ReasonFacts>>(&t.reasons_json).unwrap_or_default(),
        at: t.at.0,
    }
}

/// Sessions started in the last hour, and the hourly average over the previous 7 days (`None`
/// with less than a day of history).
async fn traffic_counts(db: &impl ConnectionTrait, site: SiteId, now: UnixMillis) -> Result<(u64, Option<f64>), DbErr> {
    use crate::storage::entities::sessions::{Column as C, Entity};
    use sea_orm::sea_query::{Expr, ExprTrait, Query};
    const HOUR: i64 = 3_600_000;
    let hour_ago = now.0 - HOUR;
    let from = hour_ago - TRAFFIC_BASELINE_HOURS * HOUR;
    let count = |lo: i64, hi: i64| {
        Query::select()
            .expr(Expr::col(C::Id).count())
            .expr(Expr::col(C::StartedAt).min())
            .from(Entity)
            .and_where(Expr::col(C::SiteId).eq(site.0))
            .and_where(Expr::col(C::StartedAt).gte(lo))
            .and_where(Expr::col(C::StartedAt).lt(hi))
            .to_owned()
    };
    let last = db.query_one(&count(hour_ago, now.0)).await?;
    let last_hour = last.map(|r| r.try_get_by_index::<i64>(0)).transpose()?.unwrap_or(0);
    let base = db.query_one(&count(from, hour_ago)).await?;
    let (sessions, first) = match base {
        Some(r) => (r.try_get_by_index::<i64>(0)?, r.try_get_by_index::<Option<i64>>(1)?),
        None => (0, None),
    };
    let Some(first) = first else { return Ok((last_hour as u64, None)) };
    let hours = std::cmp::Ord::min((hour_ago - first) / HOUR, TRAFFIC_BASELINE_HOURS);
    if hours < TRAFFIC_MIN_HISTORY_HOURS {
        return Ok((last_hour as u64, None));
    }
    Ok((last_hour as u64, Some(sessions as f64 / hours as f64)))
}
