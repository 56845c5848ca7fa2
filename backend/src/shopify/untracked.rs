//! The untracked-cart judge. Storefront scripts that call `/cart/add.js` or the Storefront API
//! never run the tracker, so the only trace they leave is Shopify's webhook: a cart, checkout or
//! order whose cart token (tracker `ct` on add-to-cart) or checkout token (pixel `ck`) no tracked
//! session carried (DETECTION.md, "carts/checkouts/orders with no tracked session").
//!
//! The webhook handlers record every cart, checkout and untracked order in `shopify_carts` with
//! whether a tracked session had produced it *then*. The tracker's batch can arrive after the
//! webhook, so the verdict waits: once a row is older than the grace period (the `grace_secs` of
//! the rules over `untracked` events, e.g. `cart/untracked`), this job looks again and, if still
//! no tracked session carried its tokens, feeds an [`Body::Untracked`](crate::detect::event::Body)
//! event to the engine, where shop-wide and per-network rules count them. Each row is claimed
//! once (`judged_at`), so several nodes judge a row once.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio::sync::watch;

use super::signals;
use crate::detect::service::Detector;
use crate::domain::UnixMillis;
use crate::keys::{EventKeys, KeyError};
use crate::storage::entities::shopify_carts;
use crate::storage::{TenantScope, shopify_orders};

/// Grace period when no loaded rule names one.
pub const DEFAULT_GRACE_SECS: u64 = 600;
/// Rows judged per query.
const BATCH: u64 = 200;
/// How far before a cart its tracked session's events are looked for (as for orders).
const LINK_WINDOW_MS: i64 = 7 * 24 * 3_600_000;

/// The grace period: the longest `grace_secs` of the enabled rules (only rules over `untracked`
/// events set it), so no such rule judges a cart before its own grace has passed.
pub fn grace_ms(detector: &Detector) -> i64 {
    detector.with_rules(|set| {
        set.rules
            .iter()
            .filter(|r| r.spec.enabled)
            .filter_map(|r| r.spec.grace_secs)
            .max()
            .unwrap_or(DEFAULT_GRACE_SECS) as i64
            * 1000
    })
}

/// What one round decided.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Judged {
    /// Rows a tracked session had produced after all (the tracker's batch came late).
    pub tracked: usize,
    /// Rows fed to the engine as untracked.
    pub untracked: usize,
}

/// Judges every row past its grace period at `now`.
pub async fn judge(
    db: &DatabaseConnection,
    keys: &EventKeys,
    detector: &Detector,
    now: UnixMillis,
) -> Result<Judged, KeyError> {
    let grace = grace_ms(detector);
    let mut judged = Judged::default();
    loop {
        let rows = shopify_orders::untracked_due(db, UnixMillis(now.0 - grace), BATCH).await?;
        if rows.is_empty() {
            return Ok(judged);
        }
        for row in rows {
            judge_row(db, keys, detector, &row, now, &mut judged).await?;
        }
    }
}

async fn judge_row(
    db: &DatabaseConnection,
    keys: &EventKeys,
    detector: &Detector,
    row: &shopify_carts::Model,
    now: UnixMillis,
    judged: &mut Judged,
) -> Result<(), KeyError> {
    // The judge is an internal job: the tenant is the row's own.
    let scope = TenantScope::verified(row.site_id);
    let (cart_token, checkout_token) = match row.kind.as_str() {
        "cart" => (Some(row.token.as_str()), None),
        _ => (row.cart_token.as_deref(), Some(row.token.as_str())),
    };
    let since = UnixMillis(row.first_seen_at.0 - LINK_WINDOW_MS);
    // Encrypted tenants' payloads hold keyed hashes of the tokens: match those too.
    let (cart, checkout) = keys.join_needles(db, scope, cart_token, checkout_token).await?;
    let tracked = shopify_orders::tracked_session(db, scope, &cart, &checkout, since).await?.is_some();
    if !shopify_orders::mark_judged(db, scope, &row.kind, &row.token, tracked, now).await? {
        return Ok(()); // another node judged it
    }
    if tracked {
        judged.tracked += 1;
        return Ok(());
    }
    judged.untracked += 1;
    let network = row.ip_prefix.as_deref().and_then(|p| p.parse().ok());
    detector.observe(row.site_id, &[signals::untracked(&row.kind, &row.token, network, now.0)]);
    Ok(())
}

/// Runs [`judge`] every `interval` (`detect.untracked_judge_interval_secs`) until `stopped` flips.
pub async fn run(
    db: DatabaseConnection,
    keys: Arc<EventKeys>,
    detector: Arc<Detector>,
    interval: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        match judge(&db, &keys, &detector, UnixMillis::now()).await {
            Ok(j) if j.untracked > 0 => tracing::info!(untracked = j.untracked, tracked = j.tracked, "carts judged"),
            Ok(_) => {}
            Err(error) => tracing::warn!(error = %error, "untracked-cart judge failed; will retry"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stopped.changed() => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::EntityTrait;

    use super::*;
    use crate::domain::{SessionId, VisitorId};
    use crate::storage::events::{EventRow, insert_events};
    use crate::storage::shopify_orders::{CartSeen, record_cart};
    use crate::storage::sites::{self, SiteKind};

    #[tokio::test]
    async fn rows_are_judged_once_after_the_grace_and_a_late_tracker_event_counts() {
        let db = crate::storage::connect(&crate::settings::DatabaseUrl::new("sqlite::memory:")).await.unwrap();
        crate::storage::migrate(&db).await.unwrap();
        let (site, _) = sites::create(&db, "a.example", SiteKind::Standalone).await.unwrap();
        let scope = TenantScope::verified(site.id);
        let (detector, _rx) = Detector::new(crate::detect::commands::load_rules(None).unwrap(), 1000, None).unwrap();
        let keys = EventKeys::new(None);
        assert_eq!(grace_ms(&detector), 600_000, "the embedded rules' grace_secs");
        for token in ["late", "scripted"] {
            let cart = CartSeen { kind: "cart", token: token.into(), cart_token: None, ip_prefix: None };
            record_cart(&db, scope, &cart, false).await.unwrap();
        }
        let now = UnixMillis::now();
        assert_eq!(judge(&db, &keys, &detector, now).await.unwrap(), Judged::default(), "nothing before the grace");

        // The tracker's add-to-cart of "late" lands after the webhook, within the grace.
        let add = EventRow {
            site_id: site.id,
            session_id: SessionId(7),
            visitor_id: VisitorId(70),
            ts: now,
            received_at: now,
            kind: "ac",
            path: "/products/a".into(),
            props: Some(r#"{"ct":"late","q":1}"#.into()),
        };
        insert_events(&db, &[add]).await.unwrap();

        let later = UnixMillis(now.0 + grace_ms(&detector) + 1_000);
        assert_eq!(judge(&db, &keys, &detector, later).await.unwrap(), Judged { tracked: 1, untracked: 1 });
        assert_eq!(
            judge(&db, &keys, &detector, UnixMillis(later.0 + 1)).await.unwrap(),
            Judged::default(),
            "judged once"
        );
        let rows = shopify_carts::Entity::find().all(&db).await.unwrap();
        let tracked: Vec<(String, bool)> = rows.iter().map(|r| (r.token.clone(), r.tracked)).collect();
        assert!(tracked.contains(&("late".into(), true)) && tracked.contains(&("scripted".into(), false)));
        assert!(rows.iter().all(|r| r.judged_at == Some(later)));
    }
}
