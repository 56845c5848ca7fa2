//! Dashboard rollups: the stats queries give the same answers from hourly rollups as from raw
//! rows, with raw rows for the partial hours at the edges. Runs against the storage layer
//! directly (no server, so no background job races the "before" reading), on SQLite and,
//! when configured, PostgreSQL.

use ghosttrack::domain::{ApiToken, UnixMillis};
use ghosttrack::keys::EventKeys;
use ghosttrack::settings::DatabaseUrl;
use ghosttrack::storage::sites::{self, SiteKind};
use ghosttrack::storage::stats::{self, Bucket, Dimension, Range};
use ghosttrack::storage::{self, rollups};
use ghosttrack_tests::{now_ms, pg};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::{Value, json};

const HOUR: i64 = 3_600_000;

/// No tenant here encrypts payloads.
fn keys() -> EventKeys {
    EventKeys::new(None)
}

/// Sessions (and their pageviews) on `site` at `hours_ago`, each its own visitor.
async fn insert_sessions(db: &DatabaseConnection, site: i64, sessions: &[(i64, &str, &str, i32)]) {
    let now = now_ms();
    for (i, (hours_ago, country, path, pageviews)) in sessions.iter().enumerate() {
        let start = now - hours_ago * HOUR + (i as i64) * 1_000;
        let id = site * 10_000 + i as i64;
        let visitor = site * 100_000 + i as i64;
        let automated = if i % 3 == 0 { "TRUE" } else { "FALSE" };
        db.execute_unprepared(&format!(
            "INSERT INTO sessions (id, site_id, visitor_id, started_at, last_seen_at, pageviews, events, entry_path, \
                 exit_path, referrer_host, country, browser, os, device, automated, net_flags, consent) VALUES \
                 ({id}, {}, {visitor}, {start}, {}, {pageviews}, {pageviews}, '{path}', '{path}', NULL, '{country}', \
                 'Chrome', 'Linux', 'desktop', {automated}, 0, TRUE)",
            site,
            start + 20_000
        ))
        .await
        .unwrap();
        for pv in 0..*pageviews {
            db.execute_unprepared(&format!(
                "INSERT INTO events (site_id, session_id, visitor_id, ts, received_at, kind, path) VALUES \
                     ({}, {id}, {visitor}, {}, {}, 'pv', '{path}')",
                site,
                start + pv as i64 * 5_000,
                start + pv as i64 * 5_000
            ))
            .await
            .unwrap();
        }
    }
}

/// Everything the dashboard reads for the last 7 days (day buckets), as comparable JSON. On the
/// way, the stats API's `report` (all of it in one read) must equal the single reads: over those
/// 7 days, and with hourly buckets over 3 days, where the series reads hourly rollup rows and the
/// breakdowns daily ones.
async fn dashboard(db: &DatabaseConnection, token: &str) -> Value {
    let (scope, _) = sites::authenticate_token(db, &ApiToken::from_presented(token)).await.unwrap().unwrap();
    let now = now_ms();
    let range = Range { from: UnixMillis(now - 7 * 24 * HOUR), to: UnixMillis(now + 300_000) };
    let three_days = Range { from: UnixMillis(now - 72 * HOUR), to: range.to };
    for (range, bucket) in [(range, Bucket::Day), (three_days, Bucket::Hour)] {
        let report = stats::report(db, scope, range, bucket, 10).await.unwrap();
        assert_eq!(report.summary, stats::summary(db, scope, range).await.unwrap());
        assert_eq!(report.timeseries, stats::timeseries(db, scope, range, bucket).await.unwrap());
        assert_eq!(report.top_pages, stats::top_pages(db, scope, range, 10).await.unwrap());
        for (dim, rows) in Dimension::ALL.into_iter().zip(&report.breakdowns) {
            assert_eq!(rows, &stats::breakdown(db, scope, range, dim, 10).await.unwrap(), "{dim:?}");
        }
    }
    let s = stats::summary(db, scope, range).await.unwrap();
    let series = stats::timeseries(db, scope, range, Bucket::Day).await.unwrap();
    let pages = stats::top_pages(db, scope, range, 10).await.unwrap();
    let countries = stats::breakdown(db, scope, range, Dimension::Country, 10).await.unwrap();
    json!({
        "summary": [s.visitors, s.sessions, s.pageviews, s.bounces, s.total_duration_ms, s.automated_sessions],
        "series": series.iter().map(|b| [b.start.0, b.visitors, b.sessions, b.pageviews, b.automated_sessions]).collect::<Vec<_>>(),
        "pages": pages.iter().map(|p| json!([p.path, p.pageviews, p.visitors])).collect::<Vec<_>>(),
        "countries": countries.iter().map(|c| json!([c.value, c.visitors, c.sessions])).collect::<Vec<_>>(),
    })
}

async fn rolled_up_stats_equal_raw_stats(url: String) {
    let db = storage::connect(&DatabaseUrl::new(url)).await.unwrap();
    storage::migrate(&db).await.unwrap();
    let (a, token) = sites::create(&db, "a.example", SiteKind::Standalone).await.unwrap();
    let (b, _) = sites::create(&db, "b.example", SiteKind::Standalone).await.unwrap();
    insert_sessions(
        &db,
        a.id.0,
        &[
            (70, "GB", "/", 3),
            (70, "DE", "/pricing", 1),
            (30, "GB", "/", 2),
            (5, "US", "/docs", 1),
            (3, "GB", "/pricing", 4),
            // An hour ago: rolled up provisionally.
            (1, "US", "/docs", 2),
            // The current hour: not closed, so always read raw.
            (0, "FR", "/", 2),
        ],
    )
    .await;
    insert_sessions(&db, b.id.0, &[(40, "JP", "/secret", 9)]).await;
    let raw = dashboard(&db, token.expose()).await;

    let hours = rollups::roll_up(&db, &keys(), now_ms()).await.unwrap();
    let rolled = dashboard(&db, token.expose()).await;

    assert!(hours >= 60, "rolled up {hours} hours");
    assert_eq!(rolled, raw);
    assert_eq!(rolled["summary"][2], 15, "pageviews");
    assert_eq!(rolled["pages"][0], json!(["/", 7, 3]));
    assert_eq!(rolled["countries"][0], json!(["GB", 3, 3]));
    assert!(!rolled.to_string().contains("/secret"), "another site's pages never appear");
    assert!(rollups::watermark(&db).await.unwrap().is_some());
    // A second run finalises nothing new; rerunning the provisional hours counts nothing twice.
    assert_eq!(rollups::roll_up(&db, &keys(), now_ms()).await.unwrap(), 0);
    assert_eq!(dashboard(&db, token.expose()).await, raw);
    // Three hours later the provisional hours are final, still counted once.
    assert!(rollups::roll_up(&db, &keys(), now_ms() + 3 * HOUR).await.unwrap() >= 2);
    assert_eq!(dashboard(&db, token.expose()).await, raw);
}

#[tokio::test]
async fn rolled_up_stats_equal_raw_stats_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    rolled_up_stats_equal_raw_stats(format!("sqlite://{}/r.db?mode=rwc", dir.path().display())).await;
}

#[tokio::test]
async fn rolled_up_stats_equal_raw_stats_on_postgres() {
    let Some(url) = pg::fresh_database_or_skip("PostgreSQL rollup test").await else { return };
    rolled_up_stats_equal_raw_stats(url).await;
}

#[tokio::test]
async fn without_sessions_the_job_does_not_start_so_older_data_loaded_later_is_rolled_up() {
    let dir = tempfile::tempdir().unwrap();
    let db =
        storage::connect(&DatabaseUrl::new(format!("sqlite://{}/r.db?mode=rwc", dir.path().display()))).await.unwrap();
    storage::migrate(&db).await.unwrap();
    assert_eq!(rollups::roll_up(&db, &keys(), now_ms()).await.unwrap(), 0);
    assert_eq!(rollups::watermark(&db).await.unwrap(), None);

    let (a, token) = sites::create(&db, "a.example", SiteKind::Standalone).await.unwrap();
    insert_sessions(&db, a.id.0, &[(50, "GB", "/", 2)]).await;
    assert!(rollups::roll_up(&db, &keys(), now_ms()).await.unwrap() >= 48);
    assert_eq!(dashboard(&db, token.expose()).await["summary"][2], 2);
}
