//! Events per second through the in-process engine with the full embedded rule set, on a
//! synthetic but realistic mix (tracker sessions, access-log requests, checkout and payment
//! events). `cargo bench -p ghosttrack --bench detect`; results in docs/BENCHMARKS.md.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, Throughput};
use ghosttrack::detect::mix::event_mix;
use ghosttrack::detect::{Engine, RuleSet, StateStore};
use ghosttrack::domain::SiteId;

/// The server's allocator (`src/main.rs`), so that the engine is measured as it runs there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
/// one event per call (each slot its own transaction) and batches of 1, 16 and 64 events (one
/// transaction per batch, as `Detector::observe` runs an ingest batch: a request of one event is
/// a batch of one).
fn redis_throughput() {
    let Ok(url) = std::env::var("GHOSTTRACK_TEST_REDIS_URL") else {
        println!("detect/redis: GHOSTTRACK_TEST_REDIS_URL not set, not measured");
        return;
    };
    let rules = Arc::new(RuleSet::embedded().expect("embedded rules load"));
    for (batch, n) in [(0usize, 10_000usize), (1, 20_000), (16, 100_000), (64, 100_000)] {
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
