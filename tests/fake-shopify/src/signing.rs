//! Shopify's signatures, written independently of the GhostTrack backend so the two sides can
//! only agree by both following the spec (checked against the spec's vectors below).

use std::collections::BTreeMap;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

fn hmac(secret: &str, message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}

/// Admin query `hmac`: sorted by key, `k=v` joined with `&`, values form-encoded (`%20`), hex.
pub fn admin_query_hmac(secret: &str, pairs: &[(&str, &str)]) -> String {
    let mut sorted: Vec<&(&str, &str)> = pairs.iter().filter(|(k, _)| *k != "hmac" && *k != "signature").collect();
    sorted.sort();
    let message = sorted.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&");
    hex::encode(hmac(secret, message.as_bytes()))
}

/// Webhook `X-Shopify-Hmac-Sha256`: base64 over the raw body.
pub fn webhook_hmac(secret: &str, body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(hmac(secret, body))
}

/// App proxy `signature`: `k=v1,v2` sorted and concatenated, hex.
pub fn proxy_signature(secret: &str, pairs: &[(&str, &str)]) -> String {
    let mut grouped: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (k, v) in pairs.iter().filter(|(k, _)| *k != "signature") {
        grouped.entry(k).or_default().push(v);
    }
    let mut parts: Vec<String> = grouped.iter().map(|(k, vs)| format!("{k}={}", vs.join(","))).collect();
    parts.sort();
    hex::encode(hmac(secret, parts.concat().as_bytes()))
}

/// An HS256 JWT with the constant header Shopify uses.
pub fn jwt(secret: &str, claims: &impl serde::Serialize) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let input = format!(
        "{}.{}",
        b64.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64.encode(serde_json::to_vec(claims).expect("claims serialize"))
    );
    let sig = b64.encode(hmac(secret, input.as_bytes()));
    format!("{input}.{sig}")
}

/// Verifies an HS256 JWT signature and returns its claims (the token endpoint's own check).
pub fn verify_jwt(secret: &str, token: &str) -> Option<serde_json::Value> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts = token.split('.');
    let (header, payload, sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: serde_json::Value = serde_json::from_slice(&b64.decode(header).ok()?).ok()?;
    if header.get("alg")?.as_str()? != "HS256" {
        return None;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(format!("{}.{payload}", token.split('.').next()?).as_bytes());
    mac.verify_slice(&b64.decode(sig).ok()?).ok()?;
    serde_json::from_slice(&b64.decode(payload).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_vectors() {
        // Q1
        let q1 = [
            ("code", "0907a61c0c8d55e99db179b68161bc00"),
            ("shop", "some-shop.myshopify.com"),
            ("state", "0.6784241404160823"),
            ("timestamp", "1337178173"),
        ];
        assert_eq!(admin_query_hmac("hush", &q1), "700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf");
        // Q3
        let q3 = [("shop", "some-shop.myshopify.com"), ("timestamp", "1337178173")];
        assert_eq!(admin_query_hmac("hush", &q3), "c2812f39f84c32c2edaded339a1388abc9829babf351b684ab797f04cd94d4c7");
        // W1
        assert_eq!(
            webhook_hmac("test_secret_key", br#"{"foo": "bar"}"#),
            "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g="
        );
        // P1
        let p1 = [
            ("extra", "1"),
            ("extra", "2"),
            ("shop", "shop-name.myshopify.com"),
            ("logged_in_customer_id", "1"),
            ("path_prefix", "/apps/awesome_reviews"),
            ("timestamp", "1317327555"),
        ];
        assert_eq!(proxy_signature("hush", &p1), "4c68c8624d737112c91818c11017d24d334b524cb5c2b8ba08daa056f7395ddb");
        // P4
        let p4 =
            [("shop", "some-random-store.myshopify.com"), ("path_prefix", "/apps/my-app"), ("timestamp", "1466106083")];
        assert_eq!(proxy_signature("secret", &p4), "f5cd7233558b1c50102a6f33c0b63ad1e1072a2fc126cb58d4500f75223cefcd");
        // T2
        let t2 = crate::IdTokenClaims {
            iss: "https://test-shop.myshopify.io/admin".into(),
            dest: "https://test-shop.myshopify.io".into(),
            aud: "test_key".into(),
            sub: "1".into(),
            exp: 4102444800,
            nbf: 1234,
            iat: 1234,
            jti: "4321".into(),
            sid: "abc123".into(),
        };
        let token = jwt("test_secret_key", &t2);
        assert!(token.ends_with(".H4uTTSs-WEWeLMk83Z8FqK_3PDHfwYuli1KU1E_Xf7c"), "{token}");
        assert_eq!(verify_jwt("test_secret_key", &token).unwrap()["sid"], "abc123");
        assert!(verify_jwt("other", &token).is_none());
    }
}
