//! A page's click and scroll map for the panel. Whole rolled-up hours come from the page
//! rollups (`page_rollup_cells`), which the rollup job built with the same arithmetic for every
//! tenant, opening encrypted tenants' payloads with their data keys (`storage::page_rollups`).
//! The raw parts of the range (the partial hours at the edges and the tail not rolled up yet,
//! about the last hour) are aggregated from events: in SQL for tenants that never encrypted
//! payloads (`storage::panel_maps::raw_map_sums` reads click coordinates inside the JSON
//! props), and for tenants with data keys by reading, opening and aggregating the page's click
//! and scroll events of those parts in Rust. That costs one AES-GCM open per event of one page
//! in about an hour, and keeps the coordinates encrypted at rest instead of keeping a clear
//! copy of them.

use crate::keys::{EventKeys, KeyError};
use crate::storage::panel_maps::{self, MapAccumulator, PageMapRows};
use crate::storage::stats::Range;
use crate::storage::{StorageError, TenantScope, data_keys};
use sea_orm::DatabaseConnection;

pub async fn page_map(
    db: &DatabaseConnection,
    keys: &EventKeys,
    scope: TenantScope,
    range: Range,
    path: &str,
) -> Result<PageMapRows, KeyError> {
    let (mut sums, raw) = panel_maps::rolled_page_map(db, scope, range, path).await.map_err(StorageError::from)?;
    let encrypted = data_keys::has_keys(db, scope).await?;
    for part in raw {
        if !encrypted {
            sums.add(&panel_maps::raw_map_sums(db, scope, part, path).await.map_err(StorageError::from)?);
            continue;
        }
        let stored = panel_maps::page_map_events(db, scope, part, path).await.map_err(StorageError::from)?;
        let mut acc = MapAccumulator::default();
        for (kind, session, props) in stored {
            let Some(props) = props else { continue };
            let plain = keys.open(db, scope, &props).await?;
            // A payload that is not a JSON object simply carries no coordinates.
            let value = serde_json::from_str(&plain).unwrap_or(serde_json::Value::Null);
            acc.push(&kind, session, &value);
        }
        sums.add(&acc.finish());
    }
    Ok(sums.finish())
}
