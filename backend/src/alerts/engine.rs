//! The pure alert core: verdict changes in, alerts out, in event time. No I/O and no wall
//! clock: `observe` uses the threat's `at`, `tick` and `traffic` the time they are given, so
//! tests and replays are exact. The state is stored per tenant next to its policy.
//!
//! Cooldown key: `<trigger>:<what>` — `card_testing:<rule id>` (one card-testing attack seen
//! from many sessions and networks is one incident per rule), `high_risk_burst`,
//! `traffic_spike`, `traffic_drop`. Subjects are not part of the key on purpose: an attack
//! judges hundreds of subjects, and a key per subject would be a message per subject.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::policy::AlertPolicy;
use super::redact::{describe_subject, scrub};

/// Why an alert was raised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    CardTesting,
    HighRiskBurst,
    TrafficSpike,
    TrafficDrop,
    /// Alerts held during quiet hours or suppressed by a cooldown, summed up.
    Rollup,
    Digest,
    Test,
    /// The tenant went over its plan's monthly session quota (one per month, email only).
    QuotaExceeded,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::CardTesting => "card_testing",
            AlertKind::HighRiskBurst => "high_risk_burst",
            AlertKind::TrafficSpike => "traffic_spike",
            AlertKind::TrafficDrop => "traffic_drop",
            AlertKind::Rollup => "rollup",
            AlertKind::Digest => "digest",
            AlertKind::Test => "test",
            AlertKind::QuotaExceeded => "quota_exceeded",
        }
    }
}

/// One message, channel-neutral; rendered per channel at delivery. Carries no shopper
/// personal data: subjects are labels from [`describe_subject`], sentences pass [`scrub`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub kind: AlertKind,
    pub title: String,
    pub summary: String,
    pub details: Vec<String>,
    /// E.g. `session 7541…`, `network 203.0.113.0/24`.
    pub subject: Option<String>,
    /// Panel path of the session or threat list, e.g. `/app/sessions/7541`.
    pub link_path: String,
    pub decision: Option<String>,
    pub score: Option<u8>,
    /// Event time, ms.
    pub at: i64,
    /// Alerts of the same key suppressed by the cooldown since the previous one.
    pub suppressed: u32,
}

/// A verdict change as the alert core sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct ThreatFacts {
    pub subject: String,
    pub decision: String,
    pub score: u8,
    pub reasons: Vec<ReasonFacts>,
    pub at: i64,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ReasonFacts {
    pub rule: String,
    pub sentence: String,
    #[serde(default)]
    pub shadow: bool,
}

/// Per-tenant memory of the alert core.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    #[serde(default)]
    pub cooldowns: BTreeMap<String, Cooldown>,
    /// Newest counted subjects inside the burst window (at most `burst_subjects`).
    #[serde(default)]
    pub burst: Vec<BurstEntry>,
    /// Alerts held back (quiet hours, expired cooldowns with suppressed alerts) by key.
    #[serde(default)]
    pub held: BTreeMap<String, Held>,
    /// Counted verdicts per rule family since the last digest.
    #[serde(default)]
    pub counts: BTreeMap<String, u64>,
    #[serde(default)]
    pub last_digest_day: Option<i32>,
    #[serde(default)]
    pub last_traffic_check: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cooldown {
    pub until: i64,
    pub suppressed: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BurstEntry {
    pub subject: String,
    pub rule: String,
    pub at: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Held {
    pub title: String,
    pub count: u64,
    pub first_at: i64,
    pub last_at: i64,
}

/// Rule family of a rule id (`card/ct1-ip-failures` → `card`).
pub fn family(rule: &str) -> &str {
    rule.split('/').next().unwrap_or(rule)
}

/// Feeds one verdict change; returns the alert to send now, if any.
pub fn observe(policy: &AlertPolicy, state: &mut AlertState, t: &ThreatFacts) -> Option<Alert> {
    if !policy.counts_decision(&t.decision) {
        return None;
    }
    let live: Vec<&ReasonFacts> = t.reasons.iter().filter(|r| !r.shadow).collect();
    let counted: Vec<&ReasonFacts> = live.iter().copied().filter(|r| policy.counts_family(family(&r.rule))).collect();
    let primary = counted.first()?;
    *state.counts.entry(family(&primary.rule).to_owned()).or_default() += 1;

    if policy.card_testing
        && let Some(card) = counted.iter().find(|r| family(&r.rule) == "card")
    {
        let alert = card_alert(t, card, &live);
        return emit(policy, state, &format!("card_testing:{}", card.rule), alert);
    }
    if policy.burst_subjects == 0 {
        return None;
    }
    let horizon = t.at - policy.burst_window_ms();
    state.burst.retain(|e| e.at > horizon && e.subject != t.subject);
    state.burst.push(BurstEntry { subject: t.subject.clone(), rule: primary.rule.clone(), at: t.at });
    state.burst.sort_by_key(|e| e.at);
    let keep = policy.burst_subjects as usize;
    if state.burst.len() > keep {
        state.burst.drain(..state.burst.len() - keep);
    }
    if state.burst.len() < keep {
        return None;
    }
    let alert = burst_alert(policy, t, &state.burst);
    state.burst.clear();
    emit(policy, state, "high_risk_burst", alert)
}

/// Applies quiet hours and the cooldown of `key` to a candidate alert.
fn emit(policy: &AlertPolicy, state: &mut AlertState, key: &str, mut alert: Alert) -> Option<Alert> {
    if policy.is_quiet(alert.at) {
        hold(state, key, &key_title(key), 1, alert.at);
        return None;
    }
    if let Some(cd) = state.cooldowns.get_mut(key)
        && alert.at < cd.until
    {
        cd.suppressed += 1;
        return None;
    }
    alert.suppressed = state.cooldowns.remove(key).map_or(0, |c| c.suppressed);
    state.cooldowns.insert(key.to_owned(), Cooldown { until: alert.at + policy.cooldown_ms(), suppressed: 0 });
    Some(alert)
}

fn hold(state: &mut AlertState, key: &str, title: &str, count: u64, at: i64) {
    let held = state.held.entry(key.to_owned()).or_insert_with(|| Held {
        title: title.to_owned(),
        count: 0,
        first_at: at,
        last_at: at,
    });
    held.count += count;
    held.first_at = held.first_at.min(at);
    held.last_at = held.last_at.max(at);
}

/// Periodic step at `now`: ends cooldowns (what they suppressed is held for the next summary),
/// sends the daily digest when due, or else the roll-up of held alerts once quiet hours end.
pub fn tick(policy: &AlertPolicy, state: &mut AlertState, now: i64) -> Vec<Alert> {
    let expired: Vec<String> = state.cooldowns.iter().filter(|(_, c)| c.until <= now).map(|(k, _)| k.clone()).collect();
    for key in expired {
        if let Some(cd) = state.cooldowns.remove(&key)
            && cd.suppressed > 0
        {
            hold(state, &key, &format!("{} (suppressed by the cooldown)", key_title(&key)), cd.suppressed.into(), now);
        }
    }
    let mut out = Vec::new();
    if policy.digest {
        let (day, hour) = policy.local_day_hour(now);
        if hour >= policy.digest_hour && state.last_digest_day != Some(day) {
            state.last_digest_day = Some(day);
            if !state.held.is_empty() || !state.counts.is_empty() {
                out.push(digest(state, now));
            }
        }
    } else if !state.held.is_empty() && !policy.is_quiet(now) {
        out.push(rollup(state, now));
    }
    out
}

/// The traffic check at `now`: sessions started in the last hour against the hourly baseline.
pub fn traffic(
    policy: &AlertPolicy,
    state: &mut AlertState,
    now: i64,
    last_hour: u64,
    baseline_per_hour: f64,
) -> Option<Alert> {
    state.last_traffic_check = now;
    if !policy.traffic || baseline_per_hour < f64::from(policy.traffic_min_baseline) {
        return None;
    }
    let current = last_hour as f64;
    let (kind, key, word) = if current >= policy.traffic_spike_ratio * baseline_per_hour {
        (AlertKind::TrafficSpike, "traffic_spike", "spike")
    } else if current <= policy.traffic_drop_ratio * baseline_per_hour {
        (AlertKind::TrafficDrop, "traffic_drop", "drop")
    } else {
        return None;
    };
    let alert = Alert {
        kind,
        title: format!("Traffic {word}: {last_hour} sessions in the last hour"),
        summary: format!(
            "{last_hour} sessions started in the last hour; the hourly average of the previous 7 days is {baseline_per_hour:.1}."
        ),
        details: vec![format!("Ratio to baseline: {:.2}×", current / baseline_per_hour)],
        subject: None,
        link_path: "/app".into(),
        decision: None,
        score: None,
        at: now,
        suppressed: 0,
    };
    emit(policy, state, key, alert)
}

fn key_title(key: &str) -> String {
    match key.split_once(':') {
        Some(("card_testing", rule)) => format!("Card testing ({rule})"),
        _ => match key {
            "high_risk_burst" => "High-risk burst".into(),
            "traffic_spike" => "Traffic spike".into(),
            "traffic_drop" => "Traffic drop".into(),
            other => other.into(),
        },
    }
}

fn card_alert(t: &ThreatFacts, card: &ReasonFacts, live: &[&ReasonFacts]) -> Alert {
    let (subject, link_path) = describe_subject(&t.subject);
    Alert {
        kind: AlertKind::CardTesting,
        title: format!("Card testing detected ({}, score {})", t.decision, t.score),
        summary: scrub(&card.sentence),
        details: live.iter().map(|r| format!("{}: {}", r.rule, scrub(&r.sentence))).collect(),
        subject: Some(subject),
        link_path,
        decision: Some(t.decision.clone()),
        score: Some(t.score),
        at: t.at,
        suppressed: 0,
    }
}

fn burst_alert(policy: &AlertPolicy, t: &ThreatFacts, burst: &[BurstEntry]) -> Alert {
    let mut rules: BTreeMap<&str, u32> = BTreeMap::new();
    for e in burst {
        *rules.entry(e.rule.as_str()).or_default() += 1;
    }
    let mut by_count: Vec<(&str, u32)> = rules.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let (subject, link_path) = describe_subject(&t.subject);
    Alert {
        kind: AlertKind::HighRiskBurst,
        title: format!("{} high-risk sessions within {} minutes", burst.len(), policy.burst_window_minutes),
        summary: format!(
            "{} distinct sessions or clients were judged {} within {} minutes; the latest is {subject}.",
            burst.len(),
            policy.decisions.join(" or "),
            policy.burst_window_minutes
        ),
        details: by_count.iter().map(|(rule, n)| format!("{rule}: {n}")).collect(),
        subject: Some(subject),
        link_path,
        decision: Some(t.decision.clone()),
        score: Some(t.score),
        at: t.at,
        suppressed: 0,
    }
}

fn held_lines(state: &mut AlertState) -> (u64, Vec<String>) {
    let held = std::mem::take(&mut state.held);
    let total = held.values().map(|h| h.count).sum();
    let lines = held.values().map(|h| format!("{} × {}", h.count, h.title)).collect();
    (total, lines)
}

fn rollup(state: &mut AlertState, now: i64) -> Alert {
    let (total, details) = held_lines(state);
    Alert {
        kind: AlertKind::Rollup,
        title: format!("{total} alerts held back"),
        summary: "Alerts held during quiet hours or suppressed by the cooldown since the last message.".into(),
        details,
        subject: None,
        link_path: "/app/threats".into(),
        decision: None,
        score: None,
        at: now,
        suppressed: 0,
    }
}

fn digest(state: &mut AlertState, now: i64) -> Alert {
    let counts = std::mem::take(&mut state.counts);
    let verdicts: u64 = counts.values().sum();
    let (held, held_details) = held_lines(state);
    let mut details: Vec<String> = counts.iter().map(|(f, n)| format!("{f}: {n} verdicts")).collect();
    details.extend(held_details);
    Alert {
        kind: AlertKind::Digest,
        title: format!("Daily digest: {verdicts} alerting verdicts"),
        summary: format!(
            "{verdicts} verdicts matched your alert policy since the last digest; {held} alerts were held back."
        ),
        details,
        subject: None,
        link_path: "/app/threats".into(),
        decision: None,
        score: None,
        at: now,
        suppressed: 0,
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
