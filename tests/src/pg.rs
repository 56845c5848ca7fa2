//! Fresh PostgreSQL databases for tests, on the server named by `GHOSTTRACK_TEST_DATABASE_URL`.

use sea_orm::{ConnectionTrait, Database};

/// The server URL, when PostgreSQL tests are enabled.
pub fn server_url() -> Option<String> {
    std::env::var("GHOSTTRACK_TEST_DATABASE_URL").ok().filter(|s| !s.is_empty())
}

/// A fresh database's URL, or `None` (saying so on stderr, naming `what` did not run) when
/// PostgreSQL tests are not enabled.
pub async fn fresh_database_or_skip(what: &str) -> Option<String> {
    let Some(server) = server_url() else {
        eprintln!("GHOSTTRACK_TEST_DATABASE_URL not set: {what} not run");
        return None;
    };
    Some(fresh_database(&server).await)
}

/// Creates an empty database `gt_test_<random>` and returns its URL.
pub async fn fresh_database(server: &str) -> String {
    let name = format!("gt_test_{:016x}", rand::random::<u64>());
    let admin = Database::connect(server).await.expect("connect to GHOSTTRACK_TEST_DATABASE_URL");
    admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create test database");
    let _ = admin.close().await;
    let mut url = url::Url::parse(server).expect("GHOSTTRACK_TEST_DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}
