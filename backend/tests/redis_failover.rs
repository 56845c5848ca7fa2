//! Redis down → the detection engine falls back to in-process state, says so once in the log
//! and on `/metrics`, keeps judging, and goes back to Redis when it returns. The test runs its
//! own `redis-server` (a child process on a free port, no persistence) so that it can stop and
//! start it; it is skipped when `redis-server` is not installed.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Node, add_site, env, free_port, metric, wait_for};

struct RedisServer {
    child: Child,
}

impl RedisServer {
    fn start(port: u16) -> RedisServer {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Stopped and reaped on drop, also when it never listens.
        let server = RedisServer { child };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not listen on {port}");
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

async fn evaluate(client: &reqwest::Client, node: &Node, token: &str, body: Value) -> Value {
    let resp = client.post(node.url("/v1/evaluate")).bearer_auth(token).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200, "evaluate keeps answering");
    resp.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detection_falls_back_to_local_state_while_redis_is_down_and_returns_to_it() {
    if Command::new("redis-server").arg("--version").output().is_err() {
        eprintln!("redis fail-over test not run: redis-server is not installed");
        return;
    }
    let port = free_port();
    let mut redis = RedisServer::start(port);
    let dir = tempfile::tempdir().unwrap();
    let prefix = "gt-failover";
    let vars = env(&[
        ("GHOSTTRACK_DATA_DIR", &dir.path().display().to_string()),
        ("GHOSTTRACK_LISTEN", "127.0.0.1:0"),
        ("GHOSTTRACK_DEMO_SITE", "false"),
        ("GHOSTTRACK_DETECT__REDIS_URL", &format!("redis://127.0.0.1:{port}/")),
        ("GHOSTTRACK_DETECT__REDIS_PREFIX", prefix),
    ]);
    let (key, token) = add_site(&vars, "failover.example");
    let mut node = Node::start(&vars, &dir.path().join("node.log"));
    let client = reqwest::Client::new();
    let base = node.url("");
    let gauge = "ghosttrack_detect_state_local_fallback";
    let counter = "ghosttrack_detect_state_fallbacks_total";
    let request = |ip: &str, i: i64, t0: i64| json!({"site": key, "ip": ip, "user_agent": "Mozilla/5.0", "path": format!("/p/{i}"), "ts": t0 + i * 50});

    evaluate(&client, &node, &token, request("203.0.113.1", 0, now_ms())).await;
    assert_eq!((metric(&client, &base, gauge).await, metric(&client, &base, counter).await), (0.0, 0.0));

    // Redis goes away: every request is still judged, on local state, and a burst on this one
    // node is still caught.
    redis.stop();
    let t0 = now_ms();
    let mut last = Value::Null;
    for i in 0..10 {
        last = evaluate(&client, &node, &token, request("203.0.113.9", i, t0)).await;
    }
    assert_eq!(last["decision"], "CHALLENGE", "local state still counts: {last}");
    assert_eq!(last["evidence"][0]["count"], 10, "{last}");
    assert_eq!(metric(&client, &base, gauge).await, 1.0, "the fallback shows on /metrics");
    assert_eq!(metric(&client, &base, counter).await, 1.0, "one outage, one switch");
    let logs = node.logs();
    assert_eq!(logs.matches("Redis unreachable: detection falls back").count(), 1, "said once, not per event:\n{logs}");

    // Redis is back (empty, as after a restart without persistence): the node reconnects on
    // its own and writes state there again.
    let _redis = RedisServer::start(port);
    let (c, n, t, b) = (&client, &node, &token, &base);
    wait_for("the node back on Redis", Duration::from_secs(30), move || {
        let body = request("203.0.113.20", 0, now_ms());
        async move {
            evaluate(c, n, t, body).await;
            metric(c, b, gauge).await == 0.0
        }
    })
    .await;
    assert!(node.logs().contains("Redis reachable again"), "{}", node.logs());
    assert_eq!(metric(&client, &base, counter).await, 1.0);
    let mut conn = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}:*")).query(&mut conn).unwrap();
    assert!(!keys.is_empty(), "detection state is written to Redis again");

    assert!(node.is_running());
    assert!(!node.logs().contains("panicked"));
    node.stop();
}
