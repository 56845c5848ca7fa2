//! The post-install job (issue 3 §6): after a shop installs, activate the web pixel with the
//! shop's collector settings, read the shop's plan, check whether the theme app embed is on, and
//! store what was found for the Setup page (`storage::shopify_setup`).
//!
//! Each step is independent: a failure is recorded (the first error, without tokens or customer
//! data) and the others still run. The job is idempotent — `ensure_web_pixel` updates the pixel it
//! created last time — so it simply runs again when the report is missing, failed or stale
//! ([`due`]). Several nodes may run it at once for the same shop; the outcome is the same.
//!
//! The Free plan needs no row of its own: a tenant without a subscription is on Free.

use std::sync::Arc;

use sea_orm::{DatabaseConnection, EntityTrait};

use super::Shopify;
use crate::domain::UnixMillis;
use crate::storage::entities::sites;
use crate::storage::shopify_setup::{self, SetupReport, StoredSetup};
use crate::storage::shops::Shop;

/// A failed run is retried on the next app load after this long.
pub const RETRY_FAILED_AFTER_MS: i64 = 5 * 60_000;
/// A complete report is refreshed (embed status, plan) after this long.
pub const REFRESH_AFTER_MS: i64 = 24 * 3_600_000;
/// Path of the collector the pixel posts to, relative to `GHOSTTRACK_APP_URL`.
pub const PIXEL_COLLECT_PATH: &str = "/collect";

/// Whether the job should run for a shop with this stored report.
pub fn due(stored: Option<&StoredSetup>, now: UnixMillis) -> bool {
    match stored {
        None => true,
        Some(s) if !s.report.complete() => now.0 - s.checked_at.0 >= RETRY_FAILED_AFTER_MS,
        Some(s) => now.0 - s.checked_at.0 >= REFRESH_AFTER_MS,
    }
}

/// Where the pixel sends checkout events: the app's own collector.
pub fn collector_url(app_url: &url::Url) -> String {
    format!("{}{PIXEL_COLLECT_PATH}", app_url.as_str().trim_end_matches('/'))
}

/// Runs every step for an installed shop and stores the report.
pub async fn run(
    shopify: &Shopify,
    db: &DatabaseConnection,
    shop: &Shop,
) -> Result<SetupReport, crate::storage::StorageError> {
    let scope = shop.scope();
    let previous = shopify_setup::find(db, scope).await?;
    let mut errors: Vec<String> = Vec::new();

    let (plan_name, development_store) = match shopify.shop_info(&shop.domain).await {
        Ok(info) => (Some(info.plan.display_name), Some(info.plan.partner_development)),
        Err(e) => {
            errors.push(format!("shop info: {e}"));
            (None, None)
        }
    };

    let known_pixel = previous.as_ref().and_then(|p| p.report.pixel_id.clone());
    let site_key = sites::Entity::find_by_id(shop.site_id).one(db).await?.map(|m| m.public_key);
    let (pixel_id, pixel_state) = match (&shopify.config.app_url, site_key) {
        (None, _) => {
            errors.push("web pixel: GHOSTTRACK_APP_URL is not set, so the pixel has no collector URL".into());
            (known_pixel, "failed")
        }
        (_, None) => {
            errors.push("web pixel: the shop has no site".into());
            (known_pixel, "failed")
        }
        (Some(app_url), Some(key)) => {
            let collector = collector_url(app_url);
            match shopify.ensure_web_pixel(&shop.domain, key.as_str(), &collector, known_pixel.as_deref()).await {
                Ok(outcome) => {
                    let state = match outcome {
                        super::pixel::PixelOutcome::Created(_) => "created",
                        super::pixel::PixelOutcome::Updated(_) => "updated",
                    };
                    (Some(outcome.pixel().id.clone()), state)
                }
                Err(e) => {
                    errors.push(format!("web pixel: {e}"));
                    (known_pixel, "failed")
                }
            }
        }
    };

    let embed_state = match shopify.theme_embed_status(&shop.domain).await {
        Ok(status) => status.as_str(),
        Err(e) => {
            errors.push(format!("theme app embed: {e}"));
            "unknown"
        }
    };

    let report = SetupReport {
        pixel_id,
        pixel_state,
        embed_state,
        plan_name,
        development_store,
        last_error: (!errors.is_empty()).then(|| errors.join("; ")),
    };
    shopify_setup::record(db, scope, &report, UnixMillis::now()).await?;
    tracing::info!(
        shop = %shop.domain, pixel = pixel_state, embed = embed_state, complete = report.complete(),
        "post-install job finished"
    );
    Ok(report)
}

/// Starts the job in the background when it is [`due`] and not already running on this node
/// (one run per shop at a time). Called
/// after every successful install and embedded app load; never delays the response.
pub fn spawn_if_due(shopify: Arc<Shopify>, db: DatabaseConnection, shop: Shop) {
    if !shopify.setup_running.lock().insert(shop.id) {
        return;
    }
    tokio::spawn(async move {
        let outcome = async {
            let stored = shopify_setup::find(&db, shop.scope()).await?;
            if due(stored.as_ref(), UnixMillis::now()) {
                run(&shopify, &db, &shop).await?;
            }
            Ok::<_, crate::storage::StorageError>(())
        }
        .await;
        if let Err(error) = outcome {
            tracing::warn!(shop = %shop.domain, error = %error, "post-install job could not store its report");
        }
        shopify.setup_running.lock().remove(&shop.id);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(error: Option<&str>, checked_at: i64) -> StoredSetup {
        StoredSetup {
            report: SetupReport {
                pixel_id: Some("gid://shopify/WebPixel/1".into()),
                pixel_state: "created",
                embed_state: "missing",
                plan_name: None,
                development_store: None,
                last_error: error.map(str::to_owned),
            },
            runs: 1,
            checked_at: UnixMillis(checked_at),
        }
    }

    #[test]
    fn the_job_runs_when_never_run_failed_a_while_ago_or_stale() {
        let now = UnixMillis(10 * REFRESH_AFTER_MS);
        assert!(due(None, now));
        assert!(!due(Some(&stored(Some("web pixel: down"), now.0 - RETRY_FAILED_AFTER_MS + 1)), now));
        assert!(due(Some(&stored(Some("web pixel: down"), now.0 - RETRY_FAILED_AFTER_MS)), now));
        assert!(!due(Some(&stored(None, now.0 - RETRY_FAILED_AFTER_MS)), now));
        assert!(due(Some(&stored(None, now.0 - REFRESH_AFTER_MS)), now));
    }

    #[test]
    fn the_collector_is_the_app_urls_collect_path() {
        assert_eq!(collector_url(&"https://gt.example.com/".parse().unwrap()), "https://gt.example.com/collect");
        assert_eq!(
            collector_url(&"https://gt.example.com/base".parse().unwrap()),
            "https://gt.example.com/base/collect"
        );
    }
}
