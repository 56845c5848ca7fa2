//! Two `ghosttrack serve` processes on one Redis: a burst split across them is detected, because
//! both judge with the same shared window. Runs when `GHOSTTRACK_TEST_REDIS_URL` is set.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn ghosttrack(data_dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ghosttrack"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GHOSTTRACK_DATA_DIR", data_dir)
        .env("RUST_LOG", "warn");
    cmd
}

struct Node {
    child: Child,
    addr: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

fn start_node(data_dir: &std::path::Path, redis_url: &str, prefix: &str) -> Node {
    let mut child = ghosttrack(data_dir)
        .env("GHOSTTRACK_LISTEN", "127.0.0.1:0")
        .env("GHOSTTRACK_DEMO_SITE", "false")
        .env("GHOSTTRACK_DETECT__REDIS_URL", redis_url)
        .env("GHOSTTRACK_DETECT__REDIS_PREFIX", prefix)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = lines
        .take(20)
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("GhostTrack is serving on http://").map(|a| a.trim().to_owned()));
    // The node is stopped and reaped on drop, also when it never printed its address.
    let node = Node { child, addr: addr.unwrap_or_default() };
    assert!(!node.addr.is_empty(), "node did not print its address");
    node
}

/// A minimal blocking HTTP POST returning (status, body).
fn post(addr: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let json = match (response.find('{'), response.rfind('}')) {
        (Some(a), Some(b)) => response[a..=b].to_owned(),
        _ => String::new(),
    };
    (status, json)
}

#[test]
fn a_burst_split_across_two_nodes_is_detected_through_redis() {
    let Ok(redis_url) = std::env::var("GHOSTTRACK_TEST_REDIS_URL") else {
        eprintln!("GHOSTTRACK_TEST_REDIS_URL not set: two-node Redis test not run");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = ghosttrack(dir.path()).args(["site", "add", "--domain", "shop.example", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let site: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (key, token) = (site["site_key"].as_str().unwrap(), site["api_token"].as_str().unwrap());

    let prefix = format!("gt-test-{}", rand::random::<u64>());
    let nodes = [start_node(dir.path(), &redis_url, &prefix), start_node(dir.path(), &redis_url, &prefix)];
    assert_ne!(nodes[0].addr, nodes[1].addr);

    // Ten requests of one client within half a second, alternating between the nodes: each node
    // sees five, fewer than rate/burst's threshold of ten.
    let t0 = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let mut decisions = Vec::new();
    for i in 0..10 {
        let body = format!(
            r#"{{"site":"{key}","ip":"203.0.113.5","user_agent":"Mozilla/5.0","path":"/p/{i}","ts":{}}}"#,
            t0 + i * 50
        );
        let (status, json) = post(&nodes[i as usize % 2].addr, "/v1/evaluate", token, &body);
        assert_eq!(status, 200, "{json}");
        let verdict: serde_json::Value = serde_json::from_str(&json).unwrap();
        decisions.push(verdict["decision"].as_str().unwrap().to_owned());
        if i == 9 {
            assert_eq!(verdict["reasons"][0]["rule"], "rate/burst", "{json}");
            assert_eq!(verdict["evidence"][0]["count"], 10, "{json}");
        }
    }
    assert!(decisions[..9].iter().all(|d| d == "ALLOW"), "{decisions:?}");
    assert_eq!(decisions[9], "CHALLENGE", "{decisions:?}");
}
