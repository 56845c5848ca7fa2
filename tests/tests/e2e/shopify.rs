//! The Shopify platform end to end, against the fake Shopify: install by token exchange on the
//! first embedded load, refresh, uninstall, reinstall; webhooks (HMAC, headers, duplicates,
//! out-of-order); compliance; the app proxy collect path; tenant isolation.

use std::time::Duration;

use fake_shopify::{AppRegistration, FakeShopify};
use ghosttrack::settings::Secret;
use ghosttrack::shopify::app_toml::AppToml;
use ghosttrack_tests::{
    CHROME_UA, Spawn, TestApp, TestDb, batch, install_by_reloading, now_ms, pageview, pg, workspace_root,
};
use sea_orm::ConnectionTrait;

const API_KEY: &str = "gt-test-client-id";
const API_SECRET: &str = "gt-test-client-secret";
const SECRET_KEY: &str = "test-server-secret-key-0123456789abcdef";
const SHOP: &str = "acme.myshopify.com";
const OTHER_SHOP: &str = "globex.myshopify.com";

struct Env {
    app: TestApp,
    fake: FakeShopify,
    toml: AppToml,
}

fn app_toml() -> AppToml {
    AppToml::parse(&std::fs::read_to_string(workspace_root().join("shopify.app.toml")).unwrap()).unwrap()
}

async fn start_with(registration: AppRegistration) -> Env {
    start_on(registration, TestDb::Sqlite).await
}

async fn start_on(registration: AppRegistration, db: TestDb) -> Env {
    start_configured(registration, db, |_| {}).await
}

async fn start_configured(
    registration: AppRegistration,
    db: TestDb,
    extra: impl FnOnce(&mut ghosttrack::settings::Settings) + Send + 'static,
) -> Env {
    let fake = FakeShopify::start(registration, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = fake.api_base_template();
    let app = Spawn::default()
        .database(db)
        .configure(move |s| {
            s.shopify_api_key = Some(API_KEY.into());
            s.shopify_api_secret = Some(Secret::new(API_SECRET));
            s.shopify_api_base = base;
            s.secret_key = Some(Secret::new(SECRET_KEY));
            s.app_url = Some(url::Url::parse("https://ghosttrack.test").unwrap());
            extra(s);
        })
        .start()
        .await;
    Env { app, fake, toml: app_toml() }
}

async fn start() -> Env {
    start_with(AppRegistration::new(API_KEY, API_SECRET)).await
}

impl Env {
    fn webhook_url(&self, topic: &str) -> String {
        self.app.url(&self.toml.uri_for_topic(topic).expect("topic subscribed in shopify.app.toml"))
    }

    fn proxy_url(&self) -> String {
        self.app.url(&self.toml.path_of(&self.toml.app_proxy.url))
    }

    fn home_url(&self) -> String {
        self.app.url(&self.toml.path_of(&self.toml.application_url))
    }

    /// What the admin iframe does: load the app with the embedded query.
    async fn embedded_load(&self, shop: &str) -> reqwest::Response {
        let url = self.fake.embedded_load_url(&self.home_url(), shop);
        no_redirects().get(url).send().await.unwrap()
    }

    async fn send(&self, topic: &str, shop: &str, body: &str) -> reqwest::Response {
        let d = self.fake.webhook(topic, shop, body);
        self.fake.deliver(&self.webhook_url(topic), &d).await.unwrap()
    }

    async fn inbox_drained(&self) {
        for _ in 0..200 {
            if self.app.count("SELECT COUNT(*) FROM webhook_inbox WHERE status = 'pending'").await == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the webhook inbox was not processed");
    }

    /// Waits for the post-install job's report of `shop` to have been written `runs` times.
    async fn setup_done(&self, shop: &str, runs: i64) {
        let sql = format!(
            "SELECT COUNT(*) FROM shopify_setup s JOIN shops p ON p.site_id = s.site_id \
             WHERE p.domain = '{shop}' AND s.runs >= {runs}"
        );
        for _ in 0..400 {
            if self.app.count(&sql).await == 1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the post-install job of {shop} did not finish");
    }

    async fn scalar(&self, sql: &str) -> Option<String> {
        let backend = self.app.db.get_database_backend();
        let row = self.app.db.query_one_raw(sea_orm::Statement::from_string(backend, sql.to_owned())).await.unwrap()?;
        row.try_get_by_index::<Option<String>>(0).unwrap()
    }
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

#[tokio::test]
async fn shopify_routes_answer_503_when_the_server_has_no_shopify_credentials() {
    let app = ghosttrack_tests::spawn_app().await;
    let toml = app_toml();
    let resp = app.client.post(app.url(&toml.uri_for_topic("orders/create").unwrap())).body("{}").send().await.unwrap();
    assert_eq!(resp.status(), 503);
    // The admin panel is served standalone (its login page), without Shopify's head.
    let resp = app.client.get(app.url("/app?shop=acme.myshopify.com")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(!resp.text().await.unwrap().contains("shopify-api-key"));
    // The rest of the server works.
    assert_eq!(app.client.get(app.url("/health")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn install_by_embedded_load_then_refresh_uninstall_and_reinstall() {
    let env = start().await;

    // First embedded load: token exchange, shop + site created, tokens sealed at rest.
    let resp = env.embedded_load(SHOP).await;
    assert_eq!(resp.status(), 200);
    // The fake Shopify's admin origin is allowed too: it frames the app in the browser tests.
    assert_eq!(
        resp.headers()["content-security-policy"],
        format!(
            "frame-ancestors https://acme.myshopify.com https://admin.shopify.com {}; script-src 'self' 'wasm-unsafe-eval' https://cdn.shopify.com; base-uri 'self'; object-src 'none';",
            env.fake.base_url
        )
    );
    let page = resp.text().await.unwrap();
    assert!(
        page.contains(&format!("<head><meta name=\"shopify-api-key\" content=\"{API_KEY}\"><script src=\"https://cdn.shopify.com/shopifycloud/app-bridge.js\"></script>")),
        "the panel, with App Bridge first in <head>: {page}"
    );
    assert_eq!(env.fake.counters().token_exchanges, 1);
    let sealed = env.scalar("SELECT access_token FROM shops").await.unwrap();
    assert!(!sealed.contains("shpat_"), "tokens must be encrypted at rest");
    assert_eq!(
        env.scalar("SELECT kind FROM sites WHERE domain = 'acme.myshopify.com'").await.as_deref(),
        Some("shopify")
    );

    // The post-install job activated the pixel with the shop's collector settings.
    env.setup_done(SHOP, 1).await;
    assert_eq!(env.scalar("SELECT pixel_state FROM shopify_setup").await.as_deref(), Some("created"));

    // A second load reuses the stored token.
    assert_eq!(env.embedded_load(SHOP).await.status(), 200);
    assert_eq!(env.fake.counters().token_exchanges, 1);

    // Refresh before expiry: the stored access token is about to expire.
    let shopify = ghosttrack::shopify::Shopify::new(
        ghosttrack::shopify::ShopifyConfig::from_settings(&env.app.settings).unwrap().unwrap(),
        env.app.db.clone(),
    );
    let shop = ghosttrack::shopify::shop_domain::ShopDomain::parse(SHOP).unwrap();
    let before = shopify.tokens.access_token(&shop).await.unwrap();
    env.app
        .db
        .execute_unprepared(&format!("UPDATE shops SET access_expires_at = {}", now_ms() + 60_000))
        .await
        .unwrap();
    let after = shopify.tokens.access_token(&shop).await.unwrap();
    use secrecy::ExposeSecret;
    assert_ne!(before.expose_secret(), after.expose_secret());
    assert!(env.fake.access_token_valid(SHOP, after.expose_secret()));
    assert_eq!(env.fake.counters().refreshes, 1);
    assert_eq!(env.fake.counters().rejected_token_requests, 0);

    // Uninstall: Shopify revokes the tokens and sends app/uninstalled.
    env.fake.revoke_shop(SHOP);
    assert_eq!(
        env.send("app/uninstalled", SHOP, r#"{"id":1,"myshopify_domain":"acme.myshopify.com"}"#).await.status(),
        200
    );
    env.inbox_drained().await;
    assert_eq!(env.scalar("SELECT status FROM shops").await.as_deref(), Some("uninstalled"));
    assert_eq!(env.scalar("SELECT access_token FROM shops").await, None);
    assert!(shopify.tokens.access_token(&shop).await.is_err());
    assert_eq!(env.app.count("SELECT COUNT(*) FROM shopify_setup").await, 0, "uninstall forgets the setup report");

    // Reinstall: the next embedded load exchanges again and reactivates the same tenant.
    assert_eq!(env.embedded_load(SHOP).await.status(), 200);
    assert_eq!(env.fake.counters().token_exchanges, 2);
    assert_eq!(env.scalar("SELECT status FROM shops").await.as_deref(), Some("active"));
    assert_eq!(env.app.count("SELECT COUNT(*) FROM sites").await, 1);
    env.setup_done(SHOP, 1).await;
    let fresh = shopify.tokens.access_token(&shop).await.unwrap();
    assert!(env.fake.access_token_valid(SHOP, fresh.expose_secret()));
}

#[tokio::test]
async fn concurrent_refreshes_of_one_shop_are_serialized_into_one_call() {
    let mut registration = AppRegistration::new(API_KEY, API_SECRET);
    // No idempotent retry window: a second use of a spent refresh token fails, as it would
    // after the window on the real Shopify.
    registration.refresh_retry_window_secs = -1;
    let env = start_with(registration).await;
    install(&env, SHOP).await;
    env.app
        .db
        .execute_unprepared(&format!("UPDATE shops SET access_expires_at = {}", now_ms() + 60_000))
        .await
        .unwrap();

    let shopify = std::sync::Arc::new(ghosttrack::shopify::Shopify::new(
        ghosttrack::shopify::ShopifyConfig::from_settings(&env.app.settings).unwrap().unwrap(),
        env.app.db.clone(),
    ));
    let shop = ghosttrack::shopify::shop_domain::ShopDomain::parse(SHOP).unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let shopify = shopify.clone();
            let shop = shop.clone();
            tokio::spawn(async move { shopify.tokens.access_token(&shop).await })
        })
        .collect();
    let mut tokens = Vec::new();
    for task in tasks {
        use secrecy::ExposeSecret;
        tokens.push(task.await.unwrap().expect("every caller gets a token").expose_secret().to_owned());
    }
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "all callers share the one refreshed token");
    assert_eq!(env.fake.counters().refreshes, 1);
    assert_eq!(env.fake.counters().rejected_token_requests, 0);
    assert!(env.fake.access_token_valid(SHOP, &tokens[0]));
    assert_eq!(env.scalar("SELECT CAST(token_version AS TEXT) FROM shops").await.as_deref(), Some("2"));
}

#[tokio::test]
async fn document_loads_without_a_valid_token_bounce_and_fetches_get_401_with_retry() {
    let env = start().await;
    let client = no_redirects();
    // No id token: bounce page, with the original query minus id_token and a reload URL.
    let resp = client.get(format!("{}?embedded=1&shop={SHOP}", env.home_url())).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("/auth/session-token?embedded=1&shop=acme.myshopify.com&shopify-reload="),
        "{location}"
    );
    let bounce = client.get(env.app.url(&location)).send().await.unwrap();
    assert_eq!(bounce.status(), 200);
    assert_eq!(
        bounce.headers()["content-security-policy"],
        "frame-ancestors https://acme.myshopify.com https://admin.shopify.com; base-uri 'self'; object-src 'none';"
    );
    assert!(bounce.text().await.unwrap().contains("app-bridge.js"));

    // An id token for another shop than ?shop=: 401.
    let token = env.fake.mint_id_token(OTHER_SHOP, 1);
    let resp = client.get(format!("{}?embedded=1&shop={SHOP}&id_token={token}", env.home_url())).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    // Hostile shop values: 400, and the CSP never echoes them.
    for shop in ["evil.com", "x.myshopify.com.evil.com", "%0aacme.myshopify.com"] {
        let resp = client.get(format!("{}?embedded=1&shop={shop}", env.home_url())).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{shop}");
        assert_eq!(
            resp.headers()["content-security-policy"],
            "frame-ancestors 'none'; base-uri 'self'; object-src 'none';"
        );
    }

    // Fetch requests: bearer id token.
    let session = env.app.url("/api/shopify/session");
    let ok = env.app.client.get(&session).bearer_auth(env.fake.mint_id_token(SHOP, 7)).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.json::<serde_json::Value>().await.unwrap()["shop"], SHOP);
    let now = chrono::Utc::now().timestamp();
    let expired = env.fake.mint_id_token_with(SHOP, 7, now - 200, now - 100);
    let resp = env.app.client.get(&session).bearer_auth(expired).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["x-shopify-retry-invalid-session-request"], "1");
    let early = env.fake.mint_id_token_with(SHOP, 7, now + 100, now + 160);
    assert_eq!(env.app.client.get(&session).bearer_auth(early).send().await.unwrap().status(), 401);
    let mismatch = env
        .app
        .client
        .get(format!("{session}?shop={OTHER_SHOP}"))
        .bearer_auth(env.fake.mint_id_token(SHOP, 7))
        .send()
        .await
        .unwrap();
    assert_eq!(mismatch.status(), 401);
    assert!(mismatch.headers().get("x-shopify-retry-invalid-session-request").is_none());
    // The OpenAPI document marks the endpoint as taking the id token.
    let doc: serde_json::Value =
        env.app.client.get(env.app.url("/api/openapi.json")).send().await.unwrap().json().await.unwrap();
    let op = &doc["paths"]["/shopify/session"]["get"];
    assert_eq!(op["operationId"], "get_shopify_session");
    assert!(op["security"].to_string().contains("ShopifySessionToken"), "{op}");
    assert!(
        op["responses"]["401"]["headers"]
            .to_string()
            .to_lowercase()
            .contains("x-shopify-retry-invalid-session-request"),
        "{op}"
    );
    let wrong_app = FakeShopify::start(AppRegistration::new("another-app", API_SECRET), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
        .mint_id_token(SHOP, 7);
    assert_eq!(env.app.client.get(&session).bearer_auth(wrong_app).send().await.unwrap().status(), 401);
}

#[tokio::test]
async fn webhooks_are_verified_stored_once_and_rejected_with_shopifys_statuses() {
    let env = start().await;
    let url = env.webhook_url("orders/create");
    let body = r#"{"id":820982911946154508,"total_price":"10.00","currency":"EUR"}"#;

    // Forged and missing HMAC: 401, nothing stored.
    let forged = env
        .app
        .client
        .post(&url)
        .header("x-shopify-hmac-sha256", "invalid_hmac")
        .header("x-shopify-topic", "orders/create")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    let unsigned =
        env.app.client.post(&url).header("x-shopify-topic", "orders/create").body(body).send().await.unwrap();
    assert_eq!(unsigned.status(), 401);
    // Signed by another app's secret: 401.
    let other = FakeShopify::start(AppRegistration::new(API_KEY, "not-our-secret"), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let d = other.webhook("orders/create", SHOP, body);
    assert_eq!(other.deliver(&url, &d).await.unwrap().status(), 401);
    // Signed but missing headers: 400.
    let hmac = fake_shopify::signing::webhook_hmac(API_SECRET, body.as_bytes());
    let partial = env
        .app
        .client
        .post(&url)
        .header("X-Shopify-Hmac-Sha256", &hmac)
        .header("X-Shopify-Topic", "orders/create")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(partial.status(), 400);
    // Not a POST: 405.
    assert_eq!(env.app.client.get(&url).send().await.unwrap().status(), 405);
    // Oversized: 413.
    let huge = "x".repeat(3 * 1024 * 1024);
    assert_eq!(env.app.client.post(&url).body(huge).send().await.unwrap().status(), 413);
    assert_eq!(env.app.count("SELECT COUNT(*) FROM webhook_inbox").await, 0);

    // A real delivery, then Shopify's retry of it (same webhook id): stored once, 200 twice.
    let d = env.fake.webhook("orders/create", SHOP, body);
    assert_eq!(env.fake.deliver(&url, &d).await.unwrap().status(), 200);
    assert_eq!(env.fake.deliver(&url, &d).await.unwrap().status(), 200);
    assert_eq!(env.app.count("SELECT COUNT(*) FROM webhook_inbox").await, 1);
    // The lowercase `shopify-*` header form is accepted too.
    let events_form = env
        .app
        .client
        .post(&url)
        .header("shopify-hmac-sha256", &hmac)
        .header("shopify-topic", "orders/create")
        .header("shopify-shop-domain", SHOP)
        .header("shopify-api-version", "2026-10")
        .header("shopify-webhook-id", "events-form-1")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(events_form.status(), 200);
    assert_eq!(env.app.count("SELECT COUNT(*) FROM webhook_inbox").await, 2);
    env.inbox_drained().await;
}

/// Installs `shop` (reloaded on the 503 try-again page, see [`install_by_reloading`]) and waits
/// for the post-install setup.
async fn install(env: &Env, shop: &str) {
    install_by_reloading(shop, move || env.embedded_load(shop)).await;
    env.setup_done(shop, 1).await;
}

#[tokio::test]
async fn orders_arriving_out_of_order_keep_u64_ids_money_and_the_paid_state() {
    let env = start().await;
    install(&env, SHOP).await;
    let id = "18446744073709551000"; // > 2^63: only a u64 (or a string) holds it
    let paid = format!(
        r#"{{"id":{id},"financial_status":"paid","total_price":"199.90","currency":"EUR","updated_at":"2026-11-21T10:05:00Z","customer":{{"id":9007199254740993}}}}"#
    );
    let created = format!(
        r#"{{"id":{id},"financial_status":"pending","total_price":"199.90","currency":"EUR","cart_token":"cart-1","updated_at":"2026-11-21T10:00:00Z","customer":{{"id":9007199254740993}}}}"#
    );
    assert_eq!(env.send("orders/paid", SHOP, &paid).await.status(), 200);
    env.inbox_drained().await;
    assert_eq!(env.send("orders/create", SHOP, &created).await.status(), 200);
    env.inbox_drained().await;
    assert_eq!(env.scalar("SELECT order_id FROM shopify_orders").await.as_deref(), Some(id));
    assert_eq!(env.scalar("SELECT customer_id FROM shopify_orders").await.as_deref(), Some("9007199254740993"));
    assert_eq!(env.scalar("SELECT financial_status FROM shopify_orders").await.as_deref(), Some("paid"));
    assert_eq!(env.scalar("SELECT total_price FROM shopify_orders").await.as_deref(), Some("199.90"));
    assert_eq!(env.scalar("SELECT cart_token FROM shopify_orders").await.as_deref(), Some("cart-1"));
    assert_eq!(env.app.count("SELECT COUNT(*) FROM shopify_orders WHERE paid").await, 1);

    // A payload that can never be processed is parked with its error visible.
    assert_eq!(env.send("orders/create", SHOP, r#"{"id":"not-a-number"}"#).await.status(), 200);
    env.inbox_drained().await;
    let error = env.scalar("SELECT last_error FROM webhook_inbox WHERE status = 'parked'").await.unwrap();
    assert!(error.contains("orders/create"), "{error}");
}

/// Every text value in every table, for "nothing survives" checks.
async fn all_text(env: &Env) -> String {
    let backend = env.app.db.get_database_backend();
    let mut out = String::new();
    for table in [
        "shops",
        "sites",
        "webhook_inbox",
        "shopify_audit_log",
        "shopify_orders",
        "shopify_carts",
        "shopify_payment_attempts",
        "events",
        "sessions",
    ] {
        let rows = env
            .app
            .db
            .query_all_raw(sea_orm::Statement::from_string(backend, format!("SELECT * FROM {table}")))
            .await
            .unwrap();
        for row in rows {
            for col in row.column_names() {
                if let Ok(Some(v)) = row.try_get::<Option<String>>("", &col) {
                    out.push_str(&v);
                    out.push('\n');
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn compliance_export_then_redact_leaves_no_customer_data_and_shop_redact_purges_the_tenant() {
    compliance_story(start().await).await;
}

#[tokio::test]
async fn compliance_story_holds_on_postgresql() {
    let Some(db) = pg::fresh_database_or_skip("PostgreSQL compliance story").await else { return };
    compliance_story(start_on(AppRegistration::new(API_KEY, API_SECRET), TestDb::Postgres(db)).await).await;
}

#[tokio::test]
async fn inbox_claims_never_hand_one_row_to_two_workers_on_postgresql() {
    use ghosttrack::storage::webhook_inbox::{self, Delivery};
    let Some(url) = pg::fresh_database_or_skip("PostgreSQL webhook inbox test").await else { return };
    let db = ghosttrack::storage::connect(&ghosttrack::settings::DatabaseUrl::new(url)).await.unwrap();
    ghosttrack::storage::migrate(&db).await.unwrap();
    for i in 0..200 {
        let d = Delivery {
            webhook_id: format!("w{i}"),
            shop_domain: SHOP.into(),
            topic: "orders/create".into(),
            api_version: "2026-10".into(),
            triggered_at: None,
            event_id: None,
            body: "{}".into(),
        };
        assert!(webhook_inbox::insert_if_new(&db, &d).await.unwrap());
    }
    let now = ghosttrack::domain::UnixMillis::now();
    let workers: Vec<_> = (0..6)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let rows = webhook_inbox::claim_due(&db, now, 60_000, 7).await.unwrap();
                    if rows.is_empty() {
                        return mine;
                    }
                    mine.extend(rows.into_iter().map(|r| r.id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let claimed = all.len();
    all.sort();
    all.dedup();
    assert_eq!((claimed, all.len()), (200, 200), "every row claimed exactly once");
}

async fn compliance_story(env: Env) {
    install(&env, SHOP).await;
    let order = r#"{"id":299938,"email":"john@example.com","customer":{"id":191167,"email":"john@example.com","phone":"555-625-1199"},"total_price":"12.00","currency":"USD","checkout_token":"chk-9"}"#;
    let other = r#"{"id":555,"customer":{"id":42},"total_price":"1.00","currency":"USD"}"#;
    env.send("orders/create", SHOP, order).await;
    env.send("orders/create", SHOP, other).await;
    env.inbox_drained().await;
    assert_eq!(env.app.count("SELECT COUNT(*) FROM shopify_orders").await, 2);

    let compliance = env.webhook_url("customers/data_request");
    assert_eq!(compliance, env.app.url(ghosttrack::api::COMPLIANCE_WEBHOOKS_PATH));
    // 401 on a bad HMAC, as the review requires.
    let forged = env
        .app
        .client
        .post(&compliance)
        .header("X-Shopify-Hmac-Sha256", "AAAA")
        .header("X-Shopify-Topic", "customers/redact")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);

    let request = r#"{"shop_id":954889,"shop_domain":"acme.myshopify.com","orders_requested":[299938],"customer":{"id":191167,"email":"john@example.com","phone":"555-625-1199"},"data_request":{"id":9999}}"#;
    assert_eq!(env.send("customers/data_request", SHOP, request).await.status(), 200);
    env.inbox_drained().await;
    let export =
        env.scalar("SELECT detail FROM shopify_audit_log WHERE action = 'customer_data_export'").await.unwrap();
    assert!(export.contains("299938") && export.contains("chk-9"), "{export}");
    assert!(!export.contains("john@example.com"));

    let redact = r#"{"shop_id":954889,"shop_domain":"acme.myshopify.com","customer":{"id":191167,"email":"john@example.com","phone":"555-625-1199"},"orders_to_redact":[299938]}"#;
    assert_eq!(env.send("customers/redact", SHOP, redact).await.status(), 200);
    env.inbox_drained().await;
    let text = all_text(&env).await;
    for needle in ["191167", "299938", "john@example.com", "555-625-1199", "chk-9"] {
        assert!(!text.contains(needle), "{needle} survived the redaction");
    }
    assert_eq!(env.app.count("SELECT COUNT(*) FROM shopify_orders").await, 1, "other customers are kept");
    assert_eq!(env.app.count("SELECT COUNT(*) FROM shopify_audit_log WHERE action = 'customers/redact'").await, 1);

    // shop/redact (48 h after uninstall): the tenant is gone, the action is audited.
    env.send("app/uninstalled", SHOP, "{}").await;
    assert_eq!(
        env.send("shop/redact", SHOP, r#"{"shop_id":954889,"shop_domain":"acme.myshopify.com"}"#).await.status(),
        200
    );
    env.inbox_drained().await;
    for table in ["shops", "sites", "shopify_orders", "events", "sessions"] {
        assert_eq!(env.app.count(&format!("SELECT COUNT(*) FROM {table}")).await, 0, "{table}");
    }
    assert_eq!(env.app.count("SELECT COUNT(*) FROM shopify_audit_log WHERE action = 'shop/redact'").await, 1);
    // A duplicate shop/redact is harmless.
    env.send("shop/redact", SHOP, r#"{"shop_id":954889,"shop_domain":"acme.myshopify.com"}"#).await;
    env.inbox_drained().await;
    assert_eq!(env.app.count("SELECT COUNT(*) FROM webhook_inbox WHERE status = 'parked'").await, 0);
}

#[tokio::test]
async fn the_tracker_collects_through_the_app_proxy_for_the_signed_shop_only() {
    let env = start().await;
    install(&env, SHOP).await;
    install(&env, OTHER_SHOP).await;
    let body = batch("", "https://acme.myshopify.com/products/x", &[pageview(now_ms(), "")]).replace(r#""k":"","#, "");
    assert!(!body.contains(r#""k""#));

    let resp = env
        .fake
        .proxy_post(&env.proxy_url(), SHOP, "/collect", "203.0.113.9", CHROME_UA, body.clone().into_bytes())
        .await
        .unwrap();
    assert_eq!(resp.status(), 202, "{:?}", resp.text().await);
    // Let the group commit land.
    for _ in 0..100 {
        if env.app.count("SELECT COUNT(*) FROM events").await > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let acme = env.scalar("SELECT CAST(site_id AS TEXT) FROM shops WHERE domain = 'acme.myshopify.com'").await.unwrap();
    let globex =
        env.scalar("SELECT CAST(site_id AS TEXT) FROM shops WHERE domain = 'globex.myshopify.com'").await.unwrap();
    assert_eq!(env.app.count(&format!("SELECT COUNT(*) FROM events WHERE site_id = {acme}")).await, 1);
    assert_eq!(env.app.count(&format!("SELECT COUNT(*) FROM events WHERE site_id = {globex}")).await, 0);

    // A tampered or unsigned request is refused; a signed request for an unknown shop is 404.
    let query = env.fake.proxy_query(SHOP, &[], None).replace("acme", "globex");
    let resp =
        env.app.client.post(format!("{}/collect?{query}", env.proxy_url())).body(body.clone()).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = env.app.client.post(format!("{}/collect", env.proxy_url())).body(body.clone()).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = env
        .fake
        .proxy_post(&env.proxy_url(), "initech.myshopify.com", "/collect", "203.0.113.9", CHROME_UA, body.into_bytes())
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn the_authorization_code_grant_installs_once_per_single_use_code() {
    let mut registration = AppRegistration::new(API_KEY, API_SECRET);
    registration.redirect_urls = vec!["https://ghosttrack.test/auth/callback".into()];
    let env = start_with(registration).await;
    let client = no_redirects();

    // Begin: 302 to the shop's authorize endpoint with a signed state cookie.
    let begin = client.get(env.app.url(&format!("/auth?shop={SHOP}"))).send().await.unwrap();
    assert_eq!(begin.status(), 302);
    let cookie = begin.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    assert!(cookie.starts_with("shopify_app_state="));
    let authorize = begin.headers()["location"].to_str().unwrap().to_owned();
    assert!(authorize.starts_with(&format!("{}/{SHOP}/admin/oauth/authorize?", env.fake.base_url)), "{authorize}");

    // The merchant approves: the fake redirects to the callback with code, hmac, host, shop, state, timestamp.
    let approved = client.get(&authorize).send().await.unwrap();
    assert_eq!(approved.status(), 302, "{:?}", approved.text().await);
    let callback =
        approved.headers()["location"].to_str().unwrap().replace("https://ghosttrack.test", &env.app.base_url);

    // Without the cookie (another browser): refused, nothing exchanged.
    assert_eq!(client.get(&callback).send().await.unwrap().status(), 401);
    assert_eq!(env.fake.counters().code_exchanges, 0);
    // A tampered callback: refused.
    let tampered = callback.replace("acme", "globex");
    assert_eq!(client.get(&tampered).header("cookie", &cookie).send().await.unwrap().status(), 401);

    let done = client.get(&callback).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(done.status(), 302);
    assert_eq!(done.headers()["location"], format!("https://admin.shopify.com/store/acme/apps/{API_KEY}"));
    assert_eq!(env.fake.counters().code_exchanges, 1);
    assert_eq!(env.scalar("SELECT status FROM shops").await.as_deref(), Some("active"));
    assert!(env.scalar("SELECT refresh_token FROM shops").await.is_some(), "an expiring token with a refresh token");

    // The code is single use: replaying the callback fails at Shopify, and nothing changes.
    let replay = client.get(&callback).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(replay.status(), 400);
    assert_eq!(env.fake.counters().code_exchanges, 1);
    assert_eq!(env.scalar("SELECT CAST(token_version AS TEXT) FROM shops").await.as_deref(), Some("1"));
}

#[tokio::test]
async fn the_admin_graphql_client_waits_out_throttling_and_reports_revoked_tokens() {
    let env = start().await;
    install(&env, SHOP).await;
    let shopify = ghosttrack::shopify::Shopify::new(
        ghosttrack::shopify::ShopifyConfig::from_settings(&env.app.settings).unwrap().unwrap(),
        env.app.db.clone(),
    );
    let shop = ghosttrack::shopify::shop_domain::ShopDomain::parse(SHOP).unwrap();
    let info = shopify.shop_info(&shop).await.unwrap();
    assert_eq!(info.name, "acme");
    assert!(info.plan.partner_development);

    env.fake.throttle_next(2);
    let started = std::time::Instant::now();
    assert_eq!(shopify.shop_info(&shop).await.unwrap().name, "acme");
    assert_eq!(env.fake.counters().graphql_throttled, 2);
    // THROTTLED with 0 of 10 points available at 100/s: two waits of 0.1 s.
    assert!(started.elapsed() >= Duration::from_millis(200), "{:?}", started.elapsed());

    env.fake.revoke_shop(SHOP);
    assert!(matches!(shopify.shop_info(&shop).await, Err(ghosttrack::shopify::admin::AdminError::Unauthorized)));
}

#[tokio::test]
async fn shopify_web_pixel_is_created_once_then_updated_and_recreated_when_deleted() {
    use ghosttrack::shopify::pixel::PixelOutcome;
    let env = start().await;
    install(&env, SHOP).await;
    let shopify = ghosttrack::shopify::Shopify::new(
        ghosttrack::shopify::ShopifyConfig::from_settings(&env.app.settings).unwrap().unwrap(),
        env.app.db.clone(),
    );
    let shop = ghosttrack::shopify::shop_domain::ShopDomain::parse(SHOP).unwrap();
    const COLLECT: &str = "https://gt.example/collect";
    // The post-install job made one; start from a store without it.
    assert!(env.fake.web_pixel(SHOP).is_some());
    env.fake.delete_web_pixel(SHOP);
    let creates_before = env.fake.counters().pixel_creates;
    // A fresh store: the webPixel query errors with "No web pixel was found", which means none.
    assert_eq!(shopify.web_pixel(&shop).await.unwrap(), None);

    let first = shopify.ensure_web_pixel(&shop, "gt_site_1", COLLECT, None).await.unwrap();
    let PixelOutcome::Created(pixel) = &first else { panic!("expected a create, got {first:?}") };
    let (id, settings) = env.fake.web_pixel(SHOP).unwrap();
    assert_eq!(pixel.id, id);
    // Sent as a JSON-encoded string, as the docs do.
    assert_eq!(settings, serde_json::json!(r#"{"accountID":"gt_site_1","collectorUrl":"https://gt.example/collect"}"#));

    // Without the stored id: create answers TAKEN, so the existing pixel is looked up and updated.
    let again = shopify.ensure_web_pixel(&shop, "gt_site_2", COLLECT, None).await.unwrap();
    assert_eq!(
        again,
        PixelOutcome::Updated(ghosttrack::shopify::pixel::WebPixel {
            id: id.clone(),
            settings: serde_json::json!(r#"{"accountID":"gt_site_2","collectorUrl":"https://gt.example/collect"}"#),
        })
    );
    assert_eq!(
        env.fake.web_pixel(SHOP).unwrap().1,
        serde_json::json!(r#"{"accountID":"gt_site_2","collectorUrl":"https://gt.example/collect"}"#)
    );
    assert_eq!(env.fake.counters().pixel_creates - creates_before, 2);

    // With the stored id: a plain update, no create.
    let creates = env.fake.counters().pixel_creates;
    assert!(matches!(
        shopify.ensure_web_pixel(&shop, "gt_site_3", COLLECT, Some(&id)).await.unwrap(),
        PixelOutcome::Updated(_)
    ));
    assert_eq!(env.fake.counters().pixel_creates, creates);

    // Deleted on Shopify's side: the update finds nothing, so a new pixel is created.
    env.fake.delete_web_pixel(SHOP);
    let recreated = shopify.ensure_web_pixel(&shop, "gt_site_3", COLLECT, Some(&id)).await.unwrap();
    let PixelOutcome::Created(p) = &recreated else { panic!("expected a create, got {recreated:?}") };
    assert_ne!(p.id, id);
    assert_eq!(env.fake.web_pixel(SHOP).unwrap().0, p.id);

    // Settings Shopify refuses are an error, not a silent success.
    let refused = shopify.ensure_web_pixel(&shop, "", COLLECT, None).await;
    assert!(
        matches!(refused, Err(ghosttrack::shopify::pixel::PixelError::Refused(ref e)) if e[0].code.as_deref() == Some("INVALID_SETTINGS")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn shopify_theme_embed_status_reads_the_main_theme_settings_data() {
    use ghosttrack::shopify::pixel::EmbedStatus;
    let env = start().await;
    install(&env, SHOP).await;
    let shopify = ghosttrack::shopify::Shopify::new(
        ghosttrack::shopify::ShopifyConfig::from_settings(&env.app.settings).unwrap().unwrap(),
        env.app.db.clone(),
    );
    let shop = ghosttrack::shopify::shop_domain::ShopDomain::parse(SHOP).unwrap();
    assert_eq!(shopify.theme_embed_status(&shop).await.unwrap(), EmbedStatus::NoMainTheme);
    // As a real theme has it: a comment header, escaped slashes, another app's embed first.
    let data = |disabled: &str| {
        r#"/*
 * IMPORTANT: The contents of this file are auto-generated.
 */
{"current":{"blocks":{
  "1":{"type":"shopify:\/\/apps\/other\/blocks\/app-embed\/u-1","disabled":false,"settings":{}},
  "9876":{"type":"shopify:\/\/apps\/ghosttrack\/blocks\/ghosttrack-embed\/0b9f3c1e-1111","disabled":DISABLED,"settings":{}}
}}}"#
            .replace("DISABLED", disabled)
    };
    env.fake.set_main_theme_settings_data(SHOP, r#"/* header */ {"current":{"blocks":{}}}"#);
    assert_eq!(shopify.theme_embed_status(&shop).await.unwrap(), EmbedStatus::Missing);
    env.fake.set_main_theme_settings_data(SHOP, &data("false"));
    assert_eq!(shopify.theme_embed_status(&shop).await.unwrap(), EmbedStatus::Enabled);
    env.fake.set_main_theme_settings_data(SHOP, &data("true"));
    assert_eq!(shopify.theme_embed_status(&shop).await.unwrap(), EmbedStatus::Disabled);
}

#[tokio::test]
async fn the_post_install_job_activates_the_pixel_and_records_plan_and_embed_status() {
    let env = start().await;
    install(&env, SHOP).await;
    let key = env.scalar("SELECT public_key FROM sites").await.unwrap();
    let (pixel_id, settings) = env.fake.web_pixel(SHOP).expect("the job created the pixel");
    let expected = format!(r#"{{"accountID":"{key}","collectorUrl":"https://ghosttrack.test/collect"}}"#);
    assert_eq!(settings, serde_json::json!(expected));
    assert_eq!(env.scalar("SELECT pixel_id FROM shopify_setup").await, Some(pixel_id.clone()));
    assert_eq!(env.scalar("SELECT embed_state FROM shopify_setup").await.as_deref(), Some("no_main_theme"));
    assert!(env.scalar("SELECT plan_name FROM shopify_setup").await.is_some());
    assert_eq!(env.scalar("SELECT last_error FROM shopify_setup").await, None);

    // A run on a complete, fresh report is not due: further loads do not call Shopify again.
    let creates = env.fake.counters().pixel_creates;
    assert_eq!(env.embedded_load(SHOP).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(env.fake.counters().pixel_creates, creates);

    // Run again (as after 24 h): the stored pixel id is updated in place, the embed is re-read.
    env.fake.set_main_theme_settings_data(
        SHOP,
        r#"{"current":{"blocks":{"1":{"type":"shopify:\/\/apps\/ghosttrack\/blocks\/ghosttrack-embed\/x","disabled":false}}}}"#,
    );
    let shopify = ghosttrack::shopify::Shopify::new(
        ghosttrack::shopify::ShopifyConfig::from_settings(&env.app.settings).unwrap().unwrap(),
        env.app.db.clone(),
    );
    let shop_row = ghosttrack::storage::shops::find(
        &env.app.db,
        &ghosttrack::shopify::shop_domain::ShopDomain::parse(SHOP).unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    let report = ghosttrack::shopify::setup::run(&shopify, &env.app.db, &shop_row).await.unwrap();
    assert_eq!((report.pixel_state, report.embed_state), ("updated", "enabled"));
    assert_eq!(report.pixel_id.as_deref(), Some(pixel_id.as_str()));
    assert_eq!(env.fake.counters().pixel_creates, creates);
    assert_eq!(env.scalar("SELECT CAST(runs AS TEXT) FROM shopify_setup").await.as_deref(), Some("2"));

    // A failing step is recorded with its reason and the other steps still run.
    env.fake.revoke_shop(SHOP);
    let report = ghosttrack::shopify::setup::run(&shopify, &env.app.db, &shop_row).await.unwrap();
    assert_eq!(report.pixel_state, "failed");
    assert_eq!(report.pixel_id.as_deref(), Some(pixel_id.as_str()), "the known pixel id is kept");
    assert!(report.last_error.as_deref().unwrap().contains("web pixel"), "{:?}", report.last_error);
    assert!(ghosttrack::shopify::setup::due(
        ghosttrack::storage::shopify_setup::find(&env.app.db, shop_row.scope()).await.unwrap().as_ref(),
        ghosttrack::domain::UnixMillis(now_ms() + ghosttrack::shopify::setup::RETRY_FAILED_AFTER_MS),
    ));
}

#[tokio::test]
async fn carts_no_tracked_session_produced_are_recorded_as_such() {
    let env = start().await;
    install(&env, SHOP).await;
    // The tracker reports an add-to-cart with cart token "tracked-cart" through the app proxy.
    let add = format!(r#"{{"t":"ac","ts":{},"src":"fetch","ct":"tracked-cart","vid":"1","q":1}}"#, now_ms());
    let body =
        batch("", "https://acme.myshopify.com/products/x", &[pageview(now_ms(), ""), add]).replace(r#""k":"","#, "");
    let resp = env
        .fake
        .proxy_post(&env.proxy_url(), SHOP, "/collect", "203.0.113.9", CHROME_UA, body.into_bytes())
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    for _ in 0..100 {
        if env.app.count("SELECT COUNT(*) FROM events WHERE kind = 'ac'").await > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(env.app.count("SELECT COUNT(*) FROM events WHERE kind = 'ac'").await, 1);

    env.send("carts/create", SHOP, r#"{"id":"tracked-cart","token":"tracked-cart","line_items":[]}"#).await;
    env.send("carts/create", SHOP, r#"{"id":"scripted-cart","token":"scripted-cart","line_items":[]}"#).await;
    env.send("checkouts/create", SHOP, r#"{"id":1234567890123456789,"token":"chk-1","cart_token":"tracked-cart"}"#)
        .await;
    env.send("checkouts/create", SHOP, r#"{"id":1234567890123456790,"token":"chk-2","cart_token":"scripted-cart"}"#)
        .await;
    env.inbox_drained().await;
    let tracked = |kind: &str, token: &str| {
        format!("SELECT COUNT(*) FROM shopify_carts WHERE kind = '{kind}' AND token = '{token}' AND tracked")
    };
    assert_eq!(env.app.count(&tracked("cart", "tracked-cart")).await, 1);
    assert_eq!(env.app.count(&tracked("cart", "scripted-cart")).await, 0);
    assert_eq!(env.app.count(&tracked("checkout", "chk-1")).await, 1);
    assert_eq!(env.app.count(&tracked("checkout", "chk-2")).await, 0);
    assert_eq!(env.app.count("SELECT COUNT(*) FROM shopify_carts").await, 4);
    assert_eq!(env.app.count("SELECT COUNT(*) FROM webhook_inbox WHERE status = 'parked'").await, 0);
}

/// The untracked-cart rules with a 10 s grace period (ample for the tracker's batch to land) and low thresholds (3 per shop, 2 per network).
fn untracked_rules() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("cart")).unwrap();
    for (name, threshold) in
        [("untracked", ("threshold = 10", "threshold = 3")), ("untracked-network", ("threshold = 3", "threshold = 2"))]
    {
        let embedded = workspace_root().join(format!("backend/rules/cart/{name}.toml"));
        let text = std::fs::read_to_string(embedded).unwrap();
        assert!(text.contains("grace_secs = 600") && text.contains(threshold.0), "{name} changed: update this test");
        let text = text.replace("grace_secs = 600", "grace_secs = 10").replace(threshold.0, threshold.1);
        std::fs::write(dir.path().join(format!("cart/{name}.toml")), text).unwrap();
        std::fs::write(dir.path().join(format!("cart/{name}.md")), "# Test copy with a short grace period.\n").unwrap();
    }
    dir
}

/// Adds to cart with cart token `ct` from a tracked session (through the app proxy) and waits
/// until the event is stored.
async fn tracked_add_to_cart(env: &Env, ct: &str) {
    let before = env.app.count("SELECT COUNT(*) FROM events WHERE kind = 'ac'").await;
    let add = format!(r#"{{"t":"ac","ts":{},"src":"fetch","ct":"{ct}","vid":"1","q":1}}"#, now_ms());
    let body =
        batch("", "https://acme.myshopify.com/products/x", &[pageview(now_ms(), ""), add]).replace(r#""k":"","#, "");
    let resp = env
        .fake
        .proxy_post(&env.proxy_url(), SHOP, "/collect", "203.0.113.9", CHROME_UA, body.into_bytes())
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    for _ in 0..200 {
        if env.app.count("SELECT COUNT(*) FROM events WHERE kind = 'ac'").await > before {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the add-to-cart of {ct} was not stored");
}

#[tokio::test]
async fn carts_and_orders_no_tracked_session_produced_are_judged_after_the_grace_period() {
    let rules = untracked_rules();
    let rules_dir = rules.path().to_owned();
    let env = start_configured(AppRegistration::new(API_KEY, API_SECRET), TestDb::Sqlite, move |s| {
        s.detect.rules_dir = Some(rules_dir);
        s.detect.untracked_judge_interval_secs = 1;
    })
    .await;
    install(&env, SHOP).await;

    // A tracked cart whose webhook comes first and whose tracker batch comes late (within the grace).
    env.send("carts/create", SHOP, r#"{"id":"late-cart","token":"late-cart","line_items":[]}"#).await;
    env.inbox_drained().await;
    tracked_add_to_cart(&env, "late-cart").await;
    // Three carts and a checkout a script made, and two orders from scripted carts on one network.
    for i in 0..3 {
        env.send("carts/create", SHOP, &format!(r#"{{"id":"scripted-{i}","token":"scripted-{i}","line_items":[]}}"#))
            .await;
    }
    env.send("checkouts/create", SHOP, r#"{"id":1234567890123456790,"token":"chk-s","cart_token":"scripted-0"}"#).await;
    for (id, ct) in [(FIRST, "scripted-1"), (SECOND, "scripted-2")] {
        let order = order_json(id, now_ms()).replace(r#""cart_token":"ct-1""#, &format!(r#""cart_token":"{ct}""#));
        env.send("orders/create", SHOP, &order).await;
    }
    env.inbox_drained().await;
    assert_eq!(env.app.count("SELECT COUNT(*) FROM shopify_carts").await, 7);

    // The judge runs every second and judges rows 10 s old.
    for _ in 0..600 {
        if env.app.count("SELECT COUNT(*) FROM shopify_carts WHERE judged_at IS NULL").await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(env.app.count("SELECT COUNT(*) FROM shopify_carts WHERE judged_at IS NULL").await, 0);
    let tracked = |token: &str| format!("SELECT COUNT(*) FROM shopify_carts WHERE token = '{token}' AND tracked");
    assert_eq!(env.app.count(&tracked("late-cart")).await, 1, "the late tracker batch counts");
    assert_eq!(env.app.count("SELECT COUNT(*) FROM shopify_carts WHERE NOT tracked").await, 6);

    // Threats: shop-wide untracked carts (named by a digest) and the orders' network.
    let untracked = "SELECT COUNT(*) FROM threats WHERE reasons LIKE '%cart/untracked\"%' AND subject LIKE 'c%:#%'";
    let network =
        "SELECT COUNT(*) FROM threats WHERE reasons LIKE '%cart/untracked-network%' AND subject = 'ip:81.2.69.0/24'";
    for _ in 0..200 {
        if env.app.count(untracked).await > 0 && env.app.count(network).await > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(env.app.count(untracked).await > 0, "no cart/untracked threat");
    assert!(env.app.count(network).await > 0, "no cart/untracked-network threat");
    assert_eq!(
        env.app
            .count("SELECT COUNT(*) FROM threats WHERE subject LIKE '%scripted%' OR subject LIKE '%late-cart%'")
            .await,
        0
    );
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap().to_rfc3339()
}

const FIRST: u64 = 18_446_744_073_709_551_000;
const SECOND: u64 = 18_446_744_073_709_551_001;

fn order_json(id: u64, at: i64) -> String {
    format!(
        r#"{{"id":{id},"cart_token":"ct-1","checkout_token":"chk-{id}","customer":null,"total_price":"1.00",
        "currency":"USD","browser_ip":"81.2.69.160","client_details":{{"browser_ip":"81.2.69.160","user_agent":"{CHROME_UA}"}},
        "email":"buyer@example.com","created_at":"{}","updated_at":"{}"}}"#,
        iso(at),
        iso(at)
    )
}

/// A tracked session adds to cart, orders, tries four cards that are declined, and orders again.
/// Returns the first event time and the session id.
async fn card_testing_story(env: &Env) -> (i64, String) {
    // A tracked session adds to cart with cart token "ct-1" (through the app proxy).
    let t0 = now_ms();
    let add = format!(r#"{{"t":"ac","ts":{t0},"src":"fetch","ct":"ct-1","vid":"1","q":1}}"#);
    let body = batch("", "https://acme.myshopify.com/products/x", &[pageview(t0, ""), add]).replace(r#""k":"","#, "");
    let resp = env
        .fake
        .proxy_post(&env.proxy_url(), SHOP, "/collect", "203.0.113.9", CHROME_UA, body.into_bytes())
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    for _ in 0..100 {
        if env.app.count("SELECT COUNT(*) FROM events WHERE kind = 'ac'").await > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let session = env.scalar("SELECT CAST(session_id AS TEXT) FROM events WHERE kind = 'ac'").await.unwrap();

    // A guest order from that cart; then its card-testing transactions: four different cards declined.
    env.send("orders/create", SHOP, &order_json(FIRST, t0 + 1_000)).await;
    env.inbox_drained().await;
    assert!(env.fake.risk_assessments(SHOP).is_empty(), "nothing suspicious yet: no assessment");
    assert_eq!(
        env.scalar(&format!("SELECT CAST(session_id AS TEXT) FROM shopify_orders WHERE order_id = '{FIRST}'")).await,
        Some(session.clone()),
        "the order is joined to the tracked session by its cart token"
    );
    assert_eq!(env.scalar("SELECT ip_prefix FROM shopify_orders").await.as_deref(), Some("81.2.69.0/24"));
    for (i, last4) in ["4242", "1881", "0005", "9424"].iter().enumerate() {
        let t = format!(
            r#"{{"id":{},"order_id":{FIRST},"kind":"sale","gateway":"shopify_payments","status":"failure",
            "error_code":"card_declined","amount":"1.00","currency":"USD","test":false,"created_at":"{}",
            "payment_details":{{"credit_card_bin":"42424{i}","credit_card_number":"•••• •••• •••• {last4}",
            "avs_result_code":"N","cvv_result_code":"N"}}}}"#,
            9_000 + i,
            iso(t0 + 2_000 + i as i64 * 1_000)
        );
        env.send("order_transactions/create", SHOP, &t).await;
    }
    env.inbox_drained().await;

    // The next order of the same session carries the verdict onto Shopify's order page.
    env.send("orders/create", SHOP, &order_json(SECOND, t0 + 10_000)).await;
    env.inbox_drained().await;
    (t0, session)
}

#[tokio::test]
async fn card_testing_seen_in_webhooks_is_linked_to_the_tracked_session_and_written_onto_the_next_order() {
    let env = start().await;
    install(&env, SHOP).await;
    let (t0, _) = card_testing_story(&env).await;
    let written = env.fake.risk_assessments(SHOP);
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(written[0].order_id, SECOND);
    assert!(["HIGH", "MEDIUM"].contains(&written[0].risk_level.as_str()), "{written:?}");
    assert!(written[0].facts.iter().any(|(d, s)| d.contains("distinct cards") && s == "NEGATIVE"), "{written:?}");
    assert!(written[0].facts.len() <= 20 && written[0].facts.iter().all(|(d, _)| d.chars().count() <= 256));

    // A fulfilled order accepts no assessment: Shopify says so, the worker logs it, nothing is parked.
    const THIRD: u64 = 18_446_744_073_709_551_002;
    env.fake.fulfil_order(SHOP, THIRD);
    env.send("orders/create", SHOP, &order_json(THIRD, t0 + 11_000)).await;
    env.inbox_drained().await;
    assert_eq!(env.fake.risk_assessments(SHOP).len(), 1);
    assert_eq!(env.app.count("SELECT COUNT(*) FROM webhook_inbox WHERE status = 'parked'").await, 0);
}

#[tokio::test]
async fn a_shop_on_the_free_plan_gets_no_risk_write_back_when_plans_are_enforced() {
    let env = start_configured(AppRegistration::new(API_KEY, API_SECRET), TestDb::Sqlite, |s| {
        s.billing.enabled = true;
    })
    .await;
    install(&env, SHOP).await;
    card_testing_story(&env).await;
    // Detection still ran (the order is linked) but Free does not include the write-back.
    assert_eq!(env.app.count("SELECT COUNT(*) FROM shopify_orders WHERE session_id IS NOT NULL").await, 2);
    assert!(env.fake.risk_assessments(SHOP).is_empty());
}

#[tokio::test]
async fn orders_without_protected_customer_data_access_are_stored_without_ip_or_client_details() {
    let env = start().await;
    install(&env, SHOP).await;
    env.fake.set_protected_data_access(SHOP, false);
    let body = r#"{"id":42,"customer":{"id":7,"email":"a@b.example","first_name":"Ann"},"total_price":"9.00",
        "browser_ip":"81.2.69.160","client_details":{"browser_ip":"81.2.69.160","user_agent":"x"},"email":"a@b.example"}"#;
    let delivery = env.fake.webhook("orders/create", SHOP, body);
    let sent: serde_json::Value = serde_json::from_slice(&delivery.body).unwrap();
    assert_eq!(sent["browser_ip"], serde_json::Value::Null);
    assert_eq!(sent["customer"], serde_json::json!({ "id": 7 }));
    assert_eq!(env.fake.deliver(&env.webhook_url("orders/create"), &delivery).await.unwrap().status(), 200);
    env.inbox_drained().await;
    assert_eq!(env.app.count("SELECT COUNT(*) FROM shopify_orders WHERE ip_prefix IS NULL").await, 1);
    assert_eq!(env.app.count("SELECT COUNT(*) FROM webhook_inbox WHERE status = 'parked'").await, 0);
}

#[tokio::test]
async fn no_token_secret_email_or_raw_ip_reaches_the_logs() {
    ghosttrack_tests::logs::install();
    let mut registration = AppRegistration::new(API_KEY, API_SECRET);
    registration.redirect_urls = vec!["https://ghosttrack.test/auth/callback".into()];
    let env = start_with(registration).await;
    // Install, refresh, proxy collect from a client IP, webhooks with customer data, a forged webhook.
    install(&env, SHOP).await;
    let shopify = ghosttrack::shopify::Shopify::new(
        ghosttrack::shopify::ShopifyConfig::from_settings(&env.app.settings).unwrap().unwrap(),
        env.app.db.clone(),
    );
    let shop = ghosttrack::shopify::shop_domain::ShopDomain::parse(SHOP).unwrap();
    env.app.db.execute_unprepared(&format!("UPDATE shops SET access_expires_at = {}", now_ms())).await.unwrap();
    shopify.tokens.access_token(&shop).await.unwrap();
    shopify.shop_info(&shop).await.unwrap();
    let body = batch("", "https://acme.myshopify.com/", &[pageview(now_ms(), "")]).replace(r#""k":"","#, "");
    env.fake
        .proxy_post(&env.proxy_url(), SHOP, "/collect", "198.51.100.77", CHROME_UA, body.into_bytes())
        .await
        .unwrap();
    let order = r#"{"id":1,"email":"jane.doe@example.com","browser_ip":"198.51.100.77","customer":{"id":5,"email":"jane.doe@example.com"}}"#;
    env.send("orders/create", SHOP, order).await;
    env.send(
        "customers/redact",
        SHOP,
        r#"{"customer":{"id":5,"email":"jane.doe@example.com"},"orders_to_redact":[1]}"#,
    )
    .await;
    env.send("orders/create", SHOP, r#"{"id":"poison","email":"jane.doe@example.com"}"#).await;
    env.app
        .client
        .post(env.webhook_url("orders/create"))
        .header("x-shopify-hmac-sha256", "AAAA")
        .body(order)
        .send()
        .await
        .unwrap();
    let bad_token = env.fake.mint_id_token_with(SHOP, 1, 0, 1);
    env.app.client.get(env.app.url("/api/shopify/session")).bearer_auth(&bad_token).send().await.unwrap();
    env.inbox_drained().await;
    // The auth-code flow, whose callback carries a code and whose cookie carries the state.
    let client = no_redirects();
    let begin = client.get(env.app.url(&format!("/auth?shop={SHOP}"))).send().await.unwrap();
    let cookie = begin.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let approved = client.get(begin.headers()["location"].to_str().unwrap()).send().await.unwrap();
    let callback =
        approved.headers()["location"].to_str().unwrap().replace("https://ghosttrack.test", &env.app.base_url);
    assert_eq!(client.get(&callback).header("cookie", &cookie).send().await.unwrap().status(), 302);

    let text = ghosttrack_tests::logs::text();
    assert!(text.contains("shop installed via token exchange"), "the capture works");
    let mut secrets: Vec<String> = env.fake.issued_tokens();
    secrets.extend([
        API_SECRET.into(),
        SECRET_KEY.into(),
        bad_token,
        "jane.doe@example.com".into(),
        "198.51.100.77".into(),
    ]);
    secrets.push(cookie.trim_start_matches("shopify_app_state=").split('.').next().unwrap().to_owned());
    let code = url::Url::parse(&callback).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    secrets.push(code);
    assert!(secrets.len() > 8);
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret value reached the logs: {}…",
            &secret[..6.min(secret.len())]
        );
    }
}

#[tokio::test]
async fn failed_payment_attempts_keep_bin_avs_cvv_and_error_code_and_are_redacted_with_their_order() {
    let env = start().await;
    install(&env, SHOP).await;
    let failure = r#"{"id":5234,"order_id":4500,"kind":"sale","gateway":"shopify_payments","status":"failure","error_code":"card_declined","message":"Your card was declined.","test":false,"source_name":"web","amount":"1.00","currency":"USD","payment_details":{"credit_card_bin":"424242","avs_result_code":"N","cvv_result_code":"N","credit_card_number":"•••• •••• •••• 4242","credit_card_company":"Visa","credit_card_name":"Jane Doe","credit_card_wallet":null,"payment_method_name":"visa"}}"#;
    let unknown_status =
        r#"{"id":18446744073709551615,"order_id":4500,"kind":"sale","status":"brand_new_status","amount":"1.00"}"#;
    env.send("order_transactions/create", SHOP, failure).await;
    env.send("order_transactions/create", SHOP, unknown_status).await;
    env.inbox_drained().await;
    assert_eq!(
        env.scalar("SELECT error_code || ' ' || card_bin || ' ' || avs_result_code || cvv_result_code FROM shopify_payment_attempts WHERE status = 'failure'")
            .await
            .as_deref(),
        Some("card_declined 424242 NN")
    );
    assert_eq!(
        env.scalar("SELECT transaction_id FROM shopify_payment_attempts WHERE status = 'brand_new_status'")
            .await
            .as_deref(),
        Some("18446744073709551615")
    );
    assert!(!all_text(&env).await.contains("Jane Doe"));
    env.send("customers/redact", SHOP, r#"{"customer":{"id":77},"orders_to_redact":[4500]}"#).await;
    env.inbox_drained().await;
    assert_eq!(env.app.count("SELECT COUNT(*) FROM shopify_payment_attempts").await, 0);
}
