//! SQLite disk full: the database lives on a small tmpfs that a ballast file fills up. Collect
//! then answers `503 storage_unavailable` saying the disk is full, the log says so, nothing
//! panics; when the ballast is deleted the server accepts again by itself; afterwards `PRAGMA
//! integrity_check` is `ok` and every acknowledged event is stored. Mounting needs root (CI runs
//! as root): without it the test says so and does not run.

mod support;

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::{Node, add_site, env};

/// A mounted tmpfs; unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| Tmpfs(dir.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes zeros to `path` until the file system is full.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    loop {
        if file.write_all(&chunk).is_err() {
            break;
        }
    }
    // Byte by byte for the last partial chunk.
    while file.write_all(&[0]).is_ok() && file.flush().is_ok() {}
    let _ = file.sync_all();
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Posts one 3-event batch with path `/r/{id}`; returns (status, body).
async fn post(client: &reqwest::Client, node: &Node, key: &str, id: &str) -> (u16, String) {
    let ts = now_ms();
    let body = format!(
        r#"{{"k":"{key}","v":1,"s":{ts},"u":"https://full.example/r/{id}","e":[{{"t":"pv","ts":{ts}}},{{"t":"cl","ts":{ts},"x":1,"y":2}},{{"t":"ix","ts":{ts},"kc":1}}]}}"#
    );
    let resp = client
        .post(node.url("/collect"))
        .header("content-type", "application/json")
        .header("user-agent", "disk-full-test")
        .body(body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_means_a_clear_503_no_corruption_and_recovery_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(&dir.path().join("small"), "8m") else {
        eprintln!("SQLite disk-full test not run: cannot mount a tmpfs (needs root)");
        return;
    };
    let vars = env(&[
        ("GHOSTTRACK_DATA_DIR", &fs.0.display().to_string()),
        ("GHOSTTRACK_LISTEN", "127.0.0.1:0"),
        ("GHOSTTRACK_DEMO_SITE", "false"),
    ]);
    let (key, _) = add_site(&vars, "full.example");
    let mut node = Node::start(&vars, &dir.path().join("node.log"));
    let client = reqwest::Client::new();
    let mut acked: Vec<String> = Vec::new();
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("n{n}")
    };

    // Some traffic first (today's salt, the site, sessions), then the disk fills up.
    for _ in 0..50 {
        let id = next();
        let (status, body) = post(&client, &node, &key, &id).await;
        assert_eq!(status, 202, "{body}");
        acked.push(id);
    }
    let ballast = fs.0.join("ballast");
    fill(&ballast);

    let mut full_answers = 0;
    let mut tries = 0;
    while full_answers < 20 {
        tries += 1;
        assert!(tries < 20_000, "the disk never filled up ({} acknowledged)", acked.len());
        let id = next();
        match post(&client, &node, &key, &id).await {
            (202, _) => acked.push(id),
            (503, body) => {
                assert!(body.contains("storage_unavailable") && body.contains("disk is full"), "{body}");
                full_answers += 1;
            }
            (status, body) => panic!("unexpected {status}: {body}"),
        }
    }
    assert!(node.is_running(), "{}", node.logs());
    let logs = node.logs();
    assert!(logs.contains("group commit failed") && logs.contains("database or disk is full"), "{logs}");

    // Space returns: the server accepts again without a restart.
    std::fs::remove_file(&ballast).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        assert!(std::time::Instant::now() < deadline, "no 202 within 30 s after space returned");
        let id = next();
        if post(&client, &node, &key, &id).await.0 == 202 {
            acked.push(id);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..50 {
        let id = next();
        let (status, body) = post(&client, &node, &key, &id).await;
        assert_eq!(status, 202, "{body}");
        acked.push(id);
    }
    assert!(!node.logs().contains("panicked"));
    node.stop();

    let conn = rusqlite::Connection::open(fs.0.join("ghosttrack.db")).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    let mut stmt = conn
        .prepare("SELECT substr(path, 4) FROM events WHERE path LIKE '/r/%' GROUP BY path HAVING COUNT(*) = 3")
        .unwrap();
    let stored: HashSet<String> = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap().map(Result::unwrap).collect();
    let missing: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    eprintln!(
        "disk full: {} acknowledged, {full_answers} answered 503 disk full, {} missing",
        acked.len(),
        missing.len()
    );
    assert!(missing.is_empty(), "lost: {:?}", &missing[..missing.len().min(5)]);
    drop(stmt);
    drop(conn);
}
