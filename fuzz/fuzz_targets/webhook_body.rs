//! Shopify webhooks: the delivery check (HMAC, headers, shop domain) on arbitrary headers and
//! bodies, and every topic's body decoded the way the inbox handlers decode it, with the pure
//! signal helpers run on what the payload carries. Nothing may panic.
#![no_main]

use ghosttrack::settings::Secret;
use ghosttrack::shopify::inbox::{
    CartPayload, CustomerRequest, OrderPayload, ScopesUpdate, SubscriptionUpdate, TransactionPayload,
};
use ghosttrack::shopify::signing::{self, SecretSet};
use ghosttrack::shopify::{signals, webhooks};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "fuzz-webhook-secret";

fn decode(topic: u8, body: &str) {
    match topic % 6 {
        0 => {
            if let Ok(order) = serde_json::from_str::<OrderPayload>(body) {
                let ip =
                    order.browser_ip.as_deref().or(order.client_details.as_ref().and_then(|c| c.browser_ip.as_deref()));
                let _ = signals::ip_prefix(ip);
                let _ = signals::minor_units(order.total_price.as_deref());
                let _ = signals::event_time(order.created_at.as_deref(), 0);
            }
        }
        1 => drop(serde_json::from_str::<TransactionPayload>(body)),
        2 => drop(serde_json::from_str::<CartPayload>(body)),
        3 => drop(serde_json::from_str::<ScopesUpdate>(body)),
        4 => drop(serde_json::from_str::<SubscriptionUpdate>(body)),
        _ => drop(serde_json::from_str::<CustomerRequest>(body)),
    }
    // The helpers also see raw strings (amounts, masked card numbers, IPs, timestamps).
    let _ = signals::minor_units(Some(body));
    let _ = signals::last4(Some(body));
    let _ = signals::ip_prefix(Some(body));
    let _ = signals::event_time(Some(body), 0);
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    // Headers: lines `name: value` up to an empty line; the body follows.
    let text = String::from_utf8_lossy(rest);
    let (head, body) = text.split_once("\n\n").unwrap_or(("", &text));
    let mut headers = http::HeaderMap::new();
    for line in head.lines() {
        if let Some((name, value)) = line.split_once(':')
            && let (Ok(name), Ok(value)) =
                (http::HeaderName::from_bytes(name.trim().as_bytes()), http::HeaderValue::from_str(value.trim()))
        {
            headers.append(name, value);
        }
    }
    let secrets = SecretSet::new(Secret::new(SECRET), None);
    // As sent (usually refused), then correctly signed so the header checks are reached too.
    let _ = webhooks::verify_delivery(&secrets, &headers, body.as_bytes());
    if selector & 0x80 != 0 {
        let hmac = signing::sign_webhook(SECRET, body.as_bytes());
        headers.insert("x-shopify-hmac-sha256", http::HeaderValue::from_str(&hmac).expect("base64 is a header value"));
        if let Ok(delivery) = webhooks::verify_delivery(&secrets, &headers, body.as_bytes()) {
            assert_eq!(delivery.body, body);
        }
    }
    decode(selector, body);
});
