//! PostgreSQL restarted under load: while it is down `POST /collect` answers `503
//! storage_unavailable` (nothing panics, the server keeps running), once it is back the server
//! recovers by itself, and every acknowledged event is stored. The test runs its own PostgreSQL
//! cluster (initdb + pg_ctl in a temp dir, on a free port; as the `postgres` user when run by
//! root) so that it never restarts the machine's server. Skipped when no PostgreSQL server
//! binaries are installed.

mod support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use support::{Node, add_site, env, free_port, wait_for};

const CLIENTS: usize = 8;

/// A private PostgreSQL cluster; stopped on drop.
struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    log: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Cluster {
    fn find_bin() -> Option<PathBuf> {
        let mut dirs: Vec<PathBuf> =
            std::fs::read_dir("/usr/lib/postgresql").ok()?.flatten().map(|e| e.path().join("bin")).collect();
        dirs.sort();
        dirs.into_iter().rev().find(|d| d.join("initdb").exists() && d.join("pg_ctl").exists())
    }

    fn cmd(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    fn init(bin: PathBuf, dir: &Path) -> Cluster {
        let as_postgres = running_as_root();
        let root = dir.join("pg");
        std::fs::create_dir_all(&root).unwrap();
        if as_postgres {
            // postgres refuses to run as root: the cluster belongs to the postgres user.
            run(Command::new("chmod").arg("755").arg(dir));
            run(Command::new("chown").args(["-R", "postgres:postgres"]).arg(&root));
        }
        let cluster =
            Cluster { bin, data: root.join("data"), log: root.join("server.log"), port: free_port(), as_postgres };
        run(cluster.cmd("initdb").args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"]).arg(&cluster.data));
        cluster
    }

    fn start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={}",
            self.port,
            self.data.parent().unwrap().display()
        );
        run(self
            .cmd("pg_ctl")
            .args(["-w", "-D"])
            .arg(&self.data)
            .arg("-l")
            .arg(&self.log)
            .args(["-o", &options, "start"]));
    }

    fn stop(&self) {
        let _ = self.cmd("pg_ctl").args(["-w", "-m", "fast", "-D"]).arg(&self.data).arg("stop").output();
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[derive(Default)]
struct Outcomes {
    acked: Vec<String>,
    after_restart: usize,
    unavailable: usize,
    /// Anything but 202 and 503 `storage_unavailable`/`overloaded`.
    other: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load_means_503s_then_recovery_and_no_lost_event() {
    let Some(bin) = Cluster::find_bin() else {
        eprintln!("PostgreSQL restart test not run: no /usr/lib/postgresql/*/bin/initdb");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::init(bin, dir.path());
    cluster.start();
    let data_dir = dir.path().join("gt");
    std::fs::create_dir_all(&data_dir).unwrap();
    let vars = env(&[
        ("GHOSTTRACK_DATABASE_URL", &cluster.url()),
        ("GHOSTTRACK_DATA_DIR", &data_dir.display().to_string()),
        ("GHOSTTRACK_LISTEN", "127.0.0.1:0"),
        ("GHOSTTRACK_DEMO_SITE", "false"),
    ]);
    let (key, _) = add_site(&vars, "restart.example");
    let mut node = Node::start(&vars, &dir.path().join("node.log"));

    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let restarted = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (client, outcomes, restarted, stop, key, url) =
            (client.clone(), outcomes.clone(), restarted.clone(), stop.clone(), key.clone(), node.url("/collect"));
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let id = format!("c{c}n{n}");
                let ts = now_ms();
                let body = format!(
                    r#"{{"k":"{key}","v":1,"s":{ts},"u":"https://restart.example/r/{id}","e":[{{"t":"pv","ts":{ts}}},{{"t":"cl","ts":{ts},"x":1,"y":2}},{{"t":"ix","ts":{ts},"kc":1}}]}}"#
                );
                let sent = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("user-agent", format!("restart-test-client/{c}"))
                    .body(body)
                    .send()
                    .await;
                let (status, text) = match sent {
                    Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
                    Err(e) => (0, e.to_string()),
                };
                let unavailable = {
                    let mut o = outcomes.lock();
                    match status {
                        202 => {
                            o.acked.push(id);
                            if restarted.load(Ordering::Relaxed) {
                                o.after_restart += 1;
                            }
                            false
                        }
                        503 if text.contains("storage_unavailable") || text.contains("overloaded") => {
                            o.unavailable += 1;
                            true
                        }
                        _ => {
                            o.other.push(format!("{status} {text}"));
                            false
                        }
                    }
                };
                if unavailable {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }));
    }

    // Load, then PostgreSQL goes away for longer than the pool's 5 s acquire timeout (requests
    // waiting for a connection answer 503 only then), and comes back.
    wait_for("load to build up", Duration::from_secs(30), || {
        let o = outcomes.clone();
        async move { o.lock().acked.len() > 100 }
    })
    .await;
    cluster.stop();
    tokio::time::sleep(Duration::from_secs(7)).await;
    let unavailable_while_down = outcomes.lock().unavailable;
    cluster.start();
    restarted.store(true, Ordering::Relaxed);
    wait_for("acknowledgements after the restart", Duration::from_secs(60), || {
        let o = outcomes.clone();
        async move { o.lock().after_restart > 100 }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }

    let o = std::mem::take(&mut *outcomes.lock());
    eprintln!(
        "PostgreSQL restart: {} requests acknowledged ({} after the restart), {} answered 503 (≥ {} while it was down)",
        o.acked.len(),
        o.after_restart,
        o.unavailable,
        unavailable_while_down
    );
    assert!(unavailable_while_down > 0, "requests while PostgreSQL was down were answered 503");
    assert!(o.other.is_empty(), "unexpected answers: {:?}", &o.other[..o.other.len().min(5)]);
    assert!(node.is_running(), "the server survived: {}", node.logs());
    assert!(!node.logs().contains("panicked"), "{}", node.logs());
    node.stop();

    let sql = "SELECT substr(path, 4) AS id FROM events WHERE path LIKE '/r/%' GROUP BY path HAVING COUNT(*) = 3";
    let stored: HashSet<String> = {
        use sea_orm::{ConnectionTrait, Database, Statement};
        let db = Database::connect(cluster.url()).await.unwrap();
        let rows = db.query_all_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap();
        rows.iter().map(|r| r.try_get::<String>("", "id").unwrap()).collect()
    };
    let missing: Vec<&String> = o.acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged requests lost, e.g. {:?}",
        missing.len(),
        o.acked.len(),
        &missing[..missing.len().min(5)]
    );
}
