//! The storage "story": one scenario through the whole server, run on SQLite and, when
//! `GHOSTTRACK_TEST_DATABASE_URL` is set, on PostgreSQL, so both backends stay honest.

use ghosttrack_tests::{CHROME_UA, Spawn, TestDb, batch, now_ms, pageview, pg};
use serde_json::Value;

/// RFC 3339 of now ± `days`.
fn day(days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(days)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

async fn story(db: TestDb, url: String) {
    let spawn = |url: String| {
        let db = match &db {
            TestDb::Sqlite => TestDb::Sqlite,
            TestDb::Postgres(_) => TestDb::Postgres(url.clone()),
        };
        Spawn::default().database(db).configure(move |s| {
            s.database_url = Some(ghosttrack::settings::DatabaseUrl::new(url));
        })
    };

    // Day one: two sites, a person and a script on A, one visit on B, one garbage request.
    let app = spawn(url.clone()).start().await;
    let a = app.create_site("a.example").await;
    let b = app.create_site("b.example").await;
    let now = now_ms();
    app.collect(
        &batch(&a.key, "https://a.example/", &[pageview(now - 60_000, "https://news.example/")]),
        "81.2.69.142",
        CHROME_UA,
    )
    .await;
    app.collect(&batch(&a.key, "https://a.example/pricing", &[pageview(now - 30_000, "")]), "81.2.69.142", CHROME_UA)
        .await;
    app.collect(&batch(&a.key, "https://a.example/", &[pageview(now, "")]), "1.128.0.1", "python-requests/2.32").await;
    app.collect(&batch(&b.key, "https://b.example/", &[pageview(now, "")]), "81.2.69.142", CHROME_UA).await;
    assert_eq!(app.collect("{broken", "81.2.69.142", CHROME_UA).await.status(), 400);

    let stats = |app: &ghosttrack_tests::TestApp, key: &str, token: &str| {
        let req = app
            .client
            .get(app.url(&format!("/api/v1/stats?site={key}&from={}&to={}", day(-30), day(1))))
            .bearer_auth(token);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let a_stats = stats(&app, &a.key, &a.token).await;
    assert_eq!(
        (a_stats["visitors"].as_i64(), a_stats["sessions"].as_i64(), a_stats["pageviews"].as_i64()),
        (Some(2), Some(2), Some(3))
    );
    assert_eq!(a_stats["automated_share"], 0.5);
    assert_eq!(stats(&app, &b.key, &b.token).await["pageviews"], 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM daily_salts").await, 1);

    // A graceful stop writes the drop counters.
    let db = app.stop().await;
    drop(db);

    // After a restart the person's open session continues instead of starting anew.
    let app = spawn(url.clone()).start().await;
    assert_eq!(
        app.count("SELECT count FROM drop_counters WHERE site_id = 0 AND reason = 'malformed_payload'").await,
        1
    );
    app.collect(&batch(&a.key, "https://a.example/checkout", &[pageview(now_ms(), "")]), "81.2.69.142", CHROME_UA)
        .await;
    let a_stats = stats(&app, &a.key, &a.token).await;
    assert_eq!(a_stats["sessions"], 2, "the session was restored, not restarted");
    assert_eq!(a_stats["pageviews"], 4);
    assert_eq!(app.count("SELECT pageviews FROM sessions WHERE exit_path = '/checkout' AND entry_path = '/'").await, 3);
    app.stop().await;
}

#[tokio::test]
async fn storage_story_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    story(TestDb::Sqlite, format!("sqlite://{}/story.db?mode=rwc", dir.path().display())).await;
}

#[tokio::test]
async fn storage_story_on_postgres() {
    let Some(url) = pg::fresh_database_or_skip("PostgreSQL story").await else { return };
    story(TestDb::Postgres(url.clone()), url).await;
}
