//! `GET /api/v1/stats` and the OpenAPI document.

use ghosttrack_tests::{CHROME_UA, TestApp, TestSite, batch, now_ms, pageview, spawn_app};
use serde_json::Value;

/// The last 30 days and the next one, as query parameters.
fn range() -> String {
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let now = chrono::Utc::now();
    format!("from={}&to={}", fmt(now - chrono::Duration::days(30)), fmt(now + chrono::Duration::days(1)))
}

async fn stats(app: &TestApp, site_key: &str, token: Option<&str>, query: &str) -> reqwest::Response {
    let mut req = app.client.get(app.url(&format!("/api/v1/stats?site={site_key}&{query}")));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.unwrap()
}

/// Two visitors on `site`: a person with two pageviews from London and curl with one.
async fn traffic(app: &TestApp, site: &TestSite, host: &str) {
    let now = now_ms();
    let url = format!("https://{host}/");
    app.collect(&batch(&site.key, &url, &[pageview(now - 5000, "https://news.example/a")]), "81.2.69.142", CHROME_UA)
        .await;
    app.collect(&batch(&site.key, &format!("{url}pricing"), &[pageview(now - 1000, &url)]), "81.2.69.142", CHROME_UA)
        .await;
    app.collect(&batch(&site.key, &url, &[pageview(now, "")]), "1.128.0.1", "curl/8.5.0").await;
}

#[tokio::test]
async fn stats_report_traffic_breakdowns_and_the_automated_share() {
    let app = spawn_app().await;
    let site = app.create_site("a.example").await;
    traffic(&app, &site, "a.example").await;

    let resp = stats(&app, &site.key, Some(&site.token), &range()).await;

    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["visitors"], 2);
    assert_eq!(body["sessions"], 2);
    assert_eq!(body["pageviews"], 3);
    assert_eq!(body["automated_share"], 0.5);
    assert_eq!(body["bounce_rate"], 0.5);
    assert!(body["avg_duration_secs"].as_f64().unwrap() >= 1.9);
    assert_eq!(body["bucket"], "day");
    assert_eq!(body["top_pages"][0]["path"], "/");
    assert_eq!(body["top_pages"][0]["pageviews"], 2);
    assert_eq!(body["referrers"].as_array().unwrap().iter().filter(|r| r["value"] == "news.example").count(), 1);
    assert_eq!(body["countries"][0]["value"], "GB");
    assert!(body["browsers"].as_array().unwrap().iter().any(|b| b["value"] == "Chrome"));
    assert!(body["devices"].as_array().unwrap().iter().any(|d| d["value"] == "desktop"));
    let series = body["timeseries"].as_array().unwrap();
    assert_eq!(series.iter().map(|p| p["pageviews"].as_i64().unwrap()).sum::<i64>(), 3);
}

#[tokio::test]
async fn hourly_buckets_are_zero_filled() {
    let app = spawn_app().await;
    let site = app.create_site("a.example").await;
    traffic(&app, &site, "a.example").await;
    let from = chrono::Utc::now() - chrono::Duration::hours(5);
    let to = chrono::Utc::now() + chrono::Duration::hours(1);
    let q = format!(
        "from={}&to={}&bucket=hour",
        from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let body: Value = stats(&app, &site.key, Some(&site.token), &q).await.json().await.unwrap();
    let series = body["timeseries"].as_array().unwrap();
    assert!(series.len() >= 6, "{series:?}");
    assert_eq!(series.iter().filter(|p| p["pageviews"].as_i64().unwrap() > 0).count(), 1);
}

#[tokio::test]
async fn a_sites_token_cannot_read_another_site() {
    let app = spawn_app().await;
    let a = app.create_site("a.example").await;
    let b = app.create_site("b.example").await;
    traffic(&app, &a, "a.example").await;
    app.collect(&batch(&b.key, "https://b.example/", &[pageview(now_ms(), "")]), "81.2.69.142", CHROME_UA).await;

    let cross = stats(&app, &b.key, Some(&a.token), &range()).await;
    assert_eq!(cross.status(), 404);
    assert_eq!(cross.json::<Value>().await.unwrap()["error"], "site_not_found");

    let own: Value = stats(&app, &b.key, Some(&b.token), &range()).await.json().await.unwrap();
    assert_eq!(own["pageviews"], 1, "B sees only its own traffic");
    assert_eq!(own["visitors"], 1);
}

#[tokio::test]
async fn missing_or_wrong_tokens_are_401() {
    let app = spawn_app().await;
    let site = app.create_site("a.example").await;
    assert_eq!(stats(&app, &site.key, None, &range()).await.status(), 401);
    let wrong = stats(&app, &site.key, Some("gtk_not-a-real-token"), &range()).await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(wrong.json::<Value>().await.unwrap()["error"], "invalid_token");
}

#[tokio::test]
async fn invalid_ranges_are_400_with_a_reason() {
    let app = spawn_app().await;
    let site = app.create_site("a.example").await;
    let backwards =
        stats(&app, &site.key, Some(&site.token), "from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z").await;
    assert_eq!(backwards.status(), 400);
    assert_eq!(backwards.json::<Value>().await.unwrap()["error"], "invalid_range");
    let garbage = stats(&app, &site.key, Some(&site.token), "from=yesterday&to=2026-01-01T00:00:00Z").await;
    assert_eq!(garbage.status(), 400);
    let hours =
        stats(&app, &site.key, Some(&site.token), "from=2020-01-01T00:00:00Z&to=2021-01-01T00:00:00Z&bucket=hour")
            .await;
    assert_eq!(hours.status(), 400);
    assert_eq!(hours.json::<Value>().await.unwrap()["error"], "too_many_buckets");
}

#[tokio::test]
async fn the_openapi_document_describes_stats_with_its_error_statuses() {
    let app = spawn_app().await;
    let doc: Value = app.client.get(app.url("/api/openapi.json")).send().await.unwrap().json().await.unwrap();
    let op = &doc["paths"]["/v1/stats"]["get"];
    assert_eq!(op["operationId"], "get_stats");
    for status in ["200", "400", "401", "404", "503"] {
        assert!(op["responses"].get(status).is_some(), "response {status} documented");
    }
    assert_eq!(doc["servers"][0]["url"], "/api");
    let docs = app.client.get(app.url("/api/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("swagger"));
}

#[tokio::test]
async fn health_ready_and_the_tracker_are_served() {
    let app = spawn_app().await;
    assert_eq!(app.client.get(app.url("/health")).send().await.unwrap().status(), 200);
    assert_eq!(app.client.get(app.url("/ready")).send().await.unwrap().status(), 200);
    let js = app.client.get(app.url("/t.js")).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(js.status(), 200);
    assert!(js.headers()["content-type"].to_str().unwrap().starts_with("application/javascript"));
    let etag = js.headers()["etag"].clone();
    let again = app.client.get(app.url("/t.js")).header("if-none-match", etag).send().await.unwrap();
    assert_eq!(again.status(), 304);
}
