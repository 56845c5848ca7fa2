//! `ghosttrack demo`: GhostTrack on its own SQLite database with a demo shop installed through
//! the fake Shopify, and a traffic simulator, so a newcomer sees the dashboard fill up within
//! a minute.
//!
//! The fake Shopify (tests/fake-shopify) is a separate binary that the demo spawns, not a
//! library linked into the server: the production binary carries no test fakes. The demo only
//! needs the fake for what Shopify serves (token exchange, the Admin API, the admin page that
//! frames the panel); it mints the app-load id token and signs webhooks itself with the
//! functions the server verifies them with. `--shopify-api-base` uses a fake already running
//! (the end-to-end test starts one in-process).

mod fake;
pub mod traffic;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::settings::{Secret, Settings};
use crate::shopify::id_token::{self, IdTokenClaims};
use crate::shopify::shop_domain::ShopDomain;
use crate::shopify::signing;
use crate::startup::Application;
use crate::storage;

/// The demo app's client id, client secret and server key. Demo values, public on purpose:
/// the demo talks only to the local fake Shopify.
pub const API_KEY: &str = "ghosttrack-demo";
pub const API_SECRET: &str = "ghosttrack-demo-client-secret";
const SERVER_KEY: &str = "ghosttrack-demo-server-key-0123456789abcdef";
/// The demo shop.
pub const SHOP: &str = "demo-shop.myshopify.com";

/// Where the fake Shopify comes from.
#[derive(Debug, Clone)]
pub enum FakeShopify {
    /// Spawn this `fake-shopify` binary (default: next to the `ghosttrack` binary).
    Spawn(PathBuf),
    /// A fake already serving at this base URL, e.g. `http://127.0.0.1:4000`.
    Running(String),
}

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub fake: FakeShopify,
    /// Stop after this long (tests); `None` runs until Ctrl-C / SIGTERM.
    pub duration: Option<Duration>,
}

/// Runs the demo until `shutdown` resolves (or `duration` passed). The database lives in
/// `{data_dir}/demo/`, apart from a real installation's.
pub async fn run(
    mut settings: Settings,
    options: DemoOptions,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut child = None;
    let fake_base = match &options.fake {
        FakeShopify::Running(base) => base.trim_end_matches('/').to_owned(),
        FakeShopify::Spawn(path) => {
            let (process, base) = fake::spawn(path, API_KEY, API_SECRET).await?;
            child = Some(process);
            base
        }
    };
    configure(&mut settings, &fake_base);
    let result = serve(settings, &fake_base, options.duration, shutdown).await;
    if let Some(mut process) = child {
        let _ = process.kill().await;
    }
    result
}

/// The demo's settings on top of the operator's: SQLite under `data_dir/demo`, the fake
/// Shopify, loopback trusted (the simulator poses as visitors with `X-Forwarded-For`).
fn configure(settings: &mut Settings, fake_base: &str) {
    settings.data_dir = settings.data_dir.join("demo");
    settings.database_url = None;
    settings.demo_site = false;
    settings.shopify_api_key = Some(API_KEY.into());
    settings.shopify_api_secret = Some(Secret::new(API_SECRET));
    settings.shopify_api_secret_previous = None;
    settings.shopify_api_base = format!("{fake_base}/{{shop}}");
    settings.secret_key = Some(Secret::new(SERVER_KEY));
    settings.panel.app_bridge_url = format!("{fake_base}/app-bridge.js");
    settings.trusted_proxies = vec!["127.0.0.1/32".parse().expect("static net")];
    settings.detect.enabled = true;
    settings.detect.redis_url = None;
}

async fn serve(
    mut settings: Settings,
    fake_base: &str,
    duration: Option<Duration>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("cannot create {}", settings.data_dir.display()))?;
    let panel_built = crate::panel::assets::PanelAssets::load(&settings.panel.dist_dir).is_built();
    // The demo is plain HTTP on loopback: no https app URL (which would also turn HSTS on).
    settings.app_url = None;
    let app = Application::build(settings).await?;
    let base = format!("http://{}", app.local_addr());
    let db = app.db().clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stop_rx.await;
    }));

    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    let shop = ShopDomain::parse(SHOP).expect("static shop domain");
    let installed = async {
        install(&http, &base, &shop).await?;
        storage::shops::active_site(&db, &shop).await?.context("the demo shop was not installed")
    }
    .await;
    let site = match installed {
        Ok(site) => site,
        Err(error) => {
            let _ = stop_tx.send(());
            let _ = server.await;
            return Err(error);
        }
    };

    let app_home = format!("{base}/app");
    let dashboard = format!(
        "{fake_base}/store/{}/apps/{API_KEY}?{}",
        shop.handle(),
        url::form_urlencoded::Serializer::new(String::new()).append_pair("application_url", &app_home).finish()
    );
    println!("\nGhostTrack demo: shop {SHOP}, site key {}", site.key);
    println!("  Dashboard (the panel inside the fake Shopify admin): {dashboard}");
    if !panel_built {
        println!("  The admin panel is not built: run `cargo xtask dist` (or start the demo with `cargo xtask demo`).");
    }
    println!("  Traffic: shoppers every ~2 s, a headless bot every ~5 s, a card-testing burst and a scraper");
    println!("  within the first 30 s, repeated every few minutes. Ctrl-C stops the demo.\n");

    let simulator = traffic::Simulator {
        http,
        base: base.clone(),
        site_key: site.key.to_string(),
        shop: SHOP.into(),
        webhook_secret: API_SECRET.into(),
    };
    let (traffic_stop, traffic_stopped) = tokio::sync::watch::channel(false);
    let traffic = tokio::spawn(simulator.run(traffic_stopped));
    match duration {
        Some(d) => {
            tokio::select! {
                _ = tokio::time::sleep(d) => {},
                _ = shutdown => {},
            }
        }
        None => shutdown.await,
    }
    let _ = traffic_stop.send(true);
    let _ = traffic.await;
    let _ = stop_tx.send(());
    server.await.context("the server task failed")??;
    println!("GhostTrack demo stopped; its data stays in the demo database.");
    Ok(())
}

/// Installs the demo shop the way Shopify does on the first embedded load: an app-load URL
/// with a signed query and a fresh id token; the server exchanges the token with the fake.
async fn install(http: &reqwest::Client, base: &str, shop: &ShopDomain) -> anyhow::Result<()> {
    let now = chrono::Utc::now().timestamp();
    let claims = IdTokenClaims {
        iss: format!("https://{shop}/admin"),
        dest: format!("https://{shop}"),
        aud: API_KEY.into(),
        sub: Some("1".into()),
        exp: now + 60,
        nbf: now,
        iat: Some(now),
        jti: Some(format!("demo-{now}")),
        sid: Some(format!("demo-session-{now}")),
    };
    let token = id_token::mint(API_SECRET, &claims);
    let host = base64_host(shop);
    let ts = now.to_string();
    let mut pairs: Vec<(&str, &str)> = vec![
        ("embedded", "1"),
        ("host", &host),
        ("id_token", &token),
        ("locale", "en"),
        ("shop", shop.as_str()),
        ("timestamp", &ts),
    ];
    let hmac = signing::sign_admin_query(API_SECRET, pairs.iter().copied());
    pairs.push(("hmac", &hmac));
    let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
    let resp = http.get(format!("{base}/app?{query}")).send().await.context("the demo server did not answer")?;
    // 200 with the panel, or 503 when the panel is not built: the install happened either way.
    if !(resp.status().is_success() || resp.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE) {
        bail!("installing the demo shop failed: {} {}", resp.status(), resp.text().await.unwrap_or_default());
    }
    Ok(())
}

/// Shopify's `host` parameter: base64 of `admin.shopify.com/store/{handle}`, unpadded.
fn base64_host(shop: &ShopDomain) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(format!("admin.shopify.com/store/{}", shop.handle()))
}
