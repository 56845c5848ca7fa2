//! A real browser on a storefront: Debian Chromium driven by playwright-core loads a fixture
//! product page carrying the app embed's markup, moves, scrolls, clicks and adds to cart; we
//! then check what reached the database, enrichment included.
//!
//! Two wirings are exercised, as in production: the tracker posting cross-origin straight to
//! the collector (any website), and posting same-origin to `/apps/ghosttrack/collect`, which
//! the storefront forwards to the collector with `X-Forwarded-For` (Shopify's app proxy, or
//! any reverse proxy). The second is how the test gives the visitor a real-world IP.

use std::process::Command;
use std::sync::Arc;

use ghosttrack_tests::{TestApp, spawn_app, workspace_root};
use poem::http::StatusCode;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::{Data, Html, Json};
use poem::{Body, EndpointExt, Request, Response, Route, Server, get, handler, post};

/// London in the MaxMind City test database.
const VISITOR_IP: &str = "81.2.69.142";
const ALL_KINDS: [&str; 8] = ["pv", "en", "cl", "sc", "pp", "ix", "vi", "ac"];

struct Upstream {
    collect_url: String,
    client: reqwest::Client,
}

/// The storefront's app-proxy route: forwards the beacon to the collector like a proxy does.
#[handler]
async fn app_proxy(req: &Request, body: Body, Data(up): Data<&Arc<Upstream>>) -> Response {
    let ua = req.headers().get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let resp = up
        .client
        .post(&up.collect_url)
        .header("content-type", "text/plain;charset=UTF-8")
        .header("user-agent", ua)
        .header("x-forwarded-for", VISITOR_IP)
        .body(body.into_vec().await.unwrap_or_default())
        .send()
        .await
        .expect("collector reachable");
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
    Response::builder().status(status).body(resp.bytes().await.unwrap_or_default().to_vec())
}

#[handler]
fn cart_add() -> Json<serde_json::Value> {
    Json(serde_json::json!({"items": [{"id": 4242, "quantity": 1}]}))
}

#[handler]
fn cart() -> Json<serde_json::Value> {
    Json(serde_json::json!({"token": "c1-test-cart-token", "item_count": 1}))
}

/// Serves the fixture storefront on its own port and answers Shopify's Ajax cart endpoints.
/// `endpoint` is what the embed config tells the tracker to post to.
pub(super) async fn serve_storefront(app: &TestApp, site_key: &str, endpoint: &str) -> String {
    let html = std::fs::read_to_string(workspace_root().join("tests/fixtures/storefront.html"))
        .expect("fixture page")
        .replace("{{SITE_KEY}}", site_key)
        .replace("{{ENDPOINT}}", endpoint)
        .replace("{{SCRIPT_URL}}", &app.url("/t.js"));
    let upstream = Arc::new(Upstream { collect_url: app.url("/collect"), client: reqwest::Client::new() });
    let page = get(poem::endpoint::make_sync(move |_| Html(html.clone())));
    let routes = Route::new()
        .at("/products/ghost-hoodie", page)
        .at("/cart/add.js", post(cart_add))
        .at("/cart.js", get(cart))
        .at("/apps/ghosttrack/collect", post(app_proxy))
        .data(upstream);
    let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await.unwrap();
    let addr = acceptor.local_addr()[0].as_socket_addr().copied().unwrap();
    tokio::spawn(Server::new_with_acceptor(acceptor).run(routes));
    format!("http://{addr}/products/ghost-hoodie")
}

/// Runs tests/browser/storefront.mjs against `page_url` and returns its JSON summary.
pub(super) async fn drive_browser(page_url: String) -> serde_json::Value {
    let browser_dir = workspace_root().join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").exists() && std::path::Path::new("/usr/bin/chromium").exists(),
        "the browser test needs Debian chromium and tests/browser/node_modules: run `scripts/test` (the README's test command), which installs both"
    );
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node").arg("storefront.mjs").arg(&page_url).current_dir(browser_dir).output().expect("run node")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "browser run failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap();
    assert!(summary["statuses"].as_array().unwrap().iter().all(|s| s == 202), "{summary}");
    summary
}

/// Event kinds stored so far; waits briefly for the pagehide beacon, sent as the page unloads.
async fn stored_kinds(app: &TestApp) -> Vec<&'static str> {
    let mut kinds = Vec::new();
    for _ in 0..50 {
        kinds.clear();
        for kind in ALL_KINDS {
            if app.count(&format!("SELECT COUNT(*) FROM events WHERE kind = '{kind}'")).await > 0 {
                kinds.push(kind);
            }
        }
        if kinds.len() == ALL_KINDS.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    kinds
}

#[tokio::test]
async fn a_real_browser_posting_cross_origin_sends_every_event_type() {
    let app = spawn_app().await;
    let site = app.create_site("fixture-store.myshopify.com").await;
    let page_url = serve_storefront(&app, &site.key, &app.url("/collect")).await;

    drive_browser(page_url).await;

    assert_eq!(stored_kinds(&app).await, ALL_KINDS, "event types stored");
    assert_eq!(app.count("SELECT COUNT(*) FROM events WHERE path <> '/products/ghost-hoodie'").await, 0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM events WHERE kind = 'ac' AND props LIKE '%c1-test-cart-token%'").await,
        1
    );
    assert!(app.count("SELECT COUNT(*) FROM events WHERE kind = 'cl' AND props LIKE '%\"ap\":1%'").await >= 1);
    assert!(app.count("SELECT COUNT(*) FROM events WHERE kind = 'pp' AND length(props) > 100").await >= 1);
}

#[tokio::test]
async fn a_real_browser_through_the_app_proxy_is_one_enriched_automated_session() {
    let app = spawn_app().await;
    let site = app.create_site("fixture-store.myshopify.com").await;
    let storefront = serve_storefront(&app, &site.key, "/apps/ghosttrack/collect").await;

    drive_browser(storefront).await;

    assert_eq!(stored_kinds(&app).await, ALL_KINDS, "event types stored");
    assert_eq!(app.count("SELECT COUNT(DISTINCT session_id) FROM events").await, 1);
    // Playwright's Chromium is automation: navigator.webdriver is true and the UA says HeadlessChrome.
    assert_eq!(app.count("SELECT COUNT(*) FROM events WHERE kind = 'en' AND props LIKE '%\"wd\":1%'").await, 1);
    let enriched = app
        .count(
            "SELECT COUNT(*) FROM sessions WHERE country = 'GB' AND city = 'London' AND ip_prefix = '81.2.69.0/24' \
             AND bot_family = 'headless-chrome' AND automated AND device = 'desktop' AND pageviews = 1",
        )
        .await;
    assert_eq!(enriched, 1, "session enriched from the visitor IP and the browser's user agent");
}
