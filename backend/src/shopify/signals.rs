//! Webhook payloads as detection events (`detect::DetectEvent`), so the card-testing and cart
//! rules see what only Shopify knows: orders, payment transactions (`error_code`, BIN, AVS/CVV),
//! carts and checkouts no tracker reported.
//!
//! The subject of an order's events is, in order of preference, the tracked session that produced
//! its cart or checkout, the buyer's network (`browser_ip` truncated to /24 or /48, the only form
//! kept), then the checkout token — the same order as `detect::keys::subject_of`.
//!
//! Declines are not counted twice: the pixel's `alert_displayed PAYMENT_ERROR` reports attempts
//! that produced no order (Shopify sends no webhook for those), while `order_transactions/create`
//! only exists for transactions of an order, so the two sources describe different attempts.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::detect::DetectEvent;
use crate::detect::event::{Body, Transaction};
use crate::ingest::client_ip;

/// Facts of an order that key its events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrderLink {
    pub session: Option<i64>,
    pub ip_prefix: Option<IpNet>,
    pub user_agent: Option<String>,
    pub cart_token: Option<String>,
    pub checkout_token: Option<String>,
    /// No customer account (Shopify's `customer` is null).
    pub guest: bool,
}

/// `browser_ip` as GhostTrack keeps it.
pub fn ip_prefix(browser_ip: Option<&str>) -> Option<IpNet> {
    browser_ip.and_then(|s| s.trim().parse::<IpAddr>().ok()).map(client_ip::truncated)
}

/// A decimal money string in minor units (`"199.00"` → 19900, `"5"` → 500). Shopify sends
/// two-decimal strings for every currency; anything unparsable is 0.
pub fn minor_units(amount: Option<&str>) -> i64 {
    let Some(text) = amount.map(str::trim).filter(|s| !s.is_empty()) else { return 0 };
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let Ok(whole) = whole.parse::<i64>() else { return 0 };
    let mut digits = frac.chars().chain(std::iter::repeat('0')).take(2);
    let cents: String = digits.by_ref().collect();
    let cents = cents.parse::<i64>().unwrap_or(0);
    whole.saturating_mul(100).saturating_add(if whole < 0 { -cents } else { cents })
}

/// The last four digits of a masked card number (`"•••• •••• •••• 4242"`).
pub fn last4(masked: Option<&str>) -> Option<String> {
    let digits: String = masked?.chars().filter(char::is_ascii_digit).collect();
    (digits.len() >= 4).then(|| digits[digits.len() - 4..].to_owned())
}

/// An RFC 3339 timestamp in ms, or `fallback`.
pub fn event_time(at: Option<&str>, fallback: i64) -> i64 {
    at.and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()).map_or(fallback, |t| t.timestamp_millis())
}

fn event(link: &OrderLink, ts: i64, body: Body) -> DetectEvent {
    DetectEvent {
        ts,
        session: link.session,
        visitor: None,
        client_key: None,
        ip_prefix: link.ip_prefix,
        device: None,
        asn: None,
        country: None,
        net_flags: 0,
        user_agent: link.user_agent.clone(),
        cart_token: link.cart_token.clone(),
        checkout_token: link.checkout_token.clone(),
        body,
    }
}

/// `orders/create`.
pub fn order_created(link: &OrderLink, ts: i64, total_minor: i64) -> DetectEvent {
    event(link, ts, Body::OrderCreated { total_minor, guest: link.guest })
}

/// `order_transactions/create`.
pub fn order_transaction(link: &OrderLink, ts: i64, transaction: Transaction) -> DetectEvent {
    event(link, ts, Body::OrderTransaction(Transaction { guest: link.guest, ..transaction }))
}

/// `carts/*` (`variants` are the line items' variant ids).
pub fn cart_webhook(link: &OrderLink, ts: i64, variants: Vec<String>) -> DetectEvent {
    event(link, ts, Body::CartWebhook { variants })
}

/// A token as the subject of an untracked cart's verdict: `#` and the first 16 hex digits of its
/// SHA-256, so threat records name the cart without holding a usable token.
pub fn token_digest(token: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(token.as_bytes());
    format!("#{}", hex::encode(&digest[..8]))
}

/// A cart, checkout or order no tracked session produced (`shopify::untracked`), at judge time
/// `ts`. Its subject is the order's network when known, else the hashed token.
pub fn untracked(kind: &str, token: &str, ip_prefix: Option<IpNet>, ts: i64) -> DetectEvent {
    let digest = token_digest(token);
    let (cart_token, checkout_token) = if kind == "cart" { (Some(digest), None) } else { (None, Some(digest)) };
    let link = OrderLink { ip_prefix, cart_token, checkout_token, ..Default::default() };
    event(&link, ts, Body::Untracked { kind: kind.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_strings_become_minor_units() {
        let cases = [
            (Some("199.00"), 19_900),
            (Some("5"), 500),
            (Some("0.5"), 50),
            (Some("1.239"), 123),
            (Some("-2.50"), -250),
            (Some("abc"), 0),
            (None, 0),
        ];
        for (text, minor) in cases {
            assert_eq!(minor_units(text), minor, "{text:?}");
        }
    }

    #[test]
    fn card_numbers_keep_only_their_last_four_digits_and_ips_their_network() {
        assert_eq!(last4(Some("•••• •••• •••• 4242")).as_deref(), Some("4242"));
        assert_eq!(last4(Some("••")), None);
        assert_eq!(ip_prefix(Some("81.2.69.160")).unwrap().to_string(), "81.2.69.0/24");
        assert_eq!(ip_prefix(Some("2001:db8:1:2::9")).unwrap().to_string(), "2001:db8:1::/48");
        assert_eq!(ip_prefix(Some("not an ip")), None);
    }

    #[test]
    fn untracked_events_name_the_cart_by_a_digest_only() {
        let e = untracked("cart", "c1-secret", None, 9);
        let subject = crate::detect::subject_of(&e).unwrap();
        assert!(subject.starts_with("cart:#") && !subject.contains("secret"), "{subject}");
        assert_eq!(subject.len(), "cart:#".len() + 16);
        let e = untracked("order", "ck1", ip_prefix(Some("81.2.69.160")), 9);
        assert_eq!(crate::detect::subject_of(&e).as_deref(), Some("ip:81.2.69.0/24"));
        assert_eq!(e.body, Body::Untracked { kind: "order".into() });
    }

    #[test]
    fn order_events_carry_the_link_and_guest_flag() {
        let link = OrderLink { session: Some(7), guest: true, ..Default::default() };
        let e = order_transaction(&link, 5, Transaction { status: "failure".into(), ..Default::default() });
        assert_eq!(e.session, Some(7));
        assert!(matches!(e.body, Body::OrderTransaction(ref t) if t.guest && t.status == "failure"));
        assert_eq!(event_time(Some("2026-11-21T10:00:00-05:00"), 0), 1_795_273_200_000);
        assert_eq!(event_time(Some("yesterday"), 42), 42);
    }
}
