//! A page's click and scroll map for the panel. Tenants that never encrypted payloads get the
//! SQL aggregation (`storage::panel_maps::page_map`, which reads click coordinates inside the
//! JSON props); for tenants with data keys the page's click and scroll events of the range are
//! read, opened and aggregated in Rust with the same arithmetic. That costs one AES-GCM open
//! per event of one page and range (the panel's largest range is 30 days), which keeps the
//! coordinates encrypted at rest instead of keeping a clear copy of them.

use crate::keys::{EventKeys, KeyError};
use crate::storage::panel_maps::{self, PageMapRows};
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
    if !data_keys::has_keys(db, scope).await? {
        return panel_maps::page_map(db, scope, range, path).await.map_err(|e| StorageError::from(e).into());
    }
    let stored = panel_maps::page_map_events(db, scope, range, path).await.map_err(StorageError::from)?;
    let mut opened = Vec::with_capacity(stored.len());
    for (kind, session, props) in stored {
        let Some(props) = props else { continue };
        let plain = keys.open(db, scope, &props).await?;
        // A payload that is not a JSON object simply carries no coordinates.
        let value = serde_json::from_str(&plain).unwrap_or(serde_json::Value::Null);
        opened.push((kind, session, value));
    }
    Ok(panel_maps::aggregate_page_map(opened.iter().map(|(k, s, v)| (k.as_str(), *s, v))))
}
