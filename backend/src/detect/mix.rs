//! The synthetic but realistic event mix the detection bench (`backend/benches/detect.rs`) runs
//! and the state budget test (`detect::tests::state_budget`) measures: ~70 % tracker events of
//! 20,000 sessions, ~25 % access-log requests, ~5 % cart/checkout/payment. Deterministic: every
//! run sees the same events.

use super::event::{Body, DetectEvent, EnvProbe, Transaction};

const CHROME: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
const CURL: &str = "curl/8.5.0";

/// A deterministic pseudo-random sequence (xorshift), so every run benches the same events.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn base(ts: i64, session: Option<i64>, net: u64, ua: &str) -> DetectEvent {
    DetectEvent {
        ts,
        session,
        visitor: session,
        client_key: session.is_none().then(|| format!("10.{}.{}.7", net / 256, net % 256)),
        ip_prefix: Some(format!("10.{}.{}.0/24", net / 256, net % 256).parse().unwrap()),
        device: None,
        asn: Some(64_500 + (net % 50) as u32),
        country: Some("DE".into()),
        net_flags: if net.is_multiple_of(97) { 4 } else { 0 },
        user_agent: Some(ua.to_owned()),
        cart_token: None,
        checkout_token: None,
        body: Body::CheckoutStarted,
    }
}

/// ~70 % tracker events of 20,000 sessions, ~25 % access-log requests, ~5 % cart/checkout/payment.
pub fn event_mix(n: usize) -> Vec<DetectEvent> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut events = Vec::with_capacity(n);
    let mut ts = 1_800_000_000_000i64;
    for _ in 0..n {
        ts += rng.below(3) as i64;
        let session = 1 + rng.below(20_000) as i64;
        let net = rng.below(4_000);
        let roll = rng.below(100);
        let ua = if net.is_multiple_of(10) { IPHONE } else { CHROME };
        let mut e = if roll < 70 {
            base(ts, Some(session), net, ua)
        } else if roll < 95 {
            base(ts, None, net, if net.is_multiple_of(50) { CURL } else { ua })
        } else {
            base(ts, Some(session), net, ua)
        };
        let path = format!("/products/p{}", rng.below(500));
        e.body = match roll {
            0..=19 => Body::Pageview { path: path.clone(), product: Some(path) },
            20..=34 => Body::Interaction { keys: 0, touches: 0, moves: 12, wheels: 2 },
            35..=49 => {
                let mut samples = vec![0, 300, 200];
                for _ in 0..30 {
                    samples.extend([
                        16 + rng.below(8) as i32,
                        rng.below(9) as i32 * 2 - 8,
                        rng.below(7) as i32 * 2 - 6,
                    ]);
                }
                Body::PointerPath { samples }
            }
            50..=59 => Body::Scroll { depth: rng.below(100) as u8 },
            60..=66 => Body::Click { approach: true },
            67..=69 => Body::Environment(EnvProbe { plugins: Some(5), languages: Some(2), ..EnvProbe::default() }),
            70..=94 => Body::Request {
                method: "GET".into(),
                path: if rng.below(10) == 0 { "/app.js".into() } else { format!("/collections/c{}", rng.below(80)) },
                status: if rng.below(20) == 0 { 404 } else { 200 },
            },
            95..=96 => Body::AddToCart { variant: format!("v{}", rng.below(300)), quantity: 1, rejected: false },
            97 => Body::CheckoutStarted,
            98 => Body::AlertDisplayed { alert_type: "PAYMENT_ERROR".into() },
            _ => Body::OrderTransaction(Transaction {
                status: if rng.below(10) == 0 { "failure" } else { "success" }.into(),
                bin: Some(format!("4{:05}", rng.below(100_000))),
                last4: Some(format!("{:04}", rng.below(10_000))),
                amount_minor: 2_500,
                ..Transaction::default()
            }),
        };
        events.push(e);
    }
    events
}
