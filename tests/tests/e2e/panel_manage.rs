//! The panel's management endpoints through the real server: Alerts (policy, channels within
//! the plan, test alert, deliveries, dead-letter retry), Billing (Shopify confirmation page →
//! Pro → cancel) and rule settings (an override changes the running engine's verdict), with
//! the panel's two sign-ins (App Bridge bearer, standalone cookie + CSRF) and the roles.

use fake_shopify::{AppRegistration, FakeShopify};
use ghosttrack::accounts::password::Password;
use ghosttrack::accounts::{self, Role};
use ghosttrack::settings::{Secret, Settings};
use ghosttrack_tests::{Spawn, TestApp, TestDb, now_ms, pg};
use reqwest::Method;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

const API_KEY: &str = "gt-manage-client-id";
const API_SECRET: &str = "gt-manage-client-secret";
const SECRET_KEY: &str = "0123456789abcdef0123456789abcdef-manage";
const SHOP_A: &str = "alpha.myshopify.com";
const SHOP_B: &str = "bravo.myshopify.com";
const PASSWORD: &str = "correct horse battery staple";

struct Env {
    app: TestApp,
    fake: FakeShopify,
}

async fn start(db: TestDb, configure: impl FnOnce(&mut Settings) + Send + 'static) -> Env {
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
            configure(s);
        })
        .start()
        .await;
    Env { app, fake }
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

impl Env {
    async fn install(&self, shop: &str) {
        let url = self.fake.embedded_load_url(&self.app.url("/app"), shop);
        ghosttrack_tests::install_by_reloading(shop, || async {
            no_redirects().get(url.clone()).send().await.unwrap()
        })
        .await;
    }

    /// A panel call with the shop's App Bridge token: (status, JSON body or null).
    async fn call(&self, shop: &str, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.app.client.request(method, self.app.url(path)).bearer_auth(self.fake.mint_id_token(shop, 1));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

async fn databases() -> Vec<TestDb> {
    let mut dbs = vec![TestDb::Sqlite];
    if let Some(server) = pg::server_url() {
        dbs.push(TestDb::Postgres(pg::fresh_database(&server).await));
    }
    dbs
}

#[tokio::test]
async fn the_alerts_page_edits_the_policy_and_channels_within_the_plan_and_retries_dead_letters() {
    for db in databases().await {
        // No delivery worker: the outbox rows stay as the test puts them.
        let env = start(db, |s| {
            s.billing.enabled = true;
            s.alerts.enabled = false;
        })
        .await;
        env.install(SHOP_A).await;
        env.install(SHOP_B).await;
        let get = |shop: &'static str| env.call(shop, Method::GET, "/api/panel/alerts", None);

        let (status, page) = get(SHOP_A).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["policy"]["decisions"], json!(["BLOCK"]));
        assert_eq!(page["can_edit"], true, "a Shopify admin user owns the shop's site");
        let kinds: Vec<(String, bool)> = page["channel_kinds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| (k["kind"].as_str().unwrap().to_owned(), k["allowed"].as_bool().unwrap()))
            .collect();
        assert_eq!(kinds[0], ("email".into(), true));
        assert!(kinds[1..].iter().all(|(_, allowed)| !allowed), "Free: email only: {kinds:?}");

        // Policy: a bad threshold is a 422 naming the field and changes nothing.
        let mut policy = page["policy"].clone();
        policy["burst_window_minutes"] = json!(0);
        let (status, err) = env.call(SHOP_A, Method::PUT, "/api/panel/alerts/policy", Some(policy.clone())).await;
        assert_eq!((status, err["field"].as_str()), (422, Some("burst_window_minutes")), "{err}");
        policy["burst_window_minutes"] = json!(15);
        policy["quiet_hours"] = json!({ "from": "22:00", "to": "07:00" });
        let (status, saved) = env.call(SHOP_A, Method::PUT, "/api/panel/alerts/policy", Some(policy)).await;
        assert_eq!(status, 200, "{saved}");
        let page = get(SHOP_A).await.1;
        assert_eq!(
            (page["policy"]["burst_window_minutes"].as_u64(), page["policy"]["quiet_hours"]["to"].as_str()),
            (Some(15), Some("07:00"))
        );

        // Channels: Slack is not in Free; a bad address names its field; email works.
        let slack = json!({ "kind": "slack", "name": "Team", "to": [], "url": "https://hooks.slack.com/services/x" });
        let (status, err) = env.call(SHOP_A, Method::POST, "/api/panel/alerts/channels", Some(slack)).await;
        assert_eq!((status, err["error"].as_str()), (402, Some("not_in_plan")), "{err}");
        let bad = json!({ "kind": "email", "name": "Ops", "to": ["not an address"], "url": null });
        let (status, err) = env.call(SHOP_A, Method::POST, "/api/panel/alerts/channels", Some(bad)).await;
        assert_eq!((status, err["field"].as_str()), (422, Some("to[0]")), "{err}");
        let email = json!({ "kind": "email", "name": "Ops", "to": ["ops@alpha.example"], "url": null });
        let (status, created) = env.call(SHOP_A, Method::POST, "/api/panel/alerts/channels", Some(email)).await;
        assert_eq!(status, 201, "{created}");
        let channel = created["channel"]["id"].as_i64().unwrap();
        assert_eq!(created["channel"]["display"], "ops@alpha.example");

        // A test alert is a delivery; a dead letter shows its error and can be retried.
        let (status, _) =
            env.call(SHOP_A, Method::POST, &format!("/api/panel/alerts/channels/{channel}/test"), None).await;
        assert_eq!(status, 202);
        let page = get(SHOP_A).await.1;
        let delivery = page["deliveries"][0]["id"].as_i64().expect("the test alert is listed");
        assert_eq!(page["deliveries"][0]["channel_kind"], "email");
        assert_eq!(
            (page["deliveries"][0]["alert_kind"].as_str(), page["deliveries"][0]["channel_name"].as_str()),
            (Some("test"), Some("Ops"))
        );
        let (status, err) =
            env.call(SHOP_A, Method::POST, &format!("/api/panel/alerts/deliveries/{delivery}/retry"), None).await;
        assert_eq!((status, err["error"].as_str()), (409, Some("not_dead")));
        let dead = format!(
            "UPDATE alert_outbox SET status = 'dead', last_error = 'SMTP: connection refused' WHERE id = {delivery}"
        );
        env.app.db.execute_unprepared(&dead).await.unwrap();
        let page = get(SHOP_A).await.1;
        assert_eq!(page["dead"][0]["last_error"], "SMTP: connection refused");

        // Shop B sees none of it and cannot act on it.
        let b = get(SHOP_B).await.1;
        assert_eq!((b["channels"].as_array().unwrap().len(), b["dead"].as_array().unwrap().len()), (0, 0));
        let retry = format!("/api/panel/alerts/deliveries/{delivery}/retry");
        assert_eq!(env.call(SHOP_B, Method::POST, &retry, None).await.0, 404);
        assert_eq!(
            env.call(SHOP_B, Method::DELETE, &format!("/api/panel/alerts/channels/{channel}"), None).await.0,
            404
        );

        assert_eq!(env.call(SHOP_A, Method::POST, &retry, None).await.0, 202);
        assert_eq!(get(SHOP_A).await.1["dead"], json!([]));
        assert_eq!(
            env.call(SHOP_A, Method::DELETE, &format!("/api/panel/alerts/channels/{channel}"), None).await.0,
            204
        );
        assert_eq!(get(SHOP_A).await.1["channels"], json!([]));
        env.app.stop().await;
    }
}

#[tokio::test]
async fn the_billing_page_upgrades_through_shopifys_confirmation_page_and_cancels_back_to_free() {
    let env = start(TestDb::Sqlite, |s| s.billing.enabled = true).await;
    env.install(SHOP_A).await;
    let (status, page) = env.call(SHOP_A, Method::GET, "/api/panel/billing", None).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        (page["plan"].as_str(), page["channel"].as_str(), page["can_manage"].as_bool()),
        (Some("free"), Some("shopify"), Some(true))
    );
    assert_eq!(page["plans"].as_array().unwrap().len(), 3);
    assert_eq!(page["quota"]["limit"].as_u64(), Some(10_000));

    let (status, err) =
        env.call(SHOP_A, Method::POST, "/api/panel/billing/subscription", Some(json!({ "plan": "free" }))).await;
    assert_eq!((status, err["error"].as_str()), (422, Some("invalid_plan")));
    let (status, target) =
        env.call(SHOP_A, Method::POST, "/api/panel/billing/subscription", Some(json!({ "plan": "pro" }))).await;
    assert_eq!(status, 200, "{target}");
    assert_eq!(target["provider"], "shopify");
    // The merchant approves on Shopify's page and Shopify sends them to the return URL.
    let confirmation = target["url"].as_str().unwrap();
    let approve = confirmation.replace("confirm_recurring_application_charge", "approve");
    let resp = no_redirects().post(&approve).send().await.unwrap();
    assert_eq!(resp.status(), 302, "{approve}: {}", resp.text().await.unwrap_or_default());
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let path = location.strip_prefix("https://ghosttrack.test").expect("return URL on the app URL");
    assert_eq!(no_redirects().get(env.app.url(path)).send().await.unwrap().status(), 303);
    let page = env.call(SHOP_A, Method::GET, "/api/panel/billing", None).await.1;
    assert_eq!(page["plan"], "pro", "{page}");
    assert!(page["features"].as_array().unwrap().contains(&json!("slack_alerts")));

    let (status, page) = env.call(SHOP_A, Method::DELETE, "/api/panel/billing/subscription", None).await;
    assert_eq!((status, page["plan"].as_str()), (200, Some("free")), "{page}");
    let (status, err) = env.call(SHOP_A, Method::POST, "/api/panel/billing/portal", None).await;
    assert_eq!(status, 409, "a shop has no Stripe portal: {err}");
    env.app.stop().await;
}

/// A logged-in standalone user: the cookie and the CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

async fn login(app: &TestApp, email: &str) -> Session {
    let resp = app
        .client
        .post(app.url("/api/account/login"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let body: Value = resp.json().await.unwrap();
    Session { cookie, csrf: body["csrf_token"].as_str().unwrap().to_owned() }
}

async fn as_user(app: &TestApp, s: &Session, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = app.client.request(method.clone(), app.url(path)).header("cookie", &s.cookie);
    if method != Method::GET {
        req = req.header("x-csrf-token", &s.csrf);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, serde_json::from_str(&resp.text().await.unwrap()).unwrap_or(Value::Null))
}

#[tokio::test]
async fn roles_decide_who_changes_alerts_rules_and_the_plan() {
    let env = start(TestDb::Sqlite, |_| {}).await;
    let app = &env.app;
    app.create_site("shop.example").await;
    for (email, role) in [
        ("owner@shop.example", Role::Owner),
        ("analyst@shop.example", Role::Analyst),
        ("viewer@shop.example", Role::Viewer),
    ] {
        accounts::create_user(&app.db, "shop.example", email, Password::new(PASSWORD), role).await.unwrap();
    }
    let owner = login(app, "owner@shop.example").await;
    let analyst = login(app, "analyst@shop.example").await;
    let viewer = login(app, "viewer@shop.example").await;
    let policy = as_user(app, &viewer, Method::GET, "/api/panel/alerts", None).await.1["policy"].clone();
    let rule = json!({ "rule": "rate/burst", "enabled": true, "shadow": true, "threshold": null, "window_secs": null });
    let plan = json!({ "plan": "pro" });

    // Viewers read everything and change nothing.
    let page = as_user(app, &viewer, Method::GET, "/api/panel/alerts", None).await.1;
    assert_eq!(page["can_edit"], false);
    assert_eq!(as_user(app, &viewer, Method::GET, "/api/panel/rules/settings", None).await.1["can_edit"], false);
    assert_eq!(as_user(app, &viewer, Method::GET, "/api/panel/billing", None).await.1["can_manage"], false);
    for (method, path, body) in [
        (Method::PUT, "/api/panel/alerts/policy", Some(policy.clone())),
        (Method::PUT, "/api/panel/rules/settings", Some(rule.clone())),
        (Method::POST, "/api/panel/billing/subscription", Some(plan.clone())),
    ] {
        let (status, err) = as_user(app, &viewer, method, path, body).await;
        assert_eq!((status, err["error"].as_str()), (403, Some("forbidden")), "{path}");
    }
    // Analysts also change alerts and rules, not the plan.
    assert_eq!(as_user(app, &analyst, Method::PUT, "/api/panel/alerts/policy", Some(policy.clone())).await.0, 200);
    let (status, setting) = as_user(app, &analyst, Method::PUT, "/api/panel/rules/settings", Some(rule)).await;
    assert_eq!((status, setting["shadow"].as_bool()), (200, Some(true)), "{setting}");
    assert_eq!(
        as_user(app, &analyst, Method::POST, "/api/panel/billing/subscription", Some(plan.clone())).await.0,
        403
    );
    // Owners may; this self-hosted server does not enforce plans, which the answer says.
    let (status, err) = as_user(app, &owner, Method::POST, "/api/panel/billing/subscription", Some(plan)).await;
    assert_eq!(status, 409, "{err}");
    let page = as_user(app, &owner, Method::GET, "/api/panel/billing", None).await.1;
    assert_eq!((page["channel"].as_str(), page["enforced"].as_bool()), (Some("stripe"), Some(false)));
    assert!(page["quota"]["limit"].is_null());

    // A cookie without its CSRF token changes nothing.
    let resp = app
        .client
        .put(app.url("/api/panel/alerts/policy"))
        .header("cookie", &owner.cookie)
        .json(&policy)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "csrf_rejected");
    env.app.stop().await;
}

#[tokio::test]
async fn a_threshold_set_on_the_rules_page_changes_the_running_engines_verdict() {
    let env = start(TestDb::Sqlite, |_| {}).await;
    let app = &env.app;
    let site = app.create_site("shop.example").await;
    let other = app.create_site("other.example").await;
    accounts::create_user(&app.db, "shop.example", "analyst@shop.example", Password::new(PASSWORD), Role::Analyst)
        .await
        .unwrap();
    let analyst = login(app, "analyst@shop.example").await;
    let settings = as_user(app, &analyst, Method::GET, "/api/panel/rules/settings", None).await.1;
    let burst = settings["rules"].as_array().unwrap().iter().find(|r| r["id"] == "rate/burst").unwrap().clone();
    assert_eq!((burst["default_threshold"].as_u64(), burst["threshold"].as_u64()), (Some(10), None));
    assert_eq!((burst["threshold_min"].as_u64(), burst["threshold_max"].as_u64()), (Some(1), Some(1000)));

    let put = |body: Value| as_user(app, &analyst, Method::PUT, "/api/panel/rules/settings", Some(body));
    let change = |threshold: Value| json!({ "rule": "rate/burst", "enabled": true, "shadow": false, "threshold": threshold, "window_secs": null });
    for (body, field) in [
        (change(json!(0)), "threshold"),
        (change(json!(1001)), "threshold"),
        (
            json!({ "rule": "rate/nope", "enabled": true, "shadow": false, "threshold": null, "window_secs": null }),
            "rule",
        ),
        (
            json!({ "rule": "ua/automation-library", "enabled": true, "shadow": false, "threshold": 2, "window_secs": null }),
            "threshold",
        ),
    ] {
        let (status, err) = put(body).await;
        assert_eq!((status, err["field"].as_str()), (422, Some(field)), "{err}");
    }
    let (status, saved) = put(change(json!(3))).await;
    assert_eq!((status, saved["threshold"].as_u64()), (200, Some(3)), "{saved}");

    // Three quick requests now make a burst on this site, and still not on the other.
    let t0 = now_ms();
    for (s, expected) in [(&site, "CHALLENGE"), (&other, "ALLOW")] {
        let mut last = Value::Null;
        for i in 0..3 {
            let body = json!({ "site": s.key, "ip": "203.0.113.5", "user_agent": "Mozilla/5.0", "path": format!("/p/{i}"), "ts": t0 + i * 50 });
            let resp = app.client.post(app.url("/v1/evaluate")).bearer_auth(&s.token).json(&body).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            last = resp.json().await.unwrap();
        }
        assert_eq!(last["decision"], expected, "{last}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM rule_settings").await, 1);
    env.app.stop().await;
}

/// The real panel (web/dist) in the fake Shopify admin, in Debian Chromium: Alerts, Rules
/// editing and Billing (upgrade through Shopify's confirmation page in the top window). The
/// Free quota is one session here, so the quota banner shows until the upgrade.
#[tokio::test]
async fn the_management_pages_work_inside_the_shopify_admin_in_a_real_browser() {
    let root = ghosttrack_tests::workspace_root();
    let dist = root.join("web/dist");
    assert!(dist.join("index.html").exists(), "the browser test needs the built panel: run `cargo xtask dist`");
    let browser_dir = root.join("tests/browser");
    assert!(
        browser_dir.join("node_modules/axe-core").exists() && std::path::Path::new("/usr/bin/chromium").exists(),
        "the browser test needs Debian chromium and tests/browser/node_modules: run `scripts/test`"
    );
    let env = start(TestDb::Sqlite, move |s| {
        s.billing.enabled = true;
        s.billing.free.sessions_per_month = 1;
        s.alerts.enabled = false;
        s.panel.dist_dir = dist;
    })
    .await;
    // The admin frames the app and loads App Bridge from the fake.
    env.install(SHOP_A).await;
    // Seed: one visit (over the one-session quota), an email channel, and a dead letter.
    let key = {
        let sql = format!("SELECT public_key FROM sites WHERE domain = '{SHOP_A}'");
        let backend = env.app.db.get_database_backend();
        let row = env.app.db.query_one_raw(sea_orm::Statement::from_string(backend, sql)).await.unwrap().unwrap();
        row.try_get_by_index::<String>(0).unwrap()
    };
    let now = now_ms();
    let pv = format!(r#"{{"t":"pv","ts":{now},"pt":"product"}}"#);
    let resp = env
        .app
        .collect(
            &ghosttrack_tests::batch(&key, &format!("https://{SHOP_A}/products/a"), &[pv]),
            "81.2.69.142",
            ghosttrack_tests::CHROME_UA,
        )
        .await;
    assert_eq!(resp.status(), 202);
    let email = json!({ "kind": "email", "name": "Ops", "to": ["ops@alpha.example"], "url": null });
    let (status, created) = env.call(SHOP_A, Method::POST, "/api/panel/alerts/channels", Some(email)).await;
    assert_eq!(status, 201, "{created}");
    let channel = created["channel"]["id"].as_i64().unwrap();
    env.call(SHOP_A, Method::POST, &format!("/api/panel/alerts/channels/{channel}/test"), None).await;
    let dead = "UPDATE alert_outbox SET status = 'dead', attempts = 8, last_error = 'SMTP: connection refused'";
    env.app.db.execute_unprepared(dead).await.unwrap();
    // The meter decides "over quota" from the counted sessions.
    wait_until_over_quota(&env).await;

    let admin = format!(
        "{}/store/alpha/apps/ghosttrack?application_url={}",
        env.fake.base_url,
        url::form_urlencoded::byte_serialize(env.app.url("/app").as_bytes()).collect::<String>()
    );
    let shots = root.join("target/screenshots");
    let args = [admin, env.app.url(""), shots.display().to_string()];
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg("manage.mjs")
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
    assert_eq!(summary["serious"], json!([]), "{summary}");
    assert!(summary["policyError"].as_str().unwrap().contains("burst_window_minutes"), "{summary}");
    assert_eq!(summary["invalidMarked"], "true");
    assert!(summary["ruleState"].as_str().unwrap().contains("3 within"), "{summary}");
    assert!(summary["bannerBefore"].as_str().is_some_and(|b| b.contains("used up")), "{summary}");
    assert!(summary["planAfter"].as_str().unwrap().contains("Pro"), "{summary}");
    assert!(summary["bannerAfter"].is_null(), "no banner on Pro: {summary}");
    for page in
        ["alerts", "alerts-dead-letter", "rules-edit", "billing", "billing-confirmation", "billing-pro", "alerts-360"]
    {
        assert!(shots.join(format!("panel-{page}.png")).exists(), "{page} screenshot");
    }
    // The override reached the engine of this shop.
    assert_eq!(env.app.count("SELECT COUNT(*) FROM rule_settings").await, 1);
    env.app.stop().await;
}

async fn wait_until_over_quota(env: &Env) {
    for _ in 0..200 {
        let page = env.call(SHOP_A, Method::GET, "/api/panel/billing", None).await.1;
        if page["quota"]["over"] == true {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the visit was not metered");
}

#[tokio::test]
async fn the_live_feed_ends_after_its_lifetime_and_a_reconnect_resumes_after_the_last_id() {
    let env = start(TestDb::Sqlite, |s| s.panel.live_max_secs = 1).await;
    env.install(SHOP_A).await;
    let open = || {
        env.app
            .client
            .get(env.app.url("/api/panel/threats/live?after=0"))
            .bearer_auth(env.fake.mint_id_token(SHOP_A, 1))
            .send()
    };
    let mut resp = open().await.unwrap();
    assert_eq!(resp.status(), 200);
    let drained = async { while resp.chunk().await.unwrap().is_some() {} };
    // Generous: the point is that it ends at all (the default lifetime is ten minutes).
    tokio::time::timeout(std::time::Duration::from_secs(20), drained).await.expect("the stream ends");
    assert_eq!(open().await.unwrap().status(), 200, "a reconnect is served");
    env.app.stop().await;
}
