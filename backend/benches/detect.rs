//! Events per second through the in-process engine with the full embedded rule set, on a
//! synthetic but realistic mix (tracker sessions, access-log requests, checkout and payment
//! events). `cargo bench -p ghosttrack --bench detect`; results in docs/BENCHMARKS.md.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, Throughput};
use ghosttrack::detect::event::{Body, DetectEvent, EnvProbe, Transaction};
use ghosttrack::detect::{Engine, RuleSet, StateStore};
use ghosttrack::domain::SiteId;

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
fn event_mix(n: usize) -> Vec<DetectEvent> {
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

fn bench(c: &mut Criterion) {
    let rules = Arc::new(RuleSet::embedded().expect("embedded rules load"));
    let events = event_mix(200_000);
    let mut group = c.benchmark_group("detect");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.sample_size(10);
    group.bench_function("observe_full_rule_set", |b| {
        b.iter(|| {
            let mut engine = Engine::in_memory(rules.clone(), 2_000_000);
            for e in &events {
                black_box(engine.observe(SiteId(1), e));
            }
        })
    });
    group.finish();
}

/// Per-event latency percentiles on a warm engine (printed; criterion reports means only).
fn latency() {
    let rules = Arc::new(RuleSet::embedded().expect("embedded rules load"));
    let events = event_mix(400_000);
    let mut engine = Engine::in_memory(rules, 2_000_000);
    for e in &events[..200_000] {
        black_box(engine.observe(SiteId(1), e));
    }
    let mut nanos: Vec<u64> = Vec::with_capacity(200_000);
    for e in &events[200_000..] {
        let t = Instant::now();
        black_box(engine.observe(SiteId(1), e));
        nanos.push(t.elapsed().as_nanos() as u64);
    }
    nanos.sort_unstable();
    let p = |q: f64| nanos[((nanos.len() as f64 * q) as usize).min(nanos.len() - 1)];
    let slots = engine.store().len();
    println!(
        "detect/latency: p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns; live state slots {slots}, ~{} bytes per slot",
        p(0.5),
        p(0.99),
        p(0.999),
        nanos[nanos.len() - 1],
        engine.store().approx_bytes() / slots.max(1)
    );
}

/// Events per second with state in Redis (`GHOSTTRACK_TEST_REDIS_URL`), one node, one thread:
/// one event per call (each slot its own transaction) and batches of 16 and 64 events (one
/// transaction per batch, as `Detector::observe` runs an ingest batch).
fn redis_throughput() {
    let Ok(url) = std::env::var("GHOSTTRACK_TEST_REDIS_URL") else {
        println!("detect/redis: GHOSTTRACK_TEST_REDIS_URL not set, not measured");
        return;
    };
    let rules = Arc::new(RuleSet::embedded().expect("embedded rules load"));
    for (batch, n) in [(0usize, 10_000usize), (16, 100_000), (64, 100_000)] {
        let prefix = format!("gt-bench-{}-{batch}", std::process::id());
        let store = ghosttrack::detect::redis_store::RedisStore::connect(&url, &prefix).expect("redis reachable");
        let mut engine = Engine::with_store(rules.clone(), store);
        let events = event_mix(n);
        let started = Instant::now();
        if batch == 0 {
            for e in &events {
                black_box(engine.observe(SiteId(1), e));
            }
        } else {
            for chunk in events.chunks(batch) {
                black_box(engine.observe_batch(SiteId(1), chunk));
            }
        }
        let secs = started.elapsed().as_secs_f64();
        let label = if batch == 0 { "per event".to_owned() } else { format!("batches of {batch}") };
        println!(
            "detect/redis ({label}): {} events in {secs:.2} s = {:.0} events/s ({} batch conflicts, {} errors)",
            events.len(),
            events.len() as f64 / secs,
            engine.store().conflicts,
            engine.store().errors
        );
        // Remove the bench's keys.
        let mut conn = redis::Client::open(url.as_str()).unwrap().get_connection().unwrap();
        let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}:*")).query(&mut conn).unwrap_or_default();
        for chunk in keys.chunks(500) {
            let _: Result<(), _> = redis::cmd("DEL").arg(chunk).query(&mut conn);
        }
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
    latency();
    redis_throughput();
}
