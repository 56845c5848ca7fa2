//! Table tests: one table per rule of the embedded set, events in → signals out, each with a
//! near miss that must stay silent. Plus the rule-file validation errors and the sapimouse
//! calibration of the robotic-pointer rule.

use std::sync::Arc;

use super::event::{Body, DetectEvent, EnvProbe, Transaction};
use super::rules::{RuleSet, parse_spec};
use super::{Decision, Engine};
use crate::domain::SiteId;

const CHROME: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const MAC_CHROME: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const T0: i64 = 1_800_000_000_000;
const MIN: i64 = 60_000;

fn rules() -> Arc<RuleSet> {
    use std::sync::OnceLock;
    static RULES: OnceLock<Arc<RuleSet>> = OnceLock::new();
    RULES.get_or_init(|| Arc::new(RuleSet::embedded().unwrap_or_else(|e| panic!("embedded rules: {e:?}")))).clone()
}

/// An event of session 1 from 10.0.0.0/24 with a desktop Chrome UA.
fn ev(ts: i64, body: Body) -> DetectEvent {
    DetectEvent {
        ts,
        session: Some(1),
        visitor: Some(1),
        client_key: None,
        ip_prefix: Some("10.0.0.0/24".parse().unwrap()),
        device: None,
        asn: Some(64_500),
        country: Some("DE".into()),
        net_flags: 0,
        user_agent: Some(CHROME.into()),
        cart_token: None,
        checkout_token: None,
        body,
    }
}

trait With {
    fn ua(self, ua: Option<&str>) -> Self;
    fn session(self, s: Option<i64>) -> Self;
    fn client(self, key: &str) -> Self;
    fn ip(self, prefix: &str) -> Self;
    fn net(self, flags: i32) -> Self;
    fn cart(self, token: &str) -> Self;
}

impl With for DetectEvent {
    fn ua(mut self, ua: Option<&str>) -> Self {
        self.user_agent = ua.map(str::to_owned);
        self
    }
    fn session(mut self, s: Option<i64>) -> Self {
        self.session = s;
        self.visitor = s;
        self
    }
    fn client(mut self, key: &str) -> Self {
        self.session = None;
        self.client_key = Some(key.into());
        self
    }
    fn ip(mut self, prefix: &str) -> Self {
        self.ip_prefix = Some(prefix.parse().unwrap());
        self
    }
    fn net(mut self, flags: i32) -> Self {
        self.net_flags = flags;
        self
    }
    fn cart(mut self, token: &str) -> Self {
        self.cart_token = Some(token.into());
        self
    }
}

fn pv(ts: i64, path: &str) -> DetectEvent {
    ev(ts, Body::Pageview { path: path.into(), product: None })
}

fn req(ts: i64, path: &str, status: u16) -> DetectEvent {
    ev(ts, Body::Request { method: "GET".into(), path: path.into(), status }).client("198.51.100.7")
}

fn tx(ts: i64, status: &str, code: Option<&str>, bin: &str, last4: &str) -> DetectEvent {
    ev(
        ts,
        Body::OrderTransaction(Transaction {
            status: status.into(),
            error_code: code.map(str::to_owned),
            bin: Some(bin.into()),
            last4: Some(last4.into()),
            amount_minor: 2_500,
            ..Transaction::default()
        }),
    )
}

fn decline(ts: i64) -> DetectEvent {
    ev(ts, Body::AlertDisplayed { alert_type: "PAYMENT_ERROR".into() })
}

fn env(probe: EnvProbe) -> Body {
    Body::Environment(probe)
}

/// Runs `events` through a fresh engine; returns the ids of every rule that fired.
fn fired(events: &[DetectEvent]) -> Vec<String> {
    let mut engine = Engine::in_memory(rules(), 100_000);
    let mut ids = Vec::new();
    for e in events {
        for s in engine.observe(SiteId(1), e).signals {
            ids.push(s.rule.to_string());
        }
    }
    ids
}

/// (case name, events, whether `rule` must fire).
type Case = (&'static str, Vec<DetectEvent>, bool);

fn check(rule: &str, cases: Vec<Case>) {
    assert!(rules().get(rule).is_some(), "no rule {rule}");
    for (name, events, expected) in cases {
        let ids = fired(&events);
        assert_eq!(ids.iter().any(|id| id == rule), expected, "{rule} / {name}: fired {ids:?}");
    }
}

fn series(n: usize, step_ms: i64, f: impl Fn(usize, i64) -> DetectEvent) -> Vec<DetectEvent> {
    (0..n).map(|i| f(i, T0 + i as i64 * step_ms)).collect()
}

#[test]
fn ua_automation_library() {
    check(
        "ua/automation-library",
        vec![
            ("curl", vec![req(T0, "/", 200).ua(Some("curl/8.5.0"))], true),
            ("python-requests pageview", vec![pv(T0, "/").ua(Some("python-requests/2.32.3"))], true),
            ("headless chrome", vec![pv(T0, "/").ua(Some("Mozilla/5.0 (X11) HeadlessChrome/131.0.0.0"))], true),
            ("desktop chrome", vec![pv(T0, "/")], false),
            ("a product called curly", vec![pv(T0, "/products/curly-hair").ua(Some(CHROME))], false),
        ],
    );
}

#[test]
fn ua_crawler_is_a_label_not_an_attack() {
    let googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
    check(
        "ua/crawler",
        vec![("googlebot", vec![pv(T0, "/").ua(Some(googlebot))], true), ("chrome", vec![pv(T0, "/")], false)],
    );
    let mut engine = Engine::in_memory(rules(), 1000);
    let verdict = engine.observe(SiteId(1), &pv(T0, "/").ua(Some(googlebot))).verdict.unwrap();
    assert_eq!((verdict.decision, verdict.score), (Decision::Allow, 0));
    assert_eq!(verdict.labels, vec!["bot:crawler".to_owned()]);
}

#[test]
fn ua_scanner() {
    check(
        "ua/scanner",
        vec![
            ("sqlmap", vec![req(T0, "/", 200).ua(Some("sqlmap/1.8#stable (https://sqlmap.org)"))], true),
            ("nuclei", vec![req(T0, "/", 200).ua(Some("Mozilla/5.0 Nuclei - Open-source project"))], true),
            ("browser", vec![req(T0, "/", 200)], false),
        ],
    );
}

#[test]
fn ua_missing() {
    check(
        "ua/missing",
        vec![
            ("request without UA", vec![req(T0, "/", 200).ua(None)], true),
            ("request with empty UA", vec![req(T0, "/", 200).ua(Some(" "))], true),
            ("request with UA", vec![req(T0, "/", 200)], false),
            ("tracker event without UA is not a request", vec![pv(T0, "/").ua(None)], false),
        ],
    );
}

#[test]
fn client_automation_flags() {
    let clean = EnvProbe { plugins: Some(5), languages: Some(2), desktop_chrome: true, ..EnvProbe::default() };
    check(
        "client/automation-flags",
        vec![
            ("webdriver", vec![ev(T0, env(EnvProbe { webdriver: true, ..clean.clone() }))], true),
            ("no plugins on desktop chrome", vec![ev(T0, env(EnvProbe { plugins: Some(0), ..clean.clone() }))], true),
            (
                "swiftshader",
                vec![ev(T0, env(EnvProbe { webgl: Some("Google SwiftShader".into()), ..clean.clone() }))],
                true,
            ),
            ("clean", vec![ev(T0, env(clean.clone()))], false),
            (
                "no plugins on mobile is normal",
                vec![ev(T0, env(EnvProbe { plugins: Some(0), desktop_chrome: false, ..clean.clone() }))],
                false,
            ),
        ],
    );
}

#[test]
fn one_spoofable_client_flag_is_capped_at_challenge() {
    let mut engine = Engine::in_memory(rules(), 1000);
    let v =
        engine.observe(SiteId(1), &ev(T0, env(EnvProbe { webdriver: true, ..EnvProbe::default() }))).verdict.unwrap();
    assert_eq!((v.decision, v.score), (Decision::Challenge, 69));
}

#[test]
fn client_stealth_tells() {
    let iris = EnvProbe { webgl: Some("Intel Iris OpenGL Engine".into()), ..EnvProbe::default() };
    check(
        "client/stealth-tells",
        vec![
            ("mac renderer on windows", vec![ev(T0, env(iris.clone()))], true),
            ("mac renderer on a mac", vec![ev(T0, env(iris)).ua(Some(MAC_CHROME))], false),
        ],
    );
}

#[test]
fn client_worker_mismatch() {
    let clean = EnvProbe { plugins: Some(5), languages: Some(2), desktop_chrome: true, ..EnvProbe::default() };
    let with = |bits| ev(T0, env(EnvProbe { worker_mismatch: bits, ..clean.clone() }));
    check(
        "client/worker-mismatch",
        vec![
            ("hardwareConcurrency and platform differ (stealth plugin)", vec![with(3)], true),
            ("only the user agent differs", vec![with(4)], true),
            ("page and worker agree", vec![with(0)], false),
            ("no answer from the worker", vec![ev(T0, env(clean.clone()))], false),
        ],
    );
}

#[test]
fn stealth_tells_together_reach_block() {
    let mut engine = Engine::in_memory(rules(), 1000);
    let probe = EnvProbe {
        plugins: Some(5),
        languages: Some(2),
        desktop_chrome: true,
        webgl: Some("Intel Iris OpenGL Engine".into()),
        worker_mismatch: 3,
        ..EnvProbe::default()
    };
    let verdict = engine.observe(SiteId(1), &ev(T0, env(probe))).verdict.unwrap();
    assert_eq!(verdict.decision, Decision::Block, "{verdict:?}");
}

#[test]
fn behavior_no_interaction() {
    let ix = |ts| ev(ts, Body::Interaction { keys: 0, touches: 0, moves: 3, wheels: 0 });
    check(
        "behavior/no-interaction",
        vec![
            ("three silent pages", series(3, 5_000, |i, t| pv(t, &format!("/p{i}"))), true),
            ("two silent pages", series(2, 5_000, |i, t| pv(t, &format!("/p{i}"))), false),
            (
                "three pages with a mouse move",
                vec![pv(T0, "/a"), ix(T0 + 1), pv(T0 + 5_000, "/b"), pv(T0 + 9_000, "/c")],
                false,
            ),
            (
                "other sessions do not add up",
                series(3, 5_000, |i, t| pv(t, &format!("/p{i}")).session(Some(i as i64 + 1))),
                false,
            ),
        ],
    );
}

fn path(steps: usize, step: impl Fn(usize) -> (i32, i32)) -> Body {
    let mut samples = vec![0, 400, 300];
    for i in 0..steps {
        let (dx, dy) = step(i);
        samples.extend([16, dx, dy]);
    }
    Body::PointerPath { samples }
}

#[test]
fn behavior_robotic_pointer() {
    check(
        "behavior/robotic-pointer",
        vec![
            ("60 identical steps", vec![ev(T0, path(60, |_| (10, 4)))], true),
            ("49 identical steps are too few to judge", vec![ev(T0, path(49, |_| (10, 4)))], false),
            ("varied steps", vec![ev(T0, path(80, |i| ((i % 7) as i32 * 2 + 2, ((i * 3) % 5) as i32 * 2 - 4)))], false),
        ],
    );
}

/// A pointer path of `steps` steps 16 ms apart from positions `at(i)` (i = 0..=steps), quantised
/// to 2 px like the tracker.
fn traced(steps: usize, at: impl Fn(usize) -> (f64, f64)) -> Body {
    let q = |v: f64| (2.0 * (v / 2.0).round()) as i32;
    let (x0, y0) = at(0);
    let (mut px, mut py) = (q(x0), q(y0));
    let mut samples = vec![0, px, py];
    for i in 1..=steps {
        let (x, y) = at(i);
        samples.extend([16, q(x) - px, q(y) - py]);
        (px, py) = (q(x), q(y));
    }
    Body::PointerPath { samples }
}

/// A straight line at 20 px per step.
fn scripted_line(steps: usize) -> Body {
    traced(steps, |i| (100.0 + 18.0 * i as f64, 100.0 + 8.7 * i as f64))
}

/// A circle of radius 400 px at a constant 20 px per step: steady, never straight.
fn scripted_arc(steps: usize) -> Body {
    traced(steps, |i| {
        let a = i as f64 * 20.0 / 400.0;
        (500.0 + 400.0 * a.cos(), 500.0 + 400.0 * a.sin())
    })
}

/// A straight line whose speed rises and falls within every 12 steps (5 to 35 px per step).
fn eased_line(steps: usize) -> Body {
    let speed = |i: usize| 5.0 + 30.0 * ((i % 12) as f64 / 11.0 * std::f64::consts::PI).sin();
    traced(steps, |i| {
        let d: f64 = (0..i).map(speed).sum();
        (100.0 + 0.9 * d, 100.0 + 0.436 * d)
    })
}

#[test]
fn behavior_straight_pointer() {
    // Two paths of one session: 36 steps of a line then 24 of an arc = 3 straight of 5 windows.
    let mixed = vec![ev(T0, scripted_line(36)), ev(T0 + 1_000, scripted_arc(24))];
    let Body::PointerPath { samples: mut rested } = path(66, |_| (18, 8)) else { unreachable!() };
    for i in (11..66).step_by(11) {
        rested[3 + 3 * i] = 400;
    }
    let rested = Body::PointerPath { samples: rested };
    check(
        "behavior/straight-pointer",
        vec![
            ("an interpolated line of 60 steps", vec![ev(T0, scripted_line(60))], true),
            ("an eased line is still a line", vec![ev(T0, eased_line(60))], true),
            ("59 steps are 4 windows, too few to judge", vec![ev(T0, scripted_line(59))], false),
            ("an arc", vec![ev(T0, scripted_arc(60))], false),
            ("3 straight windows of 5", mixed, false),
            ("identical (18, 8) steps", vec![ev(T0, path(60, |_| (18, 8)))], true),
            ("a rest every 11 steps leaves no whole window", vec![ev(T0, rested)], false),
        ],
    );
}

#[test]
fn behavior_steady_pointer() {
    check(
        "behavior/steady-pointer",
        vec![
            ("an interpolated line of 60 steps", vec![ev(T0, scripted_line(60))], true),
            ("an arc at constant speed", vec![ev(T0, scripted_arc(60))], true),
            ("59 steps are 4 windows, too few to judge", vec![ev(T0, scripted_line(59))], false),
            ("an eased line accelerates", vec![ev(T0, eased_line(60))], false),
            ("three steady windows of five", vec![ev(T0, scripted_line(36)), ev(T0 + 1_000, eased_line(24))], true),
            ("two steady windows of five", vec![ev(T0, scripted_line(24)), ev(T0 + 1_000, eased_line(36))], false),
        ],
    );
}

#[test]
fn behavior_click_without_approach() {
    let click = |ts, approach| ev(ts, Body::Click { approach });
    let touch = ev(T0, Body::Interaction { keys: 0, touches: 1, moves: 0, wheels: 0 });
    check(
        "behavior/click-without-approach",
        vec![
            ("three teleport clicks", vec![click(T0, false), click(T0 + 1, false), click(T0 + 2, false)], true),
            ("one approached click", vec![click(T0, false), click(T0 + 1, true), click(T0 + 2, false)], false),
            ("taps", vec![touch, click(T0, false), click(T0 + 1, false), click(T0 + 2, false)], false),
        ],
    );
}

#[test]
fn behavior_scroll_click_ratio() {
    let mut clicks = series(3, 1_000, |i, t| pv(t, &format!("/p{i}")));
    clicks.extend(series(5, 100, |_, t| ev(t + 5_000, Body::Click { approach: true })));
    let mut scrolled = clicks.clone();
    scrolled.insert(1, ev(T0 + 10, Body::Scroll { depth: 40 }));
    check(
        "behavior/scroll-click-ratio",
        vec![
            ("five clicks never scrolling", clicks.clone(), true),
            ("one scroll", scrolled, false),
            ("four clicks", clicks[..7].to_vec(), false),
        ],
    );
}

#[test]
fn rate_pageview_burst() {
    let page = |i: usize, t| pv(t, &format!("/p{i}")).session(Some(i as i64));
    check(
        "rate/pageview-burst",
        vec![
            ("41 distinct pages in 20 s from one network", series(41, 450, page), true),
            ("40 distinct pages", series(40, 450, page), false),
            ("41 pages over 24 s", series(41, 600, page), false),
            ("the same page 60 times", series(60, 100, |_, t| pv(t, "/")), false),
            ("static files do not count", series(60, 100, |i, t| req(t, &format!("/a{i}.js"), 200)), false),
        ],
    );
}

#[test]
fn rate_enumeration() {
    check(
        "rate/enumeration",
        vec![
            ("10 distinct 404s in 9 s", series(10, 900, |i, t| req(t, &format!("/wp-{i}.php"), 404)), true),
            ("404s on missing .js are not static", series(10, 900, |i, t| req(t, &format!("/x{i}.js"), 404)), true),
            ("9 distinct 404s", series(9, 900, |i, t| req(t, &format!("/wp-{i}.php"), 404)), false),
            ("10 distinct 200s", series(10, 900, |i, t| req(t, &format!("/p{i}"), 200)), false),
            ("10 distinct 404s over 12 s", series(10, 1_300, |i, t| req(t, &format!("/wp-{i}.php"), 404)), false),
        ],
    );
}

#[test]
fn rate_ua_switching() {
    let ua = |i: usize| format!("Mozilla/5.0 (Windows NT 10.0) Chrome/{}.0", 100 + i);
    check(
        "rate/ua-switching",
        vec![
            ("11 user agents in 80 s", series(11, 7_000, |i, t| pv(t, "/").ua(Some(&ua(i)))), true),
            ("10 user agents", series(10, 7_000, |i, t| pv(t, "/").ua(Some(&ua(i)))), false),
            ("11 user agents over 100 s", series(11, 10_000, |i, t| pv(t, "/").ua(Some(&ua(i)))), false),
        ],
    );
}

#[test]
fn rate_burst() {
    check(
        "rate/burst",
        vec![
            ("10 requests in 1.8 s", series(10, 200, |i, t| req(t, &format!("/p{i}"), 200)), true),
            ("9 requests", series(9, 200, |i, t| req(t, &format!("/p{i}"), 200)), false),
            ("10 requests over 2.7 s", series(10, 300, |i, t| req(t, &format!("/p{i}"), 200)), false),
            ("static files", series(20, 50, |i, t| req(t, &format!("/a{i}.css"), 200)), false),
        ],
    );
}

#[test]
fn scrape_catalog_coverage() {
    let product = |i: usize, t| {
        ev(t, Body::Pageview { path: format!("/products/p{i}"), product: Some(format!("p{i}")) })
            .session(Some(i as i64))
    };
    check(
        "scrape/catalog-coverage",
        vec![
            ("201 products in an hour", series(201, 15_000, product), true),
            ("200 products", series(200, 15_000, product), false),
            ("201 products over 2 h", series(201, 36_000, product), false),
        ],
    );
}

#[test]
fn scrape_short_dwell() {
    check(
        "scrape/short-dwell",
        vec![
            ("10 pages a second apart", series(10, 1_000, |i, t| pv(t, &format!("/p{i}"))), true),
            ("10 pages 3 s apart", series(10, 3_000, |i, t| pv(t, &format!("/p{i}"))), false),
            ("9 fast pages", series(9, 1_000, |i, t| pv(t, &format!("/p{i}"))), false),
        ],
    );
}

fn add(ts: i64, variant: &str, quantity: u32) -> DetectEvent {
    ev(ts, Body::AddToCart { variant: variant.into(), quantity, rejected: false })
}

fn remove(ts: i64, variant: &str) -> DetectEvent {
    ev(ts, Body::CartChange { variant: variant.into(), quantity: 0 })
}

#[test]
fn cart_add_burst() {
    check(
        "cart/add-burst",
        vec![
            ("10 adds in 54 s", series(10, 6_000, |i, t| add(t, &format!("v{i}"), 1)), true),
            ("9 adds", series(9, 6_000, |i, t| add(t, &format!("v{i}"), 1)), false),
            ("10 adds over 72 s", series(10, 8_000, |i, t| add(t, &format!("v{i}"), 1)), false),
        ],
    );
}

#[test]
fn cart_inventory_probe() {
    let cycles = |n: usize, removed: &str| -> Vec<DetectEvent> {
        (0..n)
            .flat_map(|i| [add(T0 + i as i64 * 10_000, "v1", 100), remove(T0 + i as i64 * 10_000 + 500, removed)])
            .collect()
    };
    check(
        "cart/inventory-probe",
        vec![
            ("three add/remove cycles", cycles(3, "v1"), true),
            ("two cycles", cycles(2, "v1"), false),
            ("removing another variant", cycles(3, "v2"), false),
            (
                "removals more than 2 minutes later",
                (0..3)
                    .flat_map(|i| [add(T0 + i * 200_000, "v1", 1), remove(T0 + i * 200_000 + 150_000, "v1")])
                    .collect(),
                false,
            ),
        ],
    );
}

#[test]
fn cart_large_quantity() {
    check(
        "cart/large-quantity",
        vec![
            ("999", vec![add(T0, "v1", 999)], true),
            ("change to 5050", vec![ev(T0, Body::CartChange { variant: "v1".into(), quantity: 5050 })], true),
            ("99", vec![add(T0, "v1", 99)], false),
        ],
    );
}

#[test]
fn cart_rejected_adds() {
    let rejected = |_: usize, t| ev(t, Body::AddToCart { variant: "v1".into(), quantity: 5050, rejected: true });
    check(
        "cart/rejected-adds",
        vec![
            ("three 422s", series(3, 1_000, rejected), true),
            ("two 422s", series(2, 1_000, rejected), false),
            ("three accepted adds", series(3, 1_000, |_, t| add(t, "v1", 1)), false),
        ],
    );
}

#[test]
fn cart_hoarding() {
    let carts = |n: usize| series(n, 1_000, |i, t| add(t, "scarce", 1).cart(&format!("c{i}")).session(Some(i as i64)));
    check("cart/hoarding", vec![("50 carts", carts(50), true), ("49 carts", carts(49), false)]);
}

/// An untracked cart, checkout or order as the judge feeds it (no session; a network for orders).
fn untracked(ts: i64, kind: &str, token: &str, network: Option<&str>) -> DetectEvent {
    let mut e = crate::shopify::signals::untracked(kind, token, network.map(|n| n.parse().unwrap()), ts);
    e.user_agent = None;
    e
}

#[test]
fn cart_untracked() {
    let carts = |n: usize, step: i64| series(n, step, |i, t| untracked(t, "cart", &format!("c{i}"), None));
    check(
        "cart/untracked",
        vec![
            ("10 untracked carts in 45 min", carts(10, 5 * MIN), true),
            (
                "carts, checkouts and orders together",
                series(10, MIN, |i, t| {
                    let kind = ["cart", "checkout", "order"][i % 3];
                    untracked(t, kind, &format!("t{i}"), (kind == "order").then_some("81.2.69.0/24"))
                }),
                true,
            ),
            ("9 untracked carts", carts(9, 5 * MIN), false),
            ("10 spread over 90 min", carts(10, 10 * MIN), false),
            (
                "10 cart webhooks the tracker reported (not untracked)",
                series(10, MIN, |i, t| ev(t, Body::CartWebhook { variants: vec![] }).cart(&format!("c{i}"))),
                false,
            ),
        ],
    );
}

#[test]
fn cart_untracked_network() {
    let orders = |n: usize, net: &dyn Fn(usize) -> String| {
        series(n, 10 * MIN, |i, t| untracked(t, "order", &format!("ck{i}"), Some(&net(i))))
    };
    check(
        "cart/untracked-network",
        vec![
            ("three orders from one /24 in 20 min", orders(3, &|_| "81.2.69.0/24".into()), true),
            ("two orders", orders(2, &|_| "81.2.69.0/24".into()), false),
            ("three networks", orders(3, &|i| format!("81.2.{i}.0/24")), false),
            (
                "three untracked carts (no network)",
                series(3, MIN, |i, t| untracked(t, "cart", &format!("c{i}"), None)),
                false,
            ),
        ],
    );
}

#[test]
fn untracked_carts_are_reported_by_a_digest_of_their_token() {
    let mut engine = Engine::in_memory(rules(), 1000);
    let mut last = None;
    for e in series(10, MIN, |i, t| untracked(t, "cart", &format!("secret-cart-{i}"), None)) {
        last = engine.observe(SiteId(1), &e).verdict.or(last);
    }
    let verdict = last.expect("the tenth cart gets a verdict");
    assert!(verdict.subject.starts_with("cart:#") && !verdict.subject.contains("secret"), "{}", verdict.subject);
    assert!(
        verdict.reasons.iter().any(|r| r.sentence.contains("10 carts or checkouts in 1 h")),
        "{:?}",
        verdict.reasons
    );
}

#[test]
fn card_ct1_ip_failures() {
    check(
        "card/ct1-ip-failures",
        vec![
            ("four declines in 6 min", series(4, 2 * MIN, |_, t| decline(t)), true),
            (
                "webhook failures count too",
                series(4, MIN, |i, t| tx(t, "failure", None, "424242", &format!("{i:04}"))),
                true,
            ),
            ("three declines", series(3, 2 * MIN, |_, t| decline(t)), false),
            ("four declines over 12 min", series(4, 4 * MIN, |_, t| decline(t)), false),
            (
                "two declines then success",
                vec![decline(T0), decline(T0 + MIN), tx(T0 + 2 * MIN, "success", None, "424242", "1")],
                false,
            ),
            ("from different networks", series(4, MIN, |i, t| decline(t).ip(&format!("10.0.{i}.0/24"))), false),
        ],
    );
}

#[test]
fn card_ct1_block_tier() {
    check(
        "card/ct1-ip-failures-block",
        vec![
            ("ten declines", series(10, 30_000, |_, t| decline(t)), true),
            ("nine declines", series(9, 30_000, |_, t| decline(t)), false),
        ],
    );
    let mut engine = Engine::in_memory(rules(), 1000);
    let last = series(10, 30_000, |_, t| decline(t)).iter().filter_map(|e| engine.observe(SiteId(1), e).verdict).last();
    assert_eq!(last.unwrap().decision, Decision::Block);
}

#[test]
fn card_ct2_distinct_cards() {
    check(
        "card/ct2-distinct-cards",
        vec![
            ("three cards", series(3, MIN, |i, t| tx(t, "failure", None, "424242", &format!("000{i}"))), true),
            (
                "two cards, one retried",
                vec![
                    tx(T0, "failure", None, "424242", "0001"),
                    tx(T0 + MIN, "failure", None, "424242", "0001"),
                    tx(T0 + 2 * MIN, "success", None, "555555", "0002"),
                ],
                false,
            ),
        ],
    );
}

#[test]
fn card_ct3_distinct_bins() {
    check(
        "card/ct3-distinct-bins",
        vec![
            ("three BINs", series(3, MIN, |i, t| tx(t, "failure", None, &format!("41111{i}"), "0001")), true),
            ("two BINs", series(2, MIN, |i, t| tx(t, "failure", None, &format!("41111{i}"), "0001")), false),
        ],
    );
}

/// Six days of normal traffic (100 attempts/day, 5 % failed), then an hour with `attempts`
/// attempts of which `failures` failed, each from its own session and network.
fn decline_hour(attempts: usize, failures: usize) -> Vec<DetectEvent> {
    let day = 24 * 60 * MIN;
    let mut events = Vec::new();
    for i in 0..600usize {
        let t = T0 + i as i64 * (6 * day / 600);
        let status = if i % 20 == 0 { "failure" } else { "success" };
        events.push(tx(t, status, None, "424242", "1").session(Some(1_000 + i as i64)).ip(&format!(
            "10.{}.{}.0/24",
            i / 250,
            i % 250
        )));
    }
    for i in 0..attempts {
        // Two quiet hours separate the baseline from the attack hour.
        let t = T0 + 6 * day + 120 * MIN + i as i64 * MIN;
        let status = if i < failures { "failure" } else { "success" };
        events.push(tx(t, status, None, "424242", "1").session(Some(5_000 + i as i64)).ip(&format!("11.0.{i}.0/24")));
    }
    events
}

#[test]
fn card_ct4_decline_spike() {
    check(
        "card/ct4-decline-spike",
        vec![
            ("20 attempts, 8 failed (40 % vs a 5 % baseline)", decline_hour(20, 8), true),
            ("19 attempts", decline_hour(19, 8), false),
            ("20 attempts, 3 failed (15 %)", decline_hour(20, 3), false),
        ],
    );
}

#[test]
fn card_ct5_invalid_credentials() {
    let failures = |bad: usize| {
        series(10, MIN, move |i, t| {
            let code = if i < bad { "incorrect_cvc" } else { "insufficient_funds" };
            tx(t, "failure", Some(code), "424242", "1").session(Some(i as i64)).ip(&format!("10.1.{i}.0/24"))
        })
    };
    check(
        "card/ct5-invalid-credentials",
        vec![
            ("6 of 10 wrong CVC", failures(6), true),
            ("5 of 10", failures(5), false),
            ("9 declines only", failures(6)[..9].to_vec(), false),
        ],
    );
}

#[test]
fn card_ct6_small_guest() {
    let attempt = |amount, guest| {
        ev(
            T0,
            Body::OrderTransaction(Transaction {
                status: "failure".into(),
                amount_minor: amount,
                guest,
                ..Transaction::default()
            }),
        )
    };
    check(
        "card/ct6-small-guest",
        vec![
            ("guest 3.00", vec![attempt(300, true)], true),
            ("guest 6.00", vec![attempt(600, true)], false),
            ("customer 3.00", vec![attempt(300, false)], false),
        ],
    );
}

#[test]
fn card_ct7_asn_failures() {
    let spread = |n: usize| series(n, 30_000, |i, t| decline(t).session(Some(i as i64)).ip(&format!("10.9.{i}.0/24")));
    check("card/ct7-asn-failures", vec![("10 networks of one AS", spread(10), true), ("9 networks", spread(9), false)]);
}

#[test]
fn card_ct8_fast_payment() {
    let start = ev(T0, Body::CheckoutStarted);
    check(
        "card/ct8-fast-payment",
        vec![
            ("3 s with no input", vec![start.clone(), ev(T0 + 3_000, Body::PaymentInfoSubmitted)], true),
            ("6 s", vec![start.clone(), ev(T0 + 6_000, Body::PaymentInfoSubmitted)], false),
            (
                "typing in between",
                vec![
                    start.clone(),
                    ev(T0 + 1_000, Body::Interaction { keys: 16, touches: 0, moves: 0, wheels: 0 }),
                    ev(T0 + 3_000, Body::PaymentInfoSubmitted),
                ],
                false,
            ),
            ("no checkout start", vec![ev(T0 + 3_000, Body::PaymentInfoSubmitted)], false),
        ],
    );
}

#[test]
fn ip_reputation() {
    check("ip/tor", vec![("tor", vec![pv(T0, "/").net(1)], true), ("clean", vec![pv(T0, "/")], false)]);
    check(
        "ip/anonymous",
        vec![("vpn", vec![pv(T0, "/").net(2)], true), ("hosting only", vec![pv(T0, "/").net(4)], false)],
    );
    check(
        "ip/hosting",
        vec![("hosting", vec![pv(T0, "/").net(4)], true), ("tor only", vec![pv(T0, "/").net(1)], false)],
    );
}

#[test]
fn every_embedded_rule_has_a_table_test() {
    let source = include_str!("tests.rs");
    for rule in &rules().rules {
        assert!(source.contains(&format!("\"{}\"", rule.id)), "no table test for {}", rule.id);
    }
}

#[test]
fn a_trigger_fires_once_per_cooldown_not_per_event() {
    let events = series(5, 1_000, |_, t| pv(t, "/").ua(Some("curl/8.5.0")));
    assert_eq!(fired(&events).iter().filter(|id| *id == "ua/automation-library").count(), 1);
}

#[test]
fn tenants_do_not_share_state() {
    let mut engine = Engine::in_memory(rules(), 1000);
    let mut signals = 0;
    for (i, e) in series(4, MIN, |_, t| decline(t)).iter().enumerate() {
        // Alternate tenants: each sees only two declines.
        signals += engine.observe(SiteId(1 + (i % 2) as i64), e).signals.len();
    }
    assert_eq!(signals, 0);
}

mod policy {
    use super::*;
    use crate::detect::score::{Policy, RuleOverride};

    #[test]
    fn a_threshold_override_applies_to_that_tenant_only() {
        let mut engine = Engine::in_memory(rules(), 1000);
        let mut policy = Policy::default();
        policy.rules.insert("card/ct1-ip-failures".into(), RuleOverride { threshold: Some(2), ..Default::default() });
        engine.set_policy(SiteId(7), policy).unwrap();
        let declines = series(2, MIN, |_, t| decline(t));
        let ids = |engine: &mut Engine, site| -> Vec<String> {
            declines.iter().flat_map(|e| engine.observe(SiteId(site), e).signals).map(|s| s.rule.to_string()).collect()
        };
        assert!(ids(&mut engine, 7).contains(&"card/ct1-ip-failures".to_owned()));
        assert!(ids(&mut engine, 8).is_empty());
    }

    #[test]
    fn shadow_rules_explain_but_do_not_score() {
        let mut engine = Engine::in_memory(rules(), 1000);
        let mut policy = Policy::default();
        policy.rules.insert("ua/automation-library".into(), RuleOverride { shadow: true, ..Default::default() });
        engine.set_policy(SiteId(1), policy).unwrap();
        let v = engine.observe(SiteId(1), &pv(T0, "/").ua(Some("curl/8.5.0"))).verdict.unwrap();
        assert_eq!((v.decision, v.score), (Decision::Allow, 0));
        assert!(v.reasons[0].shadow && v.reasons[0].rule == "ua/automation-library");
    }

    #[test]
    fn allowlisted_clients_are_not_judged() {
        let mut engine = Engine::in_memory(rules(), 1000);
        let policy = Policy { allow_user_agents: vec!["curl/".into()], ..Policy::default() };
        engine.set_policy(SiteId(1), policy).unwrap();
        let o = engine.observe(SiteId(1), &pv(T0, "/").ua(Some("curl/8.5.0")));
        assert!(o.signals.is_empty() && o.verdict.is_none());
    }

    #[test]
    fn a_disabled_rule_is_silent_and_unknown_rules_are_refused() {
        let mut engine = Engine::in_memory(rules(), 1000);
        let mut policy = Policy::default();
        policy
            .rules
            .insert("ua/automation-library".into(), RuleOverride { enabled: Some(false), ..Default::default() });
        engine.set_policy(SiteId(1), policy.clone()).unwrap();
        assert!(engine.observe(SiteId(1), &pv(T0, "/").ua(Some("curl/8.5.0"))).signals.is_empty());
        policy.rules.insert("ua/nope".into(), RuleOverride::default());
        let errors = engine.set_policy(SiteId(1), policy).unwrap_err();
        assert_eq!(errors[0].field, "rules.ua/nope");
    }
}

mod validation {
    use super::*;

    const GOOD: &str = r#"
id = "rate/x"
description = "A test rule that counts pageviews."
behavior = "bot:test"
key = "session"
weight = 0.5
confidence = 0.5
reason = "{count} pages in {window}"
[condition]
kind = "threshold"
window_secs = 10
threshold = 3
[condition.filter]
events = ["pageview"]
"#;

    fn errors_of(path: &str, text: &str, has_md: bool) -> Vec<String> {
        match RuleSet::from_sources(vec![(path.into(), text.into(), has_md)]) {
            Ok(_) => vec![],
            Err(e) => e.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn a_valid_rule_compiles() {
        assert_eq!(errors_of("rate/x.toml", GOOD, true), Vec::<String>::new());
    }

    #[test]
    fn errors_name_the_file_the_field_and_the_constraint() {
        let cases = [
            (
                GOOD.replace("threshold = 3", "threshold = 0"),
                "rate/x.toml: condition.threshold: must be between 1 and 1000",
            ),
            (GOOD.replace("weight = 0.5", "weight = 1.5"), "rate/x.toml: weight: must be between 0 and 1"),
            (
                GOOD.replace("window_secs = 10", "window_secs = 0"),
                "rate/x.toml: condition.window_secs: must be between 1",
            ),
            (GOOD.replace("{window}", "{windw}"), "rate/x.toml: reason: unknown placeholder `{windw}`"),
            (GOOD.replace("id = \"rate/x\"", "id = \"rate/y\""), "rate/x.toml: id: must equal the file's path"),
            (
                GOOD.replace("key = \"session\"", "key = \"sesion\""),
                "rate/x.toml: line 5 `key`: unknown variant `sesion`",
            ),
            (GOOD.replace("window_secs = 10", "windw_secs = 10"), "rate/x.toml: line 9: unknown field `windw_secs`"),
            (
                GOOD.replace("description = \"A test rule that counts pageviews.\"\n", ""),
                "rate/x.toml: (document): missing field `description`",
            ),
            (
                GOOD.replace("description = \"A test rule that counts pageviews.\"", "description = \"\""),
                "rate/x.toml: description: is required",
            ),
        ];
        for (text, expected) in cases {
            let errors = errors_of("rate/x.toml", &text, true);
            assert!(errors.iter().any(|e| e.starts_with(expected)), "expected `{expected}`, got {errors:?}");
        }
    }

    #[test]
    fn a_rule_without_explainer_is_refused() {
        let errors = errors_of("rate/x.toml", GOOD, false);
        assert_eq!(errors, vec!["rate/x.toml: (file): needs a sibling .md explainer with the same name".to_owned()]);
    }

    #[test]
    fn behaviour_rules_must_be_per_session() {
        let text = GOOD.replace("key = \"session\"", "key = \"ip_prefix\"").replace(
            "[condition]\nkind = \"threshold\"\nwindow_secs = 10\nthreshold = 3\n[condition.filter]\nevents = [\"pageview\"]\n",
            "[condition]\nkind = \"behaviour\"\n[condition.feature]\nfeature = \"no_interaction\"\nmin_pageviews = 3\n",
        );
        let errors = errors_of("rate/x.toml", &text, true);
        assert!(errors.iter().any(|e| e.contains("key: behaviour rules are per session")), "{errors:?}");
    }

    #[test]
    fn unknown_crawler_tags_are_refused() {
        let text = GOOD.replace("events = [\"pageview\"]", "ua_list_tags = [\"search-engines\"]");
        let errors = errors_of("rate/x.toml", &text, true);
        assert!(
            errors.iter().any(|e| e.contains("condition.filter.ua_list_tags: unknown tag `search-engines`")),
            "{errors:?}"
        );
    }

    #[test]
    fn every_embedded_rule_parses_on_its_own() {
        for rule in &rules().rules {
            let text = toml::to_string(&rule.spec).unwrap();
            assert_eq!(parse_spec("x.toml", &text).unwrap(), rule.spec);
        }
    }
}

mod calibration {
    //! The robotic-pointer threshold against real human movement (SapiMouse, Apache-2.0).

    use super::*;
    use crate::detect::rules::{Condition, Feature};

    /// SapiMouse users the quality harness (tests/quality) replays as its human-like visitors:
    /// held out of the calibration, so the harness measures the rule on movement it was not fitted to.
    fn held_out(user: u32) -> bool {
        user.is_multiple_of(5)
    }

    /// Share of exactly repeated steps per SapiMouse block (calibration users only), after the
    /// tracker's 2 px quantisation and without zero steps. The data holds absolute |dx|, |dy|,
    /// which can only raise the share of repeats compared with the signed steps the tracker sends.
    fn human_repeat_shares() -> Vec<f64> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/sapimouse/sapimouse_ABS_dx_dy_1min.csv");
        let text = std::fs::read_to_string(path).expect("tests/data/sapimouse is committed");
        let mut shares = Vec::new();
        for line in text.lines() {
            let values: Vec<f64> = line.split(',').take(256).filter_map(|v| v.trim().parse().ok()).collect();
            let user = line.split(',').nth(256).and_then(|u| u.trim().parse::<f64>().ok());
            if values.len() != 256 || user.is_none_or(|u| held_out(u as u32)) {
                continue;
            }
            let quantise = |v: f64| (2.0 * (v / 2.0).round()) as i32;
            let steps: Vec<(i32, i32)> =
                (0..128).map(|i| (quantise(values[i]), quantise(values[128 + i]))).filter(|s| *s != (0, 0)).collect();
            if steps.len() < 50 {
                continue;
            }
            let repeats = steps.windows(2).filter(|w| w[0] == w[1]).count();
            shares.push(repeats as f64 / steps.len() as f64);
        }
        shares.sort_by(f64::total_cmp);
        shares
    }

    /// The SapiMouse calibration blocks as (|dx|, |dy|) per raw event.
    fn human_blocks() -> Vec<Vec<(f64, f64)>> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/sapimouse/sapimouse_ABS_dx_dy_1min.csv");
        let text = std::fs::read_to_string(path).expect("tests/data/sapimouse is committed");
        let mut blocks = Vec::new();
        for line in text.lines() {
            let values: Vec<f64> = line.split(',').take(256).filter_map(|v| v.trim().parse().ok()).collect();
            let user = line.split(',').nth(256).and_then(|u| u.trim().parse::<f64>().ok());
            if values.len() != 256 || user.is_none_or(|u| held_out(u as u32)) {
                continue;
            }
            blocks.push((0..128).map(|i| (values[i], values[128 + i])).collect());
        }
        blocks
    }

    /// A block as the tracker would send it: positions summed from the steps (all in one quadrant,
    /// the signs being lost), quantised to 2 px, one sample per `merge` raw events, and a zero
    /// step where the quantised position did not move (it ends a movement, like a rest).
    fn tracker_path(block: &[(f64, f64)], merge: usize) -> Vec<i32> {
        let q = |v: f64| (2.0 * (v / 2.0).round()) as i32;
        let mut samples = vec![0, 0, 0];
        let (mut x, mut y, mut px, mut py) = (0.0, 0.0, 0, 0);
        for chunk in block.chunks(merge) {
            for (dx, dy) in chunk {
                x += dx;
                y += dy;
            }
            samples.extend([16 * merge as i32, q(x) - px, q(y) - py]);
            (px, py) = (q(x), q(y));
        }
        samples
    }

    #[test]
    fn straight_and_steady_pointer_thresholds_leave_humans_alone() {
        use crate::detect::features::{STEADY_CV_MAX, STRAIGHT_MIN, SessionFeatures, pointer_windows};
        let blocks = human_blocks();
        assert!(blocks.len() > 1_500, "{} blocks", blocks.len());
        let rule_set = rules();
        for id in ["behavior/straight-pointer", "behavior/steady-pointer"] {
            let Condition::Behaviour { feature } = &rule_set.get(id).unwrap().condition else {
                panic!("{id} is a behaviour rule")
            };
            let (Feature::StraightPointer { min_windows, min_share }
            | Feature::SteadyPointer { min_windows, min_share }) = feature
            else {
                panic!("{id} is a pointer-window rule")
            };
            // merge 2: the tracker's 16 ms gate on a source faster than the frame rate.
            for merge in [1, 2] {
                let (mut windows, mut hits, mut fired) = (0u32, 0u32, 0usize);
                let mut shares = Vec::new();
                for block in &blocks {
                    let samples = tracker_path(block, merge);
                    let w = pointer_windows(&samples);
                    let hit = if matches!(feature, Feature::StraightPointer { .. }) { w.straight } else { w.steady };
                    windows += w.windows;
                    hits += hit;
                    if w.windows >= *min_windows {
                        shares.push(f64::from(hit) / f64::from(w.windows));
                    }
                    let mut f = SessionFeatures::default();
                    f.update(&ev(T0, Body::PointerPath { samples }));
                    fired += usize::from(f.check(feature).is_some());
                }
                shares.sort_by(f64::total_cmp);
                let rate = fired as f64 / blocks.len() as f64;
                println!(
                    "{id} (merge {merge}): {} blocks, {windows} windows, {:.1} % of windows hit \
                     (straight ≥ {STRAIGHT_MIN} / steady CV ≤ {STEADY_CV_MAX}); per-block share over {} blocks \
                     with ≥ {min_windows} windows: median {:.2}, p99 {:.2}, max {:.2}; the rule fires on {:.2} %",
                    blocks.len(),
                    100.0 * f64::from(hits) / f64::from(windows.max(1)),
                    shares.len(),
                    shares[shares.len() / 2],
                    shares[shares.len() * 99 / 100],
                    shares[shares.len() - 1],
                    rate * 100.0
                );
                assert!(windows > 5_000, "{id}: the blocks must give windows to judge ({windows})");
                assert!(rate <= 0.01, "{id}: {:.2} % of human blocks would fire (merge {merge})", rate * 100.0);
                assert!(*min_share > shares[shares.len() * 99 / 100], "{id}: min_share must exceed the human p99");
            }
        }
    }

    #[test]
    fn robotic_pointer_threshold_is_above_human_movement() {
        let shares = human_repeat_shares();
        assert!(shares.len() > 1_500, "{} blocks", shares.len());
        let p99 = shares[shares.len() * 99 / 100];
        let q = |p: usize| shares[shares.len() * p / 100];
        println!(
            "{} calibration blocks: median {:.2}, p90 {:.2}, p99 {p99:.2}, max {:.2}",
            shares.len(),
            q(50),
            q(90),
            shares[shares.len() - 1]
        );
        let rule = rules();
        let Condition::Behaviour { feature: Feature::RepeatedPointerSteps { min_share, .. } } =
            &rule.get("behavior/robotic-pointer").unwrap().condition
        else {
            panic!("robotic-pointer is a repeated_pointer_steps rule")
        };
        let would_fire = shares.iter().filter(|s| **s >= *min_share).count() as f64 / shares.len() as f64;
        assert!(*min_share > p99, "min_share {min_share} must exceed the human p99 {p99:.3}");
        assert!(would_fire <= 0.01, "{:.2} % of human blocks would fire", would_fire * 100.0);
        // The scripted adversary sits far above: linear interpolation repeats every step.
        assert!(*min_share < 0.9);
    }
}

#[test]
fn plan_limits_run_only_the_core_families_for_limited_tenants() {
    let burst = series(10, 6_000, |i, t| add(t, &format!("v{i}"), 1));
    let curl = req(T0, "/", 200).ua(Some("curl/8.5.0"));
    let run = |engine: &mut Engine, site: i64, events: &[DetectEvent]| -> Vec<String> {
        events.iter().flat_map(|e| engine.observe(SiteId(site), e).signals).map(|s| s.rule.to_string()).collect()
    };
    let mut engine = Engine::in_memory(rules(), 100_000);
    let core: Arc<[String]> = ["ua", "card"].map(String::from).into();
    engine.set_plan_limits(Some(core), std::collections::HashSet::from([2]));
    // Site 1 is limited: cart abuse is outside its families, bots are not.
    assert!(!run(&mut engine, 1, &burst).iter().any(|r| r == "cart/add-burst"));
    assert!(run(&mut engine, 1, std::slice::from_ref(&curl)).iter().any(|r| r == "ua/automation-library"));
    // Site 2's plan has every family.
    assert!(run(&mut engine, 2, &burst).iter().any(|r| r == "cart/add-burst"));
    // Lifting the limits (plans not enforced) runs everything again.
    engine.set_plan_limits(None, Default::default());
    let later = series(10, 6_000, |i, t| add(t + 3_600_000, &format!("w{i}"), 1));
    assert!(run(&mut engine, 1, &later).iter().any(|r| r == "cart/add-burst"));
}

/// Issue 4 §7: at most this many bytes of engine state per active key (map entry + heap, verdict
/// slots included), on the bench's realistic mix.
const STATE_BYTES_PER_KEY: usize = 256;

#[test]
fn state_budget_per_active_key() {
    use super::StateStore;
    let mut engine = Engine::in_memory(rules(), 2_000_000);
    for e in super::mix::event_mix(400_000) {
        engine.observe(SiteId(1), &e);
    }
    let store = engine.store();
    let slots = store.len();
    let bytes = store.approx_bytes();
    println!(
        "state: {slots} slots, {bytes} bytes, {} bytes per slot; entry {} bytes (key {}, slot {}); heap by kind {:?}",
        bytes / slots,
        std::mem::size_of::<(super::state::StateKey, super::state::Slot)>() + 1,
        std::mem::size_of::<super::state::StateKey>(),
        std::mem::size_of::<super::state::Slot>(),
        store.heap_by_kind()
    );
    assert!(slots > 50_000, "the mix keeps many keys alive ({slots})");
    assert!(bytes / slots <= STATE_BYTES_PER_KEY, "{} bytes per key", bytes / slots);
}
