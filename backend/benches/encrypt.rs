//! The ingest cost of event payload encryption: sealing the props of a typical tracker batch
//! (what `Ingest::seal_props` does per request when a site encrypts) against leaving them plain,
//! and the read side (opening one envelope, what the page map and session detail pay per event).
//! `cargo bench -p ghosttrack --bench encrypt`; results in docs/BENCHMARKS.md.

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use ghosttrack::domain::SiteId;
use ghosttrack::keys::DataKey;

/// A 20-event tracker batch as stored: environment probe, pageview with referrer and title,
/// clicks, scrolls, a pointer path, interaction counts and an add-to-cart with its cart token.
fn batch_props() -> Vec<String> {
    let mut props = vec![
        r#"{"wd":0,"hl":0,"pl":5,"lg":2,"sw":1920,"sh":1080,"tz":"Europe/Berlin","cv":"a1b2c3d4"}"#.to_owned(),
        r#"{"r":"https://www.google.com/","ti":"Linen shirt – Acme Outfitters","pt":"product"}"#.to_owned(),
    ];
    for i in 0..8 {
        props.push(format!(
            r#"{{"x":{},"y":{},"pw":1280,"ph":2560,"tg":"button","sel":"form#product button.add","ap":1}}"#,
            40 + i * 37,
            300 + i * 91
        ));
    }
    for d in [10, 25, 40, 55, 70, 85] {
        props.push(format!(r#"{{"d":{d},"ph":2560}}"#));
    }
    props.push(format!(r#"{{"p":[{}]}}"#, (0..90).map(|i| (i * 7 % 400).to_string()).collect::<Vec<_>>().join(",")));
    props.push(r#"{"k":14,"m":230,"t":0,"w":3}"#.to_owned());
    props.push(r#"{"src":"form","ct":"Z2NwLWV1cm9wZS13ZXN0MTowMUhYWVpBQkM","vid":"44012345678901"}"#.to_owned());
    props.push(r#"{"v":"hidden","dur":12840}"#.to_owned());
    props
}

fn bench(c: &mut Criterion) {
    let key = DataKey::new(SiteId(1), "dk-0123456789ab", &[7u8; 32]);
    let props = batch_props();
    let bytes: usize = props.iter().map(String::len).sum();
    let mut group = c.benchmark_group("encrypt");
    group.throughput(Throughput::Elements(props.len() as u64));
    // Off: the rows keep their props (what ingest does for a site without encryption).
    group.bench_function("batch_off", |b| {
        b.iter(|| black_box(props.iter().map(|p| Some(p.clone())).collect::<Vec<_>>()))
    });
    group.bench_function("batch_on", |b| {
        b.iter(|| black_box(props.iter().map(|p| Some(key.seal_with_join_tokens(p))).collect::<Vec<_>>()))
    });
    let sealed: Vec<String> = props.iter().map(|p| key.seal_with_join_tokens(p)).collect();
    group.bench_function("open_batch", |b| {
        b.iter(|| black_box(sealed.iter().map(|s| key.open(s).unwrap()).collect::<Vec<_>>()))
    });
    group.finish();
    let stored: usize = sealed.iter().map(String::len).sum();
    println!(
        "encrypt: {} events, {bytes} B of props plain, {stored} B sealed ({:.2}×)",
        props.len(),
        stored as f64 / bytes as f64
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
