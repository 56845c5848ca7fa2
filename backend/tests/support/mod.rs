//! What the process-level tests share: `ghosttrack` child processes (stopped on drop, logs kept
//! in a file), a fresh PostgreSQL database, `/metrics` reads and free ports.
#![allow(dead_code)] // each test binary uses its own part of this module

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `ghosttrack` with a clean environment plus `env`.
pub fn ghosttrack(env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ghosttrack"));
    cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("RUST_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Creates a site; returns (site key, API token).
pub fn add_site(env: &[(String, String)], domain: &str) -> (String, String) {
    let out = ghosttrack(env).args(["site", "add", "--domain", domain, "--json"]).output().unwrap();
    assert!(out.status.success(), "site add: {}", String::from_utf8_lossy(&out.stderr));
    let site: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (site["site_key"].as_str().unwrap().to_owned(), site["api_token"].as_str().unwrap().to_owned())
}

/// A running `ghosttrack serve`; stopped (SIGTERM, then reaped) on drop.
pub struct Node {
    pub child: Child,
    /// `127.0.0.1:PORT`
    pub addr: String,
    pub log: PathBuf,
}

impl Node {
    /// Starts `serve` with `env` (which should set `GHOSTTRACK_LISTEN`, e.g. to port 0) and waits
    /// until it prints its address. Logs (stderr) go to `log`.
    pub fn start(env: &[(String, String)], log: &Path) -> Node {
        let file = std::fs::File::create(log).unwrap();
        let mut child = ghosttrack(env).arg("serve").stdout(Stdio::piped()).stderr(file).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let addr = lines
            .by_ref()
            .take(40)
            .map_while(Result::ok)
            .find_map(|line| line.strip_prefix("GhostTrack is serving on http://").map(|a| a.trim().to_owned()));
        // Keep reading stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let node = Node { child, addr: addr.unwrap_or_default(), log: log.to_owned() };
        assert!(!node.addr.is_empty(), "node did not start: {}", node.logs());
        node
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the process is still running (it did not panic or exit).
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Graceful stop (SIGTERM: drains buffered events), waiting for the exit.
    pub fn stop(&mut self) {
        if !self.is_running() {
            return;
        }
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The value of an unlabelled metric (e.g. `ghosttrack_ingest_events_accepted_total`).
pub async fn metric(client: &reqwest::Client, base: &str, name: &str) -> f64 {
    let text = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')).map(|v| v.trim().parse().unwrap()))
        .unwrap_or_else(|| panic!("metric {name} not exposed"))
}

/// Polls `check` every 100 ms for up to `limit`; panics with `what` when it never holds.
pub async fn wait_for<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("gave up waiting for {what}");
}

/// A fresh database `gt_test_*` on the server of `GHOSTTRACK_TEST_DATABASE_URL`; its URL.
pub async fn fresh_postgres_database(server: &str) -> String {
    use sea_orm::{ConnectionTrait, Database};
    let name = format!("gt_test_{:016x}", rand::random::<u64>());
    let admin = Database::connect(server).await.unwrap();
    admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
    let _ = admin.close().await;
    let mut url = url::Url::parse(server).unwrap();
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// One integer from a query on PostgreSQL or SQLite (sea-orm URL).
pub async fn query_i64(url: &str, sql: &str) -> i64 {
    use sea_orm::{ConnectionTrait, Database, Statement};
    let db = Database::connect(url).await.unwrap();
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
    let value = row.try_get_by_index::<i64>(0).unwrap();
    let _ = db.close().await;
    value
}

pub fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}
