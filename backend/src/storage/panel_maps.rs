//! The panel's maps, per tenant and time range: traffic and threats by country (Geography), and
//! per-page click grids and scroll depths (Pages). Aggregates only: click coordinates are counted
//! into grid cells in SQL, no single click or page content leaves the database.
//!
//! Clicks and scroll depths are read through `idx_events_site_kind_ts_path` (site, kind, time
//! range, path); countries come from the dashboard rollups (`stats::breakdown`) plus the verdicts
//! of the range joined to their sessions.

use std::collections::BTreeMap;

use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, Value};

use super::TenantScope;
use super::rollups::stmt;
use super::stats::{self, Dimension, Range};

/// Most countries returned (there are fewer than 250).
const MAX_COUNTRIES: u64 = 300;
/// Columns and rows of a page's click grid (fractions of the page's width and height, so pages
/// of different heights and devices add up).
pub const GRID_COLS: i64 = 24;
pub const GRID_ROWS: i64 = 48;
/// Scroll-depth bands: 10 % each.
pub const BANDS: usize = 10;

/// Traffic and threats of one country (`None`: unknown, e.g. no geo database).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountryRow {
    pub country: Option<String>,
    pub visitors: i64,
    pub sessions: i64,
    /// Sessions of the country a verdict in the range challenged or blocked.
    pub threats: i64,
}

/// Visitors and sessions (sessions started in the range) and flagged sessions (verdicts in the
/// range) per country, most visitors first; a country with threats but no counted traffic still
/// appears.
pub async fn countries(db: &impl ConnectionTrait, scope: TenantScope, range: Range) -> Result<Vec<CountryRow>, DbErr> {
    let traffic = stats::breakdown(db, scope, range, Dimension::Country, MAX_COUNTRIES).await?;
    let mut rows: BTreeMap<Option<String>, CountryRow> = traffic
        .into_iter()
        .map(|r| {
            (r.value.clone(), CountryRow { country: r.value, visitors: r.visitors, sessions: r.sessions, threats: 0 })
        })
        .collect();
    // Verdicts name sessions as `session:<id>`; the join reads each flagged session's country
    // by primary key. Only the range's verdict rows are scanned (`idx_threats_site_at`).
    let sql = r#"SELECT s."country" AS country, COUNT(DISTINCT s."id") AS n
        FROM "threats" t JOIN "sessions" s
          ON s."id" = CAST(SUBSTR(t."subject", 9) AS BIGINT) AND s."site_id" = t."site_id"
        WHERE t."site_id" = ? AND t."at" >= ? AND t."at" < ? AND t."decision" <> 'ALLOW'
          AND t."subject" LIKE 'session:%'
        GROUP BY s."country""#;
    let values = vec![Value::from(scope.site_id().0), range.from.0.into(), range.to.0.into()];
    for row in db.query_all_raw(stmt(db, sql, values)).await? {
        let country: Option<String> = row.try_get("", "country")?;
        let n = get_i64(&row, "n")?;
        rows.entry(country.clone()).or_insert(CountryRow { country, visitors: 0, sessions: 0, threats: 0 }).threats +=
            n;
    }
    let mut rows: Vec<CountryRow> = rows.into_values().collect();
    rows.sort_by(|a, b| {
        b.visitors
            .cmp(&a.visitors)
            .then(b.threats.cmp(&a.threats))
            .then(a.country.is_none().cmp(&b.country.is_none()))
            .then(a.country.cmp(&b.country))
    });
    Ok(rows)
}

/// A page with click or scroll data in the range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageActivityRow {
    pub path: String,
    pub clicks: i64,
    /// Sessions that reported a scroll depth on the page.
    pub scroll_sessions: i64,
}

/// Pages with clicks or scroll depths, most clicked first.
pub async fn pages(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    range: Range,
    limit: u64,
) -> Result<Vec<PageActivityRow>, DbErr> {
    let sql = format!(
        r#"SELECT "path" AS path,
                  COALESCE(CAST(SUM(CASE WHEN "kind" = 'cl' THEN 1 ELSE 0 END) AS BIGINT), 0) AS clicks,
                  COUNT(DISTINCT CASE WHEN "kind" = 'sc' THEN "session_id" END) AS scroll_sessions
           FROM "events"
           WHERE "site_id" = ? AND "kind" IN ('cl', 'sc') AND "ts" >= ? AND "ts" < ?
           GROUP BY "path" ORDER BY clicks DESC, scroll_sessions DESC, path LIMIT {limit}"#
    );
    let values = vec![Value::from(scope.site_id().0), range.from.0.into(), range.to.0.into()];
    db.query_all_raw(stmt(db, &sql, values))
        .await?
        .iter()
        .map(|row| {
            Ok::<_, DbErr>(PageActivityRow {
                path: row.try_get("", "path")?,
                clicks: get_i64(row, "clicks")?,
                scroll_sessions: get_i64(row, "scroll_sessions")?,
            })
        })
        .collect()
}

/// One page's click grid and scroll depths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageMapRows {
    /// `(col, row) → clicks`, cells of a `GRID_COLS × GRID_ROWS` grid over the page.
    pub cells: BTreeMap<(i64, i64), i64>,
    /// Clicks counted (those that reported the page's size).
    pub clicks: i64,
    /// Mean page width and height of those clicks, px (0 without clicks).
    pub page_width: i64,
    pub page_height: i64,
    /// `reach[i]`: sessions whose deepest scroll on the page reached `(i + 1) × 10 %`.
    pub reach: [i64; BANDS],
    /// Sessions that reported any scroll depth on the page.
    pub scroll_sessions: i64,
}

/// A numeric member of the JSON `props`, per backend.
fn prop(backend: DbBackend, name: &str) -> String {
    match backend {
        DbBackend::Postgres => format!(r#"CAST(CAST("props" AS json)->>'{name}' AS BIGINT)"#),
        _ => format!(r#"CAST(json_extract("props", '$.{name}') AS INTEGER)"#),
    }
}

/// The click grid and scroll-depth reach of one page over the range.
pub async fn page_map(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    range: Range,
    path: &str,
) -> Result<PageMapRows, DbErr> {
    let backend = db.get_database_backend();
    let (x, y, pw, ph, d) =
        (prop(backend, "x"), prop(backend, "y"), prop(backend, "pw"), prop(backend, "ph"), prop(backend, "d"));
    let values = || vec![Value::from(scope.site_id().0), range.from.0.into(), range.to.0.into(), path.into()];
    let clicks = format!(
        r#"SELECT (c.x * {GRID_COLS}) / c.pw AS gx, (c.y * {GRID_ROWS}) / c.ph AS gy, COUNT(*) AS n,
                  COALESCE(CAST(SUM(c.pw) AS BIGINT), 0) AS spw, COALESCE(CAST(SUM(c.ph) AS BIGINT), 0) AS sph
           FROM (SELECT {x} AS x, {y} AS y, {pw} AS pw, {ph} AS ph FROM "events"
                 WHERE "site_id" = ? AND "kind" = 'cl' AND "ts" >= ? AND "ts" < ? AND "path" = ?) c
           WHERE c.pw > 0 AND c.ph > 0 AND c.x >= 0 AND c.y >= 0
           GROUP BY 1, 2"#
    );
    let mut rows = PageMapRows::default();
    let (mut sum_w, mut sum_h) = (0i64, 0i64);
    for row in db.query_all_raw(stmt(db, &clicks, values())).await? {
        // A click past the page's edge (a size reported before the page grew) goes to the last cell.
        let cell = (get_i64(&row, "gx")?.min(GRID_COLS - 1), get_i64(&row, "gy")?.min(GRID_ROWS - 1));
        let n = get_i64(&row, "n")?;
        *rows.cells.entry(cell).or_default() += n;
        rows.clicks += n;
        sum_w += get_i64(&row, "spw")?;
        sum_h += get_i64(&row, "sph")?;
    }
    if rows.clicks > 0 {
        rows.page_width = sum_w / rows.clicks;
        rows.page_height = sum_h / rows.clicks;
    }
    let scrolls = format!(
        r#"SELECT m.d / 10 AS band, COUNT(*) AS n
           FROM (SELECT "session_id", MAX({d}) AS d FROM "events"
                 WHERE "site_id" = ? AND "kind" = 'sc' AND "ts" >= ? AND "ts" < ? AND "path" = ?
                 GROUP BY "session_id") m
           GROUP BY 1"#
    );
    let mut deepest = [0i64; BANDS + 1];
    for row in db.query_all_raw(stmt(db, &scrolls, values())).await? {
        let band = get_i64(&row, "band")?.clamp(0, BANDS as i64) as usize;
        deepest[band] += get_i64(&row, "n")?;
    }
    rows.scroll_sessions = deepest.iter().sum();
    rows.reach = reach(&deepest);
    Ok(rows)
}

/// The click and scroll events of one page over the range, with their stored props: the input
/// of [`aggregate_page_map`] for tenants whose props are encrypted (the SQL of [`page_map`]
/// cannot look inside an envelope).
pub async fn page_map_events(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    range: Range,
    path: &str,
) -> Result<Vec<(String, i64, Option<String>)>, DbErr> {
    let sql = r#"SELECT "kind", "session_id", "props" FROM "events"
        WHERE "site_id" = ? AND "kind" IN ('cl', 'sc') AND "ts" >= ? AND "ts" < ? AND "path" = ?"#;
    let values = vec![Value::from(scope.site_id().0), range.from.0.into(), range.to.0.into(), path.into()];
    db.query_all_raw(stmt(db, sql, values))
        .await?
        .iter()
        .map(|row| Ok((row.try_get("", "kind")?, get_i64(row, "session_id")?, row.try_get("", "props")?)))
        .collect()
}

/// [`page_map`]'s arithmetic over plain props in Rust: the same grid cells, means and bands.
pub fn aggregate_page_map<'a>(events: impl IntoIterator<Item = (&'a str, i64, &'a serde_json::Value)>) -> PageMapRows {
    let int = |p: &serde_json::Value, name: &str| p.get(name).and_then(serde_json::Value::as_i64);
    let mut rows = PageMapRows::default();
    let (mut sum_w, mut sum_h) = (0i64, 0i64);
    let mut deepest_of: BTreeMap<i64, i64> = BTreeMap::new();
    for (kind, session, p) in events {
        match kind {
            "cl" => {
                let (Some(x), Some(y), Some(pw), Some(ph)) = (int(p, "x"), int(p, "y"), int(p, "pw"), int(p, "ph"))
                else {
                    continue;
                };
                if pw <= 0 || ph <= 0 || x < 0 || y < 0 {
                    continue;
                }
                let cell = (((x * GRID_COLS) / pw).min(GRID_COLS - 1), ((y * GRID_ROWS) / ph).min(GRID_ROWS - 1));
                *rows.cells.entry(cell).or_default() += 1;
                rows.clicks += 1;
                sum_w += pw;
                sum_h += ph;
            }
            "sc" => {
                if let Some(d) = int(p, "d") {
                    let deepest = deepest_of.entry(session).or_insert(d);
                    *deepest = (*deepest).max(d);
                }
            }
            _ => {}
        }
    }
    if rows.clicks > 0 {
        rows.page_width = sum_w / rows.clicks;
        rows.page_height = sum_h / rows.clicks;
    }
    let mut deepest = [0i64; BANDS + 1];
    for d in deepest_of.into_values() {
        deepest[(d / 10).clamp(0, BANDS as i64) as usize] += 1;
    }
    rows.scroll_sessions = deepest.iter().sum();
    rows.reach = reach(&deepest);
    rows
}

/// Sessions reaching each band from the count of sessions whose deepest band is each index
/// (`deepest[10]`: 100 %): a session that reached 70 % also reached 10 % … 60 %.
pub fn reach(deepest: &[i64; BANDS + 1]) -> [i64; BANDS] {
    let mut out = [0i64; BANDS];
    let mut running = deepest[BANDS];
    for band in (1..=BANDS).rev() {
        if band < BANDS {
            running += deepest[band];
        }
        out[band - 1] = running;
    }
    out
}

/// An integer column that PostgreSQL may return as BIGINT or INTEGER.
fn get_i64(row: &QueryResult, col: &str) -> Result<i64, DbErr> {
    row.try_get::<i64>("", col).or_else(|_| row.try_get::<i32>("", col).map(i64::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_that_scrolled_deep_counts_in_every_band_above_it() {
        // Two sessions stopped in the first band (0–9 %), one at 35 %, one at 100 %.
        let mut deepest = [0i64; BANDS + 1];
        deepest[0] = 2;
        deepest[3] = 1;
        deepest[10] = 1;
        assert_eq!(reach(&deepest), [2, 2, 2, 1, 1, 1, 1, 1, 1, 1]);
        assert_eq!(reach(&[0; BANDS + 1]), [0; BANDS]);
    }

    #[test]
    fn the_rust_aggregation_counts_cells_means_and_deepest_scrolls_like_the_sql() {
        let v = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
        let events = [
            ("cl", 1, v(r#"{"x":0,"y":0,"pw":1000,"ph":2000}"#)),
            ("cl", 1, v(r#"{"x":999,"y":1999,"pw":1000,"ph":2000}"#)),
            // Past the edge: the last cell.
            ("cl", 2, v(r#"{"x":1500,"y":10,"pw":500,"ph":1000}"#)),
            // No page size: not counted.
            ("cl", 2, v(r#"{"x":5,"y":5}"#)),
            ("sc", 1, v(r#"{"d":35}"#)),
            ("sc", 1, v(r#"{"d":72}"#)),
            ("sc", 2, v(r#"{"d":100}"#)),
        ];
        let rows = aggregate_page_map(events.iter().map(|(k, s, p)| (*k, *s, p)));
        assert_eq!(rows.clicks, 3);
        assert_eq!(rows.cells, BTreeMap::from([((0, 0), 1), ((23, 47), 1), ((23, 0), 1)]));
        assert_eq!((rows.page_width, rows.page_height), ((1000 + 1000 + 500) / 3, (2000 + 2000 + 1000) / 3));
        assert_eq!(rows.scroll_sessions, 2);
        assert_eq!(rows.reach, [2, 2, 2, 2, 2, 2, 2, 1, 1, 1]);
    }
}
