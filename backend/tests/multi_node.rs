//! Several nodes: two `ghosttrack serve` processes on one PostgreSQL database and one Redis,
//! behind a real load balancer (Debian `haproxy`, round robin, a new connection per request).
//! Through the balancer: collect traffic split across the nodes is all stored; a detection
//! burst split across them is detected (shared state in Redis); webhook inbox rows and alert
//! outbox rows are each processed exactly once with both nodes' workers running. Directly: the
//! live threat feed of node A shows a verdict that node B recorded (Redis pub/sub).
//!
//! Runs when `GHOSTTRACK_TEST_DATABASE_URL` and `GHOSTTRACK_TEST_REDIS_URL` are set and
//! `haproxy` is installed (scripts/test installs it).

mod support;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Node, add_site, env, free_port, fresh_postgres_database, metric, query_i64, wait_for};

const SHOPIFY_SECRET: &str = "multi-node-webhook-secret";
const SECRET_KEY: &str = "0123456789abcdef0123456789abcdef-multi-node";
const PASSWORD: &str = "correct horse battery staple";

/// `haproxy` in the foreground; killed on drop.
struct Balancer {
    child: Child,
    addr: String,
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn haproxy_binary() -> Option<String> {
    ["/usr/sbin/haproxy", "/usr/bin/haproxy"].into_iter().find(|p| std::path::Path::new(p).exists()).map(str::to_owned)
}

fn start_balancer(binary: &str, dir: &std::path::Path, nodes: &[&Node]) -> Balancer {
    let port = free_port();
    let servers: String =
        nodes.iter().enumerate().map(|(i, n)| format!("  server node{i} {} check inter 500ms\n", n.addr)).collect();
    // `option forwardfor`: the nodes trust 127.0.0.1 and take the client from X-Forwarded-For.
    // `timeout tunnel`: the live feed is a long-lived response.
    let config = format!(
        "global\n  maxconn 2000\n\
         defaults\n  mode http\n  option forwardfor\n  timeout connect 2s\n  timeout client 60s\n  timeout server 60s\n  timeout tunnel 120s\n\
         frontend in\n  bind 127.0.0.1:{port}\n  default_backend nodes\n\
         backend nodes\n  balance roundrobin\n{servers}"
    );
    let file = dir.join("haproxy.cfg");
    std::fs::write(&file, config).unwrap();
    let check = Command::new(binary).arg("-c").arg("-f").arg(&file).output().unwrap();
    assert!(check.status.success(), "haproxy config: {}", String::from_utf8_lossy(&check.stderr));
    let child = Command::new(binary)
        .arg("-db")
        .arg("-f")
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let balancer = Balancer { child, addr: format!("127.0.0.1:{port}") };
    for _ in 0..100 {
        if std::net::TcpStream::connect(&balancer.addr).is_ok() {
            return balancer;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("haproxy did not listen on {}", balancer.addr);
}

/// Records the `Idempotency-Key` of every alert webhook it receives.
async fn start_alert_receiver() -> (Arc<Mutex<Vec<String>>>, String) {
    use poem::{EndpointExt, Request, handler, web::Data};
    #[handler]
    fn hook(req: &Request, Data(seen): Data<&Arc<Mutex<Vec<String>>>>) -> &'static str {
        let key = req.header("idempotency-key").unwrap_or("missing").to_owned();
        seen.lock().unwrap().push(key);
        "ok"
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let port = free_port();
    let app = poem::Route::new().at("/hook", poem::post(hook)).data(seen.clone());
    tokio::spawn(poem::Server::new(poem::listener::TcpListener::bind(format!("127.0.0.1:{port}"))).run(app));
    (seen, format!("http://127.0.0.1:{port}/hook"))
}

fn webhook_hmac(body: &str) -> String {
    use base64::Engine;
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SHOPIFY_SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_behind_haproxy_share_storage_detection_workers_and_the_live_feed() {
    let (Some(pg), Some(redis)) = (
        std::env::var("GHOSTTRACK_TEST_DATABASE_URL").ok().filter(|s| !s.is_empty()),
        std::env::var("GHOSTTRACK_TEST_REDIS_URL").ok().filter(|s| !s.is_empty()),
    ) else {
        eprintln!("multi-node test not run: set GHOSTTRACK_TEST_DATABASE_URL and GHOSTTRACK_TEST_REDIS_URL");
        return;
    };
    let Some(haproxy) = haproxy_binary() else {
        eprintln!("multi-node test not run: haproxy is not installed (apt-get install haproxy)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let database = fresh_postgres_database(&pg).await;
    let prefix = format!("gt-test-{:x}", rand::random::<u64>());
    let shared = env(&[
        ("GHOSTTRACK_DATABASE_URL", &database),
        ("GHOSTTRACK_DATA_DIR", &dir.path().display().to_string()),
        ("GHOSTTRACK_LISTEN", "127.0.0.1:0"),
        ("GHOSTTRACK_DEMO_SITE", "false"),
        ("GHOSTTRACK_TRUSTED_PROXIES", "127.0.0.1"),
        // One /24 sends the whole load here: this test is about several nodes, not rate limits.
        ("GHOSTTRACK_RATE_LIMIT__ENABLED", "false"),
        ("GHOSTTRACK_DETECT__REDIS_URL", &redis),
        ("GHOSTTRACK_DETECT__REDIS_PREFIX", &prefix),
        ("GHOSTTRACK_SHOPIFY_API_KEY", "multi-node-key"),
        ("GHOSTTRACK_SHOPIFY_API_SECRET", SHOPIFY_SECRET),
        ("GHOSTTRACK_SECRET_KEY", SECRET_KEY),
        ("GHOSTTRACK_ALERTS__ALLOW_PRIVATE_TARGETS", "true"),
        ("GHOSTTRACK_ALERTS__POLL_INTERVAL_MS", "200"),
    ]);
    // Migrations run once, before the nodes start.
    let (key, token) = add_site(&shared, "multi.example");
    let mut admin = support::ghosttrack(&shared);
    let out = admin
        .env("GHOSTTRACK_ADMIN_PASSWORD", PASSWORD)
        .args(["admin", "create", "--site", "multi.example", "--email", "owner@multi.example", "--role", "owner"])
        .output()
        .unwrap();
    assert!(out.status.success(), "admin create: {}", String::from_utf8_lossy(&out.stderr));

    let a = Node::start(&shared, &dir.path().join("node-a.log"));
    let b = Node::start(&shared, &dir.path().join("node-b.log"));
    let lb = start_balancer(&haproxy, dir.path(), &[&a, &b]);
    let via_lb = |path: &str| format!("http://{}{path}", lb.addr);
    // A new connection per request: haproxy balances each one.
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();

    // 1. Collect split across the nodes: every acknowledged event is stored.
    let mut acked = 0i64;
    for n in 0..200 {
        let ts = now_ms();
        let body = format!(
            r#"{{"k":"{key}","v":1,"s":{ts},"u":"https://multi.example/mn/{n}","e":[{{"t":"pv","ts":{ts}}},{{"t":"cl","ts":{ts},"x":1,"y":2}},{{"t":"ix","ts":{ts},"kc":1}}]}}"#
        );
        let resp = client
            .post(via_lb("/collect"))
            .header("content-type", "application/json")
            .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/131.0")
            .header("x-forwarded-for", format!("198.51.100.{}", n % 200))
            .body(body)
            .send()
            .await
            .unwrap();
        if resp.status() == 202 {
            acked += 1;
        }
    }
    assert_eq!(acked, 200, "every collect request through the balancer is acknowledged");
    let on_a = metric(&client, &a.url(""), "ghosttrack_ingest_events_accepted_total").await;
    let on_b = metric(&client, &b.url(""), "ghosttrack_ingest_events_accepted_total").await;
    assert!(on_a > 0.0 && on_b > 0.0, "traffic reached both nodes: {on_a} / {on_b} events");
    assert_eq!(on_a + on_b, 600.0);
    let stored = query_i64(&database, "SELECT COUNT(*) FROM events WHERE path LIKE '/mn/%'").await;
    assert_eq!(stored, acked * 3, "rows = acknowledged events");

    // 2. A burst of one client split across the nodes: each sees about half, fewer than
    //    rate/burst's threshold of ten; the shared window in Redis sees all ten.
    let t0 = now_ms();
    let mut last = Value::Null;
    for i in 0..10 {
        let resp = client
            .post(via_lb("/v1/evaluate"))
            .bearer_auth(&token)
            .json(&json!({"site": key, "ip": "203.0.113.5", "user_agent": "Mozilla/5.0", "path": format!("/p/{i}"), "ts": t0 + i * 50}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        last = resp.json().await.unwrap();
    }
    assert_eq!(last["decision"], "CHALLENGE", "{last}");
    assert_eq!(last["reasons"][0]["rule"], "rate/burst", "{last}");
    assert_eq!(last["evidence"][0]["count"], 10, "{last}");

    // 3. Webhook deliveries received by both nodes; both inbox workers claim; each row is
    //    processed once (one claim = one attempt).
    let shop = "not-installed-shop.myshopify.com";
    let mut sends = Vec::new();
    for n in 0..40 {
        let (client, url) = (client.clone(), via_lb("/webhooks/shopify"));
        sends.push(tokio::spawn(async move {
            let body = json!({"id": 1000 + n, "total_price": "10.00", "currency": "EUR"}).to_string();
            client
                .post(url)
                .header("content-type", "application/json")
                .header("x-shopify-hmac-sha256", webhook_hmac(&body))
                .header("x-shopify-topic", "orders/create")
                .header("x-shopify-shop-domain", shop)
                .header("x-shopify-api-version", "2025-10")
                .header("x-shopify-webhook-id", format!("mn-{n}"))
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for send in sends {
        assert_eq!(send.await.unwrap(), 200);
    }
    wait_for("every webhook processed", Duration::from_secs(60), || {
        let database = database.clone();
        async move {
            query_i64(&database, "SELECT COUNT(*) FROM webhook_inbox WHERE webhook_id LIKE 'mn-%' AND status = 'done'")
                .await
                == 40
        }
    })
    .await;
    let over_claimed =
        query_i64(&database, "SELECT COUNT(*) FROM webhook_inbox WHERE webhook_id LIKE 'mn-%' AND attempts <> 1").await;
    assert_eq!(over_claimed, 0, "a webhook row was claimed more than once");

    // 4. Alerts queued through both nodes; both delivery workers run; each is sent once.
    let (seen, hook_url) = start_alert_receiver().await;
    let resp = client
        .post(via_lb(&format!("/api/v1/alerts/channels?site={key}")))
        .bearer_auth(&token)
        .json(&json!({"kind": "webhook", "name": "SIEM", "url": hook_url}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let channel: Value = resp.json().await.unwrap();
    let channel_id = channel["channel"]["id"].as_i64().expect("channel id");
    for _ in 0..20 {
        let resp = client
            .post(via_lb(&format!("/api/v1/alerts/channels/{channel_id}/test?site={key}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
    }
    wait_for("every test alert delivered", Duration::from_secs(60), || {
        let database = database.clone();
        async move { query_i64(&database, "SELECT COUNT(*) FROM alert_outbox WHERE status = 'delivered'").await == 20 }
    })
    .await;
    let once = query_i64(&database, "SELECT COUNT(*) FROM alert_outbox WHERE attempts = 1").await;
    assert_eq!(once, 20, "an alert was claimed more than once");
    let mut per_key: HashMap<String, usize> = HashMap::new();
    for k in seen.lock().unwrap().iter() {
        *per_key.entry(k.clone()).or_default() += 1;
    }
    assert_eq!(per_key.len(), 20, "20 distinct alerts arrived: {per_key:?}");
    assert!(per_key.values().all(|&n| n == 1), "an alert arrived twice: {per_key:?}");

    // 5. The live feed on node A shows a verdict recorded by node B.
    let login = client
        .post(a.url("/api/account/login"))
        .json(&json!({"email": "owner@multi.example", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.split(';').next().filter(|c| c.starts_with("gt_session=")).map(str::to_owned))
        .expect("session cookie");
    let remote_before = metric(&client, &a.url(""), "ghosttrack_live_remote_notifications_total").await;
    let mut feed = client.get(a.url("/api/panel/threats/live")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(feed.status(), 200);
    let resp = client
        .post(b.url("/v1/evaluate"))
        .bearer_auth(&token)
        .json(&json!({"site": key, "ip": "192.0.2.77", "user_agent": "sqlmap/1.8", "path": "/admin"}))
        .send()
        .await
        .unwrap();
    let verdict: Value = resp.json().await.unwrap();
    assert_eq!(verdict["decision"], "BLOCK", "{verdict}");
    let mut text = String::new();
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(chunk) = feed.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if text.contains("event: threat") && text.contains("BLOCK") {
                return;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "node A's feed did not show node B's verdict; got {text:?}");
    let remote_after = metric(&client, &a.url(""), "ghosttrack_live_remote_notifications_total").await;
    assert!(remote_after > remote_before, "the wake-up came through Redis pub/sub");

    let (mut a, mut b) = (a, b);
    assert!(a.is_running() && b.is_running());
    for node in [&a, &b] {
        assert!(!node.logs().contains("panicked"), "{}", node.logs());
    }
    a.stop();
    b.stop();
    drop(lb);
}
