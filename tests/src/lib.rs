//! Test harness shared by the end-to-end tests: the real server on port 0 with a fresh
//! database (SQLite by default, PostgreSQL when `GHOSTTRACK_TEST_DATABASE_URL` is set for the
//! tests that ask for it), the MaxMind test databases, and helpers to talk to it.

use std::path::PathBuf;
use std::time::Duration;

use ghosttrack::settings::{DatabaseUrl, Settings};
use ghosttrack::startup::Application;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub mod logs;
pub mod pg;

/// Workspace root (tests read fixtures and run node from here).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("workspace root")
}

pub fn maxmind(name: &str) -> PathBuf {
    workspace_root().join("tests/data/maxmind").join(name)
}

/// A running GhostTrack server.
pub struct TestApp {
    pub base_url: String,
    pub client: reqwest::Client,
    /// A separate connection to the same database, for assertions.
    pub db: DatabaseConnection,
    pub settings: Settings,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

/// Where a test's database lives.
pub enum TestDb {
    Sqlite,
    Postgres(String),
}

pub struct Spawn {
    db: TestDb,
    configure: Box<dyn FnOnce(&mut Settings) + Send>,
}

impl Default for Spawn {
    fn default() -> Self {
        Spawn { db: TestDb::Sqlite, configure: Box::new(|_| {}) }
    }
}

impl Spawn {
    pub fn database(mut self, db: TestDb) -> Self {
        self.db = db;
        self
    }

    pub fn configure(mut self, f: impl FnOnce(&mut Settings) + Send + 'static) -> Self {
        self.configure = Box::new(f);
        self
    }

    pub async fn start(self) -> TestApp {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        logs::install();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = Settings {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_owned(),
            demo_site: false,
            geoip_city: Some(maxmind("GeoIP2-City-Test.mmdb")),
            geoip_asn: Some(maxmind("GeoLite2-ASN-Test.mmdb")),
            geoip_anonymous: Some(maxmind("GeoIP2-Anonymous-IP-Test.mmdb")),
            // Tests send X-Forwarded-For from loopback to pose as clients from anywhere.
            trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
            // A stand-in panel build, so tests of /app do not depend on `cargo xtask dist`
            // (the browser tests point this at web/dist).
            panel: ghosttrack::settings::PanelSettings {
                dist_dir: workspace_root().join("tests/fixtures/panel-dist"),
                ..Default::default()
            },
            // Tests pose as many clients from a few networks at machine speed; the rate-limit
            // tests turn the limits on themselves.
            rate_limit: ghosttrack::settings::RateLimitSettings { enabled: false, ..Default::default() },
            database_url: match &self.db {
                TestDb::Sqlite => None,
                TestDb::Postgres(url) => Some(DatabaseUrl::new(url.clone())),
            },
            ..Settings::default()
        };
        (self.configure)(&mut settings);
        register_secrets(&settings);

        let app = Application::build(settings.clone()).await.expect("application builds");
        let addr = app.local_addr();
        settings.listen = addr;
        let db = Database::connect(settings.database_url().expose()).await.expect("assertion connection");
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        TestApp {
            base_url: format!("http://{addr}"),
            client: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap(),
            db,
            settings,
            shutdown: Some(tx),
            server: Some(server),
            _dir: dir,
        }
    }
}

/// The configured secret values the log scan looks for (`logs`).
fn register_secrets(settings: &Settings) {
    let billing = &settings.billing;
    for secret in [
        &settings.secret_key,
        &settings.secret_key_previous,
        &settings.shopify_api_secret,
        &settings.shopify_api_secret_previous,
        &settings.alerts.smtp_password,
        &billing.stripe_secret_key,
        &billing.stripe_webhook_secret,
        &billing.stripe_webhook_secret_previous,
    ]
    .into_iter()
    .flatten()
    {
        logs::register_secret(secret.expose());
    }
}

impl Drop for TestApp {
    /// Every test's server logs are checked when it ends (a test that already failed is not
    /// failed twice).
    fn drop(&mut self) {
        if !std::thread::panicking() {
            logs::assert_clean();
        }
    }
}

/// Boots the server on SQLite with default test settings.
pub async fn spawn_app() -> TestApp {
    Spawn::default().start().await
}

/// A site created through the storage layer, with its secret token.
pub struct TestSite {
    pub key: String,
    pub token: String,
    pub id: i64,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub async fn create_site(&self, domain: &str) -> TestSite {
        let (site, token) =
            ghosttrack::storage::sites::create(&self.db, domain, ghosttrack::storage::sites::SiteKind::Standalone)
                .await
                .expect("create site");
        TestSite { key: site.key.to_string(), token: token.expose().to_owned(), id: site.id.0 }
    }

    /// POSTs a collect body as `text/plain` (what the tracker sends) from a client IP.
    pub async fn collect(&self, body: &str, client_ip: &str, user_agent: &str) -> reqwest::Response {
        self.client
            .post(self.url("/collect"))
            .header("content-type", "text/plain;charset=UTF-8")
            .header("x-forwarded-for", client_ip)
            .header("user-agent", user_agent)
            .body(body.to_owned())
            .send()
            .await
            .expect("collect request")
    }

    pub async fn count(&self, sql: &str) -> i64 {
        let backend = self.db.get_database_backend();
        let row = self
            .db
            .query_one_raw(sea_orm::Statement::from_string(backend, sql.to_owned()))
            .await
            .expect("count query")
            .expect("one row");
        // PostgreSQL keeps INT4 and INT8 apart; SQLite has one integer type.
        row.try_get_by_index::<i64>(0)
            .or_else(|_| row.try_get_by_index::<i32>(0).map(i64::from))
            .expect("integer result")
    }

    /// Stops the server gracefully and waits until every buffer is drained.
    pub async fn stop(mut self) -> DatabaseConnection {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server stopped cleanly");
        }
        self.db.clone()
    }
}

/// How many times [`install_by_reloading`] loads the app before it gives up.
pub const INSTALL_ATTEMPTS: usize = 3;

/// Installs `shop` the way a merchant does: an embedded load of the app, made by `load` (with a
/// freshly minted id token each time, as a reload of the admin would), until it answers 200. A
/// 503 page asks the merchant to try again (the install did not complete, nothing is
/// half-written); on a fully loaded CI machine the token exchange has, rarely, needed that, so a
/// 503 is retried after a second, up to [`INSTALL_ATTEMPTS`] loads. Any other status, or a 503
/// every time, fails the test with the last answer.
pub async fn install_by_reloading<F, Fut>(shop: &str, mut load: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = reqwest::Response>,
{
    let mut last = String::new();
    for attempt in 1..=INSTALL_ATTEMPTS {
        let resp = load().await;
        let status = resp.status();
        if status == 200 {
            return;
        }
        last = format!("{status}: {}", resp.text().await.unwrap_or_default());
        assert_eq!(status, 503, "install {shop}: {last}");
        eprintln!("install {shop}: attempt {attempt} answered {last}; trying again");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    panic!("install {shop} failed {INSTALL_ATTEMPTS} times: {last}");
}

/// A batch as the tracker sends it, with `events` already JSON.
pub fn batch(site_key: &str, url: &str, events: &[String]) -> String {
    let now = now_ms();
    format!(r#"{{"k":"{site_key}","v":1,"s":{now},"u":"{url}","c":1,"e":[{}]}}"#, events.join(","))
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

pub fn pageview(ts: i64, referrer: &str) -> String {
    format!(r#"{{"t":"pv","ts":{ts},"r":"{referrer}","ti":"A page","pt":"product"}}"#)
}

pub const CHROME_UA: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/// The query plan of `sql` (written with `?` placeholders) as text lines: SQLite's
/// `EXPLAIN QUERY PLAN` details or PostgreSQL's `EXPLAIN` lines. On PostgreSQL, `pg_setup`
/// statements (e.g. `SET LOCAL enable_seqscan = off`, or dropping competing indexes) run first in
/// the same transaction, which is rolled back, so tests can ask whether an index applies at all on
/// a handful of rows.
pub async fn query_plan(
    db: &DatabaseConnection,
    sql: &str,
    values: Vec<sea_orm::Value>,
    pg_setup: &[&str],
) -> Vec<String> {
    use sea_orm::{DbBackend, TransactionTrait};
    let backend = db.get_database_backend();
    let explain = match backend {
        DbBackend::Postgres => format!("EXPLAIN {sql}"),
        _ => format!("EXPLAIN QUERY PLAN {sql}"),
    };
    let txn = db.begin().await.unwrap();
    if backend == DbBackend::Postgres {
        for statement in pg_setup {
            txn.execute_unprepared(statement).await.unwrap();
        }
    }
    // The backend's own statement builder numbers the placeholders for PostgreSQL.
    let rows = txn.query_all_raw(ghosttrack::storage::rollups::stmt(&txn, &explain, values)).await.unwrap();
    txn.rollback().await.unwrap();
    rows.iter()
        .map(|r| match backend {
            DbBackend::Postgres => r.try_get_by_index::<String>(0).unwrap(),
            _ => r.try_get::<String>("", "detail").unwrap(),
        })
        .collect()
}
