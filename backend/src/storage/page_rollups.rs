//! The pages family of the rollup job (`storage::rollups`, watermark row `Family::Pages`):
//! per-page clicks and scroll sessions (`page_rollups`) and per-page click-grid cells and
//! scroll-depth bands (`page_rollup_cells`) per hour, and per finished UTC day as the sums of
//! its hours. `storage::panel_maps` reads them for whole rolled-up hours.
//!
//! Counts need no payload, so every tenant's page list rows come from one SQL statement. The
//! map rows need the click coordinates and scroll depths inside `events.props`: tenants without
//! sealed payloads in the step are aggregated in SQL (the JSON functions of each backend);
//! tenants with any `gtenc:` envelope in the step have all their click and scroll events of the
//! step read, opened with their data keys and aggregated in Rust with the same arithmetic
//! (`MapAccumulator`), so the rollups of an encrypted tenant hold only counts per cell and band,
//! never a coordinate. A payload that cannot be opened (corrupt, malformed, naming a key the
//! tenant does not have) is skipped and counted in a warning; a configuration error (no server
//! secret, unknown master key) stops the step so it is retried once the node is configured.
//!
//! Approximation (documented in `storage::panel_maps` and ARCHITECTURE.md): a session's
//! deepest scroll on a page is taken per hour, so a session that scrolled a page in two hours
//! counts in both; daily rows sum their hours.

use std::collections::BTreeMap;

use sea_orm::{ConnectionTrait, DatabaseTransaction, Value};

use super::TenantScope;
use super::panel_maps::{
    BANDS, CELL_KIND_CLICK, CELL_KIND_SCROLL, GRID_COLS, GRID_ROWS, MapAccumulator, MapSums, prop,
};
use super::rollups::{HOUR_MS, RollupError, stmt};
use crate::domain::{SiteId, UnixMillis};
use crate::keys::events::ENVELOPE_PREFIX;
use crate::keys::{EventKeys, KeyError};

/// Rows per multi-row insert of Rust-aggregated cells (9 values each: well under SQLite's and
/// PostgreSQL's bound-parameter limits).
const ROWS_PER_INSERT: usize = 500;

/// Replaces the hourly page rows of `[from, to)`; with `days`, also the daily rows of every UTC
/// day that ends in `(from, to]`.
pub(crate) async fn step(
    txn: &DatabaseTransaction,
    keys: &EventKeys,
    from: i64,
    to: i64,
    days: bool,
) -> Result<(), RollupError> {
    let range = || vec![Value::from(from), Value::from(to)];
    for table in ["page_rollups", "page_rollup_cells"] {
        let sql = format!("DELETE FROM {table} WHERE grain = 'h' AND hour >= ? AND hour < ?");
        txn.execute_raw(stmt(txn, &sql, range())).await?;
    }
    let hour = format!("((ts / {HOUR_MS}) * {HOUR_MS})");
    let list = format!(
        "INSERT INTO page_rollups (site_id, grain, hour, path, clicks, scroll_sessions) \
         SELECT site_id, 'h', {hour}, path, SUM(CASE WHEN kind = 'cl' THEN 1 ELSE 0 END), \
                COUNT(DISTINCT CASE WHEN kind = 'sc' THEN session_id END) \
         FROM events WHERE kind IN ('cl', 'sc') AND ts >= ? AND ts < ? GROUP BY site_id, {hour}, path"
    );
    txn.execute_raw(stmt(txn, &list, range())).await?;

    let sealed_sql = format!(
        "SELECT DISTINCT site_id FROM events \
         WHERE kind IN ('cl', 'sc') AND ts >= ? AND ts < ? AND props LIKE '{ENVELOPE_PREFIX}%'"
    );
    let mut sealed = Vec::new();
    for row in txn.query_all_raw(stmt(txn, &sealed_sql, range())).await? {
        sealed.push(row.try_get_by_index::<i64>(0)?);
    }
    // Site ids are numbers read from the database, so they are inlined.
    let plain_only = if sealed.is_empty() {
        String::new()
    } else {
        format!(" AND site_id NOT IN ({})", sealed.iter().map(i64::to_string).collect::<Vec<_>>().join(", "))
    };
    let backend = txn.get_database_backend();
    let (x, y, pw, ph, d) =
        (prop(backend, "x"), prop(backend, "y"), prop(backend, "pw"), prop(backend, "ph"), prop(backend, "d"));
    // The cell of `storage::panel_maps::grid_cell`: past the edge goes to the last cell.
    let col = format!(
        "(CASE WHEN (c.x * {GRID_COLS}) / c.pw > {l} THEN {l} ELSE (c.x * {GRID_COLS}) / c.pw END)",
        l = GRID_COLS - 1
    );
    let row = format!(
        "(CASE WHEN (c.y * {GRID_ROWS}) / c.ph > {l} THEN {l} ELSE (c.y * {GRID_ROWS}) / c.ph END)",
        l = GRID_ROWS - 1
    );
    let cells = format!(
        "INSERT INTO page_rollup_cells (site_id, grain, hour, path, kind, cell, n, sum_width, sum_height) \
         SELECT c.site_id, 'h', c.hour, c.path, '{CELL_KIND_CLICK}', {row} * {GRID_COLS} + {col}, COUNT(*), SUM(c.pw), SUM(c.ph) \
         FROM (SELECT site_id, {hour} AS hour, path, {x} AS x, {y} AS y, {pw} AS pw, {ph} AS ph FROM events \
               WHERE kind = 'cl' AND ts >= ? AND ts < ?{plain_only}) c \
         WHERE c.pw > 0 AND c.ph > 0 AND c.x >= 0 AND c.y >= 0 \
         GROUP BY c.site_id, c.hour, c.path, {row} * {GRID_COLS} + {col}"
    );
    txn.execute_raw(stmt(txn, &cells, range())).await?;
    // The band of `storage::panel_maps::depth_band` of each session's deepest scroll.
    let band = format!("(CASE WHEN m.d < 0 THEN 0 WHEN m.d / 10 > {BANDS} THEN {BANDS} ELSE m.d / 10 END)");
    let bands = format!(
        "INSERT INTO page_rollup_cells (site_id, grain, hour, path, kind, cell, n, sum_width, sum_height) \
         SELECT m.site_id, 'h', m.hour, m.path, '{CELL_KIND_SCROLL}', {band}, COUNT(*), 0, 0 \
         FROM (SELECT site_id, {hour} AS hour, path, session_id, MAX({d}) AS d FROM events \
               WHERE kind = 'sc' AND ts >= ? AND ts < ?{plain_only} \
               GROUP BY site_id, {hour}, path, session_id) m \
         WHERE m.d IS NOT NULL \
         GROUP BY m.site_id, m.hour, m.path, {band}"
    );
    txn.execute_raw(stmt(txn, &bands, range())).await?;
    for site in sealed {
        sealed_site(txn, keys, SiteId(site), from, to).await?;
    }

    // Every UTC day this step completed gets its daily rows: the sums of its hourly rows.
    let day = UnixMillis::DAY;
    let mut d = from.div_euclid(day) * day;
    while days && d + day <= to {
        if d + day > from {
            let day_range = || vec![Value::from(d), Value::from(d + day)];
            for table in ["page_rollups", "page_rollup_cells"] {
                let sql = format!("DELETE FROM {table} WHERE grain = 'd' AND hour >= ? AND hour < ?");
                txn.execute_raw(stmt(txn, &sql, day_range())).await?;
            }
            let list = format!(
                "INSERT INTO page_rollups (site_id, grain, hour, path, clicks, scroll_sessions) \
                 SELECT site_id, 'd', {d}, path, SUM(clicks), SUM(scroll_sessions) FROM page_rollups \
                 WHERE grain = 'h' AND hour >= ? AND hour < ? GROUP BY site_id, path"
            );
            txn.execute_raw(stmt(txn, &list, day_range())).await?;
            let cells = format!(
                "INSERT INTO page_rollup_cells (site_id, grain, hour, path, kind, cell, n, sum_width, sum_height) \
                 SELECT site_id, 'd', {d}, path, kind, cell, SUM(n), SUM(sum_width), SUM(sum_height) \
                 FROM page_rollup_cells WHERE grain = 'h' AND hour >= ? AND hour < ? \
                 GROUP BY site_id, path, kind, cell"
            );
            txn.execute_raw(stmt(txn, &cells, day_range())).await?;
        }
        d += day;
    }
    Ok(())
}

/// The map rows of one tenant with sealed payloads in `[from, to)`: every click and scroll
/// event of the tenant in the step, opened and aggregated per (hour, path) in Rust.
async fn sealed_site(
    txn: &DatabaseTransaction,
    keys: &EventKeys,
    site: SiteId,
    from: i64,
    to: i64,
) -> Result<(), RollupError> {
    // The rollup job works for every tenant; this tenant's rows are read and written only
    // under its own id.
    let scope = TenantScope::verified(site);
    let sql = "SELECT ts, path, kind, session_id, props FROM events \
        WHERE site_id = ? AND kind IN ('cl', 'sc') AND ts >= ? AND ts < ? AND props IS NOT NULL";
    let rows = txn.query_all_raw(stmt(txn, sql, vec![site.0.into(), from.into(), to.into()])).await?;
    let mut maps: BTreeMap<(i64, String), MapAccumulator> = BTreeMap::new();
    let mut unreadable = 0u64;
    for row in rows {
        let ts: i64 = row.try_get("", "ts")?;
        let props: String = row.try_get("", "props")?;
        let plain = match keys.open(txn, scope, &props).await {
            Ok(plain) => plain,
            Err(KeyError::Corrupt | KeyError::Malformed | KeyError::UnknownDataKey(_)) => {
                unreadable += 1;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        // A payload that is not a JSON object simply carries no coordinates.
        let value = serde_json::from_str(&plain).unwrap_or(serde_json::Value::Null);
        let kind: String = row.try_get("", "kind")?;
        let session: i64 = row.try_get("", "session_id")?;
        let hour = ts.div_euclid(HOUR_MS) * HOUR_MS;
        maps.entry((hour, row.try_get("", "path")?)).or_default().push(&kind, session, &value);
    }
    if unreadable > 0 {
        tracing::warn!(site = site.0, unreadable, "page rollups skipped event payloads that do not open");
    }
    let mut values: Vec<Value> = Vec::new();
    let mut pending = 0;
    for ((hour, path), acc) in maps {
        let sums: MapSums = acc.finish();
        let cells = sums
            .cells
            .iter()
            .map(|((c, r), s)| (CELL_KIND_CLICK, r * GRID_COLS + c, s.clicks, s.sum_width, s.sum_height));
        let bands = sums
            .deepest
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(band, n)| (CELL_KIND_SCROLL, band as i64, *n, 0, 0));
        for (kind, cell, n, w, h) in cells.chain(bands) {
            values.extend([
                Value::from(site.0),
                hour.into(),
                path.clone().into(),
                kind.into(),
                (cell as i32).into(),
                n.into(),
                w.into(),
                h.into(),
            ]);
            pending += 1;
            if pending == ROWS_PER_INSERT {
                insert_cells(txn, std::mem::take(&mut values), pending).await?;
                pending = 0;
            }
        }
    }
    if pending > 0 {
        insert_cells(txn, values, pending).await?;
    }
    Ok(())
}

async fn insert_cells(txn: &DatabaseTransaction, values: Vec<Value>, rows: usize) -> Result<(), RollupError> {
    let row = "(?, 'h', ?, ?, ?, ?, ?, ?, ?)";
    let sql = format!(
        "INSERT INTO page_rollup_cells (site_id, grain, hour, path, kind, cell, n, sum_width, sum_height) VALUES {}",
        vec![row; rows].join(", ")
    );
    txn.execute_raw(stmt(txn, &sql, values)).await?;
    Ok(())
}
