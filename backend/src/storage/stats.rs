//! Aggregate statistics for one tenant over a time range. Every query starts from
//! `site_id = scope` and `[from, to)` on an indexed timestamp before anything else.

use sea_orm::sea_query::{Expr, ExprTrait, Order, Query, SelectStatement};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, QueryResult};

use super::TenantScope;
use super::entities::{events, sessions};
use crate::domain::UnixMillis;

/// Half-open time range `[from, to)`.
#[derive(Clone, Copy, Debug)]
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

pub async fn summary(db: &impl ConnectionTrait, scope: TenantScope, range: Range) -> Result<Summary, DbErr> {
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

pub async fn timeseries(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    range: Range,
    bucket: Bucket,
) -> Result<Vec<BucketRow>, DbErr> {
    // The width is one of two constants, never user input, so it is inlined as a literal.
    let width = bucket.millis();
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

    let mut rows: std::collections::BTreeMap<i64, BucketRow> = std::collections::BTreeMap::new();
    // Every bucket of the range is present, zero-filled: charts need gaps as zeros.
    let mut start = range.from.0.div_euclid(width) * width;
    while start < range.to.0 && rows.len() < 10_000 {
        rows.insert(
            start,
            BucketRow { start: UnixMillis(start), visitors: 0, sessions: 0, pageviews: 0, automated_sessions: 0 },
        );
        start += width;
    }
    for row in db.query_all(&sessions_stmt).await? {
        let b = get_i64(&row, "bucket")?;
        if let Some(entry) = rows.get_mut(&b) {
            entry.visitors = get_i64(&row, "visitors")?;
            entry.sessions = get_i64(&row, "sessions")?;
            entry.automated_sessions = get_i64(&row, "automated")?;
        }
    }
    for row in db.query_all(&pv_stmt).await? {
        let b = get_i64(&row, "bucket")?;
        if let Some(entry) = rows.get_mut(&b) {
            entry.pageviews = get_i64(&row, "pageviews")?;
        }
    }
    Ok(rows.into_values().collect())
}

pub async fn breakdown(
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

pub async fn top_pages(
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
