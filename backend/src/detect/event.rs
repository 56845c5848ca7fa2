//! What the engine observes: one event from any source (tracker, checkout pixel, Shopify
//! webhooks, access logs, the evaluate API), with the subject facts every rule may key on.
//!
//! This is also the documented line format of `ghosttrack replay` (docs/DETECTION.md): one JSON
//! object per line with `ts`, the subject fields and a `type`-tagged body.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::ingest::payload::{EventBody, Pageview};

/// One observed event. Only `ts` and `type` are required; rules whose key or filter needs a
/// missing fact skip the event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectEvent {
    /// Event time in ms since the Unix epoch. The engine's only clock.
    pub ts: i64,
    /// Tracked session id (tracker and pixel events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<i64>,
    /// Daily visitor id (tracker events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visitor: Option<i64>,
    /// A caller-chosen client key (evaluate API, access logs): what a verdict judges when there is
    /// no session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
    /// Truncated client network (/24 or /48): the only form of the IP the engine keeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_prefix: Option<IpNet>,
    /// Hash of the device fingerprint (e.g. canvas hash + WebGL + screen), never raw values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// MaxMind network flags (`ingest::enrich::geo::net_flags`) plus Tor exit list hits.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub net_flags: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cart_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout_token: Option<String>,
    #[serde(flatten)]
    pub body: Body,
}

fn is_zero(v: &i32) -> bool {
    *v == 0
}

/// The type-specific part of an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Body {
    /// A page seen by the tracker or the pixel (`page_viewed`, `product_viewed`).
    Pageview {
        path: String,
        /// Product handle or id when the page is a product page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        product: Option<String>,
    },
    /// A raw HTTP request (access logs, the evaluate API).
    Request {
        #[serde(default = "get")]
        method: String,
        path: String,
        #[serde(default)]
        status: u16,
    },
    Click {
        /// The pointer moved in the 500 ms before the click.
        #[serde(default)]
        approach: bool,
    },
    Scroll {
        depth: u8,
    },
    /// Tracker pointer samples `[dt,dx,dy, …]` (see COLLECT-PROTOCOL.md).
    PointerPath {
        samples: Vec<i32>,
    },
    /// Key, touch, pointer-move and wheel counts since the previous report.
    Interaction {
        #[serde(default)]
        keys: u32,
        #[serde(default)]
        touches: u32,
        #[serde(default)]
        moves: u32,
        #[serde(default)]
        wheels: u32,
    },
    /// Tracker environment probes.
    Environment(EnvProbe),
    AddToCart {
        #[serde(default)]
        variant: String,
        #[serde(default = "one")]
        quantity: u32,
        /// The cart rejected the quantity (HTTP 422 from `/cart/add.js`).
        #[serde(default)]
        rejected: bool,
    },
    /// A cart line changed; `quantity` 0 is a removal.
    CartChange {
        #[serde(default)]
        variant: String,
        quantity: u32,
    },
    /// Shopify `carts/create` / `carts/update` webhook.
    CartWebhook {
        #[serde(default)]
        variants: Vec<String>,
    },
    /// Pixel `checkout_started` or the `checkouts/create` webhook.
    CheckoutStarted,
    /// Pixel `payment_info_submitted`.
    PaymentInfoSubmitted,
    /// Pixel `alert_displayed`; `PAYMENT_ERROR` is a decline the shopper saw.
    AlertDisplayed {
        alert_type: String,
    },
    /// Pixel `checkout_completed`.
    CheckoutCompleted,
    /// Shopify `order_transactions/create`.
    OrderTransaction(Transaction),
    /// Shopify `orders/create`.
    OrderCreated {
        #[serde(default)]
        total_minor: i64,
        #[serde(default)]
        guest: bool,
    },
    /// A cart, checkout or order (`kind`) that no tracked session had produced when the
    /// untracked-cart judge looked, a grace period after Shopify reported it
    /// (`shopify::untracked`): a script talking to the cart or checkout API directly.
    Untracked {
        kind: String,
    },
}

fn get() -> String {
    "GET".into()
}

fn one() -> u32 {
    1
}

/// A payment attempt as Shopify reports it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Transaction {
    /// `success`, `failure`, `error` or `pending`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// First six digits of the card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last4: Option<String>,
    /// Amount in minor units (cents).
    #[serde(default)]
    pub amount_minor: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avs: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvv: Option<String>,
    #[serde(default)]
    pub guest: bool,
}

/// The tracker's `en` probes (COLLECT-PROTOCOL.md), with readable names.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct EnvProbe {
    pub webdriver: bool,
    pub headless_ua: bool,
    pub plugins: Option<u32>,
    pub languages: Option<u32>,
    pub permission_inconsistent: bool,
    pub outer_width: Option<i32>,
    pub outer_height: Option<i32>,
    pub webgl: Option<String>,
    pub hardware_concurrency: Option<u32>,
    pub device_memory: Option<f32>,
    pub touch_points: Option<u32>,
    pub desktop_chrome: bool,
    /// What a dedicated worker reports differently from the page: 1 hardwareConcurrency, 2 platform,
    /// 4 user agent (tracker `en.wk`; 0 or absent when they agree or the probe did not answer).
    pub worker_mismatch: u8,
}

/// The event types a rule filter can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Pageview,
    Request,
    Click,
    Scroll,
    PointerPath,
    Interaction,
    Environment,
    AddToCart,
    CartChange,
    CartWebhook,
    CheckoutStarted,
    PaymentInfoSubmitted,
    AlertDisplayed,
    CheckoutCompleted,
    OrderTransaction,
    OrderCreated,
    Untracked,
}

impl EventType {
    pub const COUNT: usize = 17;

    pub fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl Body {
    pub fn event_type(&self) -> EventType {
        match self {
            Body::Pageview { .. } => EventType::Pageview,
            Body::Request { .. } => EventType::Request,
            Body::Click { .. } => EventType::Click,
            Body::Scroll { .. } => EventType::Scroll,
            Body::PointerPath { .. } => EventType::PointerPath,
            Body::Interaction { .. } => EventType::Interaction,
            Body::Environment(_) => EventType::Environment,
            Body::AddToCart { .. } => EventType::AddToCart,
            Body::CartChange { .. } => EventType::CartChange,
            Body::CartWebhook { .. } => EventType::CartWebhook,
            Body::CheckoutStarted => EventType::CheckoutStarted,
            Body::PaymentInfoSubmitted => EventType::PaymentInfoSubmitted,
            Body::AlertDisplayed { .. } => EventType::AlertDisplayed,
            Body::CheckoutCompleted => EventType::CheckoutCompleted,
            Body::OrderTransaction(_) => EventType::OrderTransaction,
            Body::OrderCreated { .. } => EventType::OrderCreated,
            Body::Untracked { .. } => EventType::Untracked,
        }
    }

    /// A payment the shopper or the gateway saw fail.
    pub fn is_payment_failure(&self) -> bool {
        match self {
            Body::AlertDisplayed { alert_type } => alert_type.eq_ignore_ascii_case("PAYMENT_ERROR"),
            Body::OrderTransaction(t) => matches!(t.status.as_str(), "failure" | "error"),
            _ => false,
        }
    }

    /// A payment attempt (failed or not).
    pub fn is_payment_attempt(&self) -> bool {
        match self {
            Body::OrderTransaction(t) => t.status != "pending",
            other => other.is_payment_failure(),
        }
    }

    /// The path of a pageview or request.
    pub fn path(&self) -> Option<&str> {
        match self {
            Body::Pageview { path, .. } | Body::Request { path, .. } => Some(path),
            _ => None,
        }
    }
}

impl DetectEvent {
    /// A short, personal-data-free description for evidence samples.
    pub fn summary(&self) -> String {
        match &self.body {
            Body::Pageview { path, .. } => format!("pageview {path}"),
            Body::Request { method, path, status } => format!("{method} {path} {status}"),
            Body::AddToCart { variant, quantity, .. } => format!("add_to_cart {variant} x{quantity}"),
            Body::CartChange { variant, quantity } => format!("cart_change {variant} x{quantity}"),
            Body::AlertDisplayed { alert_type } => format!("alert_displayed {alert_type}"),
            Body::Untracked { kind } => format!("untracked {kind}"),
            Body::OrderTransaction(t) => format!(
                "transaction {}{}",
                t.status,
                t.error_code.as_deref().map(|c| format!(" {c}")).unwrap_or_default()
            ),
            other => format!("{:?}", other.event_type()).to_lowercase(),
        }
    }
}

/// The facts the ingest path knows about the client of a tracker batch.
#[derive(Debug, Clone, Default)]
pub struct TrackerContext<'a> {
    pub session: i64,
    pub visitor: i64,
    pub ip_prefix: Option<IpNet>,
    pub asn: Option<u32>,
    pub country: Option<&'a str>,
    pub net_flags: i32,
    pub user_agent: &'a str,
    pub path: &'a str,
}

/// Converts one validated tracker event into an engine event.
pub fn from_tracker(ctx: &TrackerContext<'_>, ts: i64, body: &EventBody) -> DetectEvent {
    let desktop_chrome = {
        let ua = ctx.user_agent;
        ua.contains("Chrome/") && !ua.contains("Mobile") && !ua.contains("Android")
    };
    let mut cart_token = None;
    let mut checkout_token = None;
    let body = match body {
        EventBody::Pageview(Pageview { pt, .. }) => Body::Pageview {
            path: ctx.path.to_owned(),
            product: (pt.as_deref() == Some("product")).then(|| ctx.path.to_owned()),
        },
        EventBody::Click(c) => Body::Click { approach: c.ap == Some(1) },
        EventBody::Scroll(s) => Body::Scroll { depth: s.d },
        EventBody::PointerPath(p) => Body::PointerPath { samples: p.p.clone() },
        EventBody::Interaction(ix) => Body::Interaction { keys: ix.kc, touches: ix.tc, moves: ix.mc, wheels: ix.wc },
        EventBody::Visibility(_) => Body::Interaction { keys: 0, touches: 0, moves: 0, wheels: 0 },
        EventBody::Environment(en) => Body::Environment(EnvProbe {
            webdriver: en.wd == 1,
            headless_ua: en.hl == 1,
            plugins: en.pl,
            languages: en.lg,
            permission_inconsistent: en.pi == 1,
            outer_width: en.ow,
            outer_height: en.oh,
            webgl: en.gl.clone(),
            hardware_concurrency: en.hc,
            device_memory: en.dm,
            touch_points: en.mt,
            desktop_chrome,
            worker_mismatch: en.wk.unwrap_or(0),
        }),
        EventBody::AddToCart(ac) => {
            cart_token = ac.ct.clone().filter(|t| !t.is_empty());
            Body::AddToCart {
                variant: ac.vid.clone().unwrap_or_default(),
                quantity: ac.q.unwrap_or(1),
                rejected: false,
            }
        }
        EventBody::CheckoutStarted(step) => {
            checkout_token = step.ck.clone();
            Body::CheckoutStarted
        }
        EventBody::PaymentInfoSubmitted(step) => {
            checkout_token = step.ck.clone();
            Body::PaymentInfoSubmitted
        }
        EventBody::AlertDisplayed(al) => {
            checkout_token = al.ck.clone();
            Body::AlertDisplayed { alert_type: al.at.clone() }
        }
        EventBody::CheckoutCompleted(step) => {
            checkout_token = step.ck.clone();
            Body::CheckoutCompleted
        }
    };
    DetectEvent {
        ts,
        session: Some(ctx.session),
        visitor: Some(ctx.visitor),
        client_key: None,
        ip_prefix: ctx.ip_prefix,
        device: None,
        asn: ctx.asn,
        country: ctx.country.map(str::to_owned),
        net_flags: ctx.net_flags,
        user_agent: Some(ctx.user_agent.to_owned()),
        cart_token,
        checkout_token,
        body,
    }
}

/// The /24 (IPv4) or /64 (IPv6) network of an address: the IP key of the card-testing rules.
pub fn ip_key_prefix(ip: IpAddr) -> IpNet {
    let prefix = if ip.is_ipv4() { 24 } else { 64 };
    IpNet::new(ip, prefix).expect("valid prefix").trunc()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_lines_parse_with_only_ts_and_type() {
        let e: DetectEvent = serde_json::from_str(r#"{"ts":5,"type":"checkout_started"}"#).unwrap();
        assert_eq!(e.body, Body::CheckoutStarted);
        let e: DetectEvent = serde_json::from_str(
            r#"{"ts":5,"ip_prefix":"1.2.3.0/24","type":"order_transaction","status":"failure","error_code":"incorrect_cvc","bin":"424242"}"#,
        )
        .unwrap();
        assert!(e.body.is_payment_failure());
        assert_eq!(e.ip_prefix, Some("1.2.3.0/24".parse().unwrap()));
    }

    #[test]
    fn payment_errors_are_failures_but_other_alerts_are_not() {
        assert!(Body::AlertDisplayed { alert_type: "PAYMENT_ERROR".into() }.is_payment_failure());
        assert!(!Body::AlertDisplayed { alert_type: "CONTACT_ERROR".into() }.is_payment_failure());
        let ok = Body::OrderTransaction(Transaction { status: "success".into(), ..Default::default() });
        assert!(!ok.is_payment_failure() && ok.is_payment_attempt());
    }

    #[test]
    fn pixel_checkout_events_map_to_checkout_bodies_with_their_token() {
        use crate::ingest::payload::{Alert, CheckoutStep};
        let ctx =
            TrackerContext { session: 3, visitor: 4, user_agent: "UA", path: "/checkouts/cn/x", ..Default::default() };
        let step = CheckoutStep { ck: Some("tok1".into()) };
        let e = from_tracker(&ctx, 1, &EventBody::CheckoutStarted(step.clone()));
        assert_eq!((e.body, e.checkout_token.as_deref()), (Body::CheckoutStarted, Some("tok1")));
        let e = from_tracker(&ctx, 2, &EventBody::PaymentInfoSubmitted(step.clone()));
        assert_eq!((e.body, e.checkout_token.as_deref()), (Body::PaymentInfoSubmitted, Some("tok1")));
        let e = from_tracker(
            &ctx,
            3,
            &EventBody::AlertDisplayed(Alert { ck: Some("tok1".into()), at: "PAYMENT_ERROR".into() }),
        );
        assert!(e.body.is_payment_failure());
        assert_eq!((e.session, e.checkout_token.as_deref()), (Some(3), Some("tok1")));
        let e = from_tracker(&ctx, 4, &EventBody::CheckoutCompleted(CheckoutStep { ck: None }));
        assert_eq!((e.body, e.checkout_token), (Body::CheckoutCompleted, None));
    }

    #[test]
    fn ip_key_prefix_is_slash_24_and_slash_64() {
        assert_eq!(ip_key_prefix("81.2.69.142".parse().unwrap()).to_string(), "81.2.69.0/24");
        assert_eq!(ip_key_prefix("2001:db8:1:2:3::1".parse().unwrap()).to_string(), "2001:db8:1:2::/64");
    }
}
