//! Shopify's three signing schemes (spec shopify-auth §1.3, §3.1, §4.2; §10 fact 1):
//!
//! * admin query (`hmac`): install, embedded app load and OAuth callback queries; keys sorted,
//!   `k=v` joined with `&`, **hex**; the timestamp within ±90 s.
//! * webhook (`X-Shopify-Hmac-Sha256`): **base64** HMAC over the raw body bytes.
//! * app proxy (`signature`): sorted `k=v` strings (repeated values joined with `,`, values not
//!   encoded) **concatenated**, hex; the timestamp within ±90 s.
//!
//! Every comparison is constant-time (`Mac::verify_slice`). During a client-secret rotation the
//! previous secret is accepted too.

use std::collections::BTreeMap;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::settings::Secret;

type HmacSha256 = Hmac<Sha256>;

/// Largest accepted distance between a signed timestamp and our clock (JS-API
/// `HMAC_TIMESTAMP_PERMITTED_CLOCK_TOLERANCE_SEC`).
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 90;

/// Query keys that must appear at most once in a signed query (JS-API hardening).
const SECURITY_KEYS: [&str; 4] = ["hmac", "shop", "signature", "timestamp"];

/// The client secret, plus the previous one while a rotation settles.
#[derive(Clone, Debug)]
pub struct SecretSet {
    current: Secret,
    previous: Option<Secret>,
}

impl SecretSet {
    pub fn new(current: Secret, previous: Option<Secret>) -> Self {
        SecretSet { current, previous }
    }

    pub fn current(&self) -> &Secret {
        &self.current
    }

    /// Current first, then the previous one.
    pub fn candidates(&self) -> impl Iterator<Item = &Secret> {
        std::iter::once(&self.current).chain(self.previous.as_ref())
    }

    fn verify(&self, message: &[u8], expected: &[u8]) -> bool {
        self.candidates().any(|secret| mac(secret.expose().as_bytes(), message).verify_slice(expected).is_ok())
    }
}

/// Why a signed request was refused. Callers map every variant to 401 (or 400 for proxy
/// requests); the variant is for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature parameter or header is missing")]
    Missing,
    #[error("the signature does not match")]
    Mismatch,
    #[error("the `{0}` parameter appears more than once")]
    Duplicate(String),
    #[error("the timestamp is missing or not an integer")]
    BadTimestamp,
    #[error("the timestamp is more than 90 seconds away from now")]
    Stale,
}

/// A verified query: its parameters, percent-decoded, without the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedQuery {
    params: BTreeMap<String, Vec<String>>,
}

impl SignedQuery {
    /// The (first) value of a parameter.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params.get(key).and_then(|v| v.first()).map(String::as_str)
    }

    /// All parameters in key order, repeated values kept.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params.iter().flat_map(|(k, vs)| vs.iter().map(move |v| (k.as_str(), v.as_str())))
    }
}

fn mac(key: &[u8], message: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(message);
    mac
}

fn hmac_bytes(key: &[u8], message: &[u8]) -> Vec<u8> {
    mac(key, message).finalize().into_bytes().to_vec()
}

fn parse_query(raw: &str) -> BTreeMap<String, Vec<String>> {
    let mut params: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(raw.trim_start_matches('?').as_bytes()) {
        params.entry(k.into_owned()).or_default().push(v.into_owned());
    }
    params
}

fn check_timestamp(params: &BTreeMap<String, Vec<String>>, now_secs: i64) -> Result<(), SignatureError> {
    let ts: i64 = match params.get("timestamp").map(Vec::as_slice) {
        Some([one]) => one.parse().map_err(|_| SignatureError::BadTimestamp)?,
        _ => return Err(SignatureError::BadTimestamp),
    };
    // `abs_diff`: a signed timestamp of i64::MIN must not overflow `now - ts`.
    if now_secs.abs_diff(ts) > TIMESTAMP_TOLERANCE_SECS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    Ok(())
}

/// Encodes like `URLSearchParams` with `+` turned into `%20` (JS-API `processed-query.ts`:
/// "Shopify signs with %20, not +").
fn admin_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}

/// The message signed by the admin `hmac`: every parameter but `hmac` and `signature`, sorted
/// byte-wise by key, `k=v` joined with `&`.
pub fn admin_query_message<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut pairs: Vec<(&str, &str)> = pairs.into_iter().filter(|(k, _)| *k != "hmac" && *k != "signature").collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{}={}", admin_encode(k), admin_encode(v))).collect::<Vec<_>>().join("&")
}

/// Hex HMAC of an admin query (what Shopify puts in `hmac`).
pub fn sign_admin_query<'a>(secret: &str, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    hex::encode(hmac_bytes(secret.as_bytes(), admin_query_message(pairs).as_bytes()))
}

/// Verifies an install / app-load / OAuth-callback query string. Any key appearing twice is
/// refused (spec §1.3 recommendation for admin-signed queries).
pub fn verify_admin_query(secrets: &SecretSet, raw_query: &str, now_secs: i64) -> Result<SignedQuery, SignatureError> {
    let mut params = parse_query(raw_query);
    if let Some((key, _)) = params.iter().find(|(_, v)| v.len() > 1) {
        return Err(SignatureError::Duplicate(key.clone()));
    }
    let given = params.remove("hmac").and_then(|v| v.into_iter().next()).ok_or(SignatureError::Missing)?;
    params.remove("signature");
    let expected = hex::decode(given.trim()).map_err(|_| SignatureError::Mismatch)?;
    let message = admin_query_message(params.iter().map(|(k, v)| (k.as_str(), v[0].as_str())));
    if !secrets.verify(message.as_bytes(), &expected) {
        return Err(SignatureError::Mismatch);
    }
    check_timestamp(&params, now_secs)?;
    Ok(SignedQuery { params })
}

/// Base64 HMAC of a webhook body (what Shopify puts in `X-Shopify-Hmac-Sha256`).
pub fn sign_webhook(secret: &str, body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(hmac_bytes(secret.as_bytes(), body))
}

/// Verifies the webhook HMAC header over the raw body bytes.
pub fn verify_webhook(secrets: &SecretSet, body: &[u8], header: Option<&str>) -> Result<(), SignatureError> {
    let header = header.map(str::trim).filter(|h| !h.is_empty()).ok_or(SignatureError::Missing)?;
    let expected = base64::engine::general_purpose::STANDARD.decode(header).map_err(|_| SignatureError::Mismatch)?;
    if secrets.verify(body, &expected) { Ok(()) } else { Err(SignatureError::Mismatch) }
}

/// The message signed by the app-proxy `signature`: `k=v1,v2` strings (values decoded, not
/// re-encoded) sorted byte-wise as whole strings and concatenated (the official Ruby rule).
pub fn proxy_message(params: &BTreeMap<String, Vec<String>>) -> String {
    let mut parts: Vec<String> =
        params.iter().filter(|(k, _)| *k != "signature").map(|(k, vs)| format!("{k}={}", vs.join(","))).collect();
    parts.sort();
    parts.concat()
}

/// Hex signature of an app-proxy query given as decoded pairs (repeated keys allowed).
pub fn sign_proxy<'a>(secret: &str, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut params: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in pairs {
        params.entry(k.to_owned()).or_default().push(v.to_owned());
    }
    hex::encode(hmac_bytes(secret.as_bytes(), proxy_message(&params).as_bytes()))
}

/// Verifies an app-proxy query string.
pub fn verify_proxy_query(secrets: &SecretSet, raw_query: &str, now_secs: i64) -> Result<SignedQuery, SignatureError> {
    let mut params = parse_query(raw_query);
    for key in SECURITY_KEYS {
        if params.get(key).is_some_and(|v| v.len() > 1) {
            return Err(SignatureError::Duplicate(key.to_owned()));
        }
    }
    let given = params.remove("signature").and_then(|v| v.into_iter().next()).ok_or(SignatureError::Missing)?;
    let expected = hex::decode(given.trim()).map_err(|_| SignatureError::Mismatch)?;
    if !secrets.verify(proxy_message(&params).as_bytes(), &expected) {
        return Err(SignatureError::Mismatch);
    }
    check_timestamp(&params, now_secs)?;
    Ok(SignedQuery { params })
}

/// A key for one purpose (cookies, token encryption…) derived from the server secret, so that
/// nothing we sign can be replayed as a Shopify HMAC (spec §3.1 security note).
pub fn derive_key(secret: &[u8], purpose: &str) -> [u8; 32] {
    let bytes = hmac_bytes(secret, format!("ghosttrack/{purpose}").as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(&bytes);
    key
}

/// Hex HMAC with a derived key; for our own cookies.
pub fn sign_with_key(key: &[u8; 32], message: &[u8]) -> String {
    hex::encode(hmac_bytes(key, message))
}

/// Constant-time check of [`sign_with_key`].
pub fn verify_with_key(key: &[u8; 32], message: &[u8], signature_hex: &str) -> bool {
    hex::decode(signature_hex).is_ok_and(|sig| mac(key, message).verify_slice(&sig).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(current: &str) -> SecretSet {
        SecretSet::new(Secret::new(current), None)
    }

    const Q1: &str = "code=0907a61c0c8d55e99db179b68161bc00&hmac=700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf&shop=some-shop.myshopify.com&state=0.6784241404160823&timestamp=1337178173";
    const Q1_TS: i64 = 1337178173;

    #[test]
    fn official_admin_query_vector_q1_verifies() {
        let q = verify_admin_query(&secrets("hush"), Q1, Q1_TS).unwrap();
        assert_eq!(q.get("shop"), Some("some-shop.myshopify.com"));
        assert_eq!(q.get("hmac"), None);
        let message = admin_query_message(q.pairs());
        assert_eq!(
            message,
            "code=0907a61c0c8d55e99db179b68161bc00&shop=some-shop.myshopify.com&state=0.6784241404160823&timestamp=1337178173"
        );
    }

    #[test]
    fn computed_install_vector_q3_signs_and_verifies() {
        let sig = sign_admin_query("hush", [("shop", "some-shop.myshopify.com"), ("timestamp", "1337178173")]);
        assert_eq!(sig, "c2812f39f84c32c2edaded339a1388abc9829babf351b684ab797f04cd94d4c7");
        let query = format!("timestamp=1337178173&hmac={sig}&shop=some-shop.myshopify.com");
        assert!(verify_admin_query(&secrets("hush"), &query, Q1_TS).is_ok());
    }

    #[test]
    fn admin_query_rejects_forgery_missing_hmac_duplicates_and_stale_timestamps() {
        let s = secrets("hush");
        assert_eq!(verify_admin_query(&s, Q1, Q1_TS).map(|_| ()), Ok(()));
        assert_eq!(verify_admin_query(&secrets("wrong"), Q1, Q1_TS).unwrap_err(), SignatureError::Mismatch);
        let tampered = Q1.replace("some-shop", "other-shop");
        assert_eq!(verify_admin_query(&s, &tampered, Q1_TS).unwrap_err(), SignatureError::Mismatch);
        let bad = Q1.replace("hmac=700e", "hmac=incorrect_hmac_string&x=700e");
        assert!(verify_admin_query(&s, &bad, Q1_TS).is_err());
        let missing = "shop=some-shop.myshopify.com&timestamp=1337178173";
        assert_eq!(verify_admin_query(&s, missing, Q1_TS).unwrap_err(), SignatureError::Missing);
        let dup = format!("{Q1}&shop=evil.myshopify.com");
        assert_eq!(verify_admin_query(&s, &dup, Q1_TS).unwrap_err(), SignatureError::Duplicate("shop".into()));
        assert_eq!(verify_admin_query(&s, Q1, Q1_TS + 91).unwrap_err(), SignatureError::Stale);
        assert_eq!(verify_admin_query(&s, Q1, Q1_TS - 91).unwrap_err(), SignatureError::Stale);
        assert!(verify_admin_query(&s, Q1, Q1_TS + 90).is_ok());
        assert!(verify_admin_query(&s, Q1, Q1_TS - 90).is_ok());
    }

    #[test]
    fn admin_query_values_are_signed_with_percent_20_not_plus() {
        let sig = sign_admin_query("hush", [("a", "x y/z"), ("timestamp", "100")]);
        let expected = hex::encode(hmac_bytes(b"hush", b"a=x%20y%2Fz&timestamp=100"));
        assert_eq!(sig, expected);
        let query = format!("a=x%20y%2Fz&timestamp=100&hmac={sig}");
        assert!(verify_admin_query(&secrets("hush"), &query, 100).is_ok());
    }

    #[test]
    fn previous_secret_is_accepted_during_rotation_and_unknown_secrets_are_not() {
        let rotating = SecretSet::new(Secret::new("new-secret"), Some(Secret::new("hush")));
        assert!(verify_admin_query(&rotating, Q1, Q1_TS).is_ok());
        let body = br#"{"foo": "bar"}"#;
        let old = sign_webhook("hush", body);
        assert!(verify_webhook(&rotating, body, Some(&old)).is_ok());
        let other = SecretSet::new(Secret::new("new-secret"), Some(Secret::new("another")));
        assert_eq!(verify_webhook(&other, body, Some(&old)), Err(SignatureError::Mismatch));
    }

    #[test]
    fn official_webhook_vector_w1_verifies_and_bad_headers_do_not() {
        let s = secrets("test_secret_key");
        let body = br#"{"foo": "bar"}"#;
        assert_eq!(body.len(), 14);
        assert_eq!(sign_webhook("test_secret_key", body), "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g=");
        assert_eq!(verify_webhook(&s, body, Some("B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g=")), Ok(()));
        assert_eq!(verify_webhook(&s, body, Some("invalid_hmac")), Err(SignatureError::Mismatch));
        assert_eq!(verify_webhook(&s, body, None), Err(SignatureError::Missing));
        assert_eq!(verify_webhook(&s, body, Some("")), Err(SignatureError::Missing));
        assert_eq!(
            verify_webhook(&s, br#"{"foo":"bar"}"#, Some("B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g=")),
            Err(SignatureError::Mismatch)
        );
    }

    const P1: &str = "extra=1&extra=2&shop=shop-name.myshopify.com&logged_in_customer_id=1&path_prefix=%2Fapps%2Fawesome_reviews&timestamp=1317327555";

    #[test]
    fn official_proxy_vector_p1_has_the_documented_canonical_string_and_signature() {
        let params = parse_query(P1);
        assert_eq!(
            proxy_message(&params),
            "extra=1,2logged_in_customer_id=1path_prefix=/apps/awesome_reviewsshop=shop-name.myshopify.comtimestamp=1317327555"
        );
        let sig = "4c68c8624d737112c91818c11017d24d334b524cb5c2b8ba08daa056f7395ddb";
        let q = verify_proxy_query(&secrets("hush"), &format!("{P1}&signature={sig}"), 1317327555).unwrap();
        assert_eq!(q.get("shop"), Some("shop-name.myshopify.com"));
        assert_eq!(q.get("logged_in_customer_id"), Some("1"));
    }

    #[test]
    fn official_proxy_vector_p4_verifies_and_an_added_parameter_breaks_it() {
        let s = secrets("secret");
        let base = "shop=some-random-store.myshopify.com&path_prefix=%2Fapps%2Fmy-app&timestamp=1466106083";
        let sig = "f5cd7233558b1c50102a6f33c0b63ad1e1072a2fc126cb58d4500f75223cefcd";
        assert!(verify_proxy_query(&s, &format!("{base}&signature={sig}"), 1466106083).is_ok());
        assert_eq!(
            verify_proxy_query(&s, &format!("{base}&evil=1&signature={sig}"), 1466106083).unwrap_err(),
            SignatureError::Mismatch
        );
    }

    #[test]
    fn proxy_query_rejects_duplicate_security_keys_missing_signature_and_stale_timestamps() {
        let s = secrets("hush");
        let sig = "4c68c8624d737112c91818c11017d24d334b524cb5c2b8ba08daa056f7395ddb";
        let signed = format!("{P1}&signature={sig}");
        assert_eq!(verify_proxy_query(&s, P1, 1317327555).unwrap_err(), SignatureError::Missing);
        assert_eq!(verify_proxy_query(&s, &signed, 1317327555 + 91).unwrap_err(), SignatureError::Stale);
        assert_eq!(
            verify_proxy_query(&s, &format!("{signed}&signature={sig}"), 1317327555).unwrap_err(),
            SignatureError::Duplicate("signature".into())
        );
        assert_eq!(
            verify_proxy_query(&s, &format!("{signed}&timestamp=1317327555"), 1317327555).unwrap_err(),
            SignatureError::Duplicate("timestamp".into())
        );
        // Our signer and verifier agree on repeated values.
        let sig2 = sign_proxy(
            "hush",
            parse_query(P1).iter().flat_map(|(k, vs)| vs.iter().map(move |v| (k.as_str(), v.as_str()))),
        );
        assert_eq!(sig2, sig);
    }

    #[test]
    fn derived_keys_differ_by_purpose_and_never_equal_a_webhook_hmac() {
        let a = derive_key(b"server-secret", "cookie");
        let b = derive_key(b"server-secret", "token-encryption");
        assert_ne!(a, b);
        let sig = sign_with_key(&a, b"nonce");
        assert!(verify_with_key(&a, b"nonce", &sig));
        assert!(!verify_with_key(&b, b"nonce", &sig));
        assert!(!verify_with_key(&a, b"nonce2", &sig));
    }

    #[test]
    fn an_extreme_signed_timestamp_is_stale_not_an_overflow() {
        let secrets = SecretSet::new(Secret::new("s"), None);
        for ts in [i64::MIN.to_string(), i64::MAX.to_string()] {
            let pairs = [("shop", "acme.myshopify.com"), ("timestamp", ts.as_str())];
            let signature = sign_proxy("s", pairs);
            let query = format!("shop=acme.myshopify.com&timestamp={ts}&signature={signature}");
            assert_eq!(verify_proxy_query(&secrets, &query, 1_700_000_000), Err(SignatureError::Stale));
        }
    }
}
