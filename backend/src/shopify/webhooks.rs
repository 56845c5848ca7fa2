//! Receiving Shopify webhooks (spec shopify-auth §3): verify the base64 HMAC over the raw body
//! with the current or previous secret, read the delivery headers in either form
//! (`X-Shopify-Topic` or `shopify-topic`, any case), and hand a [`Delivery`] to the inbox. The
//! HTTP status of every outcome is part of Shopify's contract: 401 bad or missing HMAC, 400
//! missing headers, 405 non-POST, 413 oversized, 200 for new and duplicate deliveries alike.

use poem::http::HeaderMap;

use super::shop_domain::ShopDomain;
use super::signing::{self, SecretSet, SignatureError};
use crate::storage::webhook_inbox::Delivery;

/// Largest accepted webhook body. Order payloads with hundreds of line items stay well below.
pub const MAX_WEBHOOK_BODY_BYTES: usize = 2 * 1024 * 1024;

/// The compliance topics, delivered to the `compliance_topics` subscription (spec §3.6).
pub const COMPLIANCE_TOPICS: [&str; 3] = ["customers/data_request", "customers/redact", "shop/redact"];

/// Headers Shopify always sends and that we need (JS-API's required set).
const REQUIRED: [&str; 4] = ["topic", "shop-domain", "api-version", "webhook-id"];

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReceiveError {
    #[error("webhook HMAC rejected: {0}")]
    Unauthorized(SignatureError),
    #[error("missing webhook headers: {}", .0.join(", "))]
    MissingHeaders(Vec<&'static str>),
    #[error("the shop domain header is not a shop domain")]
    BadShopDomain,
    #[error("the body is not UTF-8 JSON text")]
    BadBody,
}

/// `X-Shopify-{name}` or `shopify-{name}`; header names are case-insensitive in `HeaderMap`.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    [format!("x-shopify-{name}"), format!("shopify-{name}")]
        .iter()
        .find_map(|h| headers.get(h.as_str()))
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Verifies a delivery and returns what the inbox stores. Authentication comes first: an
/// unsigned request learns nothing about which headers it lacks.
pub fn verify_delivery(secrets: &SecretSet, headers: &HeaderMap, body: &[u8]) -> Result<Delivery, ReceiveError> {
    signing::verify_webhook(secrets, body, header(headers, "hmac-sha256")).map_err(ReceiveError::Unauthorized)?;
    let missing: Vec<&'static str> = REQUIRED.into_iter().filter(|name| header(headers, name).is_none()).collect();
    if !missing.is_empty() {
        return Err(ReceiveError::MissingHeaders(missing));
    }
    let get = |name: &str| header(headers, name).unwrap_or_default().to_owned();
    let shop = ShopDomain::parse(&get("shop-domain")).ok_or(ReceiveError::BadShopDomain)?;
    let body = std::str::from_utf8(body).map_err(|_| ReceiveError::BadBody)?.to_owned();
    Ok(Delivery {
        webhook_id: get("webhook-id"),
        shop_domain: shop.to_string(),
        topic: get("topic").to_ascii_lowercase(),
        api_version: get("api-version"),
        triggered_at: header(headers, "triggered-at").map(str::to_owned),
        event_id: header(headers, "event-id").map(str::to_owned),
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Secret;
    use poem::http::HeaderValue;

    fn secrets() -> SecretSet {
        SecretSet::new(Secret::new("test_secret_key"), None)
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    const BODY: &[u8] = br#"{"foo": "bar"}"#;
    const HMAC: &str = "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g=";

    #[test]
    fn the_w1_delivery_verifies_with_either_header_form() {
        let classic = headers(&[
            ("X-Shopify-Hmac-Sha256", HMAC),
            ("X-Shopify-Topic", "products/create"),
            ("X-Shopify-Shop-Domain", "shop1.myshopify.com"),
            ("X-Shopify-API-Version", "2023-01"),
            ("X-Shopify-Webhook-Id", "123456789"),
        ]);
        let d = verify_delivery(&secrets(), &classic, BODY).unwrap();
        assert_eq!((d.topic.as_str(), d.webhook_id.as_str()), ("products/create", "123456789"));
        assert_eq!(d.shop_domain, "shop1.myshopify.com");
        let events = headers(&[
            ("shopify-hmac-sha256", HMAC),
            ("SHOPIFY-TOPIC", "products/create"),
            ("shopify-shop-domain", "shop1.myshopify.com"),
            ("shopify-api-version", "2023-01"),
            ("shopify-webhook-id", "123456789"),
        ]);
        assert_eq!(verify_delivery(&secrets(), &events, BODY).unwrap().webhook_id, "123456789");
    }

    #[test]
    fn bad_hmac_comes_before_missing_headers_and_bad_shops_are_refused() {
        let unsigned = headers(&[("x-shopify-topic", "orders/create")]);
        assert_eq!(
            verify_delivery(&secrets(), &unsigned, BODY),
            Err(ReceiveError::Unauthorized(SignatureError::Missing))
        );
        let forged = headers(&[("x-shopify-hmac-sha256", "invalid_hmac")]);
        assert_eq!(
            verify_delivery(&secrets(), &forged, BODY),
            Err(ReceiveError::Unauthorized(SignatureError::Mismatch))
        );
        let partial = headers(&[("x-shopify-hmac-sha256", HMAC), ("x-shopify-topic", "orders/create")]);
        assert_eq!(
            verify_delivery(&secrets(), &partial, BODY),
            Err(ReceiveError::MissingHeaders(vec!["shop-domain", "api-version", "webhook-id"]))
        );
        let evil = headers(&[
            ("x-shopify-hmac-sha256", HMAC),
            ("x-shopify-topic", "orders/create"),
            ("x-shopify-shop-domain", "x.myshopify.com.evil.com"),
            ("x-shopify-api-version", "2026-10"),
            ("x-shopify-webhook-id", "1"),
        ]);
        assert_eq!(verify_delivery(&secrets(), &evil, BODY), Err(ReceiveError::BadShopDomain));
    }
}
