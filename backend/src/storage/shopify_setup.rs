//! The post-install report of a shop (`shopify::setup`): one row per tenant, rewritten by each
//! run of the job, deleted on uninstall (Shopify removes the app's pixel then) and on purge.

use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};

use super::entities::shopify_setup;
use super::{StorageError, TenantScope};
use crate::domain::UnixMillis;

/// What one run of the post-install job found.
#[derive(Clone, Debug, PartialEq)]
pub struct SetupReport {
    pub pixel_id: Option<String>,
    /// `created`, `updated` or `failed`.
    pub pixel_state: &'static str,
    /// `enabled`, `disabled`, `missing`, `no_main_theme` or `unknown`.
    pub embed_state: &'static str,
    pub plan_name: Option<String>,
    pub development_store: Option<bool>,
    /// The first failed step's error, for the Setup page (no tokens, no customer data).
    pub last_error: Option<String>,
}

impl SetupReport {
    pub fn complete(&self) -> bool {
        self.last_error.is_none()
    }
}

/// The stored report, with its bookkeeping.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredSetup {
    pub report: SetupReport,
    pub runs: i32,
    pub checked_at: UnixMillis,
}

fn static_state(value: &str, known: &[&'static str]) -> &'static str {
    known.iter().copied().find(|k| *k == value).unwrap_or("unknown")
}

/// Writes the report of a run (insert or replace), counting runs.
pub async fn record(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    report: &SetupReport,
    now: UnixMillis,
) -> Result<(), StorageError> {
    let runs = find(db, scope).await?.map_or(0, |s| s.runs) + 1;
    let row = shopify_setup::ActiveModel {
        site_id: Set(scope.site_id()),
        pixel_id: Set(report.pixel_id.clone()),
        pixel_state: Set(report.pixel_state.to_owned()),
        embed_state: Set(report.embed_state.to_owned()),
        plan_name: Set(report.plan_name.clone()),
        development_store: Set(report.development_store),
        last_error: Set(report.last_error.clone()),
        runs: Set(runs),
        checked_at: Set(now),
    };
    shopify_setup::Entity::insert(row)
        .on_conflict(
            OnConflict::column(shopify_setup::Column::SiteId)
                .update_columns([
                    shopify_setup::Column::PixelId,
                    shopify_setup::Column::PixelState,
                    shopify_setup::Column::EmbedState,
                    shopify_setup::Column::PlanName,
                    shopify_setup::Column::DevelopmentStore,
                    shopify_setup::Column::LastError,
                    shopify_setup::Column::Runs,
                    shopify_setup::Column::CheckedAt,
                ])
                .to_owned(),
        )
        .exec(db)
        .await?;
    Ok(())
}

pub async fn find(db: &impl ConnectionTrait, scope: TenantScope) -> Result<Option<StoredSetup>, StorageError> {
    let Some(m) = shopify_setup::Entity::find_by_id(scope.site_id()).one(db).await? else { return Ok(None) };
    Ok(Some(StoredSetup {
        report: SetupReport {
            pixel_id: m.pixel_id,
            pixel_state: static_state(&m.pixel_state, &["created", "updated", "failed"]),
            embed_state: static_state(&m.embed_state, &["enabled", "disabled", "missing", "no_main_theme"]),
            plan_name: m.plan_name,
            development_store: m.development_store,
            last_error: m.last_error,
        },
        runs: m.runs,
        checked_at: m.checked_at,
    }))
}

/// Forgets the report (uninstall: the next install starts over).
pub async fn delete(db: &impl ConnectionTrait, scope: TenantScope) -> Result<bool, StorageError> {
    Ok(shopify_setup::Entity::delete_by_id(scope.site_id()).exec(db).await?.rows_affected > 0)
}
