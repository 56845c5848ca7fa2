//! Page rollups: the Pages list and the page maps give the same answers from `page_rollups` /
//! `page_rollup_cells` as from raw events, over aligned, unaligned and tail-spanning ranges, on
//! a re-run and after the provisional hours turn final; an encrypted tenant (sealed payloads
//! opened by the rollup job) gets the same answers as a plain tenant with the same traffic;
//! once retention deleted the raw events the rollups still answer old ranges; no tenant sees
//! another's pages; the reads use the (site, grain, …) indexes. Runs against the storage layer
//! directly (no server, so no background job races the "before" reading), on SQLite and, when
//! configured, PostgreSQL.

use ghosttrack::domain::{ApiToken, UnixMillis};
use ghosttrack::keys::{EventKeys, MasterKeys};
use ghosttrack::panel::maps;
use ghosttrack::settings::DatabaseUrl;
use ghosttrack::storage::panel_maps::{self, PAGE_MAP_ROLLUP_SQL, PAGES_ROLLUP_SQL};
use ghosttrack::storage::sites::{self, SiteKind};
use ghosttrack::storage::stats::Range;
use ghosttrack::storage::{self, TenantScope, rollups};
use ghosttrack_tests::{now_ms, pg, query_plan};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde_json::{Value, json};

const HOUR: i64 = 3_600_000;
const SECRET: &str = "0123456789abcdef0123456789abcdef-pages";
const PATHS: &[&str] = &["/", "/a", "/b", "/secret"];

/// One visit: a session on `path` starting `hours_ago` whole hours before the current hour
/// (ten minutes into that hour; 0 = a few minutes ago), its clicks `(x, y, page width, page
/// height)` and scroll depths, one second apart — so a session stays inside one hour.
struct Visit {
    hours_ago: i64,
    path: &'static str,
    clicks: &'static [(i64, i64, i64, i64)],
    depths: &'static [i64],
}

const fn v(
    hours_ago: i64,
    path: &'static str,
    clicks: &'static [(i64, i64, i64, i64)],
    depths: &'static [i64],
) -> Visit {
    Visit { hours_ago, path, clicks, depths }
}

/// Traffic over four days: old enough for daily rows, final and provisional hours, the
/// current hour (always raw), clicks past the page's edge, a click without a page size, and
/// scroll events without a depth.
const TRAFFIC: &[Visit] = &[
    v(80, "/", &[(10, 10, 1000, 2000), (990, 1990, 1000, 2000)], &[20, 55]),
    v(75, "/a", &[(500, 100, 1200, 3000)], &[100]),
    v(75, "/", &[(1500, 10, 500, 1000)], &[5]),
    v(49, "/b", &[(0, 0, 800, 800), (400, 400, 800, 800), (400, 400, 800, 800)], &[]),
    v(30, "/", &[(100, 1000, 1000, 2000)], &[35, 72, 10]),
    v(26, "/a", &[(-1, 5, 1000, 1000), (5, 5, 0, 0)], &[-5]),
    v(5, "/", &[(300, 300, 1024, 4096)], &[90]),
    v(3, "/b", &[], &[40, 41]),
    v(1, "/a", &[(600, 600, 1200, 1200)], &[60]),
    v(0, "/", &[(50, 60, 1000, 1000), (51, 61, 1000, 1000)], &[15]),
    v(0, "/b", &[(700, 10, 1400, 900)], &[110]),
];

struct Tenant {
    site: i64,
    scope: TenantScope,
}

async fn tenant(db: &DatabaseConnection, domain: &str) -> Tenant {
    let (site, token) = sites::create(db, domain, SiteKind::Standalone).await.unwrap();
    let (scope, _) = sites::authenticate_token(db, &ApiToken::from_presented(token.expose())).await.unwrap().unwrap();
    Tenant { site: site.id.0, scope }
}

fn hour_of(now: i64) -> i64 {
    now.div_euclid(HOUR) * HOUR
}

/// Stores the visits of `tenant` as sessions and pv/cl/sc events; with `seal`, payloads are
/// sealed with the tenant's active data key except for visits at least `plain_before` hours
/// old (written before encryption was turned on).
async fn insert_visits(
    db: &DatabaseConnection,
    tenant: &Tenant,
    now: i64,
    visits: &[Visit],
    seal: Option<(&EventKeys, i64)>,
) {
    let sealer = match seal {
        Some((keys, _)) => Some(keys.sealer(db, tenant.scope).await.unwrap().expect("encryption on")),
        None => None,
    };
    for (i, visit) in visits.iter().enumerate() {
        let start =
            if visit.hours_ago == 0 { now - 5 * 60_000 } else { hour_of(now) - visit.hours_ago * HOUR + 10 * 60_000 }
                + i as i64 * 20_000;
        let session = tenant.site * 1_000_000 + i as i64;
        let visitor = tenant.site * 1_000_000 + 500_000 + i as i64;
        db.execute_unprepared(&format!(
            "INSERT INTO sessions (id, site_id, visitor_id, started_at, last_seen_at, pageviews, events, entry_path, \
                 exit_path, referrer_host, country, browser, os, device, automated, net_flags, consent) VALUES \
                 ({session}, {}, {visitor}, {start}, {}, 1, 1, '{p}', '{p}', NULL, 'GB', 'Chrome', 'Linux', \
                 'desktop', FALSE, 0, TRUE)",
            tenant.site,
            start + 15_000,
            p = visit.path,
        ))
        .await
        .unwrap();
        let mut events: Vec<(&str, Option<String>)> = vec![("pv", None)];
        for (x, y, pw, ph) in visit.clicks {
            let props =
                if *pw == 0 { json!({ "x": x, "y": y }) } else { json!({ "x": x, "y": y, "pw": pw, "ph": ph }) };
            events.push(("cl", Some(props.to_string())));
        }
        for d in visit.depths {
            events.push(("sc", Some(json!({ "d": d }).to_string())));
        }
        // A scroll event without a depth counts for the list, not for the map.
        events.push(("sc", Some("{}".into())));
        for (j, (kind, props)) in events.into_iter().enumerate() {
            let ts = start + j as i64 * 1_000;
            let props = match (props, &sealer, seal) {
                (Some(p), Some(key), Some((_, plain_before))) if visit.hours_ago < plain_before => {
                    Some(key.seal(&p, &[]))
                }
                (p, _, _) => p,
            };
            let props = props.map_or("NULL".to_owned(), |p| format!("'{p}'"));
            db.execute_unprepared(&format!(
                "INSERT INTO events (site_id, session_id, visitor_id, ts, received_at, kind, path, props) VALUES \
                 ({}, {session}, {visitor}, {ts}, {ts}, '{kind}', '{}', {props})",
                tenant.site, visit.path
            ))
            .await
            .unwrap();
        }
    }
}

/// The ranges compared: aligned whole hours, unaligned edges, the panel's 24 h / 7 d / 30 d
/// ending now (spanning the raw tail), and a range across daily rows.
fn ranges(now: i64) -> Vec<(&'static str, Range)> {
    let h = hour_of(now);
    let r = |from: i64, to: i64| Range { from: UnixMillis(from), to: UnixMillis(to) };
    vec![
        ("aligned", r(h - 72 * HOUR, h - 24 * HOUR)),
        ("unaligned", r(h - 50 * HOUR + 37 * 60_000, h - 3 * HOUR + 37 * 60_000)),
        ("24h", r(now - 24 * HOUR, now)),
        ("7d", r(now - 7 * 24 * HOUR, now)),
        ("30d", r(now - 30 * 24 * HOUR, now)),
        ("old days", r(h - 90 * HOUR, h - 20 * HOUR)),
    ]
}

/// Everything the Pages page reads for each range, as comparable JSON.
async fn pages_view(db: &DatabaseConnection, keys: &EventKeys, t: &Tenant, now: i64) -> Value {
    let mut out = serde_json::Map::new();
    for (name, range) in ranges(now) {
        let list = panel_maps::pages(db, t.scope, range, 100).await.unwrap();
        let mut maps_json = serde_json::Map::new();
        for path in PATHS {
            let m = maps::page_map(db, keys, t.scope, range, path).await.unwrap();
            maps_json.insert(
                (*path).into(),
                json!({
                    "cells": m.cells.iter().map(|((c, r), n)| [c, r, n]).collect::<Vec<_>>(),
                    "clicks": m.clicks, "size": [m.page_width, m.page_height],
                    "reach": m.reach, "scroll_sessions": m.scroll_sessions,
                }),
            );
        }
        out.insert(
            name.into(),
            json!({
                "pages": list.iter().map(|p| json!([p.path, p.clicks, p.scroll_sessions])).collect::<Vec<_>>(),
                "maps": maps_json,
            }),
        );
    }
    Value::Object(out)
}

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

async fn rolled_up_pages_equal_raw_pages(url: String) {
    let db = storage::connect(&DatabaseUrl::new(url)).await.unwrap();
    storage::migrate(&db).await.unwrap();
    let keys = EventKeys::new(Some(MasterKeys::new(SECRET, None).unwrap()));
    // Half past the current hour: the visits of "now" stay inside one hour whatever the clock.
    let now = hour_of(now_ms()) + 30 * 60_000;
    let plain = tenant(&db, "plain.example").await;
    let sealed = tenant(&db, "sealed.example").await;
    let other = tenant(&db, "other.example").await;
    keys.enable(&db, sealed.scope).await.unwrap();
    insert_visits(&db, &plain, now, TRAFFIC, None).await;
    // The encrypted tenant's oldest visits predate encryption: plain rows among sealed ones.
    insert_visits(&db, &sealed, now, TRAFFIC, Some((&keys, 70))).await;
    insert_visits(&db, &other, now, &[v(30, "/secret", &[(1, 1, 10, 10)], &[50])], None).await;
    let sealed_rows =
        count(&db, &format!("SELECT COUNT(*) FROM events WHERE site_id = {} AND props LIKE 'gtenc:%'", sealed.site))
            .await;
    assert!(sealed_rows > 20, "{sealed_rows} sealed rows");

    let raw = pages_view(&db, &keys, &plain, now).await;
    assert_eq!(pages_view(&db, &keys, &sealed, now).await, raw, "decrypted raw aggregation = plain SQL");
    // Spot checks that the data says what the test means.
    assert_eq!(raw["30d"]["pages"][0], json!(["/", 7, 5]), "{}", raw["30d"]["pages"]);
    assert_eq!(raw["30d"]["pages"][1], json!(["/a", 4, 3]), "{}", raw["30d"]["pages"]);
    let aligned = &raw["aligned"]["maps"]["/"];
    assert_eq!(aligned["cells"], json!([[2, 24, 1]]), "{aligned}");
    assert_eq!(aligned["reach"], json!([1, 1, 1, 1, 1, 1, 1, 0, 0, 0]), "{aligned}");

    let hours = rollups::roll_up(&db, &keys, now).await.unwrap();
    assert!(hours >= 75, "rolled up {hours} hours");
    let rolled = count(&db, "SELECT COUNT(*) FROM page_rollups WHERE grain = 'd'").await;
    assert!(rolled > 0, "daily page rows");
    let sealed_cells =
        count(&db, &format!("SELECT COUNT(*) FROM page_rollup_cells WHERE site_id = {} AND kind = 'c'", sealed.site))
            .await;
    assert!(sealed_cells > 0, "the encrypted tenant's clicks were opened and rolled up");
    assert_eq!(pages_view(&db, &keys, &plain, now).await, raw, "rolled up = raw");
    assert_eq!(pages_view(&db, &keys, &sealed, now).await, raw, "encrypted tenant rolled up = raw");

    // Re-runs count nothing twice: at once (provisional hours redone), and three hours later
    // (the provisional hours turn final).
    assert_eq!(rollups::roll_up(&db, &keys, now).await.unwrap(), 0);
    assert_eq!(pages_view(&db, &keys, &plain, now).await, raw, "after a re-run");
    assert!(rollups::roll_up(&db, &keys, now + 3 * HOUR).await.unwrap() >= 2);
    assert_eq!(pages_view(&db, &keys, &plain, now).await, raw, "after finalising");
    assert_eq!(pages_view(&db, &keys, &sealed, now).await, raw, "encrypted, after finalising");

    // Tenant isolation: another tenant's page never shows, its map is empty here, and ours is
    // empty there.
    for (_, range) in ranges(now) {
        let list = panel_maps::pages(&db, plain.scope, range, 100).await.unwrap();
        assert!(list.iter().all(|p| p.path != "/secret"), "{list:?}");
        assert_eq!(maps::page_map(&db, &keys, plain.scope, range, "/secret").await.unwrap().clicks, 0);
        assert_eq!(maps::page_map(&db, &keys, other.scope, range, "/").await.unwrap().clicks, 0);
    }
    let theirs = panel_maps::pages(&db, other.scope, ranges(now)[4].1, 100).await.unwrap();
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    assert_eq!((theirs[0].path.as_str(), theirs[0].clicks, theirs[0].scroll_sessions), ("/secret", 1, 1));

    // Retention deleted every raw event older than a day: the rollups still answer.
    db.execute_unprepared(&format!("DELETE FROM events WHERE ts < {}", hour_of(now) - 24 * HOUR)).await.unwrap();
    assert_eq!(pages_view(&db, &keys, &plain, now).await, raw, "after retention");
    assert_eq!(pages_view(&db, &keys, &sealed, now).await, raw, "encrypted, after retention");

    query_plans_use_the_rollup_indexes(&db, plain.site, now).await;
}

/// `EXPLAIN` of the two rollup reads names their index (on PostgreSQL with sequential scans
/// disabled for the statement: the test tables are too small for the planner to prefer an
/// index on its own).
async fn query_plans_use_the_rollup_indexes(db: &DatabaseConnection, site: i64, now: i64) {
    let backend = db.get_database_backend();
    // What autovacuum does on its own: statistics and the visibility map.
    let analyze = if backend == DbBackend::Postgres { "VACUUM ANALYZE" } else { "ANALYZE" };
    for table in ["page_rollups", "page_rollup_cells"] {
        db.execute_unprepared(&format!("{analyze} {table}")).await.unwrap();
    }
    let (from, to) = (now - 30 * 24 * HOUR, now);
    let cases = [
        (PAGES_ROLLUP_SQL, vec![site.into(), "d".into(), from.into(), to.into()], "idx_page_rollups_site_grain_hour"),
        (
            PAGE_MAP_ROLLUP_SQL,
            vec![site.into(), "d".into(), "/".into(), from.into(), to.into()],
            "idx_page_rollup_cells_site_grain_path_hour",
        ),
    ];
    for (sql, values, index) in cases {
        let plan = query_plan(db, sql, values, &["SET LOCAL enable_seqscan = off"]).await;
        assert!(plan.iter().any(|line| line.contains(index)), "{index} not used: {plan:#?}");
    }
}

#[tokio::test]
async fn rolled_up_pages_equal_raw_pages_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    rolled_up_pages_equal_raw_pages(format!("sqlite://{}/p.db?mode=rwc", dir.path().display())).await;
}

#[tokio::test]
async fn rolled_up_pages_equal_raw_pages_on_postgres() {
    let Some(url) = pg::fresh_database_or_skip("PostgreSQL page rollup test").await else { return };
    rolled_up_pages_equal_raw_pages(url).await;
}

/// The documented approximation: a session that scrolls a page in two hours counts once per
/// hour bucket in the rollups (raw aggregation over the range counts it once).
#[tokio::test]
async fn a_session_scrolling_across_an_hour_boundary_counts_once_per_hour() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/p.db?mode=rwc", dir.path().display());
    let db = storage::connect(&DatabaseUrl::new(url)).await.unwrap();
    storage::migrate(&db).await.unwrap();
    let keys = EventKeys::new(None);
    let now = now_ms();
    let t = tenant(&db, "a.example").await;
    let boundary = hour_of(now) - 10 * HOUR;
    db.execute_unprepared(&format!(
        "INSERT INTO sessions (id, site_id, visitor_id, started_at, last_seen_at, pageviews, events, entry_path, \
             exit_path, referrer_host, country, browser, os, device, automated, net_flags, consent) VALUES \
             (7, {s}, 7, {a}, {b}, 1, 3, '/', '/', NULL, 'GB', 'Chrome', 'Linux', 'desktop', FALSE, 0, TRUE)",
        s = t.site,
        a = boundary - 2_000,
        b = boundary + 2_000
    ))
    .await
    .unwrap();
    for (ts, d) in [(boundary - 1_000, 30), (boundary + 1_000, 80)] {
        db.execute_unprepared(&format!(
            "INSERT INTO events (site_id, session_id, visitor_id, ts, received_at, kind, path, props) VALUES \
             ({}, 7, 7, {ts}, {ts}, 'sc', '/', '{{\"d\":{d}}}')",
            t.site
        ))
        .await
        .unwrap();
    }
    let range = Range { from: UnixMillis(boundary - HOUR), to: UnixMillis(boundary + HOUR) };
    let raw = maps::page_map(&db, &keys, t.scope, range, "/").await.unwrap();
    assert_eq!((raw.scroll_sessions, raw.reach[7]), (1, 1));
    rollups::roll_up(&db, &keys, now).await.unwrap();
    let rolled = maps::page_map(&db, &keys, t.scope, range, "/").await.unwrap();
    assert_eq!((rolled.scroll_sessions, rolled.reach[2], rolled.reach[7]), (2, 2, 1));
    let list = panel_maps::pages(&db, t.scope, range, 10).await.unwrap();
    assert_eq!(list[0].scroll_sessions, 2);
}
