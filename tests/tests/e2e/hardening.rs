//! Security headers on real responses, and the collect rate limits (per network, per site).

use ghosttrack::settings::RateLimitSettings;
use ghosttrack_tests::{CHROME_UA, Spawn, batch, now_ms, pageview, spawn_app};

#[tokio::test]
async fn every_response_carries_the_security_headers_that_apply_to_it() {
    let app = spawn_app().await;
    let site = app.create_site("h.example").await;

    // JSON / text: nosniff, referrer policy, same-origin CORP, no CSP, no HSTS over http.
    for path in ["/health", "/metrics", "/api/openapi.json", "/no-such-route"] {
        let resp = app.client.get(app.url(path)).send().await.unwrap();
        let h = resp.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "strict-origin-when-cross-origin", "{path}");
        assert_eq!(h["cross-origin-resource-policy"], "same-origin", "{path}");
        assert!(h.get("strict-transport-security").is_none(), "{path}");
    }

    // HTML: a CSP that forbids framing (and X-Frame-Options), base-uri and object-src.
    for path in ["/", "/app", "/api/docs"] {
        let resp = app.client.get(app.url(path)).send().await.unwrap();
        let h = resp.headers();
        assert!(h["content-type"].to_str().unwrap().starts_with("text/html"), "{path}: {h:?}");
        // The panel also restricts scripts (its boot script by hash, see panel::assets).
        let scripts = if path == "/app" { "script-src 'self' 'wasm-unsafe-eval'; " } else { "" };
        assert_eq!(
            h["content-security-policy"],
            format!("frame-ancestors 'none'; {scripts}base-uri 'self'; object-src 'none';").as_str(),
            "{path}"
        );
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
    }

    // The routes storefronts load cross-origin: no CORP, still nosniff.
    let body = batch(&site.key, "https://h.example/", &[pageview(now_ms(), "")]);
    let collect = app.collect(&body, "81.2.69.142", CHROME_UA).await;
    assert_eq!(collect.status(), 202);
    let pixel = app.client.get(app.url(&format!("/collect.gif?k={}", site.key))).send().await.unwrap();
    let tracker = app.client.get(app.url("/t.js")).send().await.unwrap();
    for resp in [collect, pixel, tracker] {
        let h = resp.headers();
        assert!(h.get("cross-origin-resource-policy").is_none(), "{}", resp.url());
        assert_eq!(h["x-content-type-options"], "nosniff");
    }
}

#[tokio::test]
async fn hsts_is_sent_when_the_public_url_is_https() {
    let app =
        Spawn::default().configure(|s| s.public_url = Some("https://stats.example/".parse().unwrap())).start().await;
    let resp = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(resp.headers()["strict-transport-security"], "max-age=31536000");
}

fn limits(site_per_sec: u32, site_burst: u32, network_per_sec: u32, network_burst: u32) -> RateLimitSettings {
    RateLimitSettings {
        enabled: true,
        site_per_sec,
        site_burst,
        network_per_sec,
        network_burst,
        exempt: Vec::new(),
        ..Default::default()
    }
}

async fn dropped(app: &ghosttrack_tests::TestApp, reason: &str) -> u64 {
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let prefix = format!("ghosttrack_ingest_dropped_total{{reason=\"{reason}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{reason} not on /metrics"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_network_over_its_limit_gets_429_with_retry_after_and_other_networks_do_not() {
    let app = Spawn::default().configure(|s| s.rate_limit = limits(0, 0, 1, 3)).start().await;
    let site = app.create_site("n.example").await;
    assert_eq!(dropped(&app, "rate_limited_network").await, 0);

    let body = batch(&site.key, "https://n.example/", &[pageview(now_ms(), "")]);
    let mut limited = None;
    for i in 0..10 {
        // Same /24, different hosts: one bucket.
        let resp = app.collect(&body, &format!("81.2.69.{}", 10 + i), CHROME_UA).await;
        match resp.status().as_u16() {
            202 => {}
            429 => {
                limited = Some(resp);
                break;
            }
            other => panic!("unexpected {other}"),
        }
    }
    let resp = limited.expect("a burst of 10 over a 1/s, burst 3 limit is refused");
    let retry_after: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1);
    let body_json: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body_json["error"], "rate_limited");
    assert_eq!(body_json["limit"], "network");

    // Another network is not affected.
    assert_eq!(app.collect(&body, "175.16.199.1", CHROME_UA).await.status(), 202);
    assert!(dropped(&app, "rate_limited_network").await >= 1);

    // The pixel still answers its GIF when limited, and the drop is counted.
    let before = dropped(&app, "rate_limited_network").await;
    for _ in 0..5 {
        let resp = app
            .client
            .get(app.url(&format!("/collect.gif?k={}&u=https://n.example/", site.key)))
            .header("x-forwarded-for", "81.2.69.99")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "image/gif");
    }
    assert!(dropped(&app, "rate_limited_network").await > before);
}

#[tokio::test]
async fn a_site_over_its_limit_gets_429_whatever_the_network_and_other_sites_do_not() {
    let app = Spawn::default().configure(|s| s.rate_limit = limits(1, 2, 0, 0)).start().await;
    let busy = app.create_site("busy.example").await;
    let quiet = app.create_site("quiet.example").await;
    let body = batch(&busy.key, "https://busy.example/", &[pageview(now_ms(), "")]);
    let mut statuses = Vec::new();
    for i in 0..10 {
        let resp = app.collect(&body, &format!("10.{i}.0.1"), CHROME_UA).await;
        statuses.push(resp.status().as_u16());
        if resp.status() == 429 {
            let json: serde_json::Value = resp.json().await.unwrap();
            assert_eq!(json["limit"], "site");
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    let other = batch(&quiet.key, "https://quiet.example/", &[pageview(now_ms(), "")]);
    assert_eq!(app.collect(&other, "10.99.0.1", CHROME_UA).await.status(), 202);
    assert!(dropped(&app, "rate_limited_site").await >= 1);
    // Refused requests stored nothing: every stored event is an acknowledged one.
    let acknowledged = statuses.iter().filter(|s| **s == 202).count() as i64 + 1;
    let stored = app.count("SELECT COUNT(*) FROM events").await;
    app.stop().await;
    assert_eq!(stored, acknowledged);
}

#[tokio::test]
async fn loopback_is_exempt_by_default() {
    let mut settings = limits(1, 1, 1, 1);
    settings.exempt = RateLimitSettings::default().exempt;
    let app = Spawn::default().configure(move |s| s.rate_limit = settings).start().await;
    let site = app.create_site("l.example").await;
    let body = batch(&site.key, "https://l.example/", &[pageview(now_ms(), "")]);
    for _ in 0..5 {
        assert_eq!(app.collect(&body, "127.0.0.1", CHROME_UA).await.status(), 202);
    }
}
