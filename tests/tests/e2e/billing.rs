//! Billing end to end: Shopify's Billing API through the fake Shopify's confirmation page
//! (approve, decline, forged return URLs, forged and out-of-order webhooks, status changes),
//! Stripe Checkout through the fake Stripe (signed webhooks, bad and stale signatures), and
//! session quotas (exact metering, over-quota sampling with 202, webhooks always kept). Each
//! scenario runs on SQLite, and on PostgreSQL when `GHOSTTRACK_TEST_DATABASE_URL` is set.

use std::time::Duration;

use fake_shopify::billing::{FakeSubscription, webhook_body};
use fake_shopify::{AppRegistration, FakeShopify};
use ghosttrack::settings::{Secret, Settings};
use ghosttrack::shopify::app_toml::AppToml;
use ghosttrack_tests::{
    CHROME_UA, Spawn, TestApp, TestDb, batch, install_by_reloading, now_ms, pageview, pg, workspace_root,
};
use serde_json::Value;

const API_KEY: &str = "gt-billing-client-id";
const API_SECRET: &str = "gt-billing-client-secret";
const SECRET_KEY: &str = "test-server-secret-key-0123456789abcdef";
const SHOP: &str = "acme.myshopify.com";

struct Env {
    app: TestApp,
    fake: FakeShopify,
    toml: AppToml,
}

async fn databases() -> Vec<TestDb> {
    let mut dbs = vec![TestDb::Sqlite];
    if let Some(server) = pg::server_url() {
        dbs.push(TestDb::Postgres(pg::fresh_database(&server).await));
    }
    dbs
}

async fn start(db: TestDb, configure: impl FnOnce(&mut Settings) + Send + 'static) -> Env {
    let fake =
        FakeShopify::start(AppRegistration::new(API_KEY, API_SECRET), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = fake.api_base_template();
    let app = Spawn::default()
        .database(db)
        .configure(move |s| {
            s.shopify_api_key = Some(API_KEY.into());
            s.shopify_api_secret = Some(Secret::new(API_SECRET));
            s.shopify_api_base = base;
            s.secret_key = Some(Secret::new(SECRET_KEY));
            s.app_url = Some(url::Url::parse("https://ghosttrack.test").unwrap());
            s.billing.enabled = true;
            configure(s);
        })
        .start()
        .await;
    let toml = AppToml::parse(&std::fs::read_to_string(workspace_root().join("shopify.app.toml")).unwrap()).unwrap();
    let env = Env { app, fake, toml };
    env.fake.set_billing_webhook_url(&env.webhook_url("app_subscriptions/update"));
    // Install: the first embedded load exchanges the id token for offline tokens.
    let home = env.app.url(&env.toml.path_of(&env.toml.application_url));
    install_by_reloading(SHOP, || {
        let load = no_redirects().get(env.fake.embedded_load_url(&home, SHOP));
        async move { load.send().await.unwrap() }
    })
    .await;
    env
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

impl Env {
    fn webhook_url(&self, topic: &str) -> String {
        self.app.url(&self.toml.uri_for_topic(topic).expect("topic subscribed in shopify.app.toml"))
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.fake.mint_id_token(SHOP, 1))
    }

    async fn status(&self) -> Value {
        let resp = self
            .app
            .client
            .get(self.app.url("/api/billing"))
            .header("authorization", self.bearer())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    async fn plan(&self) -> String {
        self.status().await["plan"].as_str().unwrap().to_owned()
    }

    /// `POST /api/billing/subscription`: (status, body).
    async fn start_plan(&self, plan: &str) -> (u16, Value) {
        let resp = self
            .app
            .client
            .post(self.app.url("/api/billing/subscription"))
            .header("authorization", self.bearer())
            .json(&serde_json::json!({ "plan": plan }))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    /// The merchant approves or declines on the fake's confirmation page; returns the
    /// `returnUrl?…&charge_id=…` Shopify redirects to.
    async fn decide(&self, confirmation_url: &str, approve: bool) -> String {
        let page = no_redirects().get(confirmation_url).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains("id=\"approve\"") && html.contains("id=\"decline\""), "{html}");
        let action = if approve { "approve" } else { "decline" };
        let url = confirmation_url.replace("confirm_recurring_application_charge", action);
        let resp = no_redirects().post(url).send().await.unwrap();
        assert_eq!(resp.status(), 302);
        resp.headers()["location"].to_str().unwrap().to_owned()
    }

    /// Follows Shopify's redirect to the app's return URL (the public app URL is
    /// `https://ghosttrack.test`; the test server listens elsewhere).
    async fn follow_return(&self, return_url: &str) -> reqwest::Response {
        let path = return_url.strip_prefix("https://ghosttrack.test").expect("return URL on the app URL");
        no_redirects().get(self.app.url(path)).send().await.unwrap()
    }

    /// Subscribe, approve, return: the shop is on `plan`. Returns the fake subscription.
    async fn subscribe(&self, plan: &str) -> FakeSubscription {
        let (status, body) = self.start_plan(plan).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["provider"], "shopify");
        let location = self.decide(body["url"].as_str().unwrap(), true).await;
        assert_eq!(self.follow_return(&location).await.status(), 303);
        assert_eq!(self.plan().await, plan);
        self.fake.subscriptions(SHOP).into_iter().last().unwrap()
    }

    async fn inbox_drained(&self) {
        for _ in 0..400 {
            if self.app.count("SELECT COUNT(*) FROM webhook_inbox WHERE status = 'pending'").await == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the webhook inbox was not processed");
    }

    /// Delivers an `app_subscriptions/update` body signed like Shopify, waits for the worker.
    async fn deliver_subscription_webhook(&self, body: &str) -> u16 {
        let d = self.fake.webhook("app_subscriptions/update", SHOP, body);
        let status =
            self.fake.deliver(&self.webhook_url("app_subscriptions/update"), &d).await.unwrap().status().as_u16();
        self.inbox_drained().await;
        status
    }
}

#[tokio::test]
async fn free_to_pro_through_the_confirmation_page_then_upgrade_downgrade_and_cancel_without_reinstalling() {
    for db in databases().await {
        let env = start(db, |_| {}).await;
        let status = env.status().await;
        assert_eq!(status["plan"], "free");
        assert_eq!(status["enforced"], true);
        assert_eq!(status["quota"]["limit"], 10_000);
        assert_eq!(status["entitlements"]["features"], serde_json::json!(["email_alerts"]));
        assert_eq!(status["plans"].as_array().unwrap().len(), 3);
        let doc: Value =
            env.app.client.get(env.app.url("/api/openapi.json")).send().await.unwrap().json().await.unwrap();
        let start_op = &doc["paths"]["/billing/subscription"]["post"];
        assert_eq!(start_op["operationId"], "start_billing_subscription");
        assert_eq!(start_op["tags"], serde_json::json!(["Billing"]));
        for code in ["200", "401", "409", "422", "502", "503"] {
            assert!(start_op["responses"][code].is_object(), "start_billing_subscription documents {code}");
        }
        assert!(start_op["security"].to_string().contains("BillingCredential"), "{start_op}");
        assert_eq!(doc["paths"]["/billing"]["get"]["operationId"], "get_billing_status");

        let (code, body) = env.start_plan("pro").await;
        assert_eq!(code, 200, "{body}");
        let created = env.fake.subscriptions(SHOP).pop().unwrap();
        assert_eq!(created.status, "PENDING");
        assert!(created.test, "a development store gets a test charge");
        assert_eq!((created.name.as_str(), created.amount, created.trial_days), ("GhostTrack Pro", 19.0, 7));
        assert_eq!(created.return_url, "https://ghosttrack.test/billing/shopify/return?shop=acme.myshopify.com");
        assert_eq!(created.replacement_behavior, "APPLY_IMMEDIATELY");
        // Pending is not paid.
        assert_eq!(env.plan().await, "free");

        let location = env.decide(body["url"].as_str().unwrap(), true).await;
        assert_eq!(location, format!("{}&charge_id={}", created.return_url, created.number));
        let back = env.follow_return(&location).await;
        assert_eq!(back.status(), 303);
        assert_eq!(back.headers()["location"], format!("https://admin.shopify.com/store/acme/apps/{API_KEY}"));
        let status = env.status().await;
        assert_eq!(status["plan"], "pro");
        assert_eq!(status["provider"], "shopify");
        assert_eq!(status["subscription_status"], "ACTIVE");
        assert_eq!(status["test"], true);
        assert_eq!(status["quota"]["limit"], 250_000);
        assert!(status["entitlements"]["features"].as_array().unwrap().contains(&"slack_alerts".into()));
        env.inbox_drained().await;
        assert_eq!(env.plan().await, "pro", "the ACTIVE webhook agrees");

        // The same plan again is a conflict; an unknown or free plan is refused.
        assert_eq!(env.start_plan("pro").await.0, 409);
        assert_eq!(env.start_plan("free").await.0, 422);
        assert_eq!(env.start_plan("platinum").await.0, 422);

        // Upgrade: the new subscription replaces the old one (Shopify cancels it and says so by
        // webhook, which must not downgrade the successor).
        let business = env.subscribe("business").await;
        env.inbox_drained().await;
        let subs = env.fake.subscriptions(SHOP);
        assert_eq!(subs[0].status, "CANCELLED");
        assert_eq!(business.status, "ACTIVE");
        assert_eq!(env.plan().await, "business");

        // Downgrade to Free: cancel.
        let resp = env
            .app
            .client
            .delete(env.app.url("/api/billing/subscription"))
            .header("authorization", env.bearer())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["plan"], "free");
        assert_eq!(env.fake.subscriptions(SHOP)[1].status, "CANCELLED");
        env.inbox_drained().await;
        assert_eq!(env.plan().await, "free");
        // Nothing left to cancel.
        let resp = env
            .app
            .client
            .delete(env.app.url("/api/billing/subscription"))
            .header("authorization", env.bearer())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 409);
        env.app.stop().await;
    }
}

#[tokio::test]
async fn a_declined_charge_or_a_forged_return_url_leaves_the_shop_on_free() {
    for db in databases().await {
        let env = start(db, |_| {}).await;
        let (_, body) = env.start_plan("pro").await;
        let location = env.decide(body["url"].as_str().unwrap(), false).await;
        assert!(location.contains("charge_id="), "{location}");
        assert_eq!(env.follow_return(&location).await.status(), 303);
        assert_eq!(env.plan().await, "free");
        env.inbox_drained().await;
        assert_eq!(env.fake.subscriptions(SHOP)[0].status, "DECLINED");
        assert_eq!(env.plan().await, "free");

        // A pending charge, and return URLs edited by hand: charge ids, plans, other shops.
        let (_, body) = env.start_plan("business").await;
        let pending = env.fake.subscriptions(SHOP).pop().unwrap();
        for forged in [
            format!("/billing/shopify/return?shop={SHOP}&charge_id={}", pending.number),
            format!("/billing/shopify/return?shop={SHOP}&charge_id=1&plan=business&status=ACTIVE"),
            format!("/billing/shopify/return?shop={SHOP}"),
        ] {
            let resp = no_redirects().get(env.app.url(&forged)).send().await.unwrap();
            assert_eq!(resp.status(), 303, "{forged}");
            assert_eq!(env.plan().await, "free", "{forged}");
        }
        for (bad, code) in [
            ("/billing/shopify/return?shop=evil.example.com", 400),
            ("/billing/shopify/return?shop=other.myshopify.com", 404),
        ] {
            assert_eq!(no_redirects().get(env.app.url(bad)).send().await.unwrap().status(), code, "{bad}");
        }
        // The merchant can still approve the pending one later.
        let location = env.decide(body["url"].as_str().unwrap(), true).await;
        env.follow_return(&location).await;
        assert_eq!(env.plan().await, "business");
        env.app.stop().await;
    }
}

#[tokio::test]
async fn forged_subscription_webhooks_are_rejected_and_frozen_cancelled_or_expired_mean_free() {
    for db in databases().await {
        let env = start(db, |_| {}).await;
        let pro = env.subscribe("pro").await;
        env.inbox_drained().await;

        // Forged: a valid-looking payload signed with another secret.
        let mut forged = pro.clone();
        forged.name = "GhostTrack Business".into();
        forged.updated_at_ms = now_ms() + 60_000;
        let body = webhook_body(&forged);
        let inbox_before = env.app.count("SELECT COUNT(*) FROM webhook_inbox").await;
        let resp = env
            .app
            .client
            .post(env.webhook_url("app_subscriptions/update"))
            .header("content-type", "application/json")
            .header("X-Shopify-Topic", "app_subscriptions/update")
            .header("X-Shopify-Hmac-Sha256", fake_shopify::signing::webhook_hmac("not-the-secret", body.as_bytes()))
            .header("X-Shopify-Shop-Domain", SHOP)
            .header("X-Shopify-API-Version", "2026-10")
            .header("X-Shopify-Webhook-Id", "forged-1")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
        assert_eq!(env.app.count("SELECT COUNT(*) FROM webhook_inbox").await, inbox_before);
        assert_eq!(env.plan().await, "pro");

        // Shopify-side changes, each by a signed webhook.
        for (status, plan) in [("FROZEN", "free"), ("ACTIVE", "pro"), ("CANCELLED", "free")] {
            env.fake.set_subscription_status(SHOP, pro.number, status).await.unwrap();
            env.inbox_drained().await;
            assert_eq!(env.plan().await, plan, "after {status}");
        }
        let again = env.subscribe("pro").await;
        env.fake.set_subscription_status(SHOP, again.number, "EXPIRED").await.unwrap();
        env.inbox_drained().await;
        assert_eq!(env.plan().await, "free", "after EXPIRED");
        env.app.stop().await;
    }
}

#[tokio::test]
async fn out_of_order_subscription_webhooks_never_regress_the_state() {
    for db in databases().await {
        let env = start(db, |_| {}).await;
        let pro = env.subscribe("pro").await;
        env.inbox_drained().await;
        let at = |status: &str, offset_ms: i64| {
            let mut s = pro.clone();
            s.status = status.into();
            s.updated_at_ms = now_ms() + offset_ms;
            webhook_body(&s)
        };
        // Shopify froze the subscription, then it became ACTIVE again: delivered the other way round.
        let active_later = at("ACTIVE", 20_000);
        let frozen_earlier = at("FROZEN", 10_000);
        assert_eq!(env.deliver_subscription_webhook(&active_later).await, 200);
        assert_eq!(env.deliver_subscription_webhook(&frozen_earlier).await, 200);
        assert_eq!(env.plan().await, "pro", "a late FROZEN must not override a newer ACTIVE");
        // And a cancellation followed by a stale ACTIVE.
        assert_eq!(env.deliver_subscription_webhook(&at("CANCELLED", 40_000)).await, 200);
        assert_eq!(env.deliver_subscription_webhook(&at("ACTIVE", 30_000)).await, 200);
        assert_eq!(env.plan().await, "free", "a late ACTIVE must not revive a newer CANCELLED");
        env.app.stop().await;
    }
}

#[tokio::test]
async fn over_quota_ingest_samples_new_sessions_answers_202_and_keeps_webhook_signals() {
    for db in databases().await {
        let env = start(db, |s| {
            s.billing.free.sessions_per_month = 5;
            s.billing.meter_interval_secs = 1;
            s.billing.over_quota_sample_percent = 0;
        })
        .await;
        let key: String = {
            let backend = sea_orm::ConnectionTrait::get_database_backend(&env.app.db);
            let row = sea_orm::ConnectionTrait::query_one_raw(
                &env.app.db,
                sea_orm::Statement::from_string(
                    backend,
                    format!("SELECT public_key FROM sites WHERE domain = '{SHOP}'"),
                ),
            )
            .await
            .unwrap()
            .unwrap();
            row.try_get_by_index(0).unwrap()
        };
        let visit = |i: u8| {
            let body = batch(&key, "https://acme.myshopify.com/products/x", &[pageview(now_ms(), "")]);
            (body, format!("81.2.69.{i}"))
        };
        for i in 1..=5 {
            let (body, ip) = visit(i);
            let resp = env.app.collect(&body, &ip, CHROME_UA).await;
            assert_eq!(resp.status(), 202);
        }
        // The meter counts exactly five sessions and marks the shop over quota.
        let mut status = env.status().await;
        for _ in 0..400 {
            if status["quota"]["sampling"] == true {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
            status = env.status().await;
        }
        assert_eq!(status["quota"]["sampling"], true, "{status}");
        assert_eq!(status["quota"]["used"], 5);
        assert_eq!(status["quota"]["over"], true);
        assert_eq!(env.app.count("SELECT sessions FROM usage_counters").await, 5);
        let over_since = env.app.count("SELECT over_since FROM usage_counters").await;

        // New sessions are sampled out (0 % kept here), still 202 for the browser.
        for i in 6..=8 {
            let (body, ip) = visit(i);
            let resp = env.app.collect(&body, &ip, CHROME_UA).await;
            assert_eq!(resp.status(), 202);
            let answer: Value = resp.json().await.unwrap();
            assert_eq!(answer["drops"]["over_quota"], 1, "{answer}");
        }
        // A session that started before the quota ran out continues.
        let (body, ip) = visit(1);
        let answer: Value = env.app.collect(&body, &ip, CHROME_UA).await.json().await.unwrap();
        assert_eq!(answer["accepted"], 1, "{answer}");
        assert_eq!(env.app.count("SELECT COUNT(*) FROM sessions").await, 5);
        assert_eq!(env.app.count("SELECT COUNT(*) FROM events").await, 6);

        // Webhook-based signals are never sampled.
        let order = r#"{"id": 820982911946154508, "total_price": "10.00", "currency": "USD", "financial_status": "paid", "cart_token": "c-1"}"#;
        let d = env.fake.webhook("orders/create", SHOP, order);
        assert_eq!(env.fake.deliver(&env.webhook_url("orders/create"), &d).await.unwrap().status(), 200);
        env.inbox_drained().await;
        assert_eq!(env.app.count("SELECT COUNT(*) FROM shopify_orders").await, 1);

        // One notice for the month, however many meter runs see the shop over quota.
        let first = env.app.count("SELECT MAX(updated_at) FROM usage_counters").await;
        for _ in 0..400 {
            if env.app.count("SELECT MAX(updated_at) FROM usage_counters").await > first {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(env.app.count("SELECT MAX(updated_at) FROM usage_counters").await > first, "the meter ran again");
        assert_eq!(env.app.count("SELECT COUNT(*) FROM billing_notices WHERE kind = 'quota_exceeded'").await, 1);
        assert_eq!(
            env.app.count("SELECT over_since FROM usage_counters").await,
            over_since,
            "the moment the shop went over is kept, so every node samples from the same instant"
        );
        assert_eq!(env.app.count("SELECT sessions FROM usage_counters").await, 5);
        env.app.stop().await;
    }
}
