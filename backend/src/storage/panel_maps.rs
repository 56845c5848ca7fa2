//! The panel's maps, per tenant and time range: traffic and threats by country (Geography), and
//! per-page click grids and scroll depths (Pages). Aggregates only: click coordinates are counted
//! into grid cells in SQL, no single click or page content leaves the database.
//!
//! Clicks and scroll depths come from the page rollups (`page_rollups`, `page_rollup_cells`,
//! built by the rollup job in `storage::page_rollups`) for whole rolled-up hours, and from raw
//! events through `idx_events_site_kind_ts_path` (site, kind, time range, path) for the edges
//! and the tail not rolled up yet. Approximation: a session's deepest scroll on a page is taken
//! per bucket (an hour, a day, a raw part), so a session that scrolled the page in two buckets
//! counts once in each — in `scroll_sessions` and in the reach. Clicks are exact. Countries
//! come from the dashboard rollups (`stats::breakdown`), and flagged sessions per country from the
//! same rollups (`stats::flagged_sessions_by_country`: the verdicts joined to their sessions, per hour).

use std::collections::{BTreeMap, HashMap};

use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, Value};

use super::TenantScope;
use super::rollups::{self, Family, stmt};
use super::stats::{self, Dimension, Plan, Range};

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
    for (country, n) in stats::flagged_sessions_by_country(db, scope, range).await? {
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

/// The Pages list over one grain of rolled-up hours (site, grain, from, to): a range of the
/// covering index `idx_page_rollups_site_grain_hour` (public for the query-plan test).
pub const PAGES_ROLLUP_SQL: &str = r#"SELECT "path" AS path, COALESCE(CAST(SUM("clicks") AS BIGINT), 0) AS clicks,
        COALESCE(CAST(SUM("scroll_sessions") AS BIGINT), 0) AS scroll_sessions
    FROM "page_rollups"
    WHERE "site_id" = ? AND "grain" = ? AND "hour" >= ? AND "hour" < ?
    GROUP BY "path""#;

/// One page's map over one grain of rolled-up hours (site, grain, path, from, to): a range of
/// the covering index `idx_page_rollup_cells_site_grain_path_hour`.
pub const PAGE_MAP_ROLLUP_SQL: &str = r#"SELECT "kind" AS kind, "cell" AS cell,
        COALESCE(CAST(SUM("n") AS BIGINT), 0) AS n, COALESCE(CAST(SUM("sum_width") AS BIGINT), 0) AS sw,
        COALESCE(CAST(SUM("sum_height") AS BIGINT), 0) AS sh
    FROM "page_rollup_cells"
    WHERE "site_id" = ? AND "grain" = ? AND "path" = ? AND "hour" >= ? AND "hour" < ?
    GROUP BY "kind", "cell""#;

/// The plan of `range` for the page rollups: rolled-up hours (`page_rollups`,
/// `page_rollup_cells`) and the raw parts around them.
async fn pages_plan(db: &impl ConnectionTrait, range: Range) -> Result<Plan, DbErr> {
    Ok(stats::plan_from(rollups::watermarks_of(db, Family::Pages).await?, range))
}

/// Pages with clicks or scroll depths, most clicked first (then by scroll sessions, then path).
/// Whole rolled-up hours come from `page_rollups` (daily rows for whole final days), the edges
/// and the not yet rolled-up tail from raw events. A session that scrolled a page in two
/// buckets (two hours, or a rolled-up hour and the raw tail) counts once in each.
pub async fn pages(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    range: Range,
    limit: u64,
) -> Result<Vec<PageActivityRow>, DbErr> {
    let plan = pages_plan(db, range).await?;
    let mut merged: HashMap<String, (i64, i64)> = HashMap::new();
    if let Some(rolled) = plan.rolled {
        for (part, grain) in stats::grains(rolled, true, plan.days_until) {
            let sql = PAGES_ROLLUP_SQL;
            let values = vec![Value::from(scope.site_id().0), grain.into(), part.from.0.into(), part.to.0.into()];
            for row in db.query_all_raw(stmt(db, sql, values)).await? {
                let e = merged.entry(row.try_get("", "path")?).or_default();
                e.0 += get_i64(&row, "clicks")?;
                e.1 += get_i64(&row, "scroll_sessions")?;
            }
        }
    }
    for part in &plan.raw {
        for row in raw_pages(db, scope, *part).await? {
            let e = merged.entry(row.path).or_default();
            e.0 += row.clicks;
            e.1 += row.scroll_sessions;
        }
    }
    let mut rows: Vec<PageActivityRow> = merged
        .into_iter()
        .map(|(path, (clicks, scroll_sessions))| PageActivityRow { path, clicks, scroll_sessions })
        .collect();
    rows.sort_by(|a, b| {
        b.clicks.cmp(&a.clicks).then(b.scroll_sessions.cmp(&a.scroll_sessions)).then(a.path.cmp(&b.path))
    });
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(rows)
}

/// Every page's clicks and scroll sessions over a raw part of a range, read through
/// `idx_events_site_kind_ts_path` (sorted and cut by [`pages`]).
async fn raw_pages(db: &impl ConnectionTrait, scope: TenantScope, range: Range) -> Result<Vec<PageActivityRow>, DbErr> {
    let sql = r#"SELECT "path" AS path,
              COALESCE(CAST(SUM(CASE WHEN "kind" = 'cl' THEN 1 ELSE 0 END) AS BIGINT), 0) AS clicks,
              COUNT(DISTINCT CASE WHEN "kind" = 'sc' THEN "session_id" END) AS scroll_sessions
       FROM "events"
       WHERE "site_id" = ? AND "kind" IN ('cl', 'sc') AND "ts" >= ? AND "ts" < ?
       GROUP BY "path""#;
    let values = vec![Value::from(scope.site_id().0), range.from.0.into(), range.to.0.into()];
    db.query_all_raw(stmt(db, sql, values))
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

/// The clicks of one grid cell and the page sizes they reported (summed, for the mean).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CellSums {
    pub clicks: i64,
    pub sum_width: i64,
    pub sum_height: i64,
}

/// A page map as sums, before the means and the reach are taken: what the rollups store per
/// bucket, and what the parts of a range (rolled-up hours and days, raw edges) add up to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MapSums {
    pub cells: BTreeMap<(i64, i64), CellSums>,
    /// `deepest[i]`: sessions whose deepest scroll on the page was in band `i` (10: 100 %).
    pub deepest: [i64; BANDS + 1],
}

impl MapSums {
    pub fn add(&mut self, other: &MapSums) {
        for (cell, c) in &other.cells {
            let e = self.cells.entry(*cell).or_default();
            e.clicks += c.clicks;
            e.sum_width += c.sum_width;
            e.sum_height += c.sum_height;
        }
        for (band, n) in other.deepest.iter().enumerate() {
            self.deepest[band] += n;
        }
    }

    /// The map the panel shows: counts per cell, the mean page size, sessions per reached band.
    pub fn finish(&self) -> PageMapRows {
        let mut rows = PageMapRows::default();
        let (mut sum_w, mut sum_h) = (0i64, 0i64);
        for (cell, c) in &self.cells {
            if c.clicks > 0 {
                rows.cells.insert(*cell, c.clicks);
            }
            rows.clicks += c.clicks;
            sum_w += c.sum_width;
            sum_h += c.sum_height;
        }
        if rows.clicks > 0 {
            rows.page_width = sum_w / rows.clicks;
            rows.page_height = sum_h / rows.clicks;
        }
        rows.scroll_sessions = self.deepest.iter().sum();
        rows.reach = reach(&self.deepest);
        rows
    }
}

/// A click's grid cell; `None` for a click without a usable page size or position. A click
/// past the page's edge (a size reported before the page grew) goes to the last cell.
pub fn grid_cell(x: i64, y: i64, pw: i64, ph: i64) -> Option<(i64, i64)> {
    if pw <= 0 || ph <= 0 || x < 0 || y < 0 {
        return None;
    }
    Some((((x * GRID_COLS) / pw).min(GRID_COLS - 1), ((y * GRID_ROWS) / ph).min(GRID_ROWS - 1)))
}

/// A scroll depth's band (0–10).
pub fn depth_band(d: i64) -> usize {
    (d / 10).clamp(0, BANDS as i64) as usize
}

/// The page map's arithmetic over plain props in Rust, event by event: for encrypted tenants
/// (the SQL cannot look inside an envelope), in the reader and in the rollup job.
#[derive(Debug, Default)]
pub struct MapAccumulator {
    cells: BTreeMap<(i64, i64), CellSums>,
    deepest_of: HashMap<i64, i64>,
}

impl MapAccumulator {
    pub fn push(&mut self, kind: &str, session: i64, p: &serde_json::Value) {
        let int = |name: &str| p.get(name).and_then(serde_json::Value::as_i64);
        match kind {
            "cl" => {
                let (Some(x), Some(y), Some(pw), Some(ph)) = (int("x"), int("y"), int("pw"), int("ph")) else {
                    return;
                };
                if let Some(cell) = grid_cell(x, y, pw, ph) {
                    let e = self.cells.entry(cell).or_default();
                    e.clicks += 1;
                    e.sum_width += pw;
                    e.sum_height += ph;
                }
            }
            "sc" => {
                if let Some(d) = int("d") {
                    let deepest = self.deepest_of.entry(session).or_insert(d);
                    *deepest = (*deepest).max(d);
                }
            }
            _ => {}
        }
    }

    pub fn finish(self) -> MapSums {
        let mut sums = MapSums { cells: self.cells, deepest: [0; BANDS + 1] };
        for d in self.deepest_of.into_values() {
            sums.deepest[depth_band(d)] += 1;
        }
        sums
    }
}

/// A numeric member of the JSON `props`, per backend.
pub(crate) fn prop(backend: DbBackend, name: &str) -> String {
    match backend {
        DbBackend::Postgres => format!(r#"CAST(CAST("props" AS json)->>'{name}' AS BIGINT)"#),
        _ => format!(r#"CAST(json_extract("props", '$.{name}') AS INTEGER)"#),
    }
}

/// The click grid and scroll-depth reach of one page over the range, for a tenant whose
/// payloads are plain JSON (`panel::maps::page_map` decides): rolled-up hours from
/// `page_rollup_cells`, the edges and the tail aggregated in SQL from raw events.
pub async fn page_map(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    range: Range,
    path: &str,
) -> Result<PageMapRows, DbErr> {
    let (mut sums, raw) = rolled_page_map(db, scope, range, path).await?;
    for part in raw {
        sums.add(&raw_map_sums(db, scope, part, path).await?);
    }
    Ok(sums.finish())
}

/// The rolled-up part of one page's map over the range, and the raw parts left to read.
pub async fn rolled_page_map(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    range: Range,
    path: &str,
) -> Result<(MapSums, Vec<Range>), DbErr> {
    let plan = pages_plan(db, range).await?;
    let mut sums = MapSums::default();
    if let Some(rolled) = plan.rolled {
        for (part, grain) in stats::grains(rolled, true, plan.days_until) {
            let sql = PAGE_MAP_ROLLUP_SQL;
            let values =
                vec![Value::from(scope.site_id().0), grain.into(), path.into(), part.from.0.into(), part.to.0.into()];
            for row in db.query_all_raw(stmt(db, sql, values)).await? {
                let kind: String = row.try_get("", "kind")?;
                let cell = get_i64(&row, "cell")?;
                let n = get_i64(&row, "n")?;
                if kind == CELL_KIND_CLICK {
                    let e = sums.cells.entry((cell % GRID_COLS, cell / GRID_COLS)).or_default();
                    e.clicks += n;
                    e.sum_width += get_i64(&row, "sw")?;
                    e.sum_height += get_i64(&row, "sh")?;
                } else if kind == CELL_KIND_SCROLL {
                    sums.deepest[(cell.clamp(0, BANDS as i64)) as usize] += n;
                }
            }
        }
    }
    Ok((sums, plan.raw))
}

/// `page_rollup_cells.kind` of a click-grid cell (`cell` = row × `GRID_COLS` + column).
pub const CELL_KIND_CLICK: &str = "c";
/// `page_rollup_cells.kind` of a scroll-depth band (`cell` = band 0–10).
pub const CELL_KIND_SCROLL: &str = "s";

/// One page's map over a raw part of a range, aggregated in SQL from the JSON props (tenants
/// without encryption), through `idx_events_site_kind_ts_path`.
pub async fn raw_map_sums(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    range: Range,
    path: &str,
) -> Result<MapSums, DbErr> {
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
    let mut sums = MapSums::default();
    for row in db.query_all_raw(stmt(db, &clicks, values())).await? {
        // A click past the page's edge (a size reported before the page grew) goes to the last cell.
        let cell = (get_i64(&row, "gx")?.min(GRID_COLS - 1), get_i64(&row, "gy")?.min(GRID_ROWS - 1));
        let e = sums.cells.entry(cell).or_default();
        e.clicks += get_i64(&row, "n")?;
        e.sum_width += get_i64(&row, "spw")?;
        e.sum_height += get_i64(&row, "sph")?;
    }
    // Sessions whose scroll events carry no depth are not counted (as in `MapAccumulator`).
    let scrolls = format!(
        r#"SELECT m.d AS d, COUNT(*) AS n
           FROM (SELECT "session_id", MAX({d}) AS d FROM "events"
                 WHERE "site_id" = ? AND "kind" = 'sc' AND "ts" >= ? AND "ts" < ? AND "path" = ?
                 GROUP BY "session_id") m
           WHERE m.d IS NOT NULL
           GROUP BY 1"#
    );
    for row in db.query_all_raw(stmt(db, &scrolls, values())).await? {
        sums.deepest[depth_band(get_i64(&row, "d")?)] += get_i64(&row, "n")?;
    }
    Ok(sums)
}

/// The click and scroll events of one page over a range, with their stored props: the input
/// of [`MapAccumulator`] for tenants whose props are encrypted (the SQL of [`raw_map_sums`]
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

/// The page map of plain props, aggregated in Rust (see [`MapAccumulator`]).
pub fn aggregate_page_map<'a>(events: impl IntoIterator<Item = (&'a str, i64, &'a serde_json::Value)>) -> PageMapRows {
    let mut acc = MapAccumulator::default();
    for (kind, session, p) in events {
        acc.push(kind, session, p);
    }
    acc.finish().finish()
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
