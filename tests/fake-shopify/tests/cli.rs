//! The binary's shell helpers, which tests/quality drives: `mint-id-token` prints an HS256 id token for the shop,
//! signed with the client secret, and `app-load-url` builds the embedded load carrying one. (Having this test
//! also makes `cargo test --workspace` build the binary with the workspace's test features.)

use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};

fn fake_shopify(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_fake-shopify"))
        .args(["--client-id", "cid", "--client-secret", "shh"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn mint_id_token_signs_a_token_for_the_shop_and_the_app_load_url_carries_one() {
    let token = fake_shopify(&["mint-id-token", "--shop", "acme.myshopify.com"]);
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(claims["dest"], "https://acme.myshopify.com");
    assert_eq!(claims["aud"], "cid");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"shh").unwrap();
    mac.update(format!("{}.{}", parts[0], parts[1]).as_bytes());
    mac.verify_slice(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap()).expect("signed with the client secret");

    let url = fake_shopify(&["app-load-url", "--app-url", "http://127.0.0.1:9/app", "--shop", "acme.myshopify.com"]);
    assert!(url.starts_with("http://127.0.0.1:9/app?"), "{url}");
    assert!(url.contains("id_token=") && url.contains("shop=acme.myshopify.com"), "{url}");
}
