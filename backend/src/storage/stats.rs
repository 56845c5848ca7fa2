//! Aggregate statistics for one tenant over a time range. Every query starts from
//! `site_id = scope` and `[from, to)` on an indexed timestamp before anything else.

use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query, SelectStatement};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, QueryResult};

use std::collections::{BTreeMap, HashMap};

use super::TenantScope;
use super::entities::{events, sessions};
use super::rollups::{self, HOUR_MS};
use crate::domain::UnixMillis;

/// Half-open time range `[from, to)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub from: UnixMillis,
    pub to: UnixMillis,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bucket {
    Hour,
    Day,
}

impl Bucket {
    pub fn millis(self) -> i64 {
        match self {
            Bucket::Hour => 3_600_000,
            Bucket::Day => UnixMillis::DAY,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub visitors: i64,
    pub sessions: i64,
    pub pageviews: i64,
    /// Sessions with at most one pageview.
    pub bounces: i64,
    /// Sum of (last event − first event) over sessions, in ms.
    pub total_duration_ms: i64,
    pub automated_sessions: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BucketRow {
    pub start: UnixMillis,
    pub visitors: i64,
    pub sessions: i64,
    pub pageviews: i64,
    pub automated_sessions: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BreakdownRow {
    /// The dimension's value; `None` when unknown (e.g. no referrer, no geo database).
    pub value: Option<String>,
    pub visitors: i64,
    pub sessions: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PageRow {
    pub path: String,
    pub pageviews: i64,
    pub visitors: i64,
}

/// Session attributes the API can break traffic down by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dimension {
    Referrer,
    Country,
    Browser,
    Os,
    Device,
}

impl Dimension {
    pub const ALL: [Dimension; 5] =
        [Dimension::Referrer, Dimension::Country, Dimension::Browser, Dimension::Os, Dimension::Device];

    /// The `dim` of its rows in `stats_rollups`.
    fn rollup_dim(self) -> &'static str {
        match self {
            Dimension::Referrer => "referrer",
            Dimension::Country => "country",
            Dimension::Browser => "browser",
            Dimension::Os => "os",
            Dimension::Device => "device",
        }
    }

    fn column(self) -> sessions::Column {
        match self {
            Dimension::Referrer => sessions::Column::ReferrerHost,
            Dimension::Country => sessions::Column::Country,
            Dimension::Browser => sessions::Column::Browser,
            Dimension::Os => sessions::Column::Os,
            Dimension::Device => sessions::Column::Device,
        }
    }
}

/// `COALESCE(CAST(SUM(expr) AS BIGINT), 0)`: PostgreSQL sums BIGINTs into NUMERIC.
fn sum(expr: &str) -> Expr {
    Expr::cust(format!("COALESCE(CAST(SUM({expr}) AS BIGINT), 0)"))
}

fn sessions_in(scope: TenantScope, range: Range) -> SelectStatement {
    Query::select()
        .from(sessions::Entity)
        .and_where(sessions::Column::SiteId.eq(scope.site_id()))
        .and_where(sessions::Column::StartedAt.gte(range.from))
        .and_where(sessions::Column::StartedAt.lt(range.to))
        .to_owned()
}

fn pageviews_in(scope: TenantScope, range: Range) -> SelectStatement {
    Query::select()
        .from(events::Entity)
        .and_where(events::Column::SiteId.eq(scope.site_id()))
        .and_where(events::Column::Ts.gte(range.from))
        .and_where(events::Column::Ts.lt(range.to))
        .and_where(events::Column::Kind.eq("pv"))
        .to_owned()
}

fn get_i64(row: &QueryResult, col: &str) -> Result<i64, DbErr> {
    row.try_get::<i64>("", col)
}

async fn raw_summary(db: &impl ConnectionTrait, scope: TenantScope, range: Range) -> Result<Summary, DbErr> {
    let stmt = sessions_in(scope, range)
        .expr_as(Expr::cust("COUNT(DISTINCT visitor_id)"), "visitors")
        .expr_as(Expr::cust("COUNT(*)"), "sessions")
        .expr_as(sum("CASE WHEN pageviews <= 1 THEN 1 ELSE 0 END"), "bounces")
        .expr_as(sum("last_seen_at - started_at"), "duration")
        .expr_as(sum("CASE WHEN automated THEN 1 ELSE 0 END"), "automated")
        .to_owned();
    let row = db.query_one(&stmt).await?.ok_or_else(|| DbErr::RecordNotFound("summary".into()))?;
    let pv_stmt = pageviews_in(scope, range).expr_as(Expr::cust("COUNT(*)"), "pageviews").to_owned();
    let pv = db.query_one(&pv_stmt).await?.ok_or_else(|| DbErr::RecordNotFound("pageviews".into()))?;
    Ok(Summary {
        visitors: get_i64(&row, "visitors")?,
        sessions: get_i64(&row, "sessions")?,
        pageviews: get_i64(&pv, "pageviews")?,
        bounces: get_i64(&row, "bounces")?,
        total_duration_ms: get_i64(&row, "duration")?,
        automated_sessions: get_i64(&row, "automated")?,
    })
}

/// Every bucket of the range, zero-filled: charts need gaps as zeros.
fn zero_filled(range: Range, width: i64) -> BTreeMap<i64, BucketRow> {
    let mut rows = BTreeMap::new();
    let mut start = range.from.0.div_euclid(width) * width;
    while start < range.to.0 && rows.len() < 10_000 {
        rows.insert(
            start,
            BucketRow { start: UnixMillis(start), visitors: 0, sessions: 0, pageviews: 0, automated_sessions: 0 },
        );
        start += width;
    }
    rows
}

async fn raw_timeseries(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    range: Range,
    width: i64,
    rows: &mut BTreeMap<i64, BucketRow>,
) -> Result<(), DbErr> {
    // The width is one of two constants, never user input, so it is inlined as a literal.
    let sessions_stmt = sessions_in(scope, range)
        .expr_as(Expr::cust(format!("(started_at / {width}) * {width}")), "bucket")
        .expr_as(Expr::cust("COUNT(DISTINCT visitor_id)"), "visitors")
        .expr_as(Expr::cust("COUNT(*)"), "sessions")
        .expr_as(sum("CASE WHEN automated THEN 1 ELSE 0 END"), "automated")
        .add_group_by([Expr::cust("1")])
        .order_by_expr(Expr::cust("1"), Order::Asc)
        .to_owned();
    let pv_stmt = pageviews_in(scope, range)
        .expr_as(Expr::cust(format!("(ts / {width}) * {width}")), "bucket")
        .expr_as(Expr::cust("COUNT(*)"), "pageviews")
        .add_group_by([Expr::cust("1")])
        .to_owned();
    for row in db.query_all(&sessions_stmt).await? {
        if let Some(entry) = rows.get_mut(&get_i64(&row, "bucket")?) {
            entry.visitors += get_i64(&row, "visitors")?;
            entry.sessions += get_i64(&row, "sessions")?;
            entry.automated_sessions += get_i64(&row, "automated")?;
        }
    }
    for row in db.query_all(&pv_stmt).await? {
        if let Some(entry) = rows.get_mut(&get_i64(&row, "bucket")?) {
            entry.pageviews += get_i64(&row, "pageviews")?;
        }
    }
    Ok(())
}

pub async fn timeseries(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    range: Range,
    bucket: Bucket,
) -> Result<Vec<BucketRow>, DbErr> {
    let width = bucket.millis();
    let plan = plan(db, range).await?;
    let mut acc = Rolled { width: Some(width), series: zero_filled(range, width), ..Rolled::default() };
    if let Some(rolled) = plan.rolled {
        let parts = grains(rolled, width == UnixMillis::DAY, plan.days_until);
        read_rolled(db, scope, &parts, &TOTAL_DIMS, &mut acc).await?;
    }
    for part in &plan.raw {
        raw_timeseries(db, scope, *part, width, &mut acc.series).await?;
    }
    Ok(acc.series.into_values().collect())
}

async fn raw_breakdown(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    range: Range,
    dimension: Dimension,
    limit: u64,
) -> Result<Vec<BreakdownRow>, DbErr> {
    let col = dimension.column();
    let stmt = sessions_in(scope, range)
        .expr_as(Expr::col(col), "value")
        .expr_as(Expr::cust("COUNT(DISTINCT visitor_id)"), "visitors")
        .expr_as(Expr::cust("COUNT(*)"), "sessions")
        .group_by_col(col)
        .order_by_expr(Expr::cust("2"), Order::Desc)
        // Unknown last on both backends (SQLite sorts NULL first, PostgreSQL last).
        .order_by_expr(Expr::col(col).is_null(), Order::Asc)
        .order_by_expr(Expr::cust("1"), Order::Asc)
        .limit(limit)
        .to_owned();
    db.query_all(&stmt)
        .await?
        .iter()
        .map(|row| {
            Ok(BreakdownRow {
                value: row.try_get::<Option<String>>("", "value")?,
                visitors: get_i64(row, "visitors")?,
                sessions: get_i64(row, "sessions")?,
            })
        })
        .collect()
}

async fn raw_top_pages(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    range: Range,
    limit: u64,
) -> Result<Vec<PageRow>, DbErr> {
    let stmt = pageviews_in(scope, range)
        .column(events::Column::Path)
        .expr_as(Expr::cust("COUNT(*)"), "pageviews")
        .expr_as(Expr::cust("COUNT(DISTINCT visitor_id)"), "visitors")
        .group_by_col(events::Column::Path)
        .order_by_expr(Expr::cust("2"), Order::Desc)
        .order_by_expr(Expr::cust("1"), Order::Asc)
        .limit(limit)
        .to_owned();
    db.query_all(&stmt)
        .await?
        .iter()
        .map(|row| {
            Ok(PageRow {
                path: row.try_get::<String>("", "path")?,
                pageviews: get_i64(row, "pageviews")?,
                visitors: get_i64(row, "visitors")?,
            })
        })
        .collect()
}

/// Which parts of a range are read from rollups (whole hours before the watermark) and which
/// from raw rows (the partial hours at the edges and anything not rolled up yet).
pub(crate) struct Plan {
    pub(crate) raw: Vec<Range>,
    pub(crate) rolled: Option<Range>,
    /// Daily rows exist for whole days before this (the final watermark).
    pub(crate) days_until: i64,
}

async fn plan(db: &impl ConnectionTrait, range: Range) -> Result<Plan, DbErr> {
    Ok(plan_from(rollups::watermarks(db).await?, range))
}

/// The plan of `range` for a rollup family with watermarks `marks` (`None`: never rolled up).
pub(crate) fn plan_from(marks: Option<rollups::Watermarks>, range: Range) -> Plan {
    let Some(marks) = marks else {
        return Plan { raw: vec![range], rolled: None, days_until: 0 };
    };
    let watermark = marks.readable_until;
    let first_whole =
        range.from.0.div_euclid(HOUR_MS) * HOUR_MS + if range.from.0.rem_euclid(HOUR_MS) == 0 { 0 } else { HOUR_MS };
    let end_whole = std::cmp::min(range.to.0.div_euclid(HOUR_MS) * HOUR_MS, watermark);
    if first_whole >= end_whole {
        return Plan { raw: vec![range], rolled: None, days_until: 0 };
    }
    let mut raw = Vec::new();
    if range.from.0 < first_whole {
        raw.push(Range { from: range.from, to: UnixMillis(first_whole) });
    }
    if end_whole < range.to.0 {
        raw.push(Range { from: UnixMillis(end_whole), to: range.to });
    }
    let rolled = Some(Range { from: UnixMillis(first_whole), to: UnixMillis(end_whole) });
    Plan { raw, rolled, days_until: marks.final_until }
}

/// `SELECT … FROM stats_rollups WHERE site_id = ? AND grain = ? AND dim IN (…) AND hour in range`.
fn rollups_in(scope: TenantScope, (range, grain): (Range, &str), dims: &[&str]) -> SelectStatement {
    Query::select()
        .from(Alias::new("stats_rollups"))
        .and_where(Expr::col(Alias::new("site_id")).eq(scope.site_id().0))
        .and_where(Expr::col(Alias::new("grain")).eq(grain))
        .and_where(Expr::col(Alias::new("dim")).is_in(dims.iter().copied()))
        .and_where(Expr::col(Alias::new("hour")).gte(range.from.0))
        .and_where(Expr::col(Alias::new("hour")).lt(range.to.0))
        .to_owned()
}

/// The rolled-up range as hourly rows at the edges and daily rows for the whole UTC days in
/// between (when `days` allows: hourly charts need hourly rows).
pub(crate) fn grains(rolled: Range, days: bool, days_until: i64) -> Vec<(Range, &'static str)> {
    let day = UnixMillis::DAY;
    let first_day = rolled.from.0.div_euclid(day) * day + if rolled.from.0.rem_euclid(day) == 0 { 0 } else { day };
    let end_day = std::cmp::min(rolled.to.0, days_until).div_euclid(day) * day;
    if !days || first_day >= end_day {
        return vec![(rolled, "h")];
    }
    let mut parts = vec![(Range { from: UnixMillis(first_day), to: UnixMillis(end_day) }, "d")];
    if rolled.from.0 < first_day {
        parts.push((Range { from: rolled.from, to: UnixMillis(first_day) }, "h"));
    }
    if end_day < rolled.to.0 {
        parts.push((Range { from: UnixMillis(end_day), to: rolled.to }, "h"));
    }
    parts
}

/// The dims of the summary and series rows: sessions (`total`) and pageviews (`pv`).
const TOTAL_DIMS: [&str; 2] = ["total", "pv"];

/// Sums read from rollup rows by [`read_rolled`].
#[derive(Default)]
struct Rolled {
    /// From the `total` and `pv` rows.
    summary: Summary,
    /// Series buckets of this width, also from the `total` and `pv` rows (when given).
    width: Option<i64>,
    series: BTreeMap<i64, BucketRow>,
    /// Every other dim: value → (visitors, sessions, pageviews).
    values: HashMap<String, HashMap<Option<String>, (i64, i64, i64)>>,
}

/// Reads the rollup rows of `dims` over `parts` (each one grain over one range, see [`grains`])
/// into `acc`, one query per part: every dim's sums grouped by dim, value and (for the series)
/// bucket.
async fn read_rolled(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    parts: &[(Range, &str)],
    dims: &[&str],
    acc: &mut Rolled,
) -> Result<(), DbErr> {
    // The width is one of two constants, never user input, so it is inlined as a literal.
    let bucket = match acc.width {
        Some(w) => format!("CASE WHEN dim IN ('total', 'pv') THEN (hour / {w}) * {w} ELSE 0 END"),
        None => "CAST(0 AS BIGINT)".to_owned(),
    };
    for part in parts {
        let stmt = rollups_in(scope, *part, dims)
            .column(Alias::new("dim"))
            .column(Alias::new("value"))
            .expr_as(Expr::cust(bucket.clone()), "bucket")
            .expr_as(sum("visitors"), "visitors")
            .expr_as(sum("sessions"), "sessions")
            .expr_as(sum("pageviews"), "pageviews")
            .expr_as(sum("bounces"), "bounces")
            .expr_as(sum("duration_ms"), "duration")
            .expr_as(sum("automated"), "automated")
            .add_group_by([Expr::cust("1"), Expr::cust("2"), Expr::cust("3")])
            .to_owned();
        for row in db.query_all(&stmt).await? {
            let dim = row.try_get::<String>("", "dim")?;
            let (visitors, sessions, pageviews) =
                (get_i64(&row, "visitors")?, get_i64(&row, "sessions")?, get_i64(&row, "pageviews")?);
            if !TOTAL_DIMS.contains(&dim.as_str()) {
                let e = acc.values.entry(dim).or_default().entry(row.try_get("", "value")?).or_default();
                e.0 += visitors;
                e.1 += sessions;
                e.2 += pageviews;
                continue;
            }
            // Distinct visitors are counted on the sessions (`total`) rows only.
            let visitors = if dim == "total" { visitors } else { 0 };
            let automated_sessions = get_i64(&row, "automated")?;
            let s = Summary {
                visitors,
                sessions,
                pageviews,
                bounces: get_i64(&row, "bounces")?,
                total_duration_ms: get_i64(&row, "duration")?,
                automated_sessions,
            };
            add(&mut acc.summary, s);
            if acc.width.is_some()
                && let Some(entry) = acc.series.get_mut(&get_i64(&row, "bucket")?)
            {
                entry.visitors += visitors;
                entry.sessions += sessions;
                entry.pageviews += pageviews;
                entry.automated_sessions += automated_sessions;
            }
        }
    }
    Ok(())
}

fn add(total: &mut Summary, s: Summary) {
    total.visitors += s.visitors;
    total.sessions += s.sessions;
    total.pageviews += s.pageviews;
    total.bounces += s.bounces;
    total.total_duration_ms += s.total_duration_ms;
    total.automated_sessions += s.automated_sessions;
}

/// Summary of a range. Over rolled-up hours, `visitors` is the sum of each hour's distinct
/// visitors (a visitor-day starting sessions in two hours counts twice); the rest is exact.
pub async fn summary(db: &impl ConnectionTrait, scope: TenantScope, range: Range) -> Result<Summary, DbErr> {
    let plan = plan(db, range).await?;
    let mut acc = Rolled::default();
    if let Some(rolled) = plan.rolled {
        read_rolled(db, scope, &grains(rolled, true, plan.days_until), &TOTAL_DIMS, &mut acc).await?;
    }
    for part in &plan.raw {
        add(&mut acc.summary, raw_summary(db, scope, *part).await?);
    }
    Ok(acc.summary)
}

/// Per-value sums of `dim` over rolled-up hours: value → (visitors, sessions, pageviews).
async fn rolled_values(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    range: Range,
    dim: &str,
    days_until: i64,
) -> Result<HashMap<Option<String>, (i64, i64, i64)>, DbErr> {
    let mut acc = Rolled::default();
    read_rolled(db, scope, &grains(range, true, days_until), &[dim], &mut acc).await?;
    Ok(acc.values.remove(dim).unwrap_or_default())
}

/// Rows with no rollup part behind them are read with the caller's limit; otherwise every value
/// of the raw edges is needed for the merge.
fn raw_limit(plan: &Plan, limit: u64) -> u64 {
    if plan.rolled.is_none() { limit } else { u64::MAX >> 1 }
}

/// Merged per-value sums as breakdown rows: by visitors, unknown last, then by value.
fn ranked_breakdown(merged: HashMap<Option<String>, (i64, i64, i64)>, limit: u64) -> Vec<BreakdownRow> {
    let mut rows: Vec<BreakdownRow> =
        merged.into_iter().map(|(value, (visitors, sessions, _))| BreakdownRow { value, visitors, sessions }).collect();
    rows.sort_by(|a, b| {
        b.visitors.cmp(&a.visitors).then(a.value.is_none().cmp(&b.value.is_none())).then(a.value.cmp(&b.value))
    });
    rows.truncate(limit as usize);
    rows
}

fn merge_breakdown(merged: &mut HashMap<Option<String>, (i64, i64, i64)>, raw: Vec<BreakdownRow>) {
    for row in raw {
        let e = merged.entry(row.value).or_default();
        e.0 += row.visitors;
        e.1 += row.sessions;
    }
}

/// Merged per-path sums (pageviews, visitors) as page rows: most viewed first, then by path.
fn ranked_pages(merged: HashMap<String, (i64, i64)>, limit: u64) -> Vec<PageRow> {
    let mut rows: Vec<PageRow> =
        merged.into_iter().map(|(path, (pageviews, visitors))| PageRow { path, pageviews, visitors }).collect();
    rows.sort_by(|a, b| b.pageviews.cmp(&a.pageviews).then(a.path.cmp(&b.path)));
    rows.truncate(limit as usize);
    rows
}

/// The rolled-up `page` rows as path → (pageviews, visitors).
fn page_sums(values: HashMap<Option<String>, (i64, i64, i64)>) -> HashMap<String, (i64, i64)> {
    values
        .into_iter()
        .map(|(path, (visitors, _, pageviews))| (path.unwrap_or_default(), (pageviews, visitors)))
        .collect()
}

fn merge_pages(merged: &mut HashMap<String, (i64, i64)>, raw: Vec<PageRow>) {
    for row in raw {
        let e = merged.entry(row.path).or_default();
        e.0 += row.pageviews;
        e.1 += row.visitors;
    }
}

/// Everything the stats API answers for one range.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub summary: Summary,
    pub timeseries: Vec<BucketRow>,
    pub top_pages: Vec<PageRow>,
    /// One list per [`Dimension::ALL`], in that order.
    pub breakdowns: [Vec<BreakdownRow>; 5],
}

/// [`summary`], [`timeseries`], [`top_pages`] and a [`breakdown`] of every dimension, with the
/// same numbers, read together: one watermark read, one rollup query per grain part for all of
/// them (two when an hourly series spans whole days, which the breakdowns read as daily rows), and
/// the raw edges' queries run concurrently.
pub async fn report(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    range: Range,
    bucket: Bucket,
    limit: u64,
) -> Result<Report, DbErr> {
    let width = bucket.millis();
    let plan = plan(db, range).await?;
    let mut acc = Rolled { width: Some(width), series: zero_filled(range, width), ..Rolled::default() };
    if let Some(rolled) = plan.rolled {
        let value_parts = grains(rolled, true, plan.days_until);
        let series_parts = grains(rolled, width == UnixMillis::DAY, plan.days_until);
        let mut dims: Vec<&str> = Dimension::ALL.iter().map(|d| d.rollup_dim()).chain(["page"]).collect();
        if value_parts == series_parts {
            dims.extend(TOTAL_DIMS);
            read_rolled(db, scope, &value_parts, &dims, &mut acc).await?;
        } else {
            read_rolled(db, scope, &series_parts, &TOTAL_DIMS, &mut acc).await?;
            let mut values = Rolled::default();
            read_rolled(db, scope, &value_parts, &dims, &mut values).await?;
            acc.values = values.values;
        }
    }
    let mut pages = page_sums(acc.values.remove("page").unwrap_or_default());
    let mut values = Dimension::ALL.map(|d| acc.values.remove(d.rollup_dim()).unwrap_or_default());
    let all = raw_limit(&plan, limit);
    for part in &plan.raw {
        let breakdown = |dim| raw_breakdown(db, scope, *part, dim, all);
        let (s, (), p, r, c, b, o, d) = futures_util::try_join!(
            raw_summary(db, scope, *part),
            raw_timeseries(db, scope, *part, width, &mut acc.series),
            raw_top_pages(db, scope, *part, all),
            breakdown(Dimension::Referrer),
            breakdown(Dimension::Country),
            breakdown(Dimension::Browser),
            breakdown(Dimension::Os),
            breakdown(Dimension::Device),
        )?;
        add(&mut acc.summary, s);
        merge_pages(&mut pages, p);
        for (merged, raw) in values.iter_mut().zip([r, c, b, o, d]) {
            merge_breakdown(merged, raw);
        }
    }
    Ok(Report {
        summary: acc.summary,
        timeseries: acc.series.into_values().collect(),
        top_pages: ranked_pages(pages, limit),
        breakdowns: values.map(|merged| ranked_breakdown(merged, limit)),
    })
}

/// Top values of a session attribute, by visitors (unknown last, then by value).
pub async fn breakdown(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    range: Range,
    dimension: Dimension,
    limit: u64,
) -> Result<Vec<BreakdownRow>, DbErr> {
    let plan = plan(db, range).await?;
    let mut merged = match plan.rolled {
        Some(rolled) => rolled_values(db, scope, rolled, dimension.rollup_dim(), plan.days_until).await?,
        None => HashMap::new(),
    };
    for part in &plan.raw {
        merge_breakdown(&mut merged, raw_breakdown(db, scope, *part, dimension, raw_limit(&plan, limit)).await?);
    }
    Ok(ranked_breakdown(merged, limit))
}

/// The `dim` of the rollup rows that count flagged sessions per country (`sessions` column).
pub(crate) const FLAGGED_COUNTRY_DIM: &str = "flagged_country";

/// Sessions per country that a verdict in `[from, to)` challenged or blocked, from raw rows:
/// verdicts name sessions as `session:<id>`, and the join reads each flagged session's country by
/// primary key. The rollup job stores the same query per hour (dim [`FLAGGED_COUNTRY_DIM`]).
pub(crate) const FLAGGED_COUNTRY_SQL: &str = r#"SELECT s."country" AS country, COUNT(DISTINCT s."id") AS n
    FROM "threats" t JOIN "sessions" s
      ON s."id" = CAST(SUBSTR(t."subject", 9) AS BIGINT) AND s."site_id" = t."site_id"
    WHERE t."site_id" = ? AND t."at" >= ? AND t."at" < ? AND t."decision" <> 'ALLOW'
      AND t."subject" LIKE 'session:%'
    GROUP BY s."country""#;

/// Sessions a verdict in the range challenged or blocked, per country: rolled-up hours from
/// `stats_rollups` (attributed to the hour of the verdict), the edges from raw rows. Like the
/// other rolled-up distinct counts, a session flagged in two hours of the range counts in both.
pub async fn flagged_sessions_by_country(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    range: Range,
) -> Result<HashMap<Option<String>, i64>, DbErr> {
    let plan = plan(db, range).await?;
    let mut merged: HashMap<Option<String>, i64> = HashMap::new();
    if let Some(rolled) = plan.rolled {
        for (country, (_, sessions, _)) in
            rolled_values(db, scope, rolled, FLAGGED_COUNTRY_DIM, plan.days_until).await?
        {
            *merged.entry(country).or_default() += sessions;
        }
    }
    for part in &plan.raw {
        let values = vec![scope.site_id().0.into(), part.from.0.into(), part.to.0.into()];
        for row in db.query_all_raw(rollups::stmt(db, FLAGGED_COUNTRY_SQL, values)).await? {
            *merged.entry(row.try_get("", "country")?).or_default() += get_i64(&row, "n")?;
        }
    }
    merged.retain(|_, n| *n > 0);
    Ok(merged)
}

/// Most viewed paths (then by path).
pub async fn top_pages(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    range: Range,
    limit: u64,
) -> Result<Vec<PageRow>, DbErr> {
    let plan = plan(db, range).await?;
    let mut merged = match plan.rolled {
        Some(rolled) => page_sums(rolled_values(db, scope, rolled, "page", plan.days_until).await?),
        None => HashMap::new(),
    };
    for part in &plan.raw {
        merge_pages(&mut merged, raw_top_pages(db, scope, *part, raw_limit(&plan, limit)).await?);
    }
    Ok(ranked_pages(merged, limit))
}
