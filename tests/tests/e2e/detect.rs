//! Detection end to end: tracker batches through `/collect` reach the engine, verdict changes
//! become threat records, and the `/v1` API answers with them.

use std::time::Duration;

use ghosttrack_tests::{TestApp, TestSite, batch, now_ms, spawn_app};
use serde_json::{Value, json};

const HEADLESS_UA: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36";

async fn get(app: &TestApp, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = app.client.get(app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

async fn evaluate(app: &TestApp, site: &TestSite, body: Value) -> reqwest::Response {
    app.client.post(app.url("/v1/evaluate")).bearer_auth(&site.token).json(&body).send().await.unwrap()
}

/// Polls `/v1/recent` until it lists something (the recorder writes asynchronously).
async fn recent(app: &TestApp, site: &TestSite, query: &str) -> Value {
    for _ in 0..50 {
        let resp = get(app, &format!("/v1/recent?site={}{query}", site.key), Some(&site.token)).await;
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert_eq!(status, 200, "{text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        if !body["items"].as_array().unwrap().is_empty() {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no verdict recorded");
}

#[tokio::test]
async fn a_headless_browser_session_is_blocked_and_its_verdict_is_reachable_by_session_id() {
    let app = spawn_app().await;
    let site = app.create_site("shop.example").await;
    let now = now_ms();
    let events = vec![
        format!(r#"{{"t":"en","ts":{now},"wd":1,"hl":1,"pl":0,"lg":1}}"#),
        format!(r#"{{"t":"pv","ts":{},"pt":"product"}}"#, now + 1),
    ];
    let resp =
        app.collect(&batch(&site.key, "https://shop.example/products/a", &events), "81.2.69.142", HEADLESS_UA).await;
    assert_eq!(resp.status(), 202);

    let body = recent(&app, &site, "&decision=BLOCK").await;
    let item = &body["items"][0];
    assert_eq!(item["decision"], "BLOCK");
    let rules: Vec<&str> = item["reasons"].as_array().unwrap().iter().map(|r| r["rule"].as_str().unwrap()).collect();
    assert!(rules.contains(&"ua/automation-library") && rules.contains(&"client/automation-flags"), "{rules:?}");
    let subject = item["subject"].as_str().unwrap();
    assert!(subject.starts_with("session:"));

    // The session id in the subject is the one stored for the session.
    let session_id: i64 = subject.trim_start_matches("session:").parse().unwrap();
    assert_eq!(app.count(&format!("SELECT COUNT(*) FROM sessions WHERE id = {session_id}")).await, 1);
    let verdict: Value = get(&app, &format!("/v1/verdict?site={}&subject={subject}", site.key), Some(&site.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(verdict["decision"], "BLOCK");
    assert!(verdict["score"].as_u64().unwrap() >= 70);
}

#[tokio::test]
async fn a_human_looking_batch_records_no_threat() {
    let app = spawn_app().await;
    let site = app.create_site("shop.example").await;
    let now = now_ms();
    let events = vec![
        format!(r#"{{"t":"en","ts":{now},"wd":0,"hl":0,"pl":5,"lg":2}}"#),
        format!(r#"{{"t":"pv","ts":{}}}"#, now + 1),
        format!(r#"{{"t":"ix","ts":{},"mc":40,"wc":3}}"#, now + 2),
    ];
    // 2.125.160.216 is a plain residential address in the MaxMind test databases (no Tor/VPN/hosting flag).
    let resp = app
        .collect(&batch(&site.key, "https://shop.example/", &events), "2.125.160.216", ghosttrack_tests::CHROME_UA)
        .await;
    assert_eq!(resp.status(), 202);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM threats").await, 0);
}

#[tokio::test]
async fn evaluate_flips_a_tight_loop_to_challenge_around_the_tenth_request() {
    let app = spawn_app().await;
    let site = app.create_site("shop.example").await;
    let t0 = now_ms();
    let mut decisions = Vec::new();
    for i in 0..12 {
        let body = json!({"site": site.key, "ip": "203.0.113.5", "user_agent": "Mozilla/5.0", "path": format!("/p/{i}"), "ts": t0 + i * 50});
        let resp = evaluate(&app, &site, body).await;
        assert_eq!(resp.status(), 200);
        let v: Value = resp.json().await.unwrap();
        decisions.push(v["decision"].as_str().unwrap().to_owned());
        if i == 9 {
            assert_eq!(v["reasons"][0]["rule"], "rate/burst");
            assert_eq!(v["subject"], "client:203.0.113.5");
            assert!(v["ttl"].as_u64().unwrap() > 0);
            assert_eq!(v["evidence"][0]["count"], 10);
        }
    }
    assert!(decisions[..9].iter().all(|d| d == "ALLOW"), "{decisions:?}");
    assert!(decisions[9..].iter().all(|d| d == "CHALLENGE"), "{decisions:?}");
}

#[tokio::test]
async fn evaluate_refuses_bad_tokens_foreign_sites_and_bad_bodies() {
    let app = spawn_app().await;
    let a = app.create_site("a.example").await;
    let b = app.create_site("b.example").await;
    let url = app.url("/v1/evaluate");
    let ok = json!({"site": a.key, "path": "/"});

    let no_token = app.client.post(&url).json(&ok).send().await.unwrap();
    assert_eq!(no_token.status(), 401);
    let other_site = app.client.post(&url).bearer_auth(&b.token).json(&ok).send().await.unwrap();
    assert_eq!(other_site.status(), 404);
    let malformed = app
        .client
        .post(&url)
        .bearer_auth(&a.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let bad_ip = evaluate(&app, &a, json!({"site": a.key, "path": "/", "ip": "nope"})).await;
    assert_eq!(bad_ip.status(), 400);
    let huge = json!({"site": a.key, "path": "/", "user_agent": "x".repeat(20_000)});
    let too_large = app.client.post(&url).bearer_auth(&a.token).json(&huge).send().await.unwrap();
    assert_eq!(too_large.status(), 413);
}

#[tokio::test]
async fn detection_stats_count_decisions_and_rules_in_the_window() {
    let app = spawn_app().await;
    let site = app.create_site("shop.example").await;
    let resp =
        evaluate(&app, &site, json!({"site": site.key, "path": "/", "user_agent": "sqlmap/1.8", "ip": "198.51.100.9"}))
            .await;
    assert_eq!(resp.json::<Value>().await.unwrap()["decision"], "BLOCK");
    recent(&app, &site, "").await;

    let stats: Value = get(&app, &format!("/v1/stats?site={}&window_seconds=3600", site.key), Some(&site.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stats["decisions"]["BLOCK"], 1);
    assert_eq!(stats["top_rules"][0]["rule"], "ua/scanner");
    let bad = get(&app, &format!("/v1/stats?site={}&window_seconds=5", site.key), Some(&site.token)).await;
    assert_eq!(bad.status(), 400);
    let bad_limit = get(&app, &format!("/v1/recent?site={}&limit=0", site.key), Some(&site.token)).await;
    assert_eq!(bad_limit.status(), 400);
}

/// A real client no one here wrote: Debian Chromium driven by playwright-core (headless) on the
/// fixture storefront. Its own HeadlessChrome user agent and `navigator.webdriver` must make
/// the session a BLOCK, with both reasons.
#[tokio::test]
async fn a_real_headless_chromium_session_is_blocked_with_its_reasons() {
    let app = spawn_app().await;
    let site = app.create_site("fixture-store.myshopify.com").await;
    let page_url = super::browser::serve_storefront(&app, &site.key, &app.url("/collect")).await;

    super::browser::drive_browser(page_url).await;

    let body = recent(&app, &site, "&decision=BLOCK").await;
    let item = &body["items"][0];
    assert!(item["subject"].as_str().unwrap().starts_with("session:"), "{item}");
    let rules: Vec<&str> = item["reasons"].as_array().unwrap().iter().map(|r| r["rule"].as_str().unwrap()).collect();
    assert!(rules.contains(&"ua/automation-library"), "{rules:?}");
    assert!(rules.contains(&"client/automation-flags"), "{rules:?}");
}
