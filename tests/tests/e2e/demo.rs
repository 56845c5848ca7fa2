//! `ghosttrack demo`: a short run against an in-process fake Shopify must leave what the
//! dashboard shows: sessions (people and bots), the demo shop installed, and threats from the
//! simulated card testing and scraping.

use std::time::Duration;

use fake_shopify::{AppRegistration, FakeShopify};
use ghosttrack::demo::{self, DemoOptions};
use ghosttrack::settings::Settings;
use ghosttrack_tests::workspace_root;
use sea_orm::{ConnectionTrait, Database, Statement};

async fn count(db: &sea_orm::DatabaseConnection, sql: &str) -> i64 {
    let row =
        db.query_one_raw(Statement::from_string(db.get_database_backend(), sql.to_owned())).await.unwrap().unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

#[tokio::test]
async fn a_short_demo_run_leaves_sessions_bots_and_threats_for_the_dashboard() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let fake =
        FakeShopify::start(AppRegistration::new(demo::API_KEY, demo::API_SECRET), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut settings =
        Settings { listen: "127.0.0.1:0".parse().unwrap(), data_dir: dir.path().to_owned(), ..Settings::default() };
    settings.panel.dist_dir = workspace_root().join("tests/fixtures/panel-dist");
    let options = DemoOptions {
        fake: demo::FakeShopify::Running(fake.base_url.clone()),
        // Long enough for the card-testing burst (from 8 s) and the scraper (from 15 s).
        duration: Some(Duration::from_secs(40)),
    };
    demo::run(settings, options, std::future::pending()).await.expect("the demo runs and stops");

    let url = format!("sqlite://{}?mode=ro", dir.path().join("demo/ghosttrack.db").display());
    let db = Database::connect(url).await.unwrap();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM shops WHERE domain = 'demo-shop.myshopify.com'").await, 1);
    let sessions = count(&db, "SELECT COUNT(*) FROM sessions").await;
    assert!(sessions >= 10, "{sessions} sessions");
    let automated = count(&db, "SELECT COUNT(*) FROM sessions WHERE automated").await;
    assert!(automated >= 1 && automated < sessions, "{automated} of {sessions} sessions automated");
    let threats = count(&db, "SELECT COUNT(*) FROM threats WHERE decision <> 'ALLOW'").await;
    assert!(threats >= 2, "{threats} threats");
    let card = count(&db, "SELECT COUNT(*) FROM threats WHERE reasons LIKE '%card/ct%'").await;
    assert!(card >= 1, "no card-testing threat");
    let scraping = count(
        &db,
        "SELECT COUNT(*) FROM threats WHERE reasons LIKE '%scrape/%' OR reasons LIKE '%automation-library%'",
    )
    .await;
    assert!(scraping >= 1, "no scraper threat");
    let failed_payments = count(&db, "SELECT COUNT(*) FROM shopify_payment_attempts").await;
    assert!(failed_payments >= 10, "{failed_payments} payment attempts stored");
}
