//! The panel's Geography, Pages and Privacy endpoints through the real server: two shops
//! installed through the fake Shopify, traffic through `/collect` from addresses the MaxMind
//! test databases place in Sweden, the United States and the United Kingdom, verdicts from the
//! real detector. Each shop's token reads and changes only its own shop. The standalone
//! branch checks the owner role and the CSRF header on the mutating privacy endpoints.

use std::time::Duration;

use ghosttrack::accounts::password::Password;
use ghosttrack::accounts::{self, Role};
use ghosttrack_tests::{CHROME_UA, Spawn, TestDb, batch, now_ms};
use serde_json::{Value, json};

use super::panel::{Env, start};

const SHOP_A: &str = "alpha.myshopify.com";
const SHOP_B: &str = "bravo.myshopify.com";
/// Sweden and the United States in GeoIP2-City-Test; 81.2.69.x (the headless visits) is the UK.
pub(super) const SE_IP: &str = "89.160.20.112";
pub(super) const US_IP: &str = "216.160.83.56";

/// A human-looking visit to `path` with two clicks (page 1280 × 2560) and a scroll to `depth` %.
pub(super) async fn human_visit(env: &Env, shop: &str, ip: &str, path: &str, depth: u8) {
    let key = env.site_key(shop).await;
    let now = now_ms();
    let events = vec![
        format!(r#"{{"t":"en","ts":{now},"wd":0,"hl":0,"pl":5,"lg":2}}"#),
        format!(r#"{{"t":"pv","ts":{}}}"#, now + 1),
        format!(
            r#"{{"t":"cl","ts":{},"x":1270,"y":10,"pw":1280,"ph":2560,"tg":"a","sel":"a.cart","ap":1}}"#,
            now + 400
        ),
        format!(
            r#"{{"t":"cl","ts":{},"x":5,"y":1290,"pw":1280,"ph":2560,"tg":"button","sel":"button#buy","ap":1}}"#,
            now + 900
        ),
        format!(r#"{{"t":"sc","ts":{},"d":{},"ph":2560}}"#, now + 950, depth / 2),
        format!(r#"{{"t":"sc","ts":{},"d":{depth},"ph":2560}}"#, now + 1000),
    ];
    let resp = env.app.collect(&batch(&key, &format!("https://{shop}{path}"), &events), ip, CHROME_UA).await;
    assert_eq!(resp.status(), 202, "{}", resp.text().await.unwrap());
}

/// Polls `path` until `ready` holds (the ingest writes in the background).
pub(super) async fn until(env: &Env, shop: &str, path: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let mut body = Value::Null;
    for _ in 0..200 {
        body = env.get_json(shop, path).await;
        if ready(&body) {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{path} never became ready: {body}");
}

fn country<'a>(geo: &'a Value, code: &str) -> &'a Value {
    geo["countries"].as_array().unwrap().iter().find(|c| c["country"] == code).unwrap_or(&Value::Null)
}

async fn maps_show_the_token_shops_countries_clicks_and_scrolls(db: TestDb) {
    let env = start(db, None).await;
    env.install(SHOP_A).await;
    env.install(SHOP_B).await;
    human_visit(&env, SHOP_A, SE_IP, "/products/a", 100).await;
    human_visit(&env, SHOP_A, US_IP, "/products/a", 40).await;
    human_visit(&env, SHOP_B, US_IP, "/products/b", 40).await;
    env.headless_visit(SHOP_A, "81.2.69.142").await;
    env.threats(SHOP_A).await;

    let geo = until(&env, SHOP_A, "/api/panel/geography?range=24h", |g| {
        country(g, "SE")["visitors"] == 1 && country(g, "US")["visitors"] == 1 && country(g, "GB")["threats"] == 1
    })
    .await;
    assert_eq!(geo["range"], "24h");
    assert_eq!(country(&geo, "GB")["sessions"], 1);
    assert_eq!((country(&geo, "SE")["threats"].as_i64(), country(&geo, "US")["threats"].as_i64()), (Some(0), Some(0)));
    let b_geo = until(&env, SHOP_B, "/api/panel/geography?range=7d", |g| country(g, "US")["visitors"] == 1).await;
    assert_eq!(b_geo["countries"].as_array().unwrap().len(), 1, "B sees only its own visitor: {b_geo}");

    // The headless visit clicked /products/a too (without scrolling): 2 + 2 + 1 clicks.
    let pages = until(&env, SHOP_A, "/api/panel/pages?range=24h", |p| p["pages"][0]["clicks"] == 5).await;
    assert_eq!(pages["pages"][0]["path"], "/products/a");
    assert_eq!(pages["pages"][0]["scroll_sessions"], 2);
    assert_eq!(pages["pages"].as_array().unwrap().len(), 1, "{pages}");

    let map = env.get_json(SHOP_A, "/api/panel/pages/map?path=%2Fproducts%2Fa&range=24h").await;
    assert_eq!((map["cols"].as_i64(), map["rows"].as_i64()), (Some(24), Some(48)));
    assert_eq!(map["clicks"], 5);
    let cell = |col: i64, row: i64| {
        map["cells"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["col"] == col && c["row"] == row)
            .map(|c| c["clicks"].clone())
    };
    // x 1270 of 1280 → last column, y 10 of 2560 → first row; x 5, y 1290 → column 0, row 24.
    assert_eq!(cell(23, 0), Some(json!(2)), "{map}");
    assert_eq!(cell(0, 24), Some(json!(2)), "{map}");
    // The headless click: x 120 of 1280, y 108 of 2400 → column 2, row 2.
    assert_eq!(cell(2, 2), Some(json!(1)), "{map}");
    assert_eq!(map["scroll_sessions"], 2);
    assert_eq!(map["reach"], json!([2, 2, 2, 2, 1, 1, 1, 1, 1, 1]), "one session at 40 %, one at 100 %");
    // Mean page size of the clicks: four at 1280 × 2560, one at 1280 × 2400.
    assert_eq!((map["page_width"].as_i64(), map["page_height"].as_i64()), (Some(1280), Some(2528)));

    // B's token sees none of A's pages.
    let b_map = env.get_json(SHOP_B, "/api/panel/pages/map?path=%2Fproducts%2Fa").await;
    assert_eq!((b_map["clicks"].as_i64(), b_map["scroll_sessions"].as_i64()), (Some(0), Some(0)));
    for bad in ["/api/panel/pages/map?path=products", "/api/panel/pages/map", "/api/panel/geography?range=1y"] {
        let resp = env.get(bad, &env.fake.mint_id_token(SHOP_A, 1)).await;
        assert_eq!(resp.status(), 400, "{bad}");
    }
    env.app.stop().await;
}

#[tokio::test]
async fn geography_and_page_maps_count_only_the_token_shop() {
    maps_show_the_token_shops_countries_clicks_and_scrolls(TestDb::Sqlite).await;
}

#[tokio::test]
async fn geography_and_page_maps_count_only_the_token_shop_on_postgres() {
    let Some(url) = ghosttrack_tests::pg::fresh_database_or_skip("PostgreSQL page map test").await else { return };
    maps_show_the_token_shops_countries_clicks_and_scrolls(TestDb::Postgres(url)).await;
}

pub(super) async fn send(
    env: &Env,
    shop: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = env.app.client.request(method, env.app.url(path)).bearer_auth(env.fake.mint_id_token(shop, 1));
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

async fn privacy_mode_export_and_delete(db: TestDb) {
    use reqwest::Method;
    let env = start(db, None).await;
    env.install(SHOP_A).await;
    env.install(SHOP_B).await;
    human_visit(&env, SHOP_A, SE_IP, "/products/a", 60).await;
    let sessions = until(&env, SHOP_A, "/api/panel/sessions", |s| !s["sessions"].as_array().unwrap().is_empty()).await;
    let session_id = sessions["sessions"][0]["id"].as_i64().unwrap();

    let view = env.get_json(SHOP_A, "/api/panel/privacy").await;
    assert_eq!((view["mode"].as_str(), view["can_manage"].as_bool()), (Some("balanced"), Some(true)));
    assert_eq!(view["retention"]["raw_event_days"], 90);
    assert_eq!(view["retention"]["unflagged_pointer_path_hours"], 24);
    assert_eq!(view["audit"], json!([]));
    assert_eq!(
        (view["encrypted_at_rest"].as_bool(), view["encryption_available"].as_bool()),
        (Some(false), Some(true)),
        "off by default; this server has a secret key"
    );

    let resp = send(&env, SHOP_A, Method::PUT, "/api/panel/privacy/mode", Some(json!({ "mode": "paranoid" }))).await;
    assert_eq!(resp.status(), 400);
    let resp = send(&env, SHOP_A, Method::PUT, "/api/panel/privacy/mode", Some(json!({ "mode": "strict" }))).await;
    assert_eq!(resp.status(), 200);
    let view: Value = resp.json().await.unwrap();
    assert_eq!(
        (view["mode"].as_str(), view["retention"]["pointer_paths_stored"].as_bool()),
        (Some("strict"), Some(false))
    );
    assert_eq!(view["audit"][0]["action"], "privacy_mode");
    assert_eq!(view["audit"][0]["actor"], "shopify-user:1");
    assert_eq!(env.get_json(SHOP_B, "/api/panel/privacy").await["mode"], "balanced", "B's mode is untouched");

    // B cannot reach A's visitor through A's session id.
    let path = format!("/api/panel/privacy/visitor?session_id={session_id}");
    assert_eq!(send(&env, SHOP_B, Method::GET, &path, None).await.status(), 404);
    assert_eq!(send(&env, SHOP_B, Method::DELETE, &path, None).await.status(), 404);
    let both = format!("/api/panel/privacy/visitor?session_id={session_id}&visitor_id=1");
    assert_eq!(send(&env, SHOP_A, Method::GET, &both, None).await.status(), 400);

    let export = env.get_json(SHOP_A, &path).await;
    assert_eq!(export["sessions"][0]["session_id"], session_id);
    assert_eq!(export["events"].as_array().unwrap().len(), 6, "{export}");
    let visitor_id = export["visitor_id"].as_i64().unwrap();

    let resp = send(&env, SHOP_A, Method::DELETE, &path, None).await;
    assert_eq!(resp.status(), 200);
    let deleted: Value = resp.json().await.unwrap();
    assert_eq!(deleted["visitor_id"], visitor_id);
    assert_eq!((deleted["sessions"].as_u64(), deleted["events"].as_u64()), (Some(1), Some(6)));
    assert_eq!(send(&env, SHOP_A, Method::GET, &path, None).await.status(), 404, "the session is gone");
    let by_visitor = format!("/api/panel/privacy/visitor?visitor_id={visitor_id}");
    assert_eq!(send(&env, SHOP_A, Method::DELETE, &by_visitor, None).await.status(), 404, "nothing left");

    let audit = env.get_json(SHOP_A, "/api/panel/privacy").await["audit"].clone();
    let actions: Vec<&str> = audit.as_array().unwrap().iter().map(|a| a["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["visitor_delete", "visitor_export", "privacy_mode"]);
    assert!(audit[0]["detail"].as_str().unwrap().contains(&format!("\"visitor_id\":{visitor_id}")));
    assert_eq!(env.get_json(SHOP_B, "/api/panel/privacy").await["audit"], json!([]));
    env.app.stop().await;
}

#[tokio::test]
async fn privacy_mode_export_and_delete_are_tenant_scoped_and_audited() {
    privacy_mode_export_and_delete(TestDb::Sqlite).await;
}

#[tokio::test]
async fn privacy_mode_export_and_delete_are_tenant_scoped_and_audited_on_postgres() {
    let Some(url) = ghosttrack_tests::pg::fresh_database_or_skip("PostgreSQL privacy mode test").await else { return };
    privacy_mode_export_and_delete(TestDb::Postgres(url)).await;
}

/// Standalone: viewers read the page but may not change anything; owners need the CSRF header;
/// a server without `GHOSTTRACK_SECRET_KEY` says so and refuses to turn payload encryption on.
#[tokio::test]
async fn standalone_privacy_changes_need_an_owner_and_the_csrf_token() {
    let app = Spawn::default().database(TestDb::Sqlite).start().await;
    app.create_site("own.example").await;
    let password = "correct horse battery staple";
    for (email, role) in [("owner@own.example", Role::Owner), ("viewer@own.example", Role::Viewer)] {
        accounts::create_user(&app.db, "own.example", email, Password::new(password), role).await.unwrap();
    }
    let login = |email: &'static str| {
        let app = &app;
        async move {
            let resp = app
                .client
                .post(app.url("/api/account/login"))
                .json(&json!({ "email": email, "password": password }))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            let cookie = resp.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
            let csrf = resp.json::<Value>().await.unwrap()["csrf_token"].as_str().unwrap().to_owned();
            (cookie, csrf)
        }
    };
    let put_mode = |cookie: String, csrf: Option<String>| {
        let app = &app;
        async move {
            let mut req = app.client.put(app.url("/api/panel/privacy/mode")).header("cookie", cookie);
            if let Some(csrf) = csrf {
                req = req.header("x-csrf-token", csrf);
            }
            req.json(&json!({ "mode": "forensic" })).send().await.unwrap()
        }
    };
    let (viewer, viewer_csrf) = login("viewer@own.example").await;
    let view: Value = app
        .client
        .get(app.url("/api/panel/privacy"))
        .header("cookie", &viewer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((view["mode"].as_str(), view["can_manage"].as_bool()), (Some("balanced"), Some(false)));
    assert_eq!(view["encryption_available"], false, "this server has no GHOSTTRACK_SECRET_KEY");
    let resp = put_mode(viewer.clone(), Some(viewer_csrf)).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "owner_required");
    let resp =
        app.client.get(app.url("/api/panel/privacy/visitor?visitor_id=1")).header("cookie", &viewer).send().await;
    assert_eq!(resp.unwrap().status(), 403, "viewers cannot export a visitor");

    let (owner, owner_csrf) = login("owner@own.example").await;
    let resp = put_mode(owner.clone(), None).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "csrf_rejected");
    let resp = put_mode(owner.clone(), Some(owner_csrf.clone())).await;
    assert_eq!(resp.status(), 200);
    let view: Value = resp.json().await.unwrap();
    assert_eq!((view["mode"].as_str(), view["retention"]["raw_event_days"].as_u64()), (Some("forensic"), Some(30)));
    assert!(view["audit"][0]["actor"].as_str().unwrap().starts_with("user:"));
    // Without a server secret an owner cannot turn payload encryption on: a 400 that says why.
    let resp = app
        .client
        .put(app.url("/api/panel/privacy/encryption"))
        .header("cookie", owner)
        .header("x-csrf-token", owner_csrf)
        .json(&json!({ "enabled": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "no_secret_key");
    app.stop().await;
}
