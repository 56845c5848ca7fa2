//! The pure core: `observe(site, event) -> signals (+ a verdict when it changed)`. Synchronous,
//! no I/O and no wall clock: time is the event's `ts`, so live traffic, replays and tests agree.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHasher};
use serde::Serialize;

use super::event::{Body, DetectEvent, EnvProbe};
use super::features::SessionFeatures;
use super::rules::{CompiledRule, Condition, EnvFlag, Field, Filter, KeyKind, RuleError, RuleSet, is_static_path};
use super::score::{Policy, Signal, Verdict};
use super::state::{Buckets, FEATURES_SLOT, KeyState, MemoryStore, StateKey, StateStore, VERDICT_SLOT};
use crate::domain::SiteId;

/// What one event produced.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Observation {
    pub signals: Vec<Signal>,
    /// The subject's verdict, when this event changed it.
    pub verdict: Option<Verdict>,
}

/// Idle time after which a session's features are dropped (event time).
const SESSION_IDLE_MS: i64 = 30 * 60 * 1000;
/// Most user agents whose rule matches are remembered per rule set.
const UA_CACHE_MAX: usize = 50_000;

/// Rules plus the cache of which UA filters each user agent matches.
struct Rules {
    set: Arc<RuleSet>,
    ua_cache: FxHashMap<u64, u64>,
}

impl Rules {
    fn new(set: Arc<RuleSet>) -> Self {
        Rules { set, ua_cache: FxHashMap::default() }
    }

    /// Bit `i` set when UA matcher `i` matches.
    fn ua_bits(&mut self, ua: &str) -> u64 {
        let h = hash_str(ua);
        if let Some(bits) = self.ua_cache.get(&h) {
            return *bits;
        }
        let bits = self
            .set
            .ua_matchers
            .iter()
            .enumerate()
            .fold(0u64, |bits, (i, m)| if m.find(ua).is_some() { bits | (1 << i) } else { bits });
        if self.ua_cache.len() >= UA_CACHE_MAX {
            self.ua_cache.clear();
        }
        self.ua_cache.insert(h, bits);
        bits
    }
}

/// The detection engine over a state store.
pub struct Engine<S: StateStore = MemoryStore> {
    default_rules: Rules,
    tenants: HashMap<i64, (Policy, Rules)>,
    default_policy: Policy,
    store: S,
}

impl Engine<MemoryStore> {
    /// An engine with in-process state holding at most `max_slots` keys.
    pub fn in_memory(rules: Arc<RuleSet>, max_slots: usize) -> Self {
        Engine::with_store(rules, MemoryStore::new(max_slots))
    }
}

impl<S: StateStore> Engine<S> {
    pub fn with_store(rules: Arc<RuleSet>, store: S) -> Self {
        Engine { default_rules: Rules::new(rules), tenants: HashMap::new(), default_policy: Policy::default(), store }
    }

    pub fn rules(&self) -> &RuleSet {
        &self.default_rules.set
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Sets a tenant's policy; threshold and window overrides recompile that tenant's rules.
    pub fn set_policy(&mut self, site: SiteId, policy: Policy) -> Result<(), Vec<RuleError>> {
        policy.validate().map_err(|m| {
            vec![RuleError { file: format!("policy of site {}", site.0), field: "bands".into(), constraint: m }]
        })?;
        let base = &self.default_rules.set;
        let mut errors = Vec::new();
        for id in policy.rules.keys() {
            if base.get(id).is_none() {
                errors.push(RuleError {
                    file: format!("policy of site {}", site.0),
                    field: format!("rules.{id}"),
                    constraint: "names no loaded rule".into(),
                });
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let needs_recompile = policy.rules.values().any(|o| o.threshold.is_some() || o.window_secs.is_some());
        let set = if needs_recompile {
            let mut sources = Vec::new();
            for rule in &base.rules {
                let mut spec = rule.spec.clone();
                if let Some(o) = policy.rules.get(rule.id.as_str()) {
                    override_spec(&mut spec.condition, o.threshold, o.window_secs);
                }
                sources.push((format!("{}.toml", rule.id), toml::to_string(&spec).unwrap_or_default(), true));
            }
            Arc::new(RuleSet::from_sources(sources)?)
        } else {
            base.clone()
        };
        self.tenants.insert(site.0, (policy, Rules::new(set)));
        Ok(())
    }

    pub fn policy(&self, site: SiteId) -> &Policy {
        self.tenants.get(&site.0).map(|t| &t.0).unwrap_or(&self.default_policy)
    }

    /// Feeds one event; returns the signals it raised and the subject's verdict if it changed.
    pub fn observe(&mut self, site: SiteId, event: &DetectEvent) -> Observation {
        let Engine { default_rules, tenants, default_policy, store } = self;
        let (policy, rules) = match tenants.get_mut(&site.0) {
            Some((p, r)) => (&*p, r),
            None => (&*default_policy, default_rules),
        };
        if policy.allows(event.ip_prefix.as_ref(), event.user_agent.as_deref()) {
            return Observation::default();
        }
        let ts = event.ts;
        let features = event.session.map(|session| {
            let key = StateKey { site: site.0, rule: FEATURES_SLOT, key: session as u64 };
            store.update(key, ts, |slot| {
                slot.expires_at = slot.expires_at.max(ts + SESSION_IDLE_MS);
                if !matches!(slot.state, KeyState::Features(_)) {
                    slot.state = KeyState::Features(Box::default());
                }
                let KeyState::Features(f) = &mut slot.state else { unreachable!() };
                f.update(event);
                **f
            })
        });
        let ua_bits = match event.user_agent.as_deref() {
            Some(ua) if !rules.set.ua_matchers.is_empty() => rules.ua_bits(ua),
            _ => 0,
        };
        let mut signals = Vec::new();
        let set = rules.set.clone();
        for (index, rule) in set.rules.iter().enumerate() {
            if !rule.spec.enabled || policy.rules.get(rule.id.as_str()).and_then(|o| o.enabled) == Some(false) {
                continue;
            }
            if let Some(mut signal) = evaluate(store, site, index as u16, rule, event, ua_bits, features.as_ref(), &set)
            {
                signal.shadow = policy.is_shadow(rule.id.as_str());
                signals.push(signal);
            }
        }
        let verdict = subject_hash(event).and_then(|subject_key| {
            let key = StateKey { site: site.0, rule: VERDICT_SLOT, key: subject_key };
            if signals.is_empty() && !store.contains(&key) {
                return None;
            }
            let subject = subject_of(event)?;
            store.update(key, ts, |slot| {
                if !matches!(slot.state, KeyState::Verdict(_)) {
                    slot.state = KeyState::Verdict(Box::default());
                }
                let KeyState::Verdict(v) = &mut slot.state else { unreachable!() };
                v.dedupe(ts, &mut signals);
                let verdict = v.apply(&subject, ts, signals.clone(), policy);
                let longest = v.active.iter().map(|s| s.ts + s.ttl_ms).max().unwrap_or(ts);
                slot.expires_at = slot.expires_at.max(longest).max(ts + SESSION_IDLE_MS);
                verdict
            })
        });
        Observation { signals, verdict }
    }

    /// The current verdict of a subject (`session:ID`, `client:KEY`, `ip:PREFIX`, …) at `now`.
    pub fn verdict_of(&mut self, site: SiteId, subject: &str, now: i64) -> Option<Verdict> {
        let policy = self.tenants.get(&site.0).map(|t| t.0.clone()).unwrap_or_else(|| self.default_policy.clone());
        let key = StateKey { site: site.0, rule: VERDICT_SLOT, key: hash_str(subject) };
        if !self.store.contains(&key) {
            return None;
        }
        self.store.update(key, now, |slot| match &slot.state {
            KeyState::Verdict(v) => Some(v.verdict(subject, now, &policy)),
            _ => None,
        })
    }
}

fn override_spec(condition: &mut super::rules::ConditionSpec, threshold: Option<u32>, window: Option<u64>) {
    use super::rules::ConditionSpec as C;
    match condition {
        C::Threshold { threshold: t, window_secs: w, .. }
        | C::Distinct { threshold: t, window_secs: w, .. }
        | C::Sequence { threshold: t, window_secs: w, .. } => {
            if let Some(v) = threshold {
                *t = v;
            }
            if let Some(v) = window {
                *w = v;
            }
        }
        C::Ratio { min_events, window_secs: w, .. } => {
            if let Some(v) = threshold {
                *min_events = v;
            }
            if let Some(v) = window {
                *w = v;
            }
        }
        C::Trigger { .. } | C::Behaviour { .. } => {}
    }
}

/// The subject a verdict judges: the session when tracked, else the client key, else the
/// network, else the checkout or cart.
pub fn subject_of(event: &DetectEvent) -> Option<String> {
    let mut out = String::new();
    write_subject(event, &mut out).then_some(out)
}

fn hash_str(s: &str) -> u64 {
    let mut h = FxHasher::default();
    s.hash(&mut h);
    h.finish()
}

/// A small stack buffer for formatting keys without allocating (falls back to a `String`).
struct KeyBuf {
    buf: [u8; 192],
    len: usize,
    spill: Option<String>,
}

impl KeyBuf {
    fn new() -> Self {
        KeyBuf { buf: [0; 192], len: 0, spill: None }
    }

    fn as_str(&self) -> &str {
        match &self.spill {
            Some(s) => s,
            // Only whole `&str`s are copied in, so the prefix is valid UTF-8.
            None => std::str::from_utf8(&self.buf[..self.len]).unwrap_or(""),
        }
    }
}

impl std::fmt::Write for KeyBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if let Some(spill) = &mut self.spill {
            spill.push_str(s);
        } else if self.len + s.len() <= self.buf.len() {
            self.buf[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
            self.len += s.len();
        } else {
            let mut spill = String::with_capacity(self.len + s.len());
            spill.push_str(std::str::from_utf8(&self.buf[..self.len]).unwrap_or(""));
            spill.push_str(s);
            self.spill = Some(spill);
        }
        Ok(())
    }
}

/// Writes the subject of `event` (see [`subject_of`]) into `out`; `false` when it has none.
fn write_subject(event: &DetectEvent, out: &mut impl std::fmt::Write) -> bool {
    let r = if let Some(s) = event.session {
        write!(out, "session:{s}")
    } else if let Some(k) = &event.client_key {
        write!(out, "client:{k}")
    } else if let Some(ip) = &event.ip_prefix {
        write!(out, "ip:{ip}")
    } else if let Some(c) = &event.checkout_token {
        write!(out, "checkout:{c}")
    } else if let Some(c) = &event.cart_token {
        write!(out, "cart:{c}")
    } else {
        return false;
    };
    r.is_ok()
}

/// Hash of the subject string, equal to `hash_str(&subject_of(event)?)`, without allocating.
fn subject_hash(event: &DetectEvent) -> Option<u64> {
    let mut buf = KeyBuf::new();
    write_subject(event, &mut buf).then(|| hash_str(buf.as_str()))
}

/// Hash of the rule's key value for this event, or `None` if the event lacks it.
fn key_hash(kind: KeyKind, event: &DetectEvent) -> Option<u64> {
    let mut h = FxHasher::default();
    (kind as u8).hash(&mut h);
    match kind {
        KeyKind::Subject => return subject_hash(event),
        KeyKind::Visitor => event.visitor?.hash(&mut h),
        KeyKind::Session => event.session?.hash(&mut h),
        KeyKind::IpPrefix => event.ip_prefix?.hash(&mut h),
        KeyKind::Device => event.device.as_deref()?.hash(&mut h),
        KeyKind::CartToken => event.cart_token.as_deref()?.hash(&mut h),
        KeyKind::CheckoutToken => event.checkout_token.as_deref()?.hash(&mut h),
        KeyKind::CardBin => match &event.body {
            Body::OrderTransaction(t) => t.bin.as_deref()?.hash(&mut h),
            _ => return None,
        },
        KeyKind::Asn => event.asn?.hash(&mut h),
        KeyKind::Country => event.country.as_deref()?.hash(&mut h),
        KeyKind::ClientKey => event.client_key.as_deref()?.hash(&mut h),
        KeyKind::Variant => match &event.body {
            Body::AddToCart { variant, .. } | Body::CartChange { variant, .. } if !variant.is_empty() => {
                variant.hash(&mut h)
            }
            _ => return None,
        },
        KeyKind::Shop => {}
    }
    Some(h.finish())
}

/// The key value as shown in reasons (only built when a rule fires).
fn key_text(kind: KeyKind, event: &DetectEvent) -> String {
    let text = match kind {
        KeyKind::Subject => subject_of(event),
        KeyKind::Visitor => event.visitor.map(|v| v.to_string()),
        KeyKind::Session => event.session.map(|v| v.to_string()),
        KeyKind::IpPrefix => event.ip_prefix.map(|v| v.to_string()),
        KeyKind::Device => event.device.clone(),
        KeyKind::CartToken => event.cart_token.clone(),
        KeyKind::CheckoutToken => event.checkout_token.clone(),
        KeyKind::CardBin => match &event.body {
            Body::OrderTransaction(t) => t.bin.clone(),
            _ => None,
        },
        KeyKind::Asn => event.asn.map(|a| format!("AS{a}")),
        KeyKind::Country => event.country.clone(),
        KeyKind::ClientKey => event.client_key.clone(),
        KeyKind::Variant => match &event.body {
            Body::AddToCart { variant, .. } | Body::CartChange { variant, .. } => Some(variant.clone()),
            _ => None,
        },
        KeyKind::Shop => Some("shop".to_owned()),
    };
    text.unwrap_or_default()
}

/// The value of a distinct/same field (hashed).
fn field_of(field: Field, event: &DetectEvent) -> Option<u64> {
    let h = match (field, &event.body) {
        (Field::Path, body) => hash_str(body.path()?),
        (Field::UserAgent, _) => hash_str(event.user_agent.as_deref()?),
        (Field::Card, Body::OrderTransaction(t)) => {
            hash_str(&format!("{}-{}", t.bin.as_deref()?, t.last4.as_deref().unwrap_or("")))
        }
        (Field::Bin, Body::OrderTransaction(t)) => hash_str(t.bin.as_deref()?),
        (Field::IpPrefix, _) => {
            let mut h = FxHasher::default();
            event.ip_prefix?.hash(&mut h);
            h.finish()
        }
        (Field::Variant, Body::AddToCart { variant, .. } | Body::CartChange { variant, .. }) => hash_str(variant),
        (Field::Product, Body::Pageview { product, .. }) => hash_str(product.as_deref()?),
        (Field::Session, _) => event.session? as u64,
        (Field::CartToken, _) => hash_str(event.cart_token.as_deref()?),
        _ => return None,
    };
    Some(h)
}

/// Whether `filter` accepts the event; `Some(detail)` names what matched (UA token, flags).
fn matches(filter: &Filter, event: &DetectEvent, ua_bits: u64, set: &RuleSet) -> Option<String> {
    let body = &event.body;
    if filter.events_mask != 0 && filter.events_mask & body.event_type().bit() == 0 {
        return None;
    }
    let mut detail = String::new();
    if filter.ua_missing && event.user_agent.as_deref().is_some_and(|u| !u.trim().is_empty()) {
        return None;
    }
    if let Some(i) = filter.ua {
        if ua_bits & (1 << i) == 0 {
            return None;
        }
        if let Some(found) = event.user_agent.as_deref().and_then(|ua| set.ua_matchers[i].find(ua)) {
            detail = found;
        }
    }
    if filter.status_min.is_some() || filter.status_max.is_some() || filter.exclude_static {
        let Body::Request { status, path, .. } = body else {
            if filter.exclude_static && body.path().is_some_and(is_static_path) {
                return None;
            }
            if filter.status_min.is_some() || filter.status_max.is_some() {
                return None;
            }
            return Some(detail);
        };
        if filter.status_min.is_some_and(|m| *status < m) || filter.status_max.is_some_and(|m| *status > m) {
            return None;
        }
        // CrowdSec: 404/403/502 answers are never "static", whatever the extension.
        if filter.exclude_static && is_static_path(path) && !matches!(status, 403 | 404 | 502) {
            return None;
        }
    }
    if filter.net_mask != 0 {
        let hit = event.net_flags & filter.net_mask;
        if hit == 0 {
            return None;
        }
        detail = net_names(hit);
    }
    if !filter.env_flags.is_empty() {
        let Body::Environment(env) = body else { return None };
        let ua = event.user_agent.as_deref().unwrap_or("");
        let hits: Vec<&str> =
            filter.env_flags.iter().filter(|f| env_flag(**f, env, ua)).map(|f| env_name(*f)).collect();
        if hits.is_empty() {
            return None;
        }
        detail = hits.join(", ");
    }
    if let Some(want) = filter.payment_failure
        && body.is_payment_failure() != want
    {
        return None;
    }
    if let Some(want) = filter.payment_attempt
        && body.is_payment_attempt() != want
    {
        return None;
    }
    if !filter.error_codes.is_empty() {
        let Body::OrderTransaction(t) = body else { return None };
        let code = t.error_code.as_deref()?.to_ascii_lowercase();
        if !filter.error_codes.contains(&code) {
            return None;
        }
    }
    if filter.quantity_min.is_some() || filter.quantity_max.is_some() {
        let q = match body {
            Body::AddToCart { quantity, .. } | Body::CartChange { quantity, .. } => *quantity,
            _ => return None,
        };
        if filter.quantity_min.is_some_and(|m| q < m) || filter.quantity_max.is_some_and(|m| q > m) {
            return None;
        }
        if detail.is_empty() {
            detail = format!("quantity {q}");
        }
    }
    if let Some(max) = filter.amount_max_minor {
        let amount = match body {
            Body::OrderTransaction(t) => t.amount_minor,
            Body::OrderCreated { total_minor, .. } => *total_minor,
            _ => return None,
        };
        if amount > max {
            return None;
        }
    }
    if let Some(want) = filter.guest {
        let guest = match body {
            Body::OrderTransaction(t) => t.guest,
            Body::OrderCreated { guest, .. } => *guest,
            _ => return None,
        };
        if guest != want {
            return None;
        }
    }
    if let Some(want) = filter.product {
        let Body::Pageview { product, .. } = body else { return None };
        if product.is_some() != want {
            return None;
        }
    }
    if let Some(want) = filter.rejected {
        let Body::AddToCart { rejected, .. } = body else { return None };
        if *rejected != want {
            return None;
        }
    }
    Some(detail)
}

fn env_flag(flag: EnvFlag, env: &EnvProbe, ua: &str) -> bool {
    match flag {
        EnvFlag::Webdriver => env.webdriver,
        EnvFlag::HeadlessUa => env.headless_ua || ua.contains("HeadlessChrome"),
        EnvFlag::NoPluginsDesktopChrome => env.desktop_chrome && env.plugins == Some(0),
        EnvFlag::NoLanguages => env.languages == Some(0),
        EnvFlag::PermissionInconsistent => env.permission_inconsistent,
        EnvFlag::ZeroOuterWindow => env.outer_width == Some(0) && env.outer_height == Some(0),
        EnvFlag::SoftwareWebgl => env.webgl.as_deref().is_some_and(|g| {
            let g = g.to_ascii_lowercase();
            g.contains("swiftshader") || g.contains("llvmpipe") || g.contains("mesa offscreen")
        }),
        EnvFlag::StealthWebglMismatch => {
            env.webgl.as_deref().is_some_and(|g| g.contains("Intel Iris OpenGL Engine")) && !ua.contains("Mac OS X")
        }
    }
}

fn env_name(flag: EnvFlag) -> &'static str {
    match flag {
        EnvFlag::Webdriver => "navigator.webdriver",
        EnvFlag::HeadlessUa => "HeadlessChrome user agent",
        EnvFlag::NoPluginsDesktopChrome => "no plugins on desktop Chrome",
        EnvFlag::NoLanguages => "no languages",
        EnvFlag::PermissionInconsistent => "notification permission inconsistency",
        EnvFlag::ZeroOuterWindow => "0×0 outer window",
        EnvFlag::SoftwareWebgl => "software WebGL renderer",
        EnvFlag::StealthWebglMismatch => "Mac-only WebGL renderer on a non-Mac user agent",
    }
}

fn net_names(bits: i32) -> String {
    use crate::ingest::enrich::geo::net_flags as f;
    [
        (f::TOR_EXIT, "Tor exit"),
        (f::VPN, "VPN"),
        (f::HOSTING, "hosting"),
        (f::PUBLIC_PROXY, "public proxy"),
        (f::RESIDENTIAL_PROXY, "residential proxy"),
    ]
    .iter()
    .filter(|(b, _)| bits & b != 0)
    .map(|(_, n)| *n)
    .collect::<Vec<_>>()
    .join(", ")
}

/// What a fired condition reports: count and detail.
struct Fired {
    count: u32,
    detail: String,
}

#[allow(clippy::too_many_arguments)]
fn evaluate<S: StateStore>(
    store: &mut S,
    site: SiteId,
    index: u16,
    rule: &CompiledRule,
    event: &DetectEvent,
    ua_bits: u64,
    features: Option<&SessionFeatures>,
    set: &RuleSet,
) -> Option<Signal> {
    let ts = event.ts;
    // Cheap rejections before any state lookup.
    let detail = match &rule.condition {
        Condition::Trigger { filter } | Condition::Threshold { filter, .. } | Condition::Distinct { filter, .. } => {
            matches(filter, event, ua_bits, set)?
        }
        Condition::Ratio { filter, .. } => matches(filter, event, ua_bits, set)?,
        Condition::Sequence { first, then, unless_between, .. } => {
            let relevant = matches(first, event, ua_bits, set).is_some()
                || matches(then, event, ua_bits, set).is_some()
                || unless_between.as_ref().is_some_and(|f| matches(f, event, ua_bits, set).is_some());
            if !relevant {
                return None;
            }
            String::new()
        }
        Condition::Behaviour { feature } => features?.check(feature)?.1,
    };
    let state_key = StateKey { site: site.0, rule: index, key: key_hash(rule.key, event)? };
    let (threshold, window_ms) = rule.condition.threshold_and_window();
    let keep_for = window_ms.max(rule.cooldown_ms).max(1);
    let fired = store.update(state_key, ts, |slot| {
        slot.expires_at = slot.expires_at.max(ts + keep_for);
        let fired = step(slot, rule, event, ua_bits, features, set, &detail)?;
        // Triggers and behaviour rules are keyed by their subject: a key cooldown is enough.
        // Window rules keep firing while they hold, so that every subject of an attacking
        // network is judged; the verdict state drops repeats per subject.
        if matches!(rule.condition, Condition::Trigger { .. } | Condition::Behaviour { .. }) {
            if ts < slot.cooldown_until {
                return None;
            }
            slot.cooldown_until = ts + rule.cooldown_ms;
        }
        Some(fired)
    })?;
    let window = human_window(window_ms);
    let key_text = key_text(rule.key, event);
    let reason = rule
        .reason
        .replace("{count}", &fired.count.to_string())
        .replace("{threshold}", &threshold.to_string())
        .replace("{window}", &window)
        .replace("{detail}", &fired.detail)
        .replace("{key}", &format!("{} {}", rule.key.as_str(), key_text));
    Some(Signal {
        rule: rule.id.clone(),
        behavior: rule.behavior.clone(),
        key_kind: rule.key,
        key: key_text,
        ts,
        count: fired.count,
        threshold,
        window_secs: (window_ms / 1000) as u64,
        weight: rule.weight,
        confidence: rule.confidence,
        spoofable: rule.spoofable,
        attack: rule.attack,
        shadow: false,
        ttl_ms: rule.ttl_ms,
        cooldown_ms: rule.cooldown_ms,
        reason,
        sample: event.summary(),
    })
}

/// Advances one key's state by one event; `Some` when the condition holds now.
fn step(
    slot: &mut super::state::Slot,
    rule: &CompiledRule,
    event: &DetectEvent,
    ua_bits: u64,
    features: Option<&SessionFeatures>,
    set: &RuleSet,
    detail: &str,
) -> Option<Fired> {
    let ts = event.ts;
    let detail = detail.to_owned();
    match &rule.condition {
        Condition::Trigger { .. } => Some(Fired { count: 1, detail }),
        Condition::Threshold { window_ms, threshold, .. } => {
            if !matches!(slot.state, KeyState::Times(_)) {
                slot.state = KeyState::Times(Default::default());
            }
            let KeyState::Times(times) = &mut slot.state else { unreachable!() };
            times.push_back(ts);
            while times.len() > *threshold as usize {
                times.pop_front();
            }
            let count = times.iter().filter(|t| **t > ts - window_ms).count() as u32;
            (count >= *threshold).then_some(Fired { count, detail })
        }
        Condition::Distinct { field, window_ms, threshold, .. } => {
            let value = field_of(*field, event)?;
            if !matches!(slot.state, KeyState::Values(_)) {
                slot.state = KeyState::Values(Vec::new());
            }
            let KeyState::Values(values) = &mut slot.state else { unreachable!() };
            values.retain(|(_, t)| *t > ts - window_ms);
            match values.iter_mut().find(|(v, _)| *v == value) {
                Some(entry) => entry.1 = entry.1.max(ts),
                None => values.push((value, ts)),
            }
            if values.len() > *threshold as usize
                && let Some(oldest) = values.iter().enumerate().min_by_key(|(_, (_, t))| *t).map(|(i, _)| i)
            {
                values.swap_remove(oldest);
            }
            let count = values.len() as u32;
            (count >= *threshold).then_some(Fired { count, detail })
        }
        Condition::Sequence { first, then, within_ms, same, unless_between, window_ms, threshold } => {
            if !matches!(slot.state, KeyState::Sequence { .. }) {
                slot.state = KeyState::Sequence { pending: Vec::new(), cycles: Default::default() };
            }
            let KeyState::Sequence { pending, cycles } = &mut slot.state else { unreachable!() };
            if unless_between.as_ref().is_some_and(|f| matches(f, event, ua_bits, set).is_some()) {
                pending.clear();
            }
            let value = match same {
                Some(f) => field_of(*f, event).unwrap_or(0),
                None => 0,
            };
            pending.retain(|(_, t)| ts - *t <= *within_ms);
            let mut completed = false;
            if matches(then, event, ua_bits, set).is_some()
                && let Some(i) = pending.iter().position(|(v, _)| *v == value)
            {
                pending.swap_remove(i);
                cycles.push_back(ts);
                completed = true;
            }
            if !completed && matches(first, event, ua_bits, set).is_some() {
                pending.retain(|(v, _)| *v != value);
                if pending.len() >= 8 {
                    pending.remove(0);
                }
                pending.push((value, ts));
            }
            while cycles.front().is_some_and(|t| *t <= ts - window_ms) || cycles.len() > *threshold as usize {
                cycles.pop_front();
            }
            let count = cycles.len() as u32;
            (completed && count >= *threshold).then_some(Fired { count, detail })
        }
        Condition::Ratio { numerator, window_ms, min_events, min_share, baseline, .. } => {
            let is_num = matches(numerator, event, ua_bits, set).is_some();
            if !matches!(slot.state, KeyState::Ratio { .. }) {
                slot.state = KeyState::Ratio {
                    short: Buckets::new(*window_ms, 12),
                    long: baseline.map(|b| Buckets::new(b.window_ms, 168)),
                };
                if let Some(b) = baseline {
                    slot.expires_at = slot.expires_at.max(ts + b.window_ms);
                }
            }
            let KeyState::Ratio { short, long } = &mut slot.state else { unreachable!() };
            let (num, den) = short.add(ts, is_num, *window_ms);
            let share = f64::from(num) / f64::from(den.max(1));
            let mut holds = den >= *min_events && share >= *min_share;
            let mut detail = format!("{num} of {den} ({:.0} %)", share * 100.0);
            if let (Some(b), Some(long)) = (baseline, long) {
                slot.expires_at = slot.expires_at.max(ts + b.window_ms);
                let (lnum, lden) = long.add(ts, is_num, b.window_ms);
                // The baseline excludes the current window's events.
                let (bnum, bden) = (lnum.saturating_sub(num), lden.saturating_sub(den));
                let base = if bden == 0 { 0.0 } else { f64::from(bnum) / f64::from(bden) };
                let base = base.max(b.floor);
                holds &= share > b.multiplier * base;
                detail = format!("{detail}, baseline {:.0} %", base * 100.0);
            }
            holds.then_some(Fired { count: num, detail })
        }
        Condition::Behaviour { feature } => {
            let (count, detail) = features?.check(feature)?;
            Some(Fired { count, detail })
        }
    }
}

fn human_window(ms: i64) -> String {
    let s = ms / 1000;
    match s {
        0 => "one event".into(),
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}
