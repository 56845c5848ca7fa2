//! Seeds a database with realistic traffic for the dashboard benchmark (`bench/dashboard`):
//! one site, sessions spread over the last `--days` days (busier in the evening, quieter at
//! night), pageviews, clicks (with positions and page sizes) and scrolls (with depths) per session, the visitor-days behind them, and threat
//! records for the automated share. Writes with large multi-row inserts in big transactions.
//!
//!   cargo run --release -p ghosttrack --example seed -- --events 10000000 --db sqlite:///tmp/gt/ghosttrack.db
//!   cargo run --release -p ghosttrack --example seed -- --events 10000000 --db postgres://postgres@127.0.0.1/bench
//!
//! Prints one JSON line: the site key, its API token and the counts written.

use std::time::Instant;

use anyhow::Context;
use ghosttrack::domain::{SessionId, UnixMillis};
use ghosttrack::settings::DatabaseUrl;
use ghosttrack::storage::{self, sites::SiteKind};
use rand::prelude::*;
use rand::rngs::SmallRng;
use sea_orm::sea_query::{Alias, OnConflict, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};

const PATHS: usize = 120;
const COUNTRIES: &[&str] = &["US", "GB", "DE", "FR", "CA", "AU", "NL", "SE", "ES", "IT", "BR", "IN", "JP", "PL", "CN"];
const BROWSERS: &[&str] = &["Chrome", "Safari", "Firefox", "Edge", "Samsung Internet", "Opera"];
const OSES: &[&str] = &["Windows", "macOS", "iOS", "Android", "Linux"];
const DEVICES: &[&str] = &["desktop", "mobile", "tablet"];
const REFERRERS: &[&str] = &["google.com", "bing.com", "facebook.com", "instagram.com", "news.example", "t.co"];
/// Rows per INSERT statement (SQLite allows 32 766 bound values; events have 9 columns here).
const ROWS_PER_STATEMENT: usize = 2_000;

struct Args {
    events: u64,
    db: String,
    days: i64,
    domain: String,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args { events: 1_000_000, db: String::new(), days: 30, domain: "bench.example".into() };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--events" => a.events = value.parse().context("--events is a number")?,
            "--db" => a.db = value,
            "--days" => a.days = value.parse().context("--days is a number")?,
            "--domain" => a.domain = value,
            other => anyhow::bail!("unknown flag {other} (use --events N --db URL [--days D] [--domain D])"),
        }
    }
    anyhow::ensure!(!a.db.is_empty(), "--db URL is required (sqlite:///path/ghosttrack.db or postgres://…)");
    Ok(a)
}

/// A skewed pick: low indexes much more often (a few pages and countries dominate).
fn skewed(rng: &mut SmallRng, n: usize) -> usize {
    let x: f64 = rng.random();
    ((x * x * x) * n as f64) as usize % n
}

/// id, visitor, start, last seen, pageviews, events, entry, exit, referrer, country, browser, os, device, automated.
type SessionRow = (i64, i64, i64, i64, i32, i32, String, String, Option<String>, String, String, String, String, bool);

/// session, visitor, ts, received, kind, path, props (clicks' position and page size, scroll depths).
type EventRow = (i64, i64, i64, i64, &'static str, String, Option<String>);

#[derive(Default)]
struct Batch {
    sessions: Vec<SessionRow>,
    events: Vec<EventRow>,
    visitors: Vec<(i64, i64, i64)>,
    threats: Vec<(String, i64)>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let url = DatabaseUrl::new(args.db.clone());
    let db = storage::connect(&url).await?;
    storage::migrate(&db).await?;
    let (site, token) = storage::sites::create(&db, &args.domain, SiteKind::Standalone).await?;
    let site_id = site.id.0;

    let started = Instant::now();
    let mut rng = SmallRng::seed_from_u64(0x6057);
    let now = UnixMillis::now().0;
    let span = args.days * UnixMillis::DAY;
    let (mut events, mut sessions, mut visitors, mut threats) = (0u64, 0u64, 0u64, 0u64);
    let mut batch = Batch::default();
    let mut visitor_seq: i64 = 1;
    while events < args.events {
        // Session start: uniform day, evening-heavy hour of day.
        let day_start = (now - span).div_euclid(UnixMillis::DAY) * UnixMillis::DAY
            + rng.random_range(0..=args.days) * UnixMillis::DAY;
        let hour = (rng.random::<f64>().sqrt() * 24.0) as i64 % 24;
        let start = day_start + hour * 3_600_000 + rng.random_range(0..3_600_000);
        if start >= now - 60_000 || start < now - span {
            continue;
        }
        let automated = rng.random_bool(0.12);
        // A returning visitor (same day) reuses a recent id a fifth of the time.
        let visitor = if visitor_seq > 1 && rng.random_bool(0.2) {
            visitor_seq - rng.random_range(1..visitor_seq.min(50))
        } else {
            visitor_seq += 1;
            batch.visitors.push((visitor_seq, start, start));
            visitor_seq
        };
        let visitor_id = (start.div_euclid(UnixMillis::DAY) << 32) | visitor;
        let id = SessionId::new(UnixMillis(start)).0;
        let pageviews = if automated { rng.random_range(1..30) } else { 1 + skewed(&mut rng, 8) as i32 };
        let others = if automated { 0 } else { rng.random_range(0..pageviews * 2 + 1) };
        let mut ts = start;
        let mut first_path = String::new();
        let mut path = String::new();
        for i in 0..(pageviews + others) {
            let kind = if i < pageviews {
                "pv"
            } else if i % 2 == 0 {
                "cl"
            } else {
                "sc"
            };
            if kind == "pv" {
                path = match skewed(&mut rng, PATHS) {
                    0 => "/".to_owned(),
                    n if n < 40 => format!("/products/item-{n}"),
                    n if n < 80 => format!("/collections/c-{n}"),
                    n => format!("/pages/p-{n}"),
                };
                if first_path.is_empty() {
                    first_path = path.clone();
                }
            }
            // Clicks cluster towards the top left of a desktop- or phone-sized page, as real
            // ones do; scrolls report how far down the page the session got.
            let props = match kind {
                "cl" => {
                    let (pw, ph) = if rng.random_bool(0.6) { (1280, 3200) } else { (390, 5200) };
                    let (x, y) = (skewed(&mut rng, pw as usize), skewed(&mut rng, ph as usize));
                    Some(format!(r#"{{"x":{x},"y":{y},"pw":{pw},"ph":{ph}}}"#))
                }
                "sc" => Some(format!(r#"{{"d":{}}}"#, 100 - skewed(&mut rng, 101))),
                _ => None,
            };
            batch.events.push((id, visitor_id, ts, ts + 40, kind, path.clone(), props));
            ts += rng.random_range(1_000..45_000);
        }
        events += (pageviews + others) as u64;
        let referrer = rng.random_bool(0.55).then(|| REFERRERS[skewed(&mut rng, REFERRERS.len())].to_owned());
        batch.sessions.push((
            id,
            visitor_id,
            start,
            ts,
            pageviews,
            pageviews + others,
            first_path,
            path,
            referrer,
            COUNTRIES[skewed(&mut rng, COUNTRIES.len())].to_owned(),
            BROWSERS[skewed(&mut rng, BROWSERS.len())].to_owned(),
            OSES[skewed(&mut rng, OSES.len())].to_owned(),
            DEVICES[skewed(&mut rng, DEVICES.len())].to_owned(),
            automated,
        ));
        if automated && rng.random_bool(0.3) {
            batch.threats.push((format!("session:{id}"), ts));
        }
        if batch.events.len() >= 200_000 {
            let b = std::mem::take(&mut batch);
            sessions += b.sessions.len() as u64;
            visitors += b.visitors.len() as u64;
            threats += b.threats.len() as u64;
            write(&db, site_id, b).await?;
            eprintln!("{events} events ({:.0} s)", started.elapsed().as_secs_f64());
        }
    }
    sessions += batch.sessions.len() as u64;
    visitors += batch.visitors.len() as u64;
    threats += batch.threats.len() as u64;
    write(&db, site_id, batch).await?;
    db.execute_unprepared("ANALYZE").await?;
    println!(
        "{}",
        serde_json::json!({
            "domain": args.domain, "site_key": site.key.as_str(), "api_token": token.expose(), "events": events,
            "sessions": sessions,
            "visitors": visitors, "threats": threats, "seconds": started.elapsed().as_secs(),
        })
    );
    Ok(())
}

async fn write(db: &DatabaseConnection, site: i64, b: Batch) -> anyhow::Result<()> {
    let tx = db.begin().await?;
    for chunk in b.sessions.chunks(ROWS_PER_STATEMENT / 2) {
        let mut q = Query::insert();
        q.into_table(Alias::new("sessions")).columns(
            [
                "id",
                "site_id",
                "visitor_id",
                "started_at",
                "last_seen_at",
                "pageviews",
                "events",
                "entry_path",
                "exit_path",
                "referrer_host",
                "country",
                "browser",
                "os",
                "device",
                "automated",
                "net_flags",
                "consent",
            ]
            .map(Alias::new),
        );
        for s in chunk {
            q.values_panic([
                s.0.into(),
                site.into(),
                s.1.into(),
                s.2.into(),
                s.3.into(),
                s.4.into(),
                s.5.into(),
                s.6.clone().into(),
                s.7.clone().into(),
                s.8.clone().into(),
                s.9.clone().into(),
                s.10.clone().into(),
                s.11.clone().into(),
                s.12.clone().into(),
                s.13.into(),
                0i32.into(),
                true.into(),
            ]);
        }
        tx.execute(&q).await?;
    }
    for chunk in b.events.chunks(ROWS_PER_STATEMENT) {
        let mut q = Query::insert();
        q.into_table(Alias::new("events")).columns(
            ["site_id", "session_id", "visitor_id", "ts", "received_at", "kind", "path", "props"].map(Alias::new),
        );
        for e in chunk {
            q.values_panic([
                site.into(),
                e.0.into(),
                e.1.into(),
                e.2.into(),
                e.3.into(),
                e.4.into(),
                e.5.clone().into(),
                e.6.clone().into(),
            ]);
        }
        tx.execute(&q).await?;
    }
    for chunk in b.visitors.chunks(ROWS_PER_STATEMENT) {
        let mut q = Query::insert();
        q.into_table(Alias::new("visitors"))
            .columns(["site_id", "visitor_id", "first_seen_at", "last_seen_at", "sessions"].map(Alias::new));
        for v in chunk {
            let id = (v.1.div_euclid(UnixMillis::DAY) << 32) | v.0;
            q.values_panic([site.into(), id.into(), v.1.into(), v.2.into(), 1i32.into()]);
        }
        q.on_conflict(OnConflict::columns([Alias::new("site_id"), Alias::new("visitor_id")]).do_nothing().to_owned());
        tx.execute(&q).await?;
    }
    for chunk in b.threats.chunks(ROWS_PER_STATEMENT) {
        let mut q = Query::insert();
        q.into_table(Alias::new("threats")).columns(
            ["site_id", "subject", "decision", "score", "reasons", "evidence", "ttl_secs", "at", "created_at"]
                .map(Alias::new),
        );
        for t in chunk {
            q.values_panic([
                site.into(),
                t.0.clone().into(),
                "BLOCK".into(),
                85i16.into(),
                r#"[{"rule":"headless-automation","sentence":"navigator.webdriver was true"}]"#.into(),
                "[]".into(),
                3600i64.into(),
                t.1.into(),
                t.1.into(),
            ]);
        }
        tx.execute(&q).await?;
    }
    tx.commit().await?;
    Ok(())
}
