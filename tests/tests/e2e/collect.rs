//! `POST /collect` and `GET /collect.gif` through the real server.

use ghosttrack_tests::{CHROME_UA, Spawn, batch, now_ms, pageview, spawn_app};
use serde_json::Value;

const LONDON_IP: &str = "81.2.69.142";

#[tokio::test]
async fn an_accepted_batch_is_stored_with_enrichment_and_a_truncated_ip() {
    let app = spawn_app().await;
    let site = app.create_site("shop.example").await;
    let now = now_ms();
    let body = batch(
        &site.key,
        "https://shop.example/products/red-shoes?email=someone@example.com",
        &[
            pageview(now - 1000, "https://www.google.com/search?q=shoes"),
            format!(r#"{{"t":"sc","ts":{now},"d":60,"ph":3000}}"#),
        ],
    );

    let resp = app.collect(&body, LONDON_IP, CHROME_UA).await;

    assert_eq!(resp.status(), 202);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["accepted"], 2);
    assert_eq!(answer["dropped"], 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM events").await, 2);
    assert_eq!(app.count("SELECT COUNT(*) FROM events WHERE path = '/products/red-shoes'").await, 2);
    let session = app
        .count(
            "SELECT COUNT(*) FROM sessions WHERE country = 'GB' AND region = 'ENG' AND city = 'London' \
             AND ip_prefix = '81.2.69.0/24' AND browser = 'Chrome' AND os = 'Windows 10' AND device = 'desktop' \
             AND referrer_host = 'google.com' AND pageviews = 1 AND events = 2 AND bot_family IS NULL",
        )
        .await;
    assert_eq!(session, 1, "one enriched session");
    // The Anonymous-IP test database marks 81.2.69.0/24 as Tor + VPN + hosting + proxy.
    assert_eq!(app.count("SELECT net_flags & 7 FROM sessions").await, 7);
    // The raw IP and the query string (with an email) are stored nowhere.
    assert_eq!(app.count("SELECT COUNT(*) FROM events WHERE props LIKE '%someone%' OR path LIKE '%email%'").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions WHERE ip_prefix LIKE '%142%'").await, 0);
}

#[tokio::test]
async fn json_content_type_is_accepted_like_text_plain() {
    let app = spawn_app().await;
    let site = app.create_site("a.example").await;
    let resp = app
        .client
        .post(app.url("/collect"))
        .header("content-type", "application/json")
        .body(batch(&site.key, "https://a.example/", &[pageview(now_ms(), "")]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
}

#[tokio::test]
async fn malformed_json_is_rejected_with_400_and_a_reason() {
    let app = spawn_app().await;
    let resp = app.collect("{\"k\": \"gt_x\", oops", LONDON_IP, CHROME_UA).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "malformed_payload");
    assert!(body["message"].as_str().unwrap().contains("invalid JSON"));
}

#[tokio::test]
async fn an_oversized_body_is_rejected_with_413_with_or_without_content_length() {
    let app = spawn_app().await;
    let site = app.create_site("a.example").await;
    let huge =
        batch(&site.key, "https://a.example/", &[format!(r#"{{"t":"pv","ts":1,"ti":"{}"}}"#, "x".repeat(70_000))]);

    let with_length = app.collect(&huge, LONDON_IP, CHROME_UA).await;
    assert_eq!(with_length.status(), 413);

    let stream = futures_stream(huge.into_bytes());
    let chunked = app
        .client
        .post(app.url("/collect"))
        .header("content-type", "text/plain")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(chunked.status(), 413);
    assert_eq!(app.count("SELECT COUNT(*) FROM events").await, 0);
}

fn futures_stream(bytes: Vec<u8>) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = bytes.chunks(8192).map(|c| Ok(c.to_vec())).collect();
    tokio_stream::iter(chunks)
}

#[tokio::test]
async fn an_unknown_site_key_is_404_without_hints() {
    let app = spawn_app().await;
    for key in ["gt_doesnotexist0000", "not-even-a-key"] {
        let resp =
            app.collect(&batch(key, "https://a.example/", &[pageview(now_ms(), "")]), LONDON_IP, CHROME_UA).await;
        assert_eq!(resp.status(), 404, "{key}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["message"], "unknown site", "same answer whatever the key looks like");
    }
}

#[tokio::test]
async fn more_than_fifty_events_is_400() {
    let app = spawn_app().await;
    let site = app.create_site("a.example").await;
    let events: Vec<String> = (0..51).map(|i| pageview(now_ms() - i, "")).collect();
    let resp = app.collect(&batch(&site.key, "https://a.example/", &events), LONDON_IP, CHROME_UA).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "too_many_events");
}

#[tokio::test]
async fn events_from_a_far_off_clock_are_dropped_and_counted() {
    let app = spawn_app().await;
    let site = app.create_site("a.example").await;
    let day_ago = now_ms() - 86_400_000;
    let body =
        format!(r#"{{"k":"{}","s":{day_ago},"u":"https://a.example/","e":[{}]}}"#, site.key, pageview(day_ago, ""));
    let resp = app.collect(&body, LONDON_IP, CHROME_UA).await;
    assert_eq!(resp.status(), 202);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["accepted"], 0);
    assert_eq!(answer["drops"]["clock_skew"], 1);
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"ghosttrack_ingest_dropped_total{reason="clock_skew"} 1"#), "{metrics}");
    assert_eq!(app.count("SELECT COUNT(*) FROM events").await, 0);
}

#[tokio::test]
async fn bad_events_drop_alone_and_good_ones_are_kept() {
    let app = spawn_app().await;
    let site = app.create_site("a.example").await;
    let now = now_ms();
    let events = vec![
        pageview(now, ""),
        format!(r#"{{"t":"warp","ts":{now}}}"#),
        format!(r#"{{"t":"sc","ts":{now},"d":900}}"#),
        format!(r#"{{"t":"pv","ts":{}}}"#, now - 2 * 3_600_000),
        format!(r#"{{"t":"ix","ts":{now},"kc":3,"tc":0,"mc":40,"wc":2}}"#),
    ];
    let resp = app.collect(&batch(&site.key, "https://a.example/", &events), LONDON_IP, CHROME_UA).await;
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["accepted"], 2);
    assert_eq!(answer["drops"]["unknown_event_type"], 1);
    assert_eq!(answer["drops"]["invalid_event"], 1);
    assert_eq!(answer["drops"]["event_too_old"], 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM events WHERE kind IN ('pv','ix')").await, 2);
}

#[tokio::test]
async fn without_consent_detailed_behaviour_is_dropped_and_content_stripped() {
    let app = spawn_app().await;
    let site = app.create_site("a.example").await;
    let now = now_ms();
    let body = format!(
        r#"{{"k":"{}","s":{now},"u":"https://a.example/","c":0,"e":[{},{{"t":"cl","ts":{now},"x":1,"y":2}},{{"t":"en","ts":{now},"wd":0,"cv":"abcd1234","gl":"ANGLE"}}]}}"#,
        site.key,
        pageview(now, "https://ref.example/")
    );
    let answer: Value = app.collect(&body, LONDON_IP, CHROME_UA).await.json().await.unwrap();
    assert_eq!(answer["accepted"], 2);
    assert_eq!(answer["drops"]["not_consented"], 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM events WHERE props LIKE '%ref.example%' OR props LIKE '%abcd1234%' OR props LIKE '%ANGLE%'").await, 0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions WHERE NOT consent").await,
        1,
        "the session records the missing consent"
    );
}

#[tokio::test]
async fn a_missing_user_agent_is_accepted_and_labelled() {
    let app = spawn_app().await;
    let site = app.create_site("a.example").await;
    let resp = app
        .client
        .post(app.url("/collect"))
        .header("user-agent", "")
        .body(batch(&site.key, "https://a.example/", &[pageview(now_ms(), "")]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions WHERE bot_family = 'no-user-agent' AND automated").await, 1);
}

#[tokio::test]
async fn a_visitor_keeps_one_session_and_a_different_browser_is_another_visitor() {
    let app = spawn_app().await;
    let site = app.create_site("a.example").await;
    let now = now_ms();
    for offset in [3000, 2000] {
        app.collect(&batch(&site.key, "https://a.example/a", &[pageview(now - offset, "")]), LONDON_IP, CHROME_UA)
            .await;
    }
    app.collect(&batch(&site.key, "https://a.example/b", &[pageview(now, "")]), LONDON_IP, "curl/8.5.0").await;

    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 2);
    assert_eq!(app.count("SELECT COUNT(DISTINCT visitor_id) FROM events").await, 2);
    assert_eq!(app.count("SELECT pageviews FROM sessions WHERE bot_family IS NULL").await, 2);
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions WHERE bot_family = 'curl' AND automated").await, 1);
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_is_ignored() {
    let app = Spawn::default().configure(|s| s.trusted_proxies.clear()).start().await;
    let site = app.create_site("a.example").await;
    app.collect(&batch(&site.key, "https://a.example/", &[pageview(now_ms(), "")]), LONDON_IP, CHROME_UA).await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions WHERE ip_prefix = '127.0.0.0/24' AND country IS NULL").await,
        1
    );
}

#[tokio::test]
async fn the_pixel_records_a_pageview_and_always_answers_a_gif() {
    let app = spawn_app().await;
    let site = app.create_site("a.example").await;
    let good = app
        .client
        .get(app.url(&format!("/collect.gif?k={}", site.key)))
        .header("referer", "https://a.example/no-js-page")
        .header("x-forwarded-for", LONDON_IP)
        .send()
        .await
        .unwrap();
    assert_eq!(good.status(), 200);
    assert_eq!(good.headers()["content-type"], "image/gif");
    assert_eq!(good.bytes().await.unwrap().len(), 43);
    assert_eq!(app.count("SELECT COUNT(*) FROM events WHERE kind = 'pv' AND path = '/no-js-page'").await, 1);

    for bad in ["/collect.gif", "/collect.gif?k=gt_nope0000000", "/collect.gif?k=%ff%fe&u=::::", "/collect.gif?k=a&k=b"]
    {
        let resp = app.client.get(app.url(bad)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{bad}");
        assert_eq!(resp.headers()["content-type"], "image/gif");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM events").await, 1);
}

#[tokio::test]
async fn a_full_buffer_answers_503_with_retry_after_and_stores_nothing() {
    let app = Spawn::default().configure(|s| s.ingest.buffer_capacity_events = 1).start().await;
    let site = app.create_site("a.example").await;
    let now = now_ms();
    let resp = app
        .collect(&batch(&site.key, "https://a.example/", &[pageview(now, ""), pageview(now, "")]), LONDON_IP, CHROME_UA)
        .await;
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "overloaded");
    // A batch that fits still goes through.
    let ok = app.collect(&batch(&site.key, "https://a.example/", &[pageview(now, "")]), LONDON_IP, CHROME_UA).await;
    assert_eq!(ok.status(), 202);
    assert_eq!(app.count("SELECT COUNT(*) FROM events").await, 1);
}

#[tokio::test]
async fn cors_preflight_allows_any_origin_without_credentials() {
    let app = spawn_app().await;
    let resp = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/collect"))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    assert_eq!(resp.headers()["access-control-allow-origin"], "https://shop.example");
    assert!(resp.headers().get("access-control-allow-credentials").is_none());
}

#[tokio::test]
async fn every_acknowledged_event_survives_a_graceful_shutdown() {
    let app = spawn_app().await;
    let site = app.create_site("a.example").await;
    let mut acknowledged = 0;
    let mut requests = Vec::new();
    for i in 0..200 {
        let body = batch(&site.key, "https://a.example/", &[pageview(now_ms() - i, ""), pageview(now_ms() - i, "")]);
        let ip = format!("10.1.{}.{}", i / 250, i % 250);
        let client = app.client.clone();
        let url = app.url("/collect");
        requests.push(tokio::spawn(async move {
            client.post(url).header("x-forwarded-for", ip).body(body).send().await.map(|r| r.status().as_u16())
        }));
    }
    for r in requests {
        if r.await.unwrap().unwrap() == 202 {
            acknowledged += 2;
        }
    }
    let db = app.stop().await;
    let stored = {
        use sea_orm::ConnectionTrait;
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), "SELECT COUNT(*) FROM events"))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index::<i64>(0).unwrap()
    };
    assert_eq!(acknowledged, 400);
    assert_eq!(stored, acknowledged);
}

#[tokio::test]
async fn metrics_expose_request_batch_and_drop_counters() {
    let app = spawn_app().await;
    let site = app.create_site("a.example").await;
    app.collect(&batch(&site.key, "https://a.example/", &[pageview(now_ms(), "")]), LONDON_IP, CHROME_UA).await;
    app.collect("nonsense", LONDON_IP, CHROME_UA).await;
    let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for needle in [
        r#"ghosttrack_http_requests_total{route="/collect",status="202"} 1"#,
        r#"ghosttrack_http_requests_total{route="/collect",status="400"} 1"#,
        r#"ghosttrack_ingest_dropped_total{reason="malformed_payload"} 1"#,
        r#"ghosttrack_ingest_dropped_total{reason="overloaded"} 0"#,
        "ghosttrack_ingest_events_accepted_total 1",
        "ghosttrack_writer_commits_total 1",
        "ghosttrack_writer_commit_events_bucket",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}
