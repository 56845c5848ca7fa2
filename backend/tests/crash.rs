//! `kill -9` under load: every event the server acknowledged (202) is in the database after a
//! restart, on SQLite (the dedicated writer) and, when `GHOSTTRACK_TEST_DATABASE_URL` is set, on
//! PostgreSQL (the UNNEST writer).

use std::collections::HashSet;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

const CLIENTS: usize = 16;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn ghosttrack(env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ghosttrack"));
    cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

async fn wait_healthy(base: &str) {
    for _ in 0..200 {
        if reqwest::get(format!("{base}/health")).await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server at {base} did not become healthy");
}

/// Runs the scenario against one database; returns (acknowledged request ids, stored ids).
async fn crash_under_load(database_url: String, count_rows: impl Fn(&str) -> HashSet<String>) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let env = vec![
        ("GHOSTTRACK_DATA_DIR", dir.path().display().to_string()),
        ("GHOSTTRACK_DATABASE_URL", database_url.clone()),
        ("GHOSTTRACK_LISTEN", format!("127.0.0.1:{port}")),
        ("GHOSTTRACK_DEMO_SITE", "false".into()),
    ];
    let out = ghosttrack(&env).args(["site", "add", "--domain", "crash.example", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let site: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = site["site_key"].as_str().unwrap().to_owned();

    let mut server: Child = ghosttrack(&env).arg("serve").stdout(Stdio::null()).spawn().unwrap();
    wait_healthy(&base).await;

    // Clients post 3-event batches with a unique page path each and remember what got a 202.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (client, acked, key, base) = (client.clone(), acked.clone(), key.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            for n in 0.. {
                let id = format!("c{c}n{n}");
                let ts = now_ms();
                let body = format!(
                    r#"{{"k":"{key}","v":1,"s":{ts},"u":"https://crash.example/r/{id}","e":[{{"t":"pv","ts":{ts}}},{{"t":"cl","ts":{ts},"x":1,"y":2}},{{"t":"ix","ts":{ts},"kc":1}}]}}"#
                );
                let sent = client
                    .post(format!("{base}/collect"))
                    .header("content-type", "application/json")
                    .header("user-agent", format!("crash-test-client/{c}"))
                    .body(body)
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 202 => acked.lock().push(id),
                    Ok(_) => {}
                    Err(_) => break, // the server is gone
                }
            }
        }));
    }
    // Let load build up, then kill without warning: no drain, no graceful shutdown.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill().unwrap();
    server.wait().unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    let acked: Vec<String> = acked.lock().clone();
    assert!(acked.len() > 100, "load was real: only {} requests acknowledged before the kill", acked.len());
    eprintln!("{} requests (×3 events) acknowledged before kill -9", acked.len());

    // Restart on the same database: it must open (WAL recovery) and serve.
    let mut restarted = ghosttrack(&env).arg("serve").stdout(Stdio::null()).spawn().unwrap();
    wait_healthy(&base).await;
    restarted.kill().unwrap();
    restarted.wait().unwrap();

    let stored = count_rows(&database_url);
    let missing: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged requests lost, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
}

/// Request ids whose three events are all stored.
const COMPLETE_REQUESTS: &str =
    "SELECT substr(path, 4) FROM events WHERE path LIKE '/r/%' GROUP BY path HAVING COUNT(*) = 3";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_every_acknowledged_event_through_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("crash.db");
    let url = format!("sqlite://{}?mode=rwc", file.display());
    crash_under_load(url, move |_| {
        let conn = rusqlite::Connection::open(&file).unwrap();
        let mut stmt = conn.prepare(COMPLETE_REQUESTS).unwrap();
        stmt.query_map([], |row| row.get::<_, String>(0)).unwrap().map(Result::unwrap).collect()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keeps_every_acknowledged_event_through_kill_9() {
    let Some(server) = std::env::var("GHOSTTRACK_TEST_DATABASE_URL").ok().filter(|s| !s.is_empty()) else {
        eprintln!("skipped: set GHOSTTRACK_TEST_DATABASE_URL to run the PostgreSQL crash test");
        return;
    };
    use sea_orm::{ConnectionTrait, Database};
    let name = format!("gt_test_{:016x}", rand::random::<u64>());
    let admin = Database::connect(&server).await.unwrap();
    admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
    let mut url = url::Url::parse(&server).unwrap();
    url.set_path(&format!("/{name}"));
    let url = url.to_string();
    let rows = {
        let url = url.clone();
        move |_: &str| {
            let url = url.clone();
            std::thread::spawn(move || {
                tokio::runtime::Runtime::new().unwrap().block_on(async move {
                    let db = Database::connect(&url).await.unwrap();
                    let sql = COMPLETE_REQUESTS.replace("substr(path, 4)", "substr(path, 4) AS id");
                    let rows = db
                        .query_all_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql))
                        .await
                        .unwrap();
                    rows.iter().map(|r| r.try_get::<String>("", "id").unwrap()).collect::<HashSet<String>>()
                })
            })
            .join()
            .unwrap()
        }
    };
    crash_under_load(url, rows).await;
}
