//! From signals to a verdict: a noisy-OR of per-rule probabilities mapped to 0–100, bands to
//! ALLOW / CHALLENGE / BLOCK, and the per-tenant policy (bands, overrides, allowlists, shadow).
//! Detection is not decision: rules only emit signals; this module and the policy decide.

use std::collections::BTreeMap;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::rules::{CompiledRule, KeyKind, RuleId};

/// What one rule observed for one key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    pub rule: RuleId,
    pub behavior: String,
    pub key_kind: KeyKind,
    /// The key value as shown to people (IP prefixes are already truncated).
    pub key: String,
    pub ts: i64,
    pub count: u32,
    pub threshold: u32,
    pub window_secs: u64,
    pub weight: f64,
    pub confidence: f64,
    pub spoofable: bool,
    pub attack: bool,
    /// Recorded and explained, but not scored (policy shadow mode).
    pub shadow: bool,
    pub ttl_ms: i64,
    /// A subject is not given the same rule's signal again within this time.
    #[serde(skip)]
    pub cooldown_ms: i64,
    /// The rule's sentence with the counts filled in.
    pub reason: String,
    /// The event that completed the condition (no personal data).
    pub sample: String,
}

impl Signal {
    fn probability(&self) -> f64 {
        if self.shadow || !self.attack { 0.0 } else { (self.weight * self.confidence).clamp(0.0, 1.0) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Decision {
    Allow,
    Challenge,
    Block,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "ALLOW",
            Decision::Challenge => "CHALLENGE",
            Decision::Block => "BLOCK",
        }
    }

    pub fn parse(s: &str) -> Option<Decision> {
        match s.to_ascii_uppercase().as_str() {
            "ALLOW" => Some(Decision::Allow),
            "CHALLENGE" => Some(Decision::Challenge),
            "BLOCK" => Some(Decision::Block),
            _ => None,
        }
    }
}

/// One line of "why".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub rule: String,
    pub sentence: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
}

/// The counters behind a reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub rule: String,
    pub behavior: String,
    pub key: String,
    pub count: u32,
    pub threshold: u32,
    pub window_secs: u64,
    pub at: i64,
    pub sample: String,
}

/// The judgement of one subject (session or client key) at an event time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub subject: String,
    pub decision: Decision,
    pub score: u8,
    pub reasons: Vec<Reason>,
    /// How long the decision holds without new evidence.
    pub ttl: u64,
    pub evidence: Vec<Evidence>,
    /// Non-attack labels (e.g. a declared crawler).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Event time of the verdict (ms).
    pub at: i64,
}

/// Live signals of one subject (kept in the state store).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VerdictState {
    /// At most one signal per rule: the latest.
    pub active: Vec<Signal>,
    pub last: Option<(Decision, u8, Vec<String>)>,
}

/// Score bands and the tenant's choices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Scores from here are CHALLENGE.
    pub challenge_at: u8,
    /// Scores from here are BLOCK.
    pub block_at: u8,
    /// Per-rule changes by rule id.
    pub rules: BTreeMap<String, RuleOverride>,
    /// Clients in these networks are never judged.
    pub allow_ips: Vec<IpNet>,
    /// User agents containing one of these (case-insensitive) are never judged.
    pub allow_user_agents: Vec<String>,
    /// Verdict of a subject with no active signal holds this long (s).
    pub allow_ttl_secs: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            challenge_at: 30,
            block_at: 70,
            rules: BTreeMap::new(),
            allow_ips: Vec::new(),
            allow_user_agents: Vec::new(),
            allow_ttl_secs: 60,
        }
    }
}

/// A tenant's change to one rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuleOverride {
    pub enabled: Option<bool>,
    /// Run but do not score.
    pub shadow: bool,
    pub threshold: Option<u32>,
    pub window_secs: Option<u64>,
}

impl Policy {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=100).contains(&self.challenge_at) || self.challenge_at >= self.block_at || self.block_at > 100 {
            return Err(format!(
                "bands must satisfy 1 <= challenge_at < block_at <= 100 (got {} and {})",
                self.challenge_at, self.block_at
            ));
        }
        Ok(())
    }

    pub fn is_shadow(&self, rule: &str) -> bool {
        self.rules.get(rule).is_some_and(|o| o.shadow)
    }

    pub fn allows(&self, ip: Option<&IpNet>, user_agent: Option<&str>) -> bool {
        if self.allow_ips.is_empty() && self.allow_user_agents.is_empty() {
            return false;
        }
        if let Some(ip) = ip
            && self.allow_ips.iter().any(|net| net.contains(ip) || net.contains(&ip.network()))
        {
            return true;
        }
        if let Some(ua) = user_agent {
            let ua = ua.to_ascii_lowercase();
            return self.allow_user_agents.iter().any(|t| !t.is_empty() && ua.contains(&t.to_ascii_lowercase()));
        }
        false
    }
}

/// Combines live signals into a score and a decision.
///
/// Noisy-OR: `score = 100 × (1 − Π(1 − weight × confidence))`, so weak signals add up and one
/// strong one decides. A BLOCK needs either a signal that is not a spoofable client flag or at
/// least two different rules: one client-reported flag alone is capped at CHALLENGE.
pub fn combine(signals: &[Signal], policy: &Policy) -> (Decision, u8) {
    combine_live(signals, policy)
}

/// [`combine`] over borrowed signals (the verdict state scores its live signals in place).
fn combine_live<'a>(signals: impl IntoIterator<Item = &'a Signal>, policy: &Policy) -> (Decision, u8) {
    let mut keep = 1.0;
    // Only "fewer than two scoring rules" matters: the first scoring rule, and whether another
    // one scored too.
    let mut first_rule: Option<&str> = None;
    let mut several_rules = false;
    let mut any_unspoofable = false;
    for s in signals {
        let p = s.probability();
        if p > 0.0 {
            keep *= 1.0 - p;
            match first_rule {
                None => first_rule = Some(s.rule.as_str()),
                Some(r) => several_rules |= r != s.rule.as_str(),
            }
            any_unspoofable |= !s.spoofable;
        }
    }
    let mut score = ((1.0 - keep) * 100.0).round().clamp(0.0, 100.0) as u8;
    if score >= policy.block_at && !any_unspoofable && !several_rules {
        score = policy.block_at - 1;
    }
    let decision = if score >= policy.block_at {
        Decision::Block
    } else if score >= policy.challenge_at {
        Decision::Challenge
    } else {
        Decision::Allow
    };
    (decision, score)
}

/// Whether `rules` (the rule ids of the last verdict) are those of `active`, in order.
fn same_rules(rules: &[String], active: &[Signal]) -> bool {
    rules.len() == active.len() && rules.iter().zip(active).all(|(r, s)| r == s.rule.as_str())
}

impl VerdictState {
    /// Whether this subject already holds `rule`'s signal within the rule's cooldown: a new one
    /// would repeat it, and is dropped.
    pub fn holds(&self, rule: &CompiledRule, now: i64) -> bool {
        self.active.iter().any(|a| a.rule == rule.id && a.ts + rule.cooldown_ms > now)
    }

    /// Adds new signals, drops expired ones, and returns the verdict if the decision, score band
    /// or the set of reasons changed.
    pub fn apply(&mut self, subject: &str, now: i64, new: Vec<Signal>, policy: &Policy) -> Option<Verdict> {
        self.apply_changed(now, new, policy).then(|| self.verdict(subject, now, policy))
    }

    /// [`apply`](Self::apply) without building the verdict: whether it changed, so that the
    /// caller renders it (subject, reasons, evidence) only then. Most events of a judged subject
    /// change nothing, and building a verdict allocates a string per reason and evidence.
    pub fn apply_changed(&mut self, now: i64, new: Vec<Signal>, policy: &Policy) -> bool {
        self.active.retain(|s| s.ts + s.ttl_ms > now);
        // Room for exactly the new rules: a `push` would round the buffer up to 4 signals
        // (~700 bytes) for the one most subjects ever hold (state budget, issue 4 §7).
        let added = new.iter().filter(|s| !self.active.iter().any(|a| a.rule == s.rule)).count();
        self.active.reserve_exact(added);
        for s in new {
            match self.active.iter_mut().find(|a| a.rule == s.rule) {
                Some(a) => *a = s,
                None => self.active.push(s),
            }
        }
        self.active.sort_by(|a, b| a.rule.cmp(&b.rule));
        // Every active signal is live at `now` (expired ones were just dropped), so this is the
        // score `verdict` would report.
        let (decision, score) = combine_live(self.active.iter(), policy);
        let last = self.last.as_ref();
        if last.is_some_and(|(d, sc, rules)| (*d, *sc) == (decision, score) && same_rules(rules, &self.active)) {
            return false;
        }
        let changed_decision = !last.is_some_and(|(d, _, rules)| *d == decision && same_rules(rules, &self.active));
        let first = last.is_none();
        let rules: Vec<String> = self.active.iter().map(|s| s.rule.to_string()).collect();
        self.last = Some((decision, score, rules));
        // Score drift alone (with the same rules and decision) is not a change worth recording.
        changed_decision || first
    }

    pub fn verdict(&self, subject: &str, now: i64, policy: &Policy) -> Verdict {
        let live: Vec<&Signal> = self.active.iter().filter(|s| s.ts + s.ttl_ms > now).collect();
        let (decision, score) = combine_live(live.iter().copied(), policy);
        let ttl = live
            .iter()
            .filter(|s| s.attack && !s.shadow)
            .map(|s| ((s.ts + s.ttl_ms - now).max(0) / 1000) as u64)
            .max()
            .unwrap_or(policy.allow_ttl_secs);
        Verdict {
            subject: subject.to_owned(),
            decision,
            score,
            reasons: live
                .iter()
                .map(|s| Reason { rule: s.rule.to_string(), sentence: s.reason.clone(), shadow: s.shadow })
                .collect(),
            ttl,
            evidence: live
                .iter()
                .map(|s| Evidence {
                    rule: s.rule.to_string(),
                    behavior: s.behavior.clone(),
                    key: format!("{}:{}", s.key_kind.as_str(), s.key),
                    count: s.count,
                    threshold: s.threshold,
                    window_secs: s.window_secs,
                    at: s.ts,
                    sample: s.sample.clone(),
                })
                .collect(),
            labels: live.iter().filter(|s| !s.attack).map(|s| s.behavior.clone()).collect(),
            at: now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(rule: &str, weight: f64, spoofable: bool) -> Signal {
        Signal {
            rule: RuleId(rule.into()),
            behavior: "test".into(),
            key_kind: KeyKind::Session,
            key: "1".into(),
            ts: 0,
            count: 1,
            threshold: 1,
            window_secs: 0,
            weight,
            confidence: 1.0,
            spoofable,
            attack: true,
            shadow: false,
            ttl_ms: 60_000,
            cooldown_ms: 60_000,
            reason: "r".into(),
            sample: "s".into(),
        }
    }

    #[test]
    fn weak_signals_add_up_and_a_strong_one_decides() {
        let p = Policy::default();
        assert_eq!(combine(&[], &p), (Decision::Allow, 0));
        assert_eq!(combine(&[signal("a", 0.2, false)], &p), (Decision::Allow, 20));
        // 1 − 0.8 × 0.8 = 0.36
        assert_eq!(combine(&[signal("a", 0.2, false), signal("b", 0.2, false)], &p), (Decision::Challenge, 36));
        assert_eq!(combine(&[signal("a", 0.9, false)], &p), (Decision::Block, 90));
    }

    #[test]
    fn one_spoofable_flag_never_blocks_but_two_rules_can() {
        let p = Policy::default();
        assert_eq!(combine(&[signal("client/automation-flags", 0.95, true)], &p), (Decision::Challenge, 69));
        let two = [signal("client/automation-flags", 0.95, true), signal("client/stealth-tells", 0.5, true)];
        assert_eq!(combine(&two, &p).0, Decision::Block);
    }

    #[test]
    fn shadow_and_label_signals_do_not_score() {
        let p = Policy::default();
        let mut s = signal("a", 0.9, false);
        s.shadow = true;
        let mut crawler = signal("ua/crawler", 0.0, false);
        crawler.attack = false;
        assert_eq!(combine(&[s, crawler], &p), (Decision::Allow, 0));
    }

    #[test]
    fn tenant_bands_move_the_decision() {
        let p = Policy { challenge_at: 10, block_at: 50, ..Policy::default() };
        assert_eq!(combine(&[signal("a", 0.2, false)], &p).0, Decision::Challenge);
        assert_eq!(combine(&[signal("a", 0.6, false)], &p).0, Decision::Block);
        assert!(Policy { challenge_at: 80, block_at: 70, ..Policy::default() }.validate().is_err());
    }

    #[test]
    fn allowlists_match_networks_and_user_agents() {
        let p = Policy {
            allow_ips: vec!["10.0.0.0/8".parse().unwrap()],
            allow_user_agents: vec!["UptimeRobot".into()],
            ..Policy::default()
        };
        assert!(p.allows(Some(&"10.1.2.0/24".parse().unwrap()), None));
        assert!(!p.allows(Some(&"11.1.2.0/24".parse().unwrap()), Some("Mozilla/5.0")));
        assert!(p.allows(None, Some("Mozilla/5.0+(compatible; UptimeRobot/2.0)")));
    }

    #[test]
    fn verdicts_change_once_per_decision_and_expire_with_their_signals() {
        let p = Policy::default();
        let mut state = VerdictState::default();
        let first = state.apply("session:1", 0, vec![signal("a", 0.5, false)], &p).unwrap();
        assert_eq!((first.decision, first.score, first.ttl), (Decision::Challenge, 50, 60));
        assert!(state.apply("session:1", 1_000, vec![], &p).is_none());
        let later = state.apply("session:1", 61_000, vec![], &p).unwrap();
        assert_eq!(later.decision, Decision::Allow);
        assert!(later.reasons.is_empty());
    }
}
