//! Event payload encryption at rest through the real server: a shop turns it on in the panel,
//! its events are stored as `gtenc:v1` envelopes (the raw column holds no plaintext), and every
//! reader still works — session detail, visitor export, the page map (decrypted and aggregated
//! in Rust, compared with a plain shop's SQL result for the same traffic) and the order join by
//! cart token (blind index). Then data keys rotate (new rows use the new key, old ones stay
//! readable), the re-encrypt pass moves every row to the active key, and the master key
//! changes (`keys rotate` re-wraps data keys and re-seals shop tokens and alert channel
//! destinations). On SQLite and, when
//! `GHOSTTRACK_TEST_DATABASE_URL` is set, PostgreSQL.

use std::time::Duration;

use ghosttrack::alerts::service::{ChannelInput, create_channel, open_destination};
use ghosttrack::domain::UnixMillis;
use ghosttrack::keys::{EventKeys, KeyError, MasterKeys, rotate};
use ghosttrack::settings::Secret;
use ghosttrack::shopify::shop_domain::ShopDomain;
use ghosttrack::shopify::token_cipher::{Sealed, TokenCipher};
use ghosttrack::storage::alerts as alerts_store;
use ghosttrack::storage::shopify_orders::{self, JoinNeedles};
use ghosttrack::storage::{TenantScope, data_keys, shops};
use ghosttrack_tests::{CHROME_UA, TestDb, batch, now_ms, pg};
use reqwest::Method;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use super::panel::{Env, SECRET_KEY, start_with};
use super::panel_maps::{SE_IP, human_visit, send, until};

const SHOP_A: &str = "alpha.myshopify.com";
const SHOP_B: &str = "bravo.myshopify.com";
const NEW_SECRET: &str = "a-new-server-secret-of-at-least-32-bytes!";
const CART: &str = "cart-tok-0123456789";

async fn scope_of(env: &Env, shop: &str) -> TenantScope {
    shops::find(&env.app.db, &ShopDomain::parse(shop).unwrap()).await.unwrap().expect("installed").scope()
}

/// Stored props of the shop's events, oldest first.
async fn stored_props(env: &Env, shop: &str) -> Vec<String> {
    let site = scope_of(env, shop).await.site_id().0;
    let backend = env.app.db.get_database_backend();
    let sql = format!("SELECT props FROM events WHERE site_id = {site} AND props IS NOT NULL ORDER BY id");
    let rows = env.app.db.query_all_raw(sea_orm::Statement::from_string(backend, sql)).await.unwrap();
    rows.iter().map(|r| r.try_get_by_index::<String>(0).unwrap()).collect()
}

async fn add_to_cart(env: &Env, shop: &str, cart: &str) {
    let key = env.site_key(shop).await;
    let event = format!(r#"{{"t":"ac","ts":{},"ct":"{cart}"}}"#, now_ms());
    let resp = env.app.collect(&batch(&key, &format!("https://{shop}/products/a"), &[event]), SE_IP, CHROME_UA).await;
    assert_eq!(resp.status(), 202, "{}", resp.text().await.unwrap());
}

async fn wait_for(env: &Env, shop: &str, ready: impl Fn(&[String]) -> bool) -> Vec<String> {
    for _ in 0..200 {
        let props = stored_props(env, shop).await;
        if ready(&props) {
            return props;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{shop}: events never stored as expected: {:?}", stored_props(env, shop).await);
}

async fn tracked(env: &Env, keys: &EventKeys, cart: &str) -> Option<i64> {
    let scope = scope_of(env, SHOP_A).await;
    let (needles, _) = keys.join_needles(&env.app.db, scope, Some(cart), None).await.unwrap();
    shopify_orders::tracked_session(&env.app.db, scope, &needles, &JoinNeedles::default(), UnixMillis(0)).await.unwrap()
}

fn ct_of(export: &Value) -> Vec<String> {
    export["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "ac")
        .map(|e| e["props"]["ct"].as_str().unwrap_or("<not opened>").to_owned())
        .collect()
}

async fn encryption_story(db: TestDb) {
    let env = start_with(db, None, |s| s.privacy.data_key_cache_secs = 1).await;
    env.install(SHOP_A).await;
    env.install(SHOP_B).await;
    let keys = EventKeys::new(Some(MasterKeys::new(SECRET_KEY, None).unwrap()));

    // Off by default; the owner turns it on for A only.
    assert_eq!(env.get_json(SHOP_A, "/api/panel/privacy").await["encrypted_at_rest"], false);
    let resp = send(&env, SHOP_A, Method::PUT, "/api/panel/privacy/encryption", Some(json!({ "enabled": true }))).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["encrypted_at_rest"], true);
    assert_eq!(env.get_json(SHOP_B, "/api/panel/privacy").await["encrypted_at_rest"], false);

    // The same traffic on both shops.
    for shop in [SHOP_A, SHOP_B] {
        human_visit(&env, shop, SE_IP, "/products/a", 100).await;
        add_to_cart(&env, shop, CART).await;
    }
    let a = wait_for(&env, SHOP_A, |p| p.len() >= 6).await;
    let b = wait_for(&env, SHOP_B, |p| p.len() >= 6).await;
    let first_key = data_keys::active(&env.app.db, scope_of(&env, SHOP_A).await).await.unwrap().unwrap().key_id;
    for props in &a {
        assert!(props.starts_with(&format!("gtenc:v1:{first_key}:")), "{props}");
        for plain in [CART, "a.cart", "button#buy", "\"x\""] {
            assert!(!props.contains(plain), "plaintext {plain} at rest: {props}");
        }
    }
    assert!(b.iter().all(|p| p.starts_with('{')), "B stays plain: {b:?}");
    assert!(b.iter().any(|p| p.contains(CART)));

    // Page map: the decrypting path gives what the SQL gives for the plain shop.
    let map = "/api/panel/pages/map?path=/products/a&range=24h";
    let map_a = until(&env, SHOP_A, map, |m| m["clicks"] == 2).await;
    let map_b = until(&env, SHOP_B, map, |m| m["clicks"] == 2).await;
    assert_eq!(map_a, map_b);
    assert_eq!(map_a["scroll_sessions"], 1);

    // Session detail and export open the envelopes.
    let sessions = env.get_json(SHOP_A, "/api/panel/sessions").await;
    let session = sessions["sessions"][0]["id"].as_i64().unwrap();
    let detail = env.get_json(SHOP_A, &format!("/api/panel/sessions/{session}")).await;
    assert_eq!(detail["clicks"].as_array().unwrap().len(), 2, "{detail}");
    let export_path = format!("/api/panel/privacy/visitor?session_id={session}");
    assert_eq!(ct_of(&env.get_json(SHOP_A, &export_path).await), [CART]);

    // Order join by cart token: found through the blind index, not through a plain member.
    assert_eq!(tracked(&env, &keys, CART).await, Some(session));
    assert_eq!(tracked(&env, &keys, "another-cart").await, None);
    let scope_a = scope_of(&env, SHOP_A).await;
    let plain_only = JoinNeedles::plain("ct", CART);
    let none = JoinNeedles::default();
    assert_eq!(
        shopify_orders::tracked_session(&env.app.db, scope_a, &plain_only, &none, UnixMillis(0)).await.unwrap(),
        None
    );

    // A ciphertext copied into another tenant's row does not open there.
    let scope_b = scope_of(&env, SHOP_B).await;
    assert!(matches!(keys.open(&env.app.db, scope_b, &a[0]).await, Err(KeyError::UnknownDataKey(_))));

    // Data key rotation: new rows use the new key (servers follow within the cache time),
    // old rows stay readable.
    let mut done = rotate::Rotated::default();
    rotate::new_data_keys(&env.app.db, &keys, &mut done).await.unwrap();
    let second_key = done.new_data_keys[&scope_a.site_id().0].clone();
    assert_ne!(second_key, first_key);
    let second_prefix = format!("gtenc:v1:{second_key}:");
    let mut n = 0;
    let rotated = loop {
        n += 1;
        add_to_cart(&env, SHOP_A, &format!("cart-after-rotation-{n}")).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let props = stored_props(&env, SHOP_A).await;
        if props.last().is_some_and(|p| p.starts_with(&second_prefix)) || n == 200 {
            break props;
        }
    };
    assert!(rotated.last().unwrap().starts_with(&second_prefix), "new rows never used the new key");
    assert!(rotated.iter().any(|p| p.starts_with(&format!("gtenc:v1:{first_key}:"))));
    let export = env.get_json(SHOP_A, &export_path).await;
    assert_eq!(ct_of(&export).len(), 1 + n, "{export}");
    assert_eq!(tracked(&env, &keys, CART).await, Some(session));
    assert_eq!(tracked(&env, &keys, &format!("cart-after-rotation-{n}")).await, Some(session));

    // Re-encrypt pass in small batches: every row under the active key, still readable; a
    // second run finds nothing left.
    let moved = rotate::reencrypt(&env.app.db, &keys, 2).await.unwrap();
    assert!(moved >= 6, "{moved}");
    assert!(stored_props(&env, SHOP_A).await.iter().all(|p| p.starts_with(&second_prefix)));
    assert_eq!(rotate::reencrypt(&env.app.db, &keys, 2).await.unwrap(), 0);
    assert_eq!(ct_of(&env.get_json(SHOP_A, &export_path).await).len(), 1 + n);
    assert_eq!(tracked(&env, &keys, CART).await, Some(session));
    assert!(stored_props(&env, SHOP_B).await.iter().all(|p| p.starts_with('{')), "B untouched");

    // Master key change: without the old secret the data keys do not open (a clear error);
    // `keys rotate` with both re-wraps them and re-seals both shops' tokens.
    let new_only = EventKeys::new(Some(MasterKeys::new(NEW_SECRET, None).unwrap()));
    let visitor = export["visitor_id"].as_i64().unwrap();
    let visitor = ghosttrack::domain::VisitorId(visitor);
    let err = ghosttrack::privacy::export_visitor(&env.app.db, &new_only, scope_a, visitor).await.unwrap_err();
    assert!(matches!(err, KeyError::UnknownMasterKey { .. }), "{err}");
    assert!(err.to_string().contains("GHOSTTRACK_SECRET_KEY_PREVIOUS"));
    // An alert channel's destination is sealed with the same master key.
    let old_cipher = TokenCipher::new(SECRET_KEY).unwrap();
    let input = ChannelInput {
        kind: "email".into(),
        name: "Owner".into(),
        to: vec!["owner@alpha.example".into()],
        url: None,
        allow_private: false,
    };
    let (channel, _) = create_channel(&env.app.db, Some(&old_cipher), scope_a, input).await.unwrap();
    let both = EventKeys::new(Some(MasterKeys::new(NEW_SECRET, Some(SECRET_KEY)).unwrap()));
    let mut done = rotate::Rotated::default();
    rotate::rewrap_all(&env.app.db, &both, &mut done).await.unwrap();
    assert_eq!((done.data_keys_rewrapped, done.shops_resealed, done.skipped_concurrent), (2, 2, 0));
    assert_eq!(done.alert_channels_resealed, 1);
    let row = alerts_store::channel(&env.app.db, scope_a, channel.id).await.unwrap().expect("channel");
    let new_cipher = TokenCipher::new(NEW_SECRET).unwrap();
    let opened = serde_json::to_string(&open_destination(&new_cipher, &row).unwrap()).unwrap();
    assert!(opened.contains("owner@alpha.example"), "{opened}");
    assert!(open_destination(&old_cipher, &row).is_err());
    let opened = ghosttrack::privacy::export_visitor(&env.app.db, &new_only, scope_a, visitor).await.unwrap();
    assert_eq!(serde_json::to_value(&opened).unwrap()["events"], export["events"]);
    let status = rotate::status(&env.app.db, &new_only).await.unwrap();
    assert_eq!(status.shops_on_other_master_keys, 0);
    assert!(status.tenants.iter().all(|t| t.keys_on_other_master_keys == 0));
    let shop = shops::find(&env.app.db, &ShopDomain::parse(SHOP_A).unwrap()).await.unwrap().unwrap();
    let tokens = shop.tokens.unwrap();
    let sealed = Sealed { key_id: tokens.key_id.clone(), ciphertext: tokens.access_token.clone() };
    let master = MasterKeys::new(NEW_SECRET, None).unwrap();
    assert_eq!(tokens.key_id, master.current().key_id());
    assert!(!master.open(&format!("{SHOP_A}/access"), &sealed).unwrap().is_empty());
    // Nothing left to do.
    let mut again = rotate::Rotated::default();
    rotate::rewrap_all(&env.app.db, &both, &mut again).await.unwrap();
    assert_eq!(again, rotate::Rotated::default());
}

#[tokio::test]
async fn encrypted_payloads_stay_readable_through_every_reader_and_every_rotation_on_sqlite() {
    encryption_story(TestDb::Sqlite).await;
}

#[tokio::test]
async fn encrypted_payloads_stay_readable_through_every_reader_and_every_rotation_on_postgresql() {
    let Some(url) = pg::fresh_database_or_skip("PostgreSQL encryption test").await else { return };
    encryption_story(TestDb::Postgres(url)).await;
}

/// `ghosttrack keys rotate --data-keys --reencrypt` and `privacy encryption` as the operator
/// runs them, against a server's database.
#[tokio::test]
async fn the_keys_cli_turns_encryption_on_rotates_and_reencrypts() {
    use ghosttrack::cli::{KeysCommand, keys_command};
    let env = start_with(TestDb::Sqlite, None, |s| s.privacy.data_key_cache_secs = 1).await;
    env.install(SHOP_A).await;
    let mut settings = env.app.settings.clone();
    settings.secret_key = Some(Secret::new(SECRET_KEY));
    let keys = EventKeys::new(MasterKeys::from_settings(&settings).unwrap());
    let scope = scope_of(&env, SHOP_A).await;
    // Rows from before encryption was on.
    human_visit(&env, SHOP_A, SE_IP, "/products/a", 50).await;
    let before = wait_for(&env, SHOP_A, |p| p.len() >= 5).await;
    assert!(before.iter().all(|p| p.starts_with('{')));
    keys.enable(&env.app.db, scope).await.unwrap();

    keys_command(&settings, KeysCommand::Rotate { data_keys: true, reencrypt: true, batch: 3 }).await.unwrap();
    let active = data_keys::active(&env.app.db, scope).await.unwrap().unwrap();
    assert_eq!(data_keys::of_site(&env.app.db, scope).await.unwrap().len(), 2);
    let props = stored_props(&env, SHOP_A).await;
    assert!(props.iter().all(|p| p.starts_with(&format!("gtenc:v1:{}:", active.key_id))), "{props:?}");
    keys_command(&settings, KeysCommand::Status).await.unwrap();

    // A new secret without the previous one: the command fails with the reason.
    settings.secret_key = Some(Secret::new(NEW_SECRET));
    let err = keys_command(&settings, KeysCommand::Rotate { data_keys: false, reencrypt: false, batch: 10 })
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("GHOSTTRACK_SECRET_KEY_PREVIOUS"), "{err:#}");
    settings.secret_key_previous = Some(Secret::new(SECRET_KEY));
    keys_command(&settings, KeysCommand::Rotate { data_keys: false, reencrypt: false, batch: 10 }).await.unwrap();
    let new_only = EventKeys::new(Some(MasterKeys::new(NEW_SECRET, None).unwrap()));
    for p in stored_props(&env, SHOP_A).await {
        assert!(new_only.open(&env.app.db, scope, &p).await.unwrap().starts_with('{'));
    }
}
