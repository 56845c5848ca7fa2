//! The demo's traffic simulator: tracker batches as real browsers send them (through
//! `/collect`, posing as visitors with `X-Forwarded-For`), and Shopify webhooks signed with the
//! app secret. Four kinds of visitor:
//!
//! - shoppers: a few pages each, curved pointer paths, clicks after an approach, scrolling,
//!   key and wheel counts, an ordinary browser environment;
//! - headless bots: `navigator.webdriver`, HeadlessChrome, no plugins, clicks from nowhere;
//! - a card-testing burst: an order from one network, then a dozen declined payments with
//!   different cards (webhooks) and the checkout's payment-error alerts (web pixel events);
//! - a scraper: a script walking 250 product pages with a `python-requests` user agent.
//!
//! Every number here is only a plausible shape for the demo; detection decides what it sees.

use std::time::Duration;

use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::shopify::{API_VERSION, signing};

const CHROME_UA: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const SAFARI_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
const FIREFOX_UA: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const HEADLESS_UA: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36";
const SCRAPER_UA: &str = "python-requests/2.32.3";

/// When the first card-testing burst and the first scraper run, and how often they repeat.
const CARD_TESTING_AT: Duration = Duration::from_secs(8);
const SCRAPER_AT: Duration = Duration::from_secs(15);
const REPEAT_EVERY: Duration = Duration::from_secs(180);

pub struct Simulator {
    pub http: reqwest::Client,
    /// The GhostTrack server, e.g. `http://127.0.0.1:8080`.
    pub base: String,
    pub site_key: String,
    pub shop: String,
    /// The app's client secret, which signs webhooks.
    pub webhook_secret: String,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn random_ip(rng: &mut impl Rng) -> String {
    // Documentation and test ranges are avoided for shoppers: they look like real networks.
    let first = [81u8, 89, 92, 109, 176, 188][rng.random_range(0..6)];
    format!("{first}.{}.{}.{}", rng.random_range(1..255), rng.random_range(0..255), rng.random_range(1..255))
}

impl Simulator {
    /// Runs until `stopped` turns true.
    pub async fn run(self, mut stopped: watch::Receiver<bool>) {
        let this = std::sync::Arc::new(self);
        let started = tokio::time::Instant::now();
        let mut shopper = tokio::time::interval(Duration::from_millis(2000));
        let mut bot = tokio::time::interval(Duration::from_millis(5000));
        let mut card_testing = tokio::time::interval_at(started + CARD_TESTING_AT, REPEAT_EVERY);
        let mut scraper = tokio::time::interval_at(started + SCRAPER_AT, REPEAT_EVERY);
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                _ = shopper.tick() => { let s = this.clone(); tasks.spawn(async move { s.shopper().await }); }
                _ = bot.tick() => { let s = this.clone(); tasks.spawn(async move { s.bot().await }); }
                _ = card_testing.tick() => { let s = this.clone(); tasks.spawn(async move { s.card_testing().await }); }
                _ = scraper.tick() => { let s = this.clone(); tasks.spawn(async move { s.scraper().await }); }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }

    async fn collect(&self, ip: &str, ua: &str, url: &str, events: Vec<Value>) {
        let body = json!({ "k": self.site_key, "v": 1, "s": now_ms(), "u": url, "c": 1, "e": events });
        let sent = self
            .http
            .post(format!("{}/collect", self.base))
            .header("content-type", "text/plain;charset=UTF-8")
            .header("x-forwarded-for", ip)
            .header("user-agent", ua)
            .body(body.to_string())
            .send()
            .await;
        if let Err(error) = sent {
            tracing::debug!(error = %error, "demo batch not sent");
        }
    }

    fn page_url(&self, path: &str) -> String {
        format!("https://{}{path}", self.shop)
    }

    /// A person: 2–4 pages, moving the pointer, scrolling, clicking what they approached.
    async fn shopper(&self) {
        let (ip, ua, pages) = {
            let mut rng = rand::rng();
            let ua = [CHROME_UA, SAFARI_UA, FIREFOX_UA][rng.random_range(0..3)];
            (random_ip(&mut rng), ua, rng.random_range(2..=4))
        };
        let mut path = "/".to_owned();
        for page in 0..pages {
            let url = self.page_url(&path);
            let t = now_ms();
            let mut first = vec![
                json!({"t":"pv","ts":t,"r":if page == 0 { "https://www.google.com/" } else { "" },"ti":"Demo shop","pt":if path == "/" { "index" } else { "product" }}),
            ];
            if page == 0 {
                first.push(json!({"t":"en","ts":t,"wd":0,"hl":0,"pl":5,"lg":3,"pi":0,"ow":1440,"oh":900,"iw":1440,"ih":789,
                    "sw":1440,"sh":900,"dpr":2,"gl":"ANGLE (Apple, Apple M2, OpenGL 4.1)","tz":"Europe/Berlin","hc":8,"dm":8,"mt":0,"cv":"5f3a9c1e"}));
            }
            self.collect(&ip, ua, &url, first).await;
            let dwell = rand::rng().random_range(2500..6000);
            tokio::time::sleep(Duration::from_millis(dwell)).await;
            let t = now_ms();
            let (pointer, x, y) = curved_path();
            let events = vec![
                json!({"t":"pp","ts":t - 400,"p":pointer}),
                json!({"t":"ix","ts":t - 300,"kc":0,"tc":0,"mc":rand::rng().random_range(60..240),"wc":rand::rng().random_range(2..12)}),
                json!({"t":"sc","ts":t - 200,"d":rand::rng().random_range(30..95),"ph":3200}),
                json!({"t":"cl","ts":t - 100,"x":x,"y":y,"pw":1440,"ph":3200,"tg":"button","sel":"button.product-form__submit","ap":1}),
                json!({"t":"vi","ts":t,"vs":"h","tp":dwell,"at":dwell - 200}),
            ];
            self.collect(&ip, ua, &url, events).await;
            path = format!("/products/item-{}", rand::rng().random_range(1..40));
        }
    }

    /// A headless browser: automation flags, pages in quick succession, clicks without approach.
    async fn bot(&self) {
        let ip = format!("198.51.100.{}", rand::rng().random_range(1..255));
        for n in 0..6 {
            let url = self.page_url(&format!("/products/item-{n}"));
            let t = now_ms();
            let mut events = vec![json!({"t":"pv","ts":t,"r":"","ti":"Demo shop","pt":"product"})];
            if n == 0 {
                events.push(
                    json!({"t":"en","ts":t,"wd":1,"hl":1,"pl":0,"lg":0,"pi":1,"ow":800,"oh":600,"iw":800,"ih":600,
                    "sw":800,"sh":600,"dpr":1,"gl":"Google SwiftShader","tz":"UTC","hc":2,"mt":0,"cv":"00000000"}),
                );
            }
            events.push(json!({"t":"cl","ts":t + 50,"x":400,"y":300,"pw":800,"ph":2000,"tg":"button","sel":"button#add","ap":0}));
            self.collect(&ip, HEADLESS_UA, &url, events).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// One network tries a dozen stolen cards on small guest orders.
    async fn card_testing(&self) {
        let octet = rand::rng().random_range(1..255);
        let ip = format!("203.0.113.{octet}");
        let order_id: u64 = rand::rng().random_range(5_000_000_000..9_000_000_000);
        let checkout = format!("demo-ck-{order_id}");
        let order = json!({
            "id": order_id, "checkout_token": checkout, "cart_token": format!("demo-cart-{order_id}"),
            "total_price": "1.00", "currency": "USD", "financial_status": "pending",
            "created_at": chrono::Utc::now().to_rfc3339(), "browser_ip": ip,
            "client_details": {"browser_ip": ip, "user_agent": CHROME_UA},
        });
        self.webhook("orders/create", &order).await;
        // The inbox stores the order first, so the payments below link to its network.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let url = self.page_url("/checkouts/demo");
        for attempt in 0..12u32 {
            let bin = format!("4{:05}", 10_000 + attempt * 731);
            let transaction = json!({
                "id": order_id * 100 + u64::from(attempt), "order_id": order_id, "kind": "sale", "gateway": "shopify_payments",
                "status": "failure", "error_code": if attempt % 3 == 0 { "incorrect_cvc" } else { "card_declined" },
                "amount": "1.00", "currency": "USD", "test": false,
                "payment_details": {"credit_card_bin": bin, "avs_result_code": "N", "cvv_result_code": "N",
                    "credit_card_number": format!("•••• •••• •••• {:04}", 1000 + attempt * 37)},
                "created_at": chrono::Utc::now().to_rfc3339(),
            });
            self.webhook("order_transactions/create", &transaction).await;
            let t = now_ms();
            self.collect(&ip, CHROME_UA, &url, vec![json!({"t":"al","ts":t,"at":"PAYMENT_ERROR","ck":checkout})]).await;
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
    }

    /// A price scraper: 250 product pages in about ten seconds, one request per page (within
    /// the default per-network rate limit of 50/s, as a careful scraper would stay).
    async fn scraper(&self) {
        let ip = format!("192.0.2.{}", rand::rng().random_range(1..255));
        for n in 0..250 {
            let url = self.page_url(&format!("/products/item-{n}"));
            let event = json!({"t":"pv","ts":now_ms(),"r":"","ti":format!("Item {n}"),"pt":"product"});
            self.collect(&ip, SCRAPER_UA, &url, vec![event]).await;
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }

    async fn webhook(&self, topic: &str, body: &Value) {
        let body = body.to_string();
        let id = format!("demo-{}-{}", now_ms(), rand::rng().random_range(0..u32::MAX));
        let sent = self
            .http
            .post(format!("{}{}", self.base, crate::api::WEBHOOKS_PATH))
            .header("content-type", "application/json")
            .header("x-shopify-topic", topic)
            .header("x-shopify-hmac-sha256", signing::sign_webhook(&self.webhook_secret, body.as_bytes()))
            .header("x-shopify-shop-domain", &self.shop)
            .header("x-shopify-api-version", API_VERSION)
            .header("x-shopify-webhook-id", id)
            .body(body)
            .send()
            .await;
        if let Err(error) = sent {
            tracing::debug!(error = %error, topic, "demo webhook not sent");
        }
    }
}

/// A human-looking pointer path (`[dt,dx,dy,…]`, even deltas, first triple absolute) that
/// curves towards a button, slowing down on arrival; returns the path and the click point.
fn curved_path() -> (Vec<i64>, i64, i64) {
    let mut rng = rand::rng();
    let (mut x, mut y) = (rng.random_range(100..600) as f64, rng.random_range(100..500) as f64);
    let (tx, ty) = (rng.random_range(700..1200) as f64, rng.random_range(400..800) as f64);
    let bend = rng.random_range(-120.0..120.0);
    let steps = rng.random_range(25..45);
    let even = |v: f64| (v / 2.0).round() as i64 * 2;
    let mut out = vec![rng.random_range(800..2000), even(x), even(y)];
    let (mut px, mut py) = (even(x), even(y));
    for i in 1..=steps {
        let s = i as f64 / steps as f64;
        // Ease-out along the line, plus a bow that vanishes at both ends, plus tremor.
        let e = 1.0 - (1.0 - s).powi(3);
        x = x + (tx - x) * e * 0.35 + bend * (std::f64::consts::PI * s).sin() * 0.05 + rng.random_range(-1.5..1.5);
        y = y + (ty - y) * e * 0.35 + rng.random_range(-1.5..1.5);
        let (nx, ny) = (even(x), even(y));
        if (nx, ny) == (px, py) {
            continue;
        }
        out.extend([rng.random_range(16..40) + (s * 20.0) as i64, nx - px, ny - py]);
        (px, py) = (nx, ny);
    }
    (out, px, py)
}
