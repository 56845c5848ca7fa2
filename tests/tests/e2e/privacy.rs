//! Privacy end to end: the retention job per mode (raw events, pointer paths of unflagged and
//! flagged sessions), per-visitor export and deletion, tenant isolation — on SQLite and, when
//! `GHOSTTRACK_TEST_DATABASE_URL` is set, PostgreSQL. Time passing is a later `now` for the job.

use ghosttrack::domain::{PrivacyMode, UnixMillis, VisitorId};
use ghosttrack::settings::PrivacySettings;
use ghosttrack::storage::{TenantScope, privacy, sites};
use ghosttrack_tests::{CHROME_UA, Spawn, TestApp, TestDb, TestSite, batch, now_ms, pageview, pg};
use sea_orm::ConnectionTrait;

const HOUR: i64 = 3_600_000;

async fn scope(app: &TestApp, site: &TestSite) -> TenantScope {
    let token = ghosttrack::domain::ApiToken::from_presented(&site.token);
    sites::authenticate_token(&app.db, &token).await.unwrap().unwrap().0
}

/// One visit from `ip`: a pageview and a pointer path. Returns its visitor and session ids.
async fn visit(app: &TestApp, site: &TestSite, ip: &str, at: i64) -> (i64, i64) {
    let before = count(app, site, "pp").await;
    let pp = format!(r#"{{"t":"pp","ts":{},"p":[16,3,4,16,5,6,16,2,1]}}"#, at + 1);
    let body = batch(&site.key, "https://shop.example/p/1", &[pageview(at, ""), pp]);
    assert_eq!(app.collect(&body, ip, CHROME_UA).await.status(), 202);
    for _ in 0..200 {
        if count(app, site, "pp").await > before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let sql = format!(
        "SELECT visitor_id, session_id FROM events WHERE site_id = {} AND kind = 'pp' ORDER BY id DESC LIMIT 1",
        site.id
    );
    let backend = app.db.get_database_backend();
    let row = app.db.query_one_raw(sea_orm::Statement::from_string(backend, sql)).await.unwrap().expect("stored");
    (row.try_get_by_index(0).unwrap(), row.try_get_by_index(1).unwrap())
}

async fn count(app: &TestApp, site: &TestSite, kind: &str) -> i64 {
    app.count(&format!("SELECT COUNT(*) FROM events WHERE site_id = {} AND kind = '{kind}'", site.id)).await
}

async fn flag(app: &TestApp, site: &TestSite, session: i64, at: i64) {
    app.db
        .execute_unprepared(&format!(
            "INSERT INTO threats (site_id, subject, decision, score, reasons, evidence, ttl_secs, at, created_at) \
             VALUES ({}, 'session:{session}', 'BLOCK', 90, '[]', '[]', 3600, {at}, {at})",
            site.id
        ))
        .await
        .unwrap();
}

async fn retention_story(db: TestDb) {
    // Detection off: the test flags sessions itself.
    let app = Spawn::default().database(db).configure(|s| s.detect.enabled = false).start().await;
    let balanced = app.create_site("balanced.example").await;
    let forensic = app.create_site("forensic.example").await;
    assert!(privacy::set_mode(&app.db, scope(&app, &forensic).await, PrivacyMode::Forensic).await.unwrap());
    let t = now_ms();
    let (_, calm) = visit(&app, &balanced, "81.2.69.142", t).await;
    let (_, flagged) = visit(&app, &balanced, "1.128.0.1", t).await;
    assert_ne!(calm, flagged);
    flag(&app, &balanced, flagged, t).await;
    visit(&app, &forensic, "81.2.69.142", t).await;
    let settings = PrivacySettings::default();
    let sweep = |hours_later: i64| {
        let db = app.db.clone();
        let settings = settings.clone();
        async move {
            let billing = ghosttrack::billing::settings::BillingSettings::default();
            ghosttrack::privacy::sweep(&db, &settings, &billing, UnixMillis(t + hours_later * HOUR)).await.unwrap()
        }
    };

    // Within a day nothing is due.
    assert_eq!(sweep(2).await, ghosttrack::privacy::Swept::default());
    assert_eq!(count(&app, &balanced, "pp").await, 2);

    // After 24 h the unflagged session's pointer path goes; the flagged one's stays; forensic keeps all.
    assert_eq!(sweep(25).await.pointer_paths, 1);
    let kept = format!("SELECT COUNT(*) FROM events WHERE kind = 'pp' AND session_id = {flagged}");
    assert_eq!(app.count(&kept).await, 1);
    assert_eq!(count(&app, &forensic, "pp").await, 1);
    assert_eq!(count(&app, &balanced, "pv").await, 2);

    // After 7 days the flagged pointer path goes too; pageviews stay.
    assert_eq!(sweep(8 * 24).await.pointer_paths, 1);
    assert_eq!(count(&app, &balanced, "pp").await, 0);
    assert_eq!(count(&app, &balanced, "pv").await, 2);

    // Forensic sites keep everything, for a shorter time (30 days); balanced ones for 90.
    let swept = sweep(31 * 24).await;
    assert_eq!((swept.events, count(&app, &forensic, "pv").await), (2, 0));
    assert_eq!(count(&app, &balanced, "pv").await, 2);
    assert_eq!(sweep(91 * 24).await.events, 2);
    assert_eq!(app.count("SELECT COUNT(*) FROM events").await, 0);
    // Idempotent: a second pass (or another node's) finds nothing.
    assert_eq!(sweep(91 * 24).await, ghosttrack::privacy::Swept::default());
    // Sessions and verdicts are not raw events: the statistics survive.
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 3);
}

#[tokio::test]
async fn retention_deletes_raw_events_and_pointer_paths_per_privacy_mode_on_sqlite() {
    retention_story(TestDb::Sqlite).await;
}

#[tokio::test]
async fn retention_deletes_raw_events_and_pointer_paths_per_privacy_mode_on_postgresql() {
    let Some(url) = pg::fresh_database_or_skip("PostgreSQL retention test").await else { return };
    retention_story(TestDb::Postgres(url)).await;
}

#[tokio::test]
async fn one_visitor_is_exported_and_deleted_without_touching_others_or_other_tenants() {
    let app = Spawn::default().configure(|s| s.detect.enabled = false).start().await;
    let a = app.create_site("a.example").await;
    let b = app.create_site("b.example").await;
    let t = now_ms();
    let (visitor, session) = visit(&app, &a, "81.2.69.142", t).await;
    let (other, _) = visit(&app, &a, "1.128.0.1", t).await;
    flag(&app, &a, session, t).await;

    let export = privacy::export_visitor(&app.db, scope(&app, &a).await, VisitorId(visitor)).await.unwrap();
    assert_eq!(export.sessions.len(), 1);
    assert_eq!(export.events.len(), 2);
    assert_eq!(export.threats.len(), 1);
    assert!(export.sessions[0].ip_prefix.as_deref().is_none_or(|p| p.ends_with(".0/24")), "never a full IP");
    let text = serde_json::to_string(&export).unwrap();
    assert!(!text.contains("81.2.69.142"));

    // Another tenant cannot see or delete it.
    let b_scope = scope(&app, &b).await;
    assert!(privacy::export_visitor(&app.db, b_scope, VisitorId(visitor)).await.unwrap().is_empty());
    assert_eq!(privacy::delete_visitor(&app.db, b_scope, VisitorId(visitor)).await.unwrap(), Default::default());

    let deleted = privacy::delete_visitor(&app.db, scope(&app, &a).await, VisitorId(visitor)).await.unwrap();
    assert_eq!((deleted.events, deleted.sessions, deleted.visitors, deleted.threats), (2, 1, 1, 1));
    assert!(privacy::export_visitor(&app.db, scope(&app, &a).await, VisitorId(visitor)).await.unwrap().is_empty());
    let left = privacy::export_visitor(&app.db, scope(&app, &a).await, VisitorId(other)).await.unwrap();
    assert_eq!(left.events.len(), 2);
}

#[tokio::test]
async fn with_plans_enforced_the_plan_retention_caps_the_mode() {
    use ghosttrack::billing::settings::BillingSettings;
    let app = Spawn::default().configure(|s| s.detect.enabled = false).start().await;
    let site = app.create_site("plan.example").await;
    let t = now_ms();
    visit(&app, &site, "81.2.69.142", t).await;
    let events = app.count(&format!("SELECT COUNT(*) FROM events WHERE site_id = {}", site.id)).await;
    assert!(events >= 2, "{events}");
    let settings = PrivacySettings::default();
    // Eight days on: the balanced mode keeps raw events 90 days, the Free plan 7.
    let later = UnixMillis(t + 8 * 24 * HOUR);
    let self_hosted = BillingSettings::default();
    let swept = ghosttrack::privacy::sweep(&app.db, &settings, &self_hosted, later).await.unwrap();
    // (Only the unflagged pointer path, past its 24 h.)
    assert_eq!((swept.events, swept.pointer_paths), (0, 1));
    let hosted = BillingSettings { enabled: true, ..BillingSettings::default() };
    let swept = ghosttrack::privacy::sweep(&app.db, &settings, &hosted, later).await.unwrap();
    assert_eq!(swept.events, events as u64 - 1);
    assert_eq!(app.count(&format!("SELECT COUNT(*) FROM events WHERE site_id = {}", site.id)).await, 0);
    app.stop().await;
}
