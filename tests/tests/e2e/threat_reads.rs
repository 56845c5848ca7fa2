//! The panel's verdict numbers on both databases: the Overview's open threats and failed-payment
//! bursts (read through the verdicts' expiry index and the partial card-testing index), and
//! Geography's flagged sessions per country, which the rollup job stores per hour and which must
//! read the same rolled up as raw.

use ghosttrack::domain::{ApiToken, UnixMillis};
use ghosttrack::keys::EventKeys;
use ghosttrack::settings::DatabaseUrl;
use ghosttrack::storage::panel::{self, OPEN_SUBJECTS_SQL, card_bursts_sql};
use ghosttrack::storage::panel_maps::{self, CountryRow};
use ghosttrack::storage::sites::{self, SiteKind};
use ghosttrack::storage::stats::{Bucket, Range};
use ghosttrack::storage::{self, TenantScope, rollups};
use ghosttrack_tests::{now_ms, pg, query_plan};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

const HOUR: i64 = 3_600_000;
const MINUTE: i64 = 60_000;
const CARD: &str = r#"[{"rule":"card/decline-burst","sentence":"5 declines in 10 min"}]"#;
const RATE: &str = r#"[{"rule":"rate/burst","sentence":"90 requests in 1 min"}]"#;

async fn tenant(db: &DatabaseConnection, domain: &str) -> (i64, TenantScope) {
    let (site, token) = sites::create(db, domain, SiteKind::Standalone).await.unwrap();
    let (scope, _) = sites::authenticate_token(db, &ApiToken::from_presented(token.expose())).await.unwrap().unwrap();
    (site.id.0, scope)
}

/// A session of `site` started at `at`, from `country` (`None`: unknown).
async fn session(db: &DatabaseConnection, site: i64, id: i64, at: i64, country: Option<&str>) {
    let country = country.map_or("NULL".to_owned(), |c| format!("'{c}'"));
    db.execute_unprepared(&format!(
        "INSERT INTO sessions (id, site_id, visitor_id, started_at, last_seen_at, pageviews, events, entry_path, \
             exit_path, referrer_host, country, browser, os, device, automated, net_flags, consent) VALUES \
             ({id}, {site}, {id}, {at}, {}, 1, 1, '/', '/', NULL, {country}, 'Chrome', 'Linux', 'desktop', FALSE, 0, TRUE)",
        at + MINUTE
    ))
    .await
    .unwrap();
}

/// A verdict change of `subject` at `at`.
async fn verdict(db: &DatabaseConnection, site: i64, subject: &str, decision: &str, reasons: &str, ttl: i64, at: i64) {
    db.execute_unprepared(&format!(
        "INSERT INTO threats (site_id, subject, decision, score, reasons, evidence, ttl_secs, at, created_at) VALUES \
             ({site}, '{subject}', '{decision}', 70, '{reasons}', '[]', {ttl}, {at}, {at})"
    ))
    .await
    .unwrap();
}

fn range(from: i64, to: i64) -> Range {
    Range { from: UnixMillis(from), to: UnixMillis(to) }
}

async fn threat_reads(url: String) {
    let db = storage::connect(&DatabaseUrl::new(url)).await.unwrap();
    storage::migrate(&db).await.unwrap();
    // Half past the current hour, so "a few minutes ago" stays in the current hour.
    let now = now_ms().div_euclid(HOUR) * HOUR + 30 * MINUTE;
    let (site, scope) = tenant(&db, "threats.example").await;
    let (other, other_scope) = tenant(&db, "other.example").await;
    let s = |i: i64| site * 1_000 + i;
    for (i, hours_ago, country) in [
        (1, 0, Some("GB")),
        (2, 0, Some("GB")),
        (3, 2, None),
        (4, 0, Some("DE")),
        (5, 30, Some("GB")),
        (6, 50, Some("DE")),
    ] {
        session(&db, site, s(i), now - hours_ago * HOUR - 20 * MINUTE, country).await;
    }
    session(&db, other, other * 1_000 + 1, now - 5 * MINUTE, Some("FR")).await;

    let sub = |i: i64| format!("session:{}", s(i));
    verdict(&db, site, &sub(1), "BLOCK", RATE, 3_600, now - 10 * MINUTE).await; // open
    verdict(&db, site, &sub(2), "CHALLENGE", CARD, 3_600, now - 20 * MINUTE).await; // replaced by ALLOW
    verdict(&db, site, &sub(2), "ALLOW", "[]", 60, now - 5 * MINUTE).await;
    verdict(&db, site, &sub(3), "BLOCK", CARD, 3_600, now - 2 * HOUR).await; // expired
    verdict(&db, site, &sub(4), "CHALLENGE", RATE, 3_600, now - 15 * MINUTE).await; // twice, counts once
    verdict(&db, site, &sub(4), "BLOCK", CARD, 3_600, now - 12 * MINUTE).await;
    verdict(&db, site, &sub(5), "BLOCK", CARD, 3_600, now - 30 * HOUR).await;
    verdict(&db, site, &sub(6), "CHALLENGE", RATE, 3_600, now - 50 * HOUR).await;
    // Old, but a long TTL keeps it in force: the expiry decides, not the age.
    verdict(&db, site, "ip:203.0.113.0/24", "BLOCK", RATE, 8 * 24 * 3_600, now - 3 * 24 * HOUR).await;
    verdict(&db, other, &format!("session:{}", other * 1_000 + 1), "BLOCK", CARD, 3_600, now - MINUTE).await;

    let day = range(now - 24 * HOUR, now);
    let overview = panel::overview(&db, scope, day, Bucket::Hour, UnixMillis(now)).await.unwrap();
    assert_eq!(overview.open_threats, 3, "session 1, session 4 once, the /24 network");
    assert_eq!(overview.card_bursts, 3, "the card verdicts of the day: sessions 2, 3 and 4");
    let week =
        panel::overview(&db, scope, range(now - 7 * 24 * HOUR, now), Bucket::Day, UnixMillis(now)).await.unwrap();
    assert_eq!(week.card_bursts, 4, "and session 5's, 30 hours ago");
    let theirs = panel::overview(&db, other_scope, day, Bucket::Hour, UnixMillis(now)).await.unwrap();
    assert_eq!((theirs.open_threats, theirs.card_bursts), (1, 1), "the other tenant sees only its own");
    // An hour later, session 1's and 4's verdicts have expired; the network's has not.
    let later = panel::overview(&db, scope, day, Bucket::Hour, UnixMillis(now + HOUR)).await.unwrap();
    assert_eq!(later.open_threats, 1);

    // Geography: flagged sessions per country, raw now, then rolled up.
    let ranges = [day, range(now - 7 * 24 * HOUR, now), range(now - 49 * HOUR - 7 * MINUTE, now - 3 * HOUR)];
    let mut raw: Vec<Vec<CountryRow>> = Vec::new();
    for r in ranges {
        raw.push(panel_maps::countries(&db, scope, r).await.unwrap());
    }
    let flagged =
        |rows: &[CountryRow], c: Option<&str>| rows.iter().find(|r| r.country.as_deref() == c).map_or(0, |r| r.threats);
    assert_eq!(
        [
            flagged(&raw[1], Some("GB")),
            flagged(&raw[1], Some("DE")),
            flagged(&raw[1], None),
            flagged(&raw[1], Some("FR"))
        ],
        [3, 2, 1, 0],
        "{:?}",
        raw[1]
    );
    let keys = EventKeys::new(None);
    assert!(rollups::roll_up(&db, &keys, now).await.unwrap() > 0);
    let rolled_rows: i64 = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) FROM stats_rollups WHERE dim = 'flagged_country'",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index(0)
        .unwrap();
    assert!(rolled_rows > 0, "flagged sessions are rolled up");
    for (r, expected) in ranges.iter().zip(&raw) {
        assert_eq!(&panel_maps::countries(&db, scope, *r).await.unwrap(), expected, "rolled up = raw");
    }

    query_plans_use_the_verdict_indexes(&db, site, now).await;
}

async fn query_plans_use_the_verdict_indexes(db: &DatabaseConnection, site: i64, now: i64) {
    let backend = db.get_database_backend();
    let analyze = if backend == DbBackend::Postgres { "VACUUM ANALYZE threats" } else { "ANALYZE threats" };
    db.execute_unprepared(analyze).await.unwrap();
    let cases = [
        (OPEN_SUBJECTS_SQL.to_owned(), vec![site.into(), now.into()], "idx_threats_site_expires"),
        (card_bursts_sql(), vec![site.into(), (now - 24 * HOUR).into(), now.into()], "idx_threats_site_card_at"),
    ];
    if backend == DbBackend::Sqlite {
        // The newest verdicts of a site walk (site, at), never a sort of every verdict through the
        // expiry index (SQLite chose that when only the old indexes had statistics).
        let sql = r#"SELECT * FROM "threats" WHERE "site_id" = ? ORDER BY "at" DESC, "id" DESC LIMIT 100"#;
        let plan = query_plan(db, sql, vec![site.into()], &[]).await;
        assert!(plan.iter().any(|l| l.contains("idx_threats_site_at")), "{plan:#?}");
        assert!(!plan.iter().any(|l| l.contains("TEMP B-TREE")), "{plan:#?}");
    }
    // On a handful of rows PostgreSQL takes any index on `site_id`; without the other two (dropped
    // inside the rolled-back transaction) the plan shows whether this one applies.
    let pg_setup =
        ["SET LOCAL enable_seqscan = off", "DROP INDEX idx_threats_site_subject_at", "DROP INDEX idx_threats_site_at"];
    for (sql, values, index) in cases {
        let plan = query_plan(db, &sql, values, &pg_setup).await;
        assert!(plan.iter().any(|line| line.contains(index)), "{index} not used: {plan:#?}");
    }
}

#[tokio::test]
async fn overview_and_geography_verdict_numbers_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    threat_reads(format!("sqlite://{}/t.db?mode=rwc", dir.path().display())).await;
}

#[tokio::test]
async fn overview_and_geography_verdict_numbers_on_postgres() {
    let Some(url) = pg::fresh_database_or_skip("PostgreSQL verdict read test").await else { return };
    threat_reads(url).await;
}

/// The Sessions list filtered by decision and rule reads the verdicts newest first a page at a
/// time: 2,600 sessions, each with one verdict just after its start, the 300 oldest blocked, so
/// the blocked ones lie behind the first page of verdicts. One more session started before all of
/// them and was blocked after all of them: it comes last (sessions are listed by start), and a
/// session blocked and then allowed is not blocked (unless a rule is asked for that only the
/// block names).
async fn sessions_filtered_by_verdict(url: String) {
    let db = storage::connect(&DatabaseUrl::new(url)).await.unwrap();
    storage::migrate(&db).await.unwrap();
    let now = now_ms();
    let (site, scope) = tenant(&db, "filters.example").await;
    let id = |i: i64| site * 10_000 + i;
    let start = |i: i64| now - HOUR - i * 1_000;
    let (mut sessions, mut verdicts) = (Vec::new(), Vec::new());
    for i in 0..2_600 {
        sessions.push(format!(
            "({}, {site}, {}, {}, {}, 1, 1, '/', '/', NULL, 'GB', 'Chrome', 'Linux', 'desktop', FALSE, 0, TRUE)",
            id(i),
            id(i),
            start(i),
            start(i) + 500
        ));
        let decision = if i >= 2_300 { "BLOCK" } else { "CHALLENGE" };
        let reasons = if i % 2 == 1 { CARD } else { RATE };
        verdicts.push(format!(
            "({site}, 'session:{}', '{decision}', 70, '{reasons}', '[]', 3600, {}, {})",
            id(i),
            start(i) + 500,
            start(i) + 500
        ));
    }
    let late = id(9_000);
    sessions.push(format!(
        "({late}, {site}, {late}, {}, {now}, 1, 1, '/', '/', NULL, 'GB', 'Chrome', 'Linux', 'desktop', FALSE, 0, TRUE)",
        start(5_000)
    ));
    verdicts.push(format!("({site}, 'session:{late}', 'BLOCK', 90, '{CARD}', '[]', 3600, {now}, {now})"));
    for chunk in sessions.chunks(500) {
        db.execute_unprepared(&format!(
            "INSERT INTO sessions (id, site_id, visitor_id, started_at, last_seen_at, pageviews, events, entry_path, \
                 exit_path, referrer_host, country, browser, os, device, automated, net_flags, consent) VALUES {}",
            chunk.join(", ")
        ))
        .await
        .unwrap();
    }
    for chunk in verdicts.chunks(500) {
        db.execute_unprepared(&format!(
            "INSERT INTO threats (site_id, subject, decision, score, reasons, evidence, ttl_secs, at, created_at) VALUES {}",
            chunk.join(", ")
        ))
        .await
        .unwrap();
    }
    // Blocked first (1 h 50 min before the 2,300th session started), allowed after.
    verdict(&db, site, &format!("session:{}", id(2_301)), "ALLOW", "[]", 60, start(2_301) + 900).await;

    let list_in = |range: Option<Range>, decision: Option<&str>, rule: Option<&str>, limit: u64| {
        let filter = panel::SessionFilter {
            range,
            decision: decision.map(str::to_owned),
            rule: rule.map(str::to_owned),
            country: None,
            device: None,
            limit,
        };
        let db = &db;
        async move { panel::sessions(db, scope, &filter).await.unwrap() }
    };
    let list = |decision: Option<&str>, rule: Option<&str>, limit: u64| list_in(None, decision, rule, limit);
    let ids = |rows: &[(ghosttrack::storage::entities::sessions::Model, Option<_>)]| {
        rows.iter().map(|(s, _)| s.id.0 - site * 10_000).collect::<Vec<i64>>()
    };

    let blocked = list(Some("BLOCK"), None, 10).await;
    assert_eq!(ids(&blocked), [2_300, 2_302, 2_303, 2_304, 2_305, 2_306, 2_307, 2_308, 2_309, 2_310]);
    assert!(
        blocked.iter().all(|(_, v)| v.as_ref().is_some_and(|v| v.decision == "BLOCK" && v.reasons.contains("rule")))
    );
    let all_blocked = list(Some("BLOCK"), None, 1_000).await;
    assert_eq!(all_blocked.len(), 300, "299 of the 300 oldest, and the late one");
    assert_eq!(ids(&all_blocked).last(), Some(&9_000));
    // With a rule, a session's latest verdict naming it decides: the ALLOW names no rule.
    let card_blocked = list(Some("BLOCK"), Some("card/decline-burst"), 3).await;
    assert_eq!(ids(&card_blocked), [2_301, 2_303, 2_305]);
    let rate = list(None, Some("rate/burst"), 2).await;
    assert_eq!(ids(&rate), [0, 2]);
    assert_eq!(rate[0].1.as_ref().map(|v| v.decision.as_str()), Some("CHALLENGE"));
    // A range holds sessions started in it: the late session's verdict is in it, its start is not.
    let started = list_in(Some(range(start(2_310), start(2_300) + 1)), Some("BLOCK"), None, 100).await;
    assert_eq!(ids(&started), [2_300, 2_302, 2_303, 2_304, 2_305, 2_306, 2_307, 2_308, 2_309, 2_310]);
}

#[tokio::test]
async fn sessions_filtered_by_verdict_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    sessions_filtered_by_verdict(format!("sqlite://{}/f.db?mode=rwc", dir.path().display())).await;
}

#[tokio::test]
async fn sessions_filtered_by_verdict_on_postgres() {
    let Some(url) = pg::fresh_database_or_skip("PostgreSQL session filter test").await else { return };
    sessions_filtered_by_verdict(url).await;
}
