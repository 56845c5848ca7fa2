//! The pure core: `observe(site, event) -> signals (+ a verdict when it changed)`. Synchronous,
//! no I/O and no wall clock: time is the event's `ts`, so live traffic, replays and tests agree.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::Serialize;

use super::event::DetectEvent;
use super::features::SessionFeatures;
use super::filter::matches;
pub use super::keys::subject_of;
use super::keys::{field_of, hash_str, key_hash, key_text, subject_hash};
use super::rules::{CompiledRule, Condition, KeyKind, RuleError, RuleSet};
use super::score::{Policy, Signal, Verdict};
use super::state::{
    Buckets, FEATURES_SLOT, KeyState, MemoryStore, RatioState, SequenceState, StateKey, StateStore, VERDICT_SLOT,
};
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
/// Runs of one batch before it falls back to one transaction per slot (shared stores).
const BATCH_ATTEMPTS: u32 = 8;
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
    /// Plan limits: when set, tenants outside `unlimited` run only these rule families.
    core_families: Option<Arc<[String]>>,
    /// Tenants whose plan runs every family.
    unlimited: HashSet<i64>,
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
        Engine {
            default_rules: Rules::new(rules),
            tenants: HashMap::new(),
            default_policy: Policy::default(),
            core_families: None,
            unlimited: HashSet::new(),
            store,
        }
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

    /// Plan limits: with `core` set, every tenant not in `unlimited` runs only the rules of the
    /// `core` families; rules outside them neither signal nor keep state for it. `None` lifts
    /// every limit (plans not enforced).
    pub fn set_plan_limits(&mut self, core: Option<Arc<[String]>>, unlimited: HashSet<i64>) {
        self.core_families = core;
        self.unlimited = unlimited;
    }

    pub fn policy(&self, site: SiteId) -> &Policy {
        self.tenants.get(&site.0).map(|t| &t.0).unwrap_or(&self.default_policy)
    }

    /// Feeds one event; returns the signals it raised and the subject's verdict if it changed.
    pub fn observe(&mut self, site: SiteId, event: &DetectEvent) -> Observation {
        let Engine { default_rules, tenants, default_policy, core_families, unlimited, store } = self;
        let families = core_families.as_ref().filter(|_| !unlimited.contains(&site.0));
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
        // One hash of the subject per event: the verdict slot and every subject-keyed rule use it.
        let subject_key = subject_hash(event);
        let mut hits = Vec::new();
        let set = rules.set.clone();
        for &index in set.rules_for(event.body.event_type()) {
            let rule = &set.rules[index as usize];
            if !rule.spec.enabled || policy.rules.get(rule.id.as_str()).and_then(|o| o.enabled) == Some(false) {
                continue;
            }
            if families.is_some_and(|f| !f.iter().any(|family| family == rule.id.family())) {
                continue;
            }
            if let Some(hit) = evaluate(store, site, index, rule, event, ua_bits, features.as_ref(), subject_key, &set)
            {
                hits.push(hit);
            }
        }
        let render_all = |hits: &[Hit]| -> Vec<Signal> {
            hits.iter().map(|hit| render(hit, &set.rules[hit.index as usize], event, policy)).collect()
        };
        let Some(subject_key) = subject_key else {
            return Observation { signals: render_all(&hits), verdict: None };
        };
        let key = StateKey { site: site.0, rule: VERDICT_SLOT, key: subject_key };
        if hits.is_empty() && !store.contains(&key) {
            return Observation::default();
        }
        let mut signals = Vec::new();
        let verdict = store.update(key, ts, |slot| {
            if !matches!(slot.state, KeyState::Verdict(_)) {
                slot.state = KeyState::Verdict(Box::default());
            }
            let KeyState::Verdict(v) = &mut slot.state else { unreachable!() };
            // Window rules keep firing while they hold; the subject is not given a rule's signal
            // again within its cooldown. Dropped before rendering, which allocates several strings.
            hits.retain(|hit| !v.holds(&set.rules[hit.index as usize], ts));
            signals = render_all(&hits);
            let changed = v.apply_changed(ts, signals.clone(), policy);
            let longest = v.active.iter().map(|s| s.ts + s.ttl_ms).max().unwrap_or(ts);
            slot.expires_at = slot.expires_at.max(longest).max(ts + SESSION_IDLE_MS);
            // The subject has text whenever it has a hash (both come from `write_subject`).
            changed.then(|| subject_of(event).map(|subject| v.verdict(&subject, ts, policy))).flatten()
        });
        Observation { signals, verdict }
    }

    /// Feeds the events of one batch (e.g. one ingest request) in order. On a store that stages
    /// batches (Redis) the batch is one optimistic transaction: the slots it will probably touch
    /// are read in one round trip, written in one, and the batch runs again if another node
    /// changed one of them meanwhile; the results of a run that did not commit are dropped.
    pub fn observe_batch(&mut self, site: SiteId, events: &[DetectEvent]) -> Vec<Observation> {
        if events.is_empty() || !self.store.batches() {
            return events.iter().map(|e| self.observe(site, e)).collect();
        }
        let keys = self.batch_keys(site, events);
        for attempt in 0..BATCH_ATTEMPTS {
            if attempt > 0 {
                // A short random back-off, so two nodes on one hot key do not collide again.
                let micros = rand::random_range(10..100) * u64::from(attempt);
                std::thread::sleep(std::time::Duration::from_micros(micros));
            }
            self.store.begin_batch(&keys);
            let observed: Vec<Observation> = events.iter().map(|e| self.observe(site, e)).collect();
            if self.store.commit_batch() {
                return observed;
            }
        }
        // Persistent contention: one transaction per slot, which always makes progress.
        events.iter().map(|e| self.observe(site, e)).collect()
    }

    /// The slots a batch will probably touch: each event's session features and verdict, and
    /// the key of every rule whose filter accepts it (behaviour rules only touch state when
    /// they fire, so they are read on demand).
    fn batch_keys(&mut self, site: SiteId, events: &[DetectEvent]) -> Vec<StateKey> {
        let rules = match self.tenants.get_mut(&site.0) {
            Some((_, r)) => r,
            None => &mut self.default_rules,
        };
        let set = rules.set.clone();
        let mut keys = Vec::with_capacity(events.len() * 4);
        for event in events {
            if let Some(session) = event.session {
                keys.push(StateKey { site: site.0, rule: FEATURES_SLOT, key: session as u64 });
            }
            if let Some(subject) = subject_hash(event) {
                keys.push(StateKey { site: site.0, rule: VERDICT_SLOT, key: subject });
            }
            let ua_bits = match event.user_agent.as_deref() {
                Some(ua) if !set.ua_matchers.is_empty() => rules.ua_bits(ua),
                _ => 0,
            };
            for &index in set.rules_for(event.body.event_type()) {
                let rule = &set.rules[index as usize];
                let relevant = match &rule.condition {
                    Condition::Trigger { filter }
                    | Condition::Threshold { filter, .. }
                    | Condition::Distinct { filter, .. }
                    | Condition::Ratio { filter, .. } => matches(filter, event, ua_bits, &set).is_some(),
                    Condition::Sequence { first, then, unless_between, .. } => {
                        matches(first, event, ua_bits, &set).is_some()
                            || matches(then, event, ua_bits, &set).is_some()
                            || unless_between.as_ref().is_some_and(|f| matches(f, event, ua_bits, &set).is_some())
                    }
                    Condition::Behaviour { .. } => false,
                };
                if relevant && let Some(key) = key_hash(rule.key, event) {
                    keys.push(StateKey { site: site.0, rule: index, key });
                }
            }
        }
        keys
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

/// What a fired condition reports: count and detail.
struct Fired {
    count: u32,
    detail: String,
}

/// A rule whose condition held for an event. Its [`Signal`] (reason sentence, key text, event
/// summary: several allocations) is rendered only once the subject's verdict state has kept it.
struct Hit {
    index: u16,
    fired: Fired,
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
    subject_key: Option<u64>,
    set: &RuleSet,
) -> Option<Hit> {
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
        Condition::Behaviour { feature } => {
            features?.holds(feature)?;
            // `step` renders the sentence, and only when the rule is not in its cooldown.
            String::new()
        }
    };
    let key = match rule.key {
        KeyKind::Subject => subject_key?,
        kind => key_hash(kind, event)?,
    };
    let state_key = StateKey { site: site.0, rule: index, key };
    let (_, window_ms) = rule.condition.threshold_and_window();
    let keep_for = window_ms.max(rule.cooldown_ms).max(1);
    let fired = store.update(state_key, ts, |slot| {
        slot.expires_at = slot.expires_at.max(ts + keep_for);
        // Triggers and behaviour rules are keyed by their subject: a key cooldown is enough.
        // Window rules keep firing while they hold, so that every subject of an attacking
        // network is judged; the verdict state drops repeats per subject. (`step` keeps no state
        // for triggers and behaviour rules, so the cooldown can be checked before it.)
        let keyed_cooldown = matches!(rule.condition, Condition::Trigger { .. } | Condition::Behaviour { .. });
        if keyed_cooldown && ts < slot.cooldown_until {
            return None;
        }
        let fired = step(slot, rule, event, ua_bits, features, set, &detail)?;
        if keyed_cooldown {
            slot.cooldown_until = ts + rule.cooldown_ms;
        }
        Some(fired)
    })?;
    Some(Hit { index, fired })
}

/// The signal of a rule that held: its sentence with the counts filled in, the key as text, a
/// summary of the event.
fn render(hit: &Hit, rule: &CompiledRule, event: &DetectEvent, policy: &Policy) -> Signal {
    let Hit { fired, .. } = hit;
    let (threshold, window_ms) = rule.condition.threshold_and_window();
    let window = human_window(window_ms);
    let key_text = key_text(rule.key, event);
    let reason = rule
        .reason
        .replace("{count}", &fired.count.to_string())
        .replace("{threshold}", &threshold.to_string())
        .replace("{window}", &window)
        .replace("{detail}", &fired.detail)
        .replace("{key}", &format!("{} {}", rule.key.as_str(), key_text));
    Signal {
        rule: rule.id.clone(),
        behavior: rule.behavior.clone(),
        key_kind: rule.key,
        key: key_text,
        ts: event.ts,
        count: fired.count,
        threshold,
        window_secs: (window_ms / 1000) as u64,
        weight: rule.weight,
        confidence: rule.confidence,
        spoofable: rule.spoofable,
        attack: rule.attack,
        shadow: policy.is_shadow(rule.id.as_str()),
        ttl_ms: rule.ttl_ms,
        cooldown_ms: rule.cooldown_ms,
        reason,
        sample: event.summary(),
    }
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
    // The filter's detail is copied only when the condition holds.
    let owned_detail = || detail.to_owned();
    match &rule.condition {
        Condition::Trigger { .. } => Some(Fired { count: 1, detail: owned_detail() }),
        Condition::Threshold { window_ms, threshold, .. } => {
            if !matches!(slot.state, KeyState::Times(_)) {
                slot.state = KeyState::Times(Default::default());
            }
            let KeyState::Times(times) = &mut slot.state else { unreachable!() };
            // Keep the latest `threshold` times: make room first, so the buffer never grows
            // beyond `threshold` entries.
            let keep = *threshold as usize;
            while times.len() >= keep.max(1) {
                times.pop_front();
            }
            if times.len() == times.capacity() {
                times.reserve_exact(grown(times.capacity(), keep) - times.len());
            }
            times.push_back(ts);
            let count = times.iter().filter(|t| **t > ts - window_ms).count() as u32;
            (count >= *threshold).then(|| Fired { count, detail: owned_detail() })
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
                None => {
                    // At most `threshold` values: the oldest makes room for the new one.
                    let keep = *threshold as usize;
                    if values.len() >= keep
                        && let Some(oldest) = values.iter().enumerate().min_by_key(|(_, (_, t))| *t).map(|(i, _)| i)
                    {
                        values.swap_remove(oldest);
                    }
                    if values.len() == values.capacity() {
                        values.reserve_exact(grown(values.capacity(), keep) - values.len());
                    }
                    values.push((value, ts));
                }
            }
            let count = values.len() as u32;
            (count >= *threshold).then(|| Fired { count, detail: owned_detail() })
        }
        Condition::Sequence { first, then, within_ms, same, unless_between, window_ms, threshold } => {
            if !matches!(slot.state, KeyState::Sequence(_)) {
                slot.state = KeyState::Sequence(Box::default());
            }
            let KeyState::Sequence(sequence) = &mut slot.state else { unreachable!() };
            let SequenceState { pending, cycles } = &mut **sequence;
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
            (completed && count >= *threshold).then(|| Fired { count, detail: owned_detail() })
        }
        Condition::Ratio { numerator, window_ms, min_events, min_share, baseline, .. } => {
            let is_num = matches(numerator, event, ua_bits, set).is_some();
            if !matches!(slot.state, KeyState::Ratio(_)) {
                slot.state = KeyState::Ratio(Box::new(RatioState {
                    short: Buckets::new(*window_ms, 12),
                    long: baseline.map(|b| Buckets::new(b.window_ms, 168)),
                }));
                if let Some(b) = baseline {
                    slot.expires_at = slot.expires_at.max(ts + b.window_ms);
                }
            }
            let KeyState::Ratio(ratio) = &mut slot.state else { unreachable!() };
            let RatioState { short, long } = &mut **ratio;
            let (num, den) = short.add(ts, is_num, *window_ms);
            let share = f64::from(num) / f64::from(den.max(1));
            let mut holds = den >= *min_events && share >= *min_share;
            let mut baseline_share = None;
            if let (Some(b), Some(long)) = (baseline, long) {
                slot.expires_at = slot.expires_at.max(ts + b.window_ms);
                let (lnum, lden) = long.add(ts, is_num, b.window_ms);
                // The baseline excludes the current window's events.
                let (bnum, bden) = (lnum.saturating_sub(num), lden.saturating_sub(den));
                let base = if bden == 0 { 0.0 } else { f64::from(bnum) / f64::from(bden) };
                let base = base.max(b.floor);
                holds &= share > b.multiplier * base;
                baseline_share = Some(base);
            }
            holds.then(|| {
                let detail = format!("{num} of {den} ({:.0} %)", share * 100.0);
                let detail = match baseline_share {
                    Some(base) => format!("{detail}, baseline {:.0} %", base * 100.0),
                    None => detail,
                };
                Fired { count: num, detail }
            })
        }
        Condition::Behaviour { feature } => {
            let (count, detail) = features?.check(feature)?;
            Some(Fired { count, detail })
        }
    }
}

/// The next capacity of a window buffer: doubling, but never beyond the `keep` entries the
/// rule needs (the default growth would round a threshold of 10 up to 16 slots).
fn grown(capacity: usize, keep: usize) -> usize {
    (capacity * 2).max(4).min(keep.max(1)).max(capacity + 1)
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
