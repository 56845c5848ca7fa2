//! The admin panel API (`/api/panel/*`) and how `/app` serves the panel: two shops installed
//! through the fake Shopify's embedded load, traffic through `/collect`, verdicts from the real
//! detector. Each shop's id token reads only its own shop; a bad or expired token is a 401 that
//! asks App Bridge to retry with a fresh one.

use std::time::Duration;

use fake_shopify::{AppRegistration, FakeShopify};
use ghosttrack::settings::Secret;
use ghosttrack_tests::{Spawn, TestApp, TestDb, batch, install_by_reloading, now_ms};
use serde_json::Value;

const API_KEY: &str = "gt-panel-client-id";
const API_SECRET: &str = "gt-panel-client-secret";
pub(super) const SECRET_KEY: &str = "0123456789abcdef0123456789abcdef-panel";
const SHOP_A: &str = "alpha.myshopify.com";
const SHOP_B: &str = "bravo.myshopify.com";
const HEADLESS_UA: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36";
const RETRY: &str = "x-shopify-retry-invalid-session-request";

pub(super) struct Env {
    pub app: TestApp,
    pub fake: FakeShopify,
}

pub(super) async fn start(db: TestDb, dist: Option<std::path::PathBuf>) -> Env {
    start_with(db, dist, |_| {}).await
}

/// [`start`] with more settings changed by `configure`.
pub(super) async fn start_with(
    db: TestDb,
    dist: Option<std::path::PathBuf>,
    configure: impl FnOnce(&mut ghosttrack::settings::Settings) + Send + 'static,
) -> Env {
    let fake =
        FakeShopify::start(AppRegistration::new(API_KEY, API_SECRET), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = fake.api_base_template();
    let admin = fake.base_url.clone();
    let app = Spawn::default()
        .database(db)
        .configure(move |s| {
            s.shopify_api_key = Some(API_KEY.into());
            s.shopify_api_secret = Some(Secret::new(API_SECRET));
            s.shopify_api_base = base;
            s.secret_key = Some(Secret::new(SECRET_KEY));
            s.app_url = Some(url::Url::parse("https://ghosttrack.test").unwrap());
            s.panel.app_bridge_url = format!("{admin}/app-bridge.js");
            if let Some(dist) = dist {
                s.panel.dist_dir = dist;
            }
            configure(s);
        })
        .start()
        .await;
    Env { app, fake }
}

impl Env {
    /// Installs `shop` the way the admin does: an embedded load of the app home (reloaded on the
    /// 503 try-again page, see [`install_by_reloading`]).
    pub async fn install(&self, shop: &str) {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        install_by_reloading(shop, || {
            let load = client.get(self.fake.embedded_load_url(&self.app.url("/app"), shop));
            async move { load.send().await.unwrap() }
        })
        .await;
    }

    /// The public key of the shop's site (what the app embed puts on the storefront).
    pub async fn site_key(&self, shop: &str) -> String {
        let backend = self.app.db.get_database_backend();
        let sql = format!("SELECT public_key FROM sites WHERE domain = '{shop}'");
        let row = sea_orm::ConnectionTrait::query_one_raw(&self.app.db, sea_orm::Statement::from_string(backend, sql))
            .await
            .unwrap()
            .expect("the shop's site");
        row.try_get_by_index::<String>(0).unwrap()
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.app.client.get(self.app.url(path)).bearer_auth(token).send().await.unwrap()
    }

    pub async fn get_json(&self, shop: &str, path: &str) -> Value {
        let resp = self.get(path, &self.fake.mint_id_token(shop, 1)).await;
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert_eq!(status, 200, "{path}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// A headless-browser visit to the shop's storefront: a session the detector blocks.
    pub async fn headless_visit(&self, shop: &str, ip: &str) {
        let key = self.site_key(shop).await;
        let now = now_ms();
        let events = vec![
            format!(r#"{{"t":"en","ts":{now},"wd":1,"hl":1,"pl":0,"lg":1}}"#),
            format!(r#"{{"t":"pv","ts":{},"pt":"product"}}"#, now + 1),
            format!(r#"{{"t":"pp","ts":{},"p":[200,100,100,20,10,4,20,10,4]}}"#, now + 300),
            format!(
                r#"{{"t":"cl","ts":{},"x":120,"y":108,"pw":1280,"ph":2400,"tg":"button","sel":"button#buy","ap":1}}"#,
                now + 320
            ),
        ];
        let resp =
            self.app.collect(&batch(&key, &format!("https://{shop}/products/a"), &events), ip, HEADLESS_UA).await;
        assert_eq!(resp.status(), 202, "{}", resp.text().await.unwrap());
    }

    /// Waits until the shop has at least one threat (the recorder writes asynchronously).
    pub async fn threats(&self, shop: &str) -> Value {
        for _ in 0..100 {
            let body = self.get_json(shop, "/api/panel/threats").await;
            if !body["threats"].as_array().unwrap().is_empty() {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no threat recorded for {shop}");
    }
}

async fn two_shops(db: TestDb) -> Env {
    let env = start(db, None).await;
    env.install(SHOP_A).await;
    env.install(SHOP_B).await;
    env.headless_visit(SHOP_A, "81.2.69.142").await;
    env
}

async fn every_endpoint_reads_only_the_token_shop(db: TestDb) {
    let env = two_shops(db).await;
    let threats = env.threats(SHOP_A).await;
    let threat = &threats["threats"][0];
    assert_eq!(threat["decision"], "BLOCK");
    let session_id = threat["session_id"].as_i64().expect("a session subject");

    let overview = env.get_json(SHOP_A, "/api/panel/overview?range=24h").await;
    assert_eq!((overview["sessions"].as_i64(), overview["visitors"].as_i64()), (Some(1), Some(1)));
    assert_eq!(overview["automated_share"].as_f64(), Some(1.0));
    assert!(overview["open_threats"].as_i64().unwrap() >= 1, "{overview}");
    assert_eq!(overview["series"].as_array().unwrap().len(), 24);
    let sessions = env.get_json(SHOP_A, "/api/panel/sessions?decision=BLOCK&country=GB&device=desktop").await;
    let listed: Vec<i64> = sessions["sessions"].as_array().unwrap().iter().map(|s| s["id"].as_i64().unwrap()).collect();
    assert_eq!(listed, [session_id], "{sessions}");
    assert_eq!(env.get_json(SHOP_A, "/api/panel/sessions?country=US").await["sessions"], serde_json::json!([]));
    assert_eq!(
        env.get_json(SHOP_A, "/api/panel/sessions?rule=ua/automation-library").await["sessions"][0]["id"].as_i64(),
        Some(session_id)
    );
    let detail = env.get_json(SHOP_A, &format!("/api/panel/sessions/{session_id}")).await;
    assert_eq!(detail["session"]["decision"], "BLOCK");
    assert_eq!(detail["pointer"].as_array().unwrap().len(), 3, "{detail}");
    assert_eq!(detail["clicks"][0]["target"], "button#buy");
    assert_eq!(detail["page_height"].as_i64(), Some(2400));
    let signal = detail["signals"].as_array().unwrap().iter().find(|s| s["rule"] == "ua/automation-library").unwrap();
    assert!(!signal["evidence"].as_array().unwrap().is_empty() && signal["explainer"].as_str().unwrap().len() > 40);
    let kinds: Vec<&str> = detail["timeline"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["en", "pv", "pp", "cl"]);

    // Shop B's token sees none of it, and cannot open A's session.
    let b = env.get_json(SHOP_B, "/api/panel/overview").await;
    assert_eq!((b["sessions"].as_i64(), b["open_threats"].as_i64()), (Some(0), Some(0)));
    assert_eq!(env.get_json(SHOP_B, "/api/panel/threats").await["threats"], serde_json::json!([]));
    assert_eq!(env.get_json(SHOP_B, "/api/panel/sessions?range=30d").await["sessions"], serde_json::json!([]));
    let resp = env.get(&format!("/api/panel/sessions/{session_id}"), &env.fake.mint_id_token(SHOP_B, 1)).await;
    assert_eq!(resp.status(), 404);
    env.app.stop().await;
}

#[tokio::test]
async fn every_panel_endpoint_reads_only_the_shop_of_its_session_token() {
    every_endpoint_reads_only_the_token_shop(TestDb::Sqlite).await;
}

#[tokio::test]
async fn every_panel_endpoint_reads_only_the_shop_of_its_session_token_on_postgres() {
    let Some(server) = ghosttrack_tests::pg::server_url() else {
        eprintln!("not run: GHOSTTRACK_TEST_DATABASE_URL is not set");
        return;
    };
    every_endpoint_reads_only_the_token_shop(TestDb::Postgres(ghosttrack_tests::pg::fresh_database(&server).await))
        .await;
}

#[tokio::test]
async fn bad_expired_or_missing_tokens_are_401_and_only_fixable_ones_ask_for_a_retry() {
    let env = start(TestDb::Sqlite, None).await;
    env.install(SHOP_A).await;
    let now = chrono::Utc::now().timestamp();
    let expired = env.fake.mint_id_token_with(SHOP_A, 1, now - 600, now - 300);
    for path in [
        "/api/panel/overview",
        "/api/panel/threats",
        "/api/panel/sessions",
        "/api/panel/sessions/1",
        "/api/panel/setup",
        "/api/panel/rules",
        "/api/panel/threats/live",
    ] {
        for token in [expired.as_str(), "not-a-jwt"] {
            let resp = env.get(path, token).await;
            assert_eq!(resp.status(), 401, "{path}");
            assert_eq!(resp.headers().get(RETRY).map(|v| v.to_str().unwrap()), Some("1"), "{path}");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["error"], "invalid_session_token", "{path}");
        }
        let resp = env.app.client.get(env.app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 401, "{path}: no credentials");
        assert!(resp.headers().get(RETRY).is_none(), "{path}: a retry cannot help");
    }
    // A valid token whose shop never installed the app: signed in, but nothing to show.
    let resp = env.get("/api/panel/overview", &env.fake.mint_id_token(SHOP_B, 1)).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "not_installed");
    // A `shop` parameter naming another shop than the token is refused without a retry.
    let resp = env.get(&format!("/api/panel/overview?shop={SHOP_B}"), &env.fake.mint_id_token(SHOP_A, 1)).await;
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get(RETRY).is_none());
}

#[tokio::test]
async fn bad_filters_are_400_with_a_reason() {
    let env = start(TestDb::Sqlite, None).await;
    env.install(SHOP_A).await;
    let token = env.fake.mint_id_token(SHOP_A, 1);
    for (query, code) in [
        ("country=Germany", "invalid_country"),
        ("device=toaster", "invalid_device"),
        ("rule=%25'%20OR%201=1", "invalid_rule"),
    ] {
        let resp = env.get(&format!("/api/panel/sessions?{query}"), &token).await;
        assert_eq!(resp.status(), 400, "{query}");
        assert_eq!(resp.json::<Value>().await.unwrap()["error"], code);
    }
    let resp = env.get("/api/panel/sessions?decision=MAYBE", &token).await;
    assert_eq!(resp.status(), 400);
    let resp = env.get("/api/panel/overview?range=1y", &token).await;
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn the_live_feed_streams_a_new_threat_of_the_token_shop_only() {
    let env = two_shops(TestDb::Sqlite).await;
    let first = env.threats(SHOP_A).await["threats"][0]["id"].as_i64().unwrap();
    let open = |shop: &'static str| {
        let url = env.app.url(&format!("/api/panel/threats/live?after={first}"));
        let token = env.fake.mint_id_token(shop, 1);
        let client = env.app.client.clone();
        async move { client.get(url).bearer_auth(token).header("accept-encoding", "gzip, br").send().await.unwrap() }
    };
    let mut feed_a = open(SHOP_A).await;
    let mut feed_b = open(SHOP_B).await;
    assert_eq!(feed_a.status(), 200);
    assert_eq!(feed_a.headers()["content-type"], "text/event-stream");
    assert!(feed_a.headers().get("content-encoding").is_none(), "events are not held back by compression");

    // B's visit first, then A's: A's feed carries only A's new verdict.
    env.headless_visit(SHOP_B, "81.2.69.160").await;
    env.headless_visit(SHOP_A, "81.2.69.150").await;
    let event = tokio::time::timeout(Duration::from_secs(10), next_event(&mut feed_a)).await.expect("an event");
    let threat: Value = serde_json::from_str(&event).unwrap();
    assert!(threat["id"].as_i64().unwrap() > first);
    if let Some(a_session) = threat["session_id"].as_i64() {
        let a_sessions = env.get_json(SHOP_A, "/api/panel/sessions").await;
        assert!(a_sessions["sessions"].as_array().unwrap().iter().any(|s| s["id"].as_i64() == Some(a_session)));
    }
    let b_event = tokio::time::timeout(Duration::from_secs(10), next_event(&mut feed_b)).await.expect("B's event");
    let b_threat: Value = serde_json::from_str(&b_event).unwrap();
    assert_ne!(b_threat["session_id"], threat["session_id"]);
    drop((feed_a, feed_b));
}

/// The `data` of the next event of a `text/event-stream` response.
async fn next_event(resp: &mut reqwest::Response) -> String {
    let mut buf = String::new();
    loop {
        let chunk = resp.chunk().await.unwrap().expect("the stream stays open");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let raw: String = buf.drain(..end + 2).collect();
            let data: Vec<&str> = raw.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
            if !data.is_empty() {
                return data.join("\n");
            }
        }
    }
}

#[tokio::test]
async fn setup_reports_the_embed_the_pixel_and_the_activation_link() {
    let env = start(TestDb::Sqlite, None).await;
    env.install(SHOP_A).await;
    // The post-install job activates the pixel in the background after the install.
    let mut setup = env.get_json(SHOP_A, "/api/panel/setup").await;
    for _ in 0..400 {
        if setup["pixel"] == "connected" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        setup = env.get_json(SHOP_A, "/api/panel/setup").await;
    }
    assert_eq!(setup["kind"], "shopify");
    assert_eq!(setup["app_embed"], "no_main_theme");
    assert_eq!(setup["pixel"], "connected", "{setup}");
    // Removed on Shopify's side: the page says so.
    env.fake.delete_web_pixel(SHOP_A);
    let setup = env.get_json(SHOP_A, "/api/panel/setup").await;
    assert_eq!(setup["pixel"], "missing");
    assert_eq!(
        setup["activation_url"],
        format!("https://{SHOP_A}/admin/themes/current/editor?context=apps&activateAppId={API_KEY}/ghosttrack-embed")
    );
    env.fake.set_main_theme_settings_data(
        SHOP_A,
        r#"/* header */ {"current":{"blocks":{"1":{"type":"shopify://apps/ghosttrack/blocks/ghosttrack-embed/abc","disabled":false}}}}"#,
    );
    let setup = env.get_json(SHOP_A, "/api/panel/setup").await;
    assert_eq!(setup["app_embed"], "enabled", "{setup}");
    assert_eq!(setup["events_last_24h"], 0);

    let rules = env.get_json(SHOP_A, "/api/panel/rules").await;
    let crawler = rules["rules"].as_array().unwrap().iter().find(|r| r["id"] == "ua/crawler").expect("embedded rules");
    assert_eq!(crawler["attack"], false);
    assert!(crawler["explainer"].as_str().unwrap().len() > 40);
}

#[tokio::test]
async fn app_serves_the_panel_with_app_bridge_first_and_hashed_assets_immutable_and_compressed() {
    let env = start(TestDb::Sqlite, None).await;
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let resp = no_redirects.get(env.fake.embedded_load_url(&env.app.url("/app/threats"), SHOP_A)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-cache");
    // The fake admin frames the app from its own origin, so it is allowed too.
    assert_eq!(
        resp.headers()["content-security-policy"],
        format!(
            "frame-ancestors https://{SHOP_A} https://admin.shopify.com {base}; script-src 'self' 'wasm-unsafe-eval' {base}; base-uri 'self'; object-src 'none';",
            base = env.fake.base_url
        )
    );
    let page = resp.text().await.unwrap();
    let head = page.split("<head>").nth(1).unwrap();
    assert!(
        head.starts_with(&format!(
            "<meta name=\"shopify-api-key\" content=\"{API_KEY}\"><script src=\"{}/app-bridge.js\"></script>",
            env.fake.base_url
        )),
        "{page}"
    );
    // Standalone: the same panel without Shopify's head, never framed.
    let resp = env.app.client.get(env.app.url("/app/sessions")).send().await.unwrap();
    assert_eq!(
        resp.headers()["content-security-policy"],
        "frame-ancestors 'none'; script-src 'self' 'wasm-unsafe-eval'; base-uri 'self'; object-src 'none';"
    );
    assert!(!resp.text().await.unwrap().contains("shopify-api-key"));

    let resp = env
        .app
        .client
        .get(env.app.url("/app/assets/style-test.css"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(resp.headers()["content-type"], "text/css; charset=utf-8");
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let mut css = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&resp.bytes().await.unwrap()[..]), &mut css)
        .unwrap();
    assert_eq!(css, "body{margin:0}\n");
    let resp = env.app.client.get(env.app.url("/app/assets/nope.js")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn a_server_without_a_panel_build_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let env = start(TestDb::Sqlite, Some(dir.path().to_owned())).await;
    let resp = env.app.client.get(env.app.url("/app")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    assert!(resp.text().await.unwrap().contains("cargo xtask dist"));
    assert_eq!(env.app.client.get(env.app.url("/health")).send().await.unwrap().status(), 200);
}

/// The real panel (web/dist from `cargo xtask dist`) inside the fake Shopify admin, in Debian
/// Chromium: every page renders with seeded data, App Bridge's nav menu and title bar reach the
/// admin, the replay plays, a new threat appears on Live threats without a reload, the owner
/// turns payload encryption on and the shop's next events are stored encrypted, axe-core finds
/// no serious or critical violation, screenshots go to target/screenshots/.
#[tokio::test]
async fn the_panel_renders_every_page_inside_the_shopify_admin_in_a_real_browser() {
    let root = ghosttrack_tests::workspace_root();
    let dist = root.join("web/dist");
    assert!(
        dist.join("index.html").exists(),
        "the browser test needs the built panel: run `cargo xtask dist` (scripts/test does)"
    );
    let browser_dir = root.join("tests/browser");
    assert!(
        browser_dir.join("node_modules/axe-core").exists() && std::path::Path::new("/usr/bin/chromium").exists(),
        "the browser test needs Debian chromium and tests/browser/node_modules: run `scripts/test`, which installs both"
    );
    let env = start(TestDb::Sqlite, Some(dist)).await;
    env.install(SHOP_A).await;
    // Shoppers first (Geography, Pages, Privacy), then the blocked visit the Sessions step opens.
    for (ip, path, depth) in
        [(super::panel_maps::SE_IP, "/products/a", 100), (super::panel_maps::US_IP, "/products/a", 40)]
    {
        super::panel_maps::human_visit(&env, SHOP_A, ip, path, depth).await;
    }
    env.headless_visit(SHOP_A, "81.2.69.142").await;
    env.threats(SHOP_A).await;
    let admin = format!(
        "{}/store/alpha/apps/ghosttrack?application_url={}",
        env.fake.base_url,
        url::form_urlencoded::byte_serialize(env.app.url("/app").as_bytes()).collect::<String>()
    );
    let shots = root.join("target/screenshots");
    let args = [admin, env.app.url("/collect"), env.site_key(SHOP_A).await, shots.display().to_string()];
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg("panel.mjs")
            .args(args)
            .current_dir(browser_dir)
            .output()
            .expect("run node")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap_or_default();
    assert!(output.status.success(), "browser run failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(summary["cspViolations"], serde_json::json!([]), "the page's CSP blocked something: {summary}");
    assert_eq!(summary["serious"], serde_json::json!([]), "{summary}");
    assert_eq!(summary["adminTitle"], "Overview", "the title bar reached the admin");
    for page in [
        "overview",
        "sessions",
        "session",
        "setup",
        "rules",
        "threats",
        "threats-live",
        "overview-360",
        "geography",
        "pages",
        "page-map",
        "privacy",
        "privacy-encryption-confirm",
        "privacy-encrypted",
        "privacy-found",
        "privacy-deleted",
        "geography-360",
    ] {
        assert!(shots.join(format!("panel-{page}.png")).exists(), "{page} screenshot");
    }
    assert_eq!(summary["encryptionBefore"], "false", "{summary}");
    assert_eq!(summary["encryptionToast"], "Encryption of event details turned on", "{summary}");
    assert_eq!(summary["encryptionState"], "On: the details of new events are stored encrypted.");
    assert_eq!(env.get_json(SHOP_A, "/api/panel/privacy").await["encrypted_at_rest"], true);
    let audited = "SELECT COUNT(*) FROM panel_audit_log WHERE action = 'payload_encryption' \
                   AND actor LIKE 'shopify-user:%' AND detail LIKE '%\"enabled\":true%'";
    assert_eq!(env.app.count(audited).await, 1, "the switch is audit-logged");
    // The shop's next events: every payload at rest is an envelope, no plaintext left.
    let before = env.app.count("SELECT COALESCE(MAX(id), 0) FROM events").await;
    super::panel_maps::human_visit(&env, SHOP_A, super::panel_maps::SE_IP, "/products/c", 50).await;
    let sealed = props_after(&env, SHOP_A, before, 5).await;
    for props in &sealed {
        assert!(props.starts_with("gtenc:v1:") && !props.contains("a.cart"), "not sealed: {props}");
    }
    // Measured, not asserted (see docs/BENCHMARKS.md).
    println!(
        "panel first render: {} ms; live threat shown after {} ms",
        summary["firstRenderMs"], summary["liveAppearedMs"]
    );
}

/// The shop's stored event payloads (`props` as the database holds them) after event id `after`,
/// waiting until at least `at_least` are written (the ingest writes in the background).
async fn props_after(env: &Env, shop: &str, after: i64, at_least: usize) -> Vec<String> {
    let backend = env.app.db.get_database_backend();
    let sql = format!(
        "SELECT e.props FROM events e JOIN sites s ON s.id = e.site_id \
         WHERE s.domain = '{shop}' AND e.id > {after} AND e.props IS NOT NULL ORDER BY e.id"
    );
    let mut props = Vec::new();
    for _ in 0..200 {
        let rows = sea_orm::ConnectionTrait::query_all_raw(&env.app.db, sea_orm::Statement::from_string(backend, &sql))
            .await
            .unwrap();
        props = rows.iter().map(|r| r.try_get_by_index::<String>(0).unwrap()).collect();
        if props.len() >= at_least {
            return props;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{shop}: {at_least} payloads never stored after event {after}: {props:?}");
}
