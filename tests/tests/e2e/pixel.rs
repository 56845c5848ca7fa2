//! Checkout web pixel end to end: the real `extensions/ghosttrack-pixel/src/index.js` runs in
//! node (strict-sandbox-like, see tests/fixtures/pixel-harness.js), its batches go through
//! `/collect`, and the card-testing rules fire from pixel events (detection.md CT1).

use std::time::Duration;

use ghosttrack_tests::{CHROME_UA, TestApp, TestSite, now_ms, spawn_app};
use serde_json::{Value, json};

use super::extension::run_pixel;

/// A plain residential address in the MaxMind test databases (no Tor/VPN/hosting flag).
const SHOPPER_IP: &str = "2.125.160.216";
const TOKEN: &str = "5f1c0ffee0ddba11";

fn scenario(site: &TestSite, events: Vec<Value>) -> Value {
    json!({"settings": {"accountID": site.key, "collectorUrl": "https://collect.example/collect"}, "events": events})
}

fn checkout_event(name: &str, ts_ms: i64) -> Value {
    json!({"name": name, "ts_ms": ts_ms, "data": {"checkout": {"token": TOKEN, "email": "shopper@example.com"}}})
}

fn decline(ts_ms: i64) -> Value {
    json!({"name": "alert_displayed", "ts_ms": ts_ms,
           "data": {"alert": {"type": "PAYMENT_ERROR", "message": "Your card was declined", "target": "x", "value": ""}}})
}

/// Runs the pixel on `events` and posts every batch it sent to the collector from one shopper.
async fn send_through_pixel(app: &TestApp, site: &TestSite, events: Vec<Value>) -> usize {
    let sent = run_pixel(&scenario(site, events));
    let mut accepted = 0;
    for call in &sent {
        let resp = app.collect(call["body"].as_str().unwrap(), SHOPPER_IP, CHROME_UA).await;
        assert_eq!(resp.status(), 202);
        let answer: Value = resp.json().await.unwrap();
        assert!(answer.get("drops").is_none(), "{answer}");
        accepted += answer["accepted"].as_u64().unwrap() as usize;
    }
    accepted
}

async fn threats_citing(app: &TestApp, rule: &str) -> i64 {
    app.count(&format!("SELECT COUNT(*) FROM threats WHERE reasons LIKE '%{rule}%'")).await
}

#[tokio::test]
async fn five_declines_on_one_checkout_from_the_pixel_record_a_card_testing_threat() {
    let app = spawn_app().await;
    let site = app.create_site("shop.example").await;
    let t0 = now_ms() - 200_000;
    let mut events = vec![checkout_event("checkout_started", t0)];
    for i in 0..5 {
        let at = t0 + 10_000 + i * 20_000;
        events.push(checkout_event("payment_info_submitted", at));
        events.push(decline(at + 2_000));
    }
    assert_eq!(send_through_pixel(&app, &site, events).await, 11);

    // Stored with the checkout token and without the alert message.
    let stored = |kind: &str| format!("SELECT COUNT(*) FROM events WHERE kind = '{kind}' AND props LIKE '%{TOKEN}%'");
    assert_eq!(app.count(&stored("al")).await, 5);
    assert_eq!(app.count(&stored("pi")).await, 5);
    assert_eq!(app.count(&stored("co")).await, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM events WHERE props LIKE '%declined%' OR props LIKE '%shopper%'").await,
        0
    );

    let mut found = 0;
    for _ in 0..50 {
        found = threats_citing(&app, "card/ct1-ip-failures").await;
        if found > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(found > 0, "no card-testing threat recorded");
    assert!(app.count("SELECT COUNT(*) FROM threats WHERE reasons LIKE '%card/ct1-ip-failures-block%'").await == 0);
}

#[tokio::test]
async fn two_declines_then_a_completed_checkout_record_no_threat() {
    let app = spawn_app().await;
    let site = app.create_site("shop.example").await;
    let t0 = now_ms() - 200_000;
    let events = vec![
        checkout_event("checkout_started", t0),
        checkout_event("payment_info_submitted", t0 + 20_000),
        decline(t0 + 22_000),
        checkout_event("payment_info_submitted", t0 + 40_000),
        decline(t0 + 42_000),
        checkout_event("payment_info_submitted", t0 + 60_000),
        checkout_event("checkout_completed", t0 + 70_000),
    ];
    assert_eq!(send_through_pixel(&app, &site, events).await, 7);
    assert_eq!(app.count("SELECT COUNT(*) FROM events WHERE kind = 'al'").await, 2);
    assert_eq!(app.count("SELECT COUNT(*) FROM events WHERE kind = 'cc'").await, 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM threats").await, 0);
}
