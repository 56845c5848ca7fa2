//! `GET /api/v1/stats`: traffic statistics of one site over a time range.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, Tags};

use super::site_token::{ApiError, AuthFailure, SiteToken, tenant};

use crate::domain::UnixMillis;
use crate::startup::AppState;
use crate::storage::stats::{self, Bucket, Range};
use crate::storage::{self as store};

/// Longest range one request may cover.
const MAX_RANGE_DAYS: i64 = 400;
/// Most buckets one timeseries may hold (e.g. 31 days of hours is 744).
const MAX_BUCKETS: i64 = 2_000;
/// Rows in each breakdown list.
const BREAKDOWN_LIMIT: u64 = 10;

#[derive(Tags)]
enum ApiTags {
    /// Aggregated traffic statistics.
    Stats,
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
enum BucketParam {
    Hour,
    Day,
}

#[derive(Object)]
struct Stats {
    site: String,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    bucket: String,
    /// Distinct daily visitor ids among sessions started in the range.
    visitors: i64,
    sessions: i64,
    pageviews: i64,
    /// Share of sessions with at most one pageview, 0..1.
    bounce_rate: f64,
    /// Mean time between a session's first and last event, in seconds.
    avg_duration_secs: f64,
    /// Share of sessions flagged automated (bot/automation user agent or automation probes), 0..1.
    automated_share: f64,
    timeseries: Vec<TimeseriesPoint>,
    top_pages: Vec<PageStat>,
    referrers: Vec<BreakdownItem>,
    countries: Vec<BreakdownItem>,
    browsers: Vec<BreakdownItem>,
    os: Vec<BreakdownItem>,
    devices: Vec<BreakdownItem>,
}

#[derive(Object)]
struct TimeseriesPoint {
    start: DateTime<Utc>,
    visitors: i64,
    sessions: i64,
    pageviews: i64,
    automated_sessions: i64,
}

#[derive(Object)]
struct PageStat {
    path: String,
    pageviews: i64,
    visitors: i64,
}

#[derive(Object)]
struct BreakdownItem {
    /// The value, or `null` when unknown (no referrer, no geo database, …).
    value: Option<String>,
    visitors: i64,
    sessions: i64,
}

#[derive(ApiResponse)]
enum GetStatsResponse {
    #[oai(status = 200)]
    Ok(Json<Box<Stats>>),
    /// The range or bucket is invalid.
    #[oai(status = 400)]
    BadRequest(Json<ApiError>),
    /// The token is missing or not a valid API token.
    #[oai(status = 401)]
    Unauthorized(Json<ApiError>),
    /// The site does not exist or the token is not for it.
    #[oai(status = 404)]
    NotFound(Json<ApiError>),
    #[oai(status = 503)]
    Unavailable(Json<ApiError>),
}

pub struct StatsApi;

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Stats")]
impl StatsApi {
    /// Traffic statistics of one site between `from` (inclusive) and `to` (exclusive).
    #[oai(path = "/stats", method = "get", operation_id = "get_stats")]
    async fn get_stats(
        &self,
        Data(state): Data<&Arc<AppState>>,
        auth: SiteToken,
        /// The site's public key (`gt_…`).
        site: Query<String>,
        /// Start of the range, RFC 3339.
        from: Query<DateTime<Utc>>,
        /// End of the range (exclusive), RFC 3339.
        to: Query<DateTime<Utc>>,
        /// Timeseries bucket; default `hour` for ranges up to 2 days, else `day`.
        bucket: Query<Option<BucketParam>>,
    ) -> GetStatsResponse {
        let db = &state.db;
        let (scope, tenant) = match tenant(db, &auth, &site.0).await {
            Ok(found) => found,
            Err(failure @ AuthFailure::Unauthorized) => return GetStatsResponse::Unauthorized(failure.body()),
            Err(failure @ AuthFailure::NotFound) => return GetStatsResponse::NotFound(failure.body()),
            Err(failure @ AuthFailure::Unavailable) => return GetStatsResponse::Unavailable(failure.body()),
        };

        let (from, to) = (from.0, to.0);
        let range = Range { from: UnixMillis::from(from), to: UnixMillis::from(to) };
        let span = range.to.0 - range.from.0;
        if span <= 0 {
            return GetStatsResponse::BadRequest(ApiError::new("invalid_range", "`from` must be before `to`"));
        }
        if span > MAX_RANGE_DAYS * UnixMillis::DAY {
            return GetStatsResponse::BadRequest(ApiError::new(
                "invalid_range",
                format!("the range may cover at most {MAX_RANGE_DAYS} days"),
            ));
        }
        let bucket = match bucket.0 {
            Some(BucketParam::Hour) => Bucket::Hour,
            Some(BucketParam::Day) => Bucket::Day,
            None if span <= 2 * UnixMillis::DAY => Bucket::Hour,
            None => Bucket::Day,
        };
        if span / bucket.millis() > MAX_BUCKETS {
            return GetStatsResponse::BadRequest(ApiError::new(
                "too_many_buckets",
                format!("at most {MAX_BUCKETS} buckets per request; use bucket=day or a shorter range"),
            ));
        }

        let report = match stats::report(db, scope, range, bucket, BREAKDOWN_LIMIT).await {
            Ok(r) => r,
            Err(error) => return unavailable(error.into()),
        };
        let stats::Report { summary, timeseries: series, top_pages: pages, breakdowns } = report;
        let ratio = |part: i64, whole: i64| if whole == 0 { 0.0 } else { part as f64 / whole as f64 };
        let items = |rows: Vec<stats::BreakdownRow>| {
            rows.into_iter()
                .map(|r| BreakdownItem { value: r.value, visitors: r.visitors, sessions: r.sessions })
                .collect::<Vec<_>>()
        };
        // In `Dimension::ALL` order.
        let [referrers, countries, browsers, os, devices] = breakdowns.map(items);
        GetStatsResponse::Ok(Json(Box::new(Stats {
            site: tenant.key.to_string(),
            from,
            to,
            bucket: if bucket == Bucket::Hour { "hour" } else { "day" }.into(),
            visitors: summary.visitors,
            sessions: summary.sessions,
            pageviews: summary.pageviews,
            bounce_rate: ratio(summary.bounces, summary.sessions),
            avg_duration_secs: ratio(summary.total_duration_ms, summary.sessions) / 1000.0,
            automated_share: ratio(summary.automated_sessions, summary.sessions),
            timeseries: series
                .into_iter()
                .map(|p| TimeseriesPoint {
                    start: DateTime::from_timestamp_millis(p.start.0).unwrap_or_default(),
                    visitors: p.visitors,
                    sessions: p.sessions,
                    pageviews: p.pageviews,
                    automated_sessions: p.automated_sessions,
                })
                .collect(),
            top_pages: pages
                .into_iter()
                .map(|p| PageStat { path: p.path, pageviews: p.pageviews, visitors: p.visitors })
                .collect(),
            referrers,
            countries,
            browsers,
            os,
            devices,
        })))
    }
}

fn unavailable(error: store::StorageError) -> GetStatsResponse {
    tracing::error!(error = %error, "stats query failed");
    GetStatsResponse::Unavailable(ApiError::new("unavailable", "the database is unavailable; retry shortly"))
}
