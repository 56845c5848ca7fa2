//! The alert paths that need a database, on a real SQLite one: lease expiry, attempts running
//! out into the dead letters, and the traffic baseline job over the sessions table.

use sea_orm::{ActiveValue::Set, DatabaseConnection, EntityTrait};

use super::record::{enqueue_test, tick_site};
use super::service::{ChannelInput, create_channel};
use crate::domain::{SessionId, SiteId, UnixMillis, VisitorId};
use crate::settings::{DatabaseUrl, Secret, Settings};
use crate::shopify::token_cipher::TokenCipher;
use crate::storage::alerts::{self as store, ChannelRow};
use crate::storage::entities::{alert_outbox, sessions};
use crate::storage::{TenantScope, sites};

const KEY: &str = "0123456789abcdef0123456789abcdef";
const HOUR: i64 = 3_600_000;

async fn setup() -> (DatabaseConnection, TenantScope, ChannelRow) {
    let db = crate::storage::connect(&DatabaseUrl::new("sqlite::memory:")).await.unwrap();
    crate::storage::migrate(&db).await.unwrap();
    let (site, _) = sites::create(&db, "shop.example", sites::SiteKind::Standalone).await.unwrap();
    let scope = TenantScope::verified(site.id);
    let input = ChannelInput {
        kind: "email".into(),
        name: "Owner".into(),
        to: vec!["o@shop.example".into()],
        url: None,
        allow_private: false,
    };
    let (channel, _) = create_channel(&db, Some(&TokenCipher::new(KEY).unwrap()), scope, input).await.unwrap();
    (db, scope, channel)
}

async fn outbox(db: &DatabaseConnection) -> Vec<alert_outbox::Model> {
    alert_outbox::Entity::find().all(db).await.unwrap()
}

#[tokio::test]
async fn an_expired_lease_is_claimed_again_and_the_old_holder_cannot_complete() {
    let (db, _, channel) = setup().await;
    let t0 = UnixMillis(1_800_000_000_000);
    enqueue_test(&db, &channel, t0).await.unwrap();

    let first = store::claim_due(&db, t0, 60_000, 10, "node-a").await.unwrap();
    assert_eq!((first.len(), first[0].attempts), (1, 1));
    assert!(store::claim_due(&db, UnixMillis(t0.0 + 59_999), 60_000, 10, "node-b").await.unwrap().is_empty());
    // node-a died: its lease runs out and node-b takes the row.
    let second = store::claim_due(&db, UnixMillis(t0.0 + 60_000), 60_000, 10, "node-b").await.unwrap();
    assert_eq!((second.len(), second[0].attempts), (1, 2));
    let id = second[0].id;
    assert!(!store::mark_delivered(&db, id, "node-a", t0).await.unwrap(), "a lost claim cannot complete");
    assert!(store::mark_delivered(&db, id, "node-b", t0).await.unwrap());
    assert!(store::claim_due(&db, UnixMillis(t0.0 + 10 * HOUR), 60_000, 10, "node-c").await.unwrap().is_empty());

    // Pruning takes delivered rows created before the cut-off only.
    assert_eq!(store::prune_delivered(&db, t0).await.unwrap(), 0);
    assert_eq!(store::prune_delivered(&db, UnixMillis(t0.0 + 1)).await.unwrap(), 1);
}

#[tokio::test]
async fn a_delivery_failing_max_attempts_times_becomes_a_dead_letter_with_its_error() {
    let (db, _, channel) = setup().await;
    let mut settings = Settings { secret_key: Some(Secret::new(KEY)), ..Settings::default() };
    settings.alerts.max_attempts = 2;
    settings.alerts.retry_base_ms = 1;
    // No smtp_host: every email delivery fails transiently.
    let metrics = std::sync::Arc::new(crate::telemetry::metrics::Metrics::new());
    let worker = super::worker::Worker::new(db.clone(), &settings, metrics.clone()).unwrap();
    let now = UnixMillis::now();
    enqueue_test(&db, &channel, now).await.unwrap();

    assert_eq!(worker.deliver_due(now).await.unwrap(), 1);
    let row = &outbox(&db).await[0];
    assert_eq!((row.status.as_str(), row.attempts), ("pending", 1));
    assert!(row.last_error.as_deref().unwrap().contains("alerts.smtp_host"), "{row:?}");

    assert_eq!(worker.deliver_due(UnixMillis(now.0 + HOUR)).await.unwrap(), 1);
    let row = &outbox(&db).await[0];
    assert_eq!((row.status.as_str(), row.attempts), ("dead", 2));
    assert_eq!(worker.deliver_due(UnixMillis(now.0 + 2 * HOUR)).await.unwrap(), 0);
    let exposition = metrics.encode();
    assert!(exposition.contains(r#"ghosttrack_alert_deliveries_total{outcome="retry"} 1"#), "{exposition}");
    assert!(exposition.contains(r#"ghosttrack_alert_deliveries_total{outcome="dead"} 1"#), "{exposition}");
}

fn session(site: SiteId, id: i64, started_at: i64) -> sessions::ActiveModel {
    sessions::ActiveModel {
        id: Set(SessionId(id)),
        site_id: Set(site),
        visitor_id: Set(VisitorId(id)),
        started_at: Set(UnixMillis(started_at)),
        last_seen_at: Set(UnixMillis(started_at)),
        pageviews: Set(1),
        events: Set(1),
        entry_path: Set("/".into()),
        exit_path: Set("/".into()),
        referrer_host: Set(None),
        ip_prefix: Set(None),
        country: Set(None),
        region: Set(None),
        city: Set(None),
        asn: Set(None),
        as_org: Set(None),
        net_flags: Set(0),
        browser: Set("Chrome".into()),
        browser_version: Set(None),
        os: Set("Linux".into()),
        device: Set("desktop".into()),
        bot_family: Set(None),
        automated: Set(false),
        consent: Set(true),
    }
}

#[tokio::test]
async fn the_traffic_job_compares_the_last_hour_with_the_sessions_baseline() {
    let (db, scope, _) = setup().await;
    let site = scope.site_id();
    let now = 1_800_000_000_000i64;
    // Baseline: 30 sessions an hour for the 48 hours before the last hour; then 100 in the last hour.
    let mut rows: Vec<_> =
        (0..48 * 30).map(|i| session(site, i + 1, now - HOUR - 48 * HOUR + i * (HOUR / 30))).collect();
    rows.extend((0..100).map(|i| session(site, 10_000 + i, now - HOUR + 1 + i * 1000)));
    for chunk in rows.chunks(200) {
        sessions::Entity::insert_many(chunk.to_vec()).exec_without_returning(&db).await.unwrap();
    }
    let policy = super::AlertPolicy { traffic: true, ..Default::default() };
    store::save_policy(&db, scope, &serde_json::to_string(&policy).unwrap(), UnixMillis(now)).await.unwrap();

    let (p, st) = store::lock_state(&db, site, UnixMillis(now)).await.unwrap();
    assert!(super::record::needs_tick(p.as_deref(), &st, UnixMillis(now)));
    assert_eq!(tick_site(&db, site, UnixMillis(now)).await.unwrap(), 1);
    let (p, st) = store::lock_state(&db, site, UnixMillis(now)).await.unwrap();
    assert!(!super::record::needs_tick(p.as_deref(), &st, UnixMillis(now + 60_000)), "nothing due for 15 minutes");
    let row = &outbox(&db).await[0];
    assert_eq!(row.kind, "traffic_spike");
    let alert: super::Alert = serde_json::from_str(&row.payload).unwrap();
    assert_eq!(alert.title, "Traffic spike: 100 sessions in the last hour");
    assert!(alert.summary.contains("is 30.0"), "{}", alert.summary);
    // Checked again only after 15 minutes, and the spike key is cooling down anyway.
    assert_eq!(tick_site(&db, site, UnixMillis(now + 60_000)).await.unwrap(), 0);

    // With the default policy (traffic off) nothing is judged.
    store::save_policy(&db, scope, &serde_json::to_string(&super::AlertPolicy::default()).unwrap(), UnixMillis(now))
        .await
        .unwrap();
    assert_eq!(tick_site(&db, site, UnixMillis(now + 20 * 60_000)).await.unwrap(), 0);
}

#[tokio::test]
async fn a_quota_notice_becomes_one_email_per_email_channel_exactly_once() {
    use crate::billing::quota::QUOTA_EXCEEDED;
    use crate::storage::billing::notice_once;
    let (db, scope, channel) = setup().await;
    let t0 = UnixMillis(1_800_000_000_000);
    let detail = serde_json::json!({ "plan": "free", "sessions": 10_000, "quota": 10_000, "sample_percent": 10 });
    assert!(notice_once(&db, scope.site_id(), 202701, QUOTA_EXCEEDED, &detail, t0).await.unwrap());

    assert_eq!(super::record::enqueue_billing_notices(&db, t0).await.unwrap(), 1);
    let rows = outbox(&db).await;
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].kind.as_str(), rows[0].channel_id), ("quota_exceeded", channel.id));
    let alert: super::engine::Alert = serde_json::from_str(&rows[0].payload).unwrap();
    assert_eq!(alert.link_path, "/app/billing");
    assert!(alert.summary.contains("10000 sessions were recorded this month"), "{}", alert.summary);

    // A second run (or another node) finds nothing left to send.
    assert_eq!(super::record::enqueue_billing_notices(&db, t0).await.unwrap(), 0);
    assert_eq!(outbox(&db).await.len(), 1);
}
