//! A tenant's alert policy: which verdicts alert, the thresholds, quiet hours, cooldown and the
//! daily digest. Stored as JSON per site; a site without a row gets [`AlertPolicy::default`],
//! which alerts on BLOCK-level card testing and bursts of BLOCK-level bot sessions and nothing
//! else. Every threshold is a named field with a validated range (see [`AlertPolicy::validate`]).

use chrono::NaiveTime;
use chrono_tz::Tz;
use poem_openapi::Object;
use serde::{Deserialize, Serialize};

/// Decisions a policy may alert on (ALLOW is not a threat).
pub const DECISIONS: &[&str] = &["BLOCK", "CHALLENGE"];
/// Rule families: the part of a rule id before `/` (docs/DETECTION.md, catalogue).
pub const FAMILIES: &[&str] = &["behavior", "card", "cart", "client", "ip", "rate", "scrape", "ua"];
/// Families of the default policy: card testing and bots. Cart abuse and network reputation
/// alone are left to the panel.
pub const DEFAULT_FAMILIES: &[&str] = &["behavior", "card", "client", "rate", "scrape", "ua"];

/// Default burst: 5 distinct BLOCK subjects within 10 minutes (one blocked bot is routine; five
/// in ten minutes is a campaign worth a message).
pub const DEFAULT_BURST_SUBJECTS: u32 = 5;
pub const DEFAULT_BURST_WINDOW_MINUTES: u32 = 10;
/// Default cooldown per (trigger, key): one message per incident per hour.
pub const DEFAULT_COOLDOWN_MINUTES: u32 = 60;
/// Default traffic check (off by default): sessions in the last hour at least 3× the hourly
/// baseline, or at most 0.2× of it, over a baseline of at least 20 sessions an hour.
pub const DEFAULT_TRAFFIC_SPIKE_RATIO: f64 = 3.0;
pub const DEFAULT_TRAFFIC_DROP_RATIO: f64 = 0.2;
pub const DEFAULT_TRAFFIC_MIN_BASELINE: u32 = 20;
/// Default digest hour (local time).
pub const DEFAULT_DIGEST_HOUR: u8 = 8;

/// Allowed ranges (inclusive).
pub const BURST_SUBJECTS_RANGE: (u32, u32) = (2, 10_000);
pub const BURST_WINDOW_MINUTES_RANGE: (u32, u32) = (1, 1_440);
pub const COOLDOWN_MINUTES_RANGE: (u32, u32) = (1, 10_080);
pub const TRAFFIC_SPIKE_RATIO_RANGE: (f64, f64) = (1.5, 100.0);
pub const TRAFFIC_DROP_RATIO_RANGE: (f64, f64) = (0.01, 0.9);
pub const TRAFFIC_MIN_BASELINE_RANGE: (u32, u32) = (1, 1_000_000);

/// What alerts, and how often.
/// In the API, fields left out take their default and unknown fields are refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Object)]
#[serde(default, deny_unknown_fields)]
#[oai(default, deny_unknown_fields)]
pub struct AlertPolicy {
    /// Verdict decisions that count: `BLOCK`, `CHALLENGE`. Empty = verdicts never alert.
    pub decisions: Vec<String>,
    /// Rule families that count (a verdict counts when one of its non-shadow reasons is of one):
    /// behavior, card, cart, client, ip, rate, scrape, ua.
    pub families: Vec<String>,
    /// Alert at once on a counted verdict with a card-testing (`card/…`) reason.
    pub card_testing: bool,
    /// Alert when this many distinct subjects (sessions, networks, clients) get counted verdicts
    /// within `burst_window_minutes`; 0 = off. Range 2–10000.
    pub burst_subjects: u32,
    /// Window of the burst threshold, minutes (1–1440).
    pub burst_window_minutes: u32,
    /// Compare sessions of the last hour with the hourly baseline of the last 7 days.
    pub traffic: bool,
    /// Spike: last hour ≥ ratio × baseline (1.5–100).
    pub traffic_spike_ratio: f64,
    /// Drop: last hour ≤ ratio × baseline (0.01–0.9).
    pub traffic_drop_ratio: f64,
    /// Traffic is judged only when the baseline has at least this many sessions an hour.
    pub traffic_min_baseline: u32,
    /// After an alert, the same (trigger, key) stays silent this long, minutes (1–10080);
    /// what it suppresses is counted and reported in the next digest or roll-up.
    pub cooldown_minutes: u32,
    /// IANA time zone of quiet hours and the digest, e.g. `Europe/Paris`.
    pub time_zone: String,
    /// Local hours during which alerts are held and sent as one roll-up (or in the digest).
    pub quiet_hours: Option<QuietHours>,
    /// Send one daily summary at `digest_hour` (local).
    pub digest: bool,
    /// 0–23.
    pub digest_hour: u8,
}

/// `from`–`to` in local `HH:MM`; may wrap midnight (`22:00`–`07:00`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Object)]
pub struct QuietHours {
    pub from: String,
    pub to: String,
}

impl Default for AlertPolicy {
    fn default() -> Self {
        AlertPolicy {
            decisions: vec!["BLOCK".into()],
            families: DEFAULT_FAMILIES.iter().map(|f| f.to_string()).collect(),
            card_testing: true,
            burst_subjects: DEFAULT_BURST_SUBJECTS,
            burst_window_minutes: DEFAULT_BURST_WINDOW_MINUTES,
            traffic: false,
            traffic_spike_ratio: DEFAULT_TRAFFIC_SPIKE_RATIO,
            traffic_drop_ratio: DEFAULT_TRAFFIC_DROP_RATIO,
            traffic_min_baseline: DEFAULT_TRAFFIC_MIN_BASELINE,
            cooldown_minutes: DEFAULT_COOLDOWN_MINUTES,
            time_zone: "UTC".into(),
            quiet_hours: None,
            digest: false,
            digest_hour: DEFAULT_DIGEST_HOUR,
        }
    }
}

/// A policy field that does not hold, e.g. `burst_window_minutes: must be between 1 and 1440`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PolicyError {
    pub field: String,
    pub message: String,
}

fn err(field: &str, message: impl Into<String>) -> PolicyError {
    PolicyError { field: field.into(), message: message.into() }
}

fn in_range<T: PartialOrd + std::fmt::Display + Copy>(field: &str, v: T, (lo, hi): (T, T)) -> Option<PolicyError> {
    (v < lo || v > hi).then(|| err(field, format!("must be between {lo} and {hi}, got {v}")))
}

/// Parses `HH:MM`.
pub fn parse_clock(s: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s, "%H:%M").ok().filter(|_| s.len() == 5)
}

impl AlertPolicy {
    /// Every field that does not hold, in field order.
    pub fn validate(&self) -> Result<(), Vec<PolicyError>> {
        let mut errors = Vec::new();
        for (i, d) in self.decisions.iter().enumerate() {
            if !DECISIONS.contains(&d.as_str()) {
                errors
                    .push(err(&format!("decisions[{i}]"), format!("unknown decision `{d}` (use BLOCK or CHALLENGE)")));
            }
        }
        for (i, f) in self.families.iter().enumerate() {
            if !FAMILIES.contains(&f.as_str()) {
                errors.push(err(
                    &format!("families[{i}]"),
                    format!("unknown rule family `{f}` (one of {})", FAMILIES.join(", ")),
                ));
            }
        }
        if self.burst_subjects != 0 {
            errors.extend(in_range("burst_subjects", self.burst_subjects, BURST_SUBJECTS_RANGE));
        }
        errors.extend(in_range("burst_window_minutes", self.burst_window_minutes, BURST_WINDOW_MINUTES_RANGE));
        if !self.traffic_spike_ratio.is_finite() {
            errors.push(err("traffic_spike_ratio", "must be a number"));
        } else {
            errors.extend(in_range("traffic_spike_ratio", self.traffic_spike_ratio, TRAFFIC_SPIKE_RATIO_RANGE));
        }
        if !self.traffic_drop_ratio.is_finite() {
            errors.push(err("traffic_drop_ratio", "must be a number"));
        } else {
            errors.extend(in_range("traffic_drop_ratio", self.traffic_drop_ratio, TRAFFIC_DROP_RATIO_RANGE));
        }
        errors.extend(in_range("traffic_min_baseline", self.traffic_min_baseline, TRAFFIC_MIN_BASELINE_RANGE));
        errors.extend(in_range("cooldown_minutes", self.cooldown_minutes, COOLDOWN_MINUTES_RANGE));
        if self.time_zone.parse::<Tz>().is_err() {
            errors.push(err("time_zone", format!("`{}` is not an IANA time zone (e.g. Europe/Paris)", self.time_zone)));
        }
        if let Some(q) = &self.quiet_hours {
            let from = parse_clock(&q.from);
            let to = parse_clock(&q.to);
            if from.is_none() {
                errors.push(err("quiet_hours.from", format!("`{}` is not a local time HH:MM", q.from)));
            }
            if to.is_none() {
                errors.push(err("quiet_hours.to", format!("`{}` is not a local time HH:MM", q.to)));
            }
            if from.is_some() && from == to {
                errors.push(err("quiet_hours.to", "must differ from quiet_hours.from"));
            }
        }
        if self.digest_hour > 23 {
            errors.push(err("digest_hour", format!("must be between 0 and 23, got {}", self.digest_hour)));
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    /// The tenant's zone (UTC if the stored name no longer parses).
    pub fn tz(&self) -> Tz {
        self.time_zone.parse().unwrap_or(Tz::UTC)
    }

    pub fn counts_decision(&self, decision: &str) -> bool {
        self.decisions.iter().any(|d| d == decision)
    }

    pub fn counts_family(&self, family: &str) -> bool {
        self.families.iter().any(|f| f == family)
    }

    pub fn cooldown_ms(&self) -> i64 {
        i64::from(self.cooldown_minutes) * 60_000
    }

    pub fn burst_window_ms(&self) -> i64 {
        i64::from(self.burst_window_minutes) * 60_000
    }

    /// Whether local time at `at_ms` falls inside quiet hours (`from` inclusive, `to` exclusive).
    pub fn is_quiet(&self, at_ms: i64) -> bool {
        let Some(q) = &self.quiet_hours else { return false };
        let (Some(from), Some(to)) = (parse_clock(&q.from), parse_clock(&q.to)) else { return false };
        let Some(utc) = chrono::DateTime::from_timestamp_millis(at_ms) else { return false };
        let local = utc.with_timezone(&self.tz()).time();
        if from < to { local >= from && local < to } else { local >= from || local < to }
    }

    /// Local calendar day (days since 1970-01-01 in the tenant's zone) and hour at `at_ms`.
    pub fn local_day_hour(&self, at_ms: i64) -> (i32, u8) {
        use chrono::{Datelike, Timelike};
        let utc = chrono::DateTime::from_timestamp_millis(at_ms).unwrap_or_default();
        let local = utc.with_timezone(&self.tz());
        (local.date_naive().num_days_from_ce() - 719_163, local.hour() as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(p: &AlertPolicy) -> Vec<String> {
        p.validate().err().unwrap_or_default().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn the_default_policy_is_valid_and_alerts_only_on_block_card_testing_and_bot_bursts() {
        let p = AlertPolicy::default();
        assert_eq!(p.validate(), Ok(()));
        assert_eq!(p.decisions, vec!["BLOCK"]);
        assert!(p.card_testing && p.burst_subjects == 5 && p.burst_window_minutes == 10);
        assert!(!p.traffic && !p.digest && p.quiet_hours.is_none());
        assert!(!p.counts_family("cart") && !p.counts_family("ip") && p.counts_family("ua"));
    }

    #[test]
    fn each_threshold_is_range_checked_and_the_error_names_the_field() {
        type Mutation = fn(&mut AlertPolicy);
        let cases: Vec<(Mutation, &str)> = vec![
            (|p| p.burst_subjects = 1, "burst_subjects"),
            (|p| p.burst_subjects = 10_001, "burst_subjects"),
            (|p| p.burst_window_minutes = 0, "burst_window_minutes"),
            (|p| p.burst_window_minutes = 1_441, "burst_window_minutes"),
            (|p| p.cooldown_minutes = 0, "cooldown_minutes"),
            (|p| p.cooldown_minutes = 10_081, "cooldown_minutes"),
            (|p| p.traffic_spike_ratio = 1.2, "traffic_spike_ratio"),
            (|p| p.traffic_spike_ratio = f64::NAN, "traffic_spike_ratio"),
            (|p| p.traffic_drop_ratio = 0.95, "traffic_drop_ratio"),
            (|p| p.traffic_drop_ratio = 0.0, "traffic_drop_ratio"),
            (|p| p.traffic_min_baseline = 0, "traffic_min_baseline"),
            (|p| p.digest_hour = 24, "digest_hour"),
            (|p| p.time_zone = "Mars/Olympus".into(), "time_zone"),
            (|p| p.decisions = vec!["BLOK".into()], "decisions[0]"),
            (|p| p.families = vec!["ua".into(), "bots".into()], "families[1]"),
            (|p| p.quiet_hours = Some(QuietHours { from: "25:00".into(), to: "07:00".into() }), "quiet_hours.from"),
            (|p| p.quiet_hours = Some(QuietHours { from: "22:00".into(), to: "7".into() }), "quiet_hours.to"),
            (|p| p.quiet_hours = Some(QuietHours { from: "22:00".into(), to: "22:00".into() }), "quiet_hours.to"),
        ];
        for (mutate, field) in cases {
            let mut p = AlertPolicy::default();
            mutate(&mut p);
            assert_eq!(fields(&p), vec![field.to_string()], "{p:?}");
        }
        // Edges are accepted; 0 turns the burst trigger off.
        let p = AlertPolicy {
            burst_subjects: 0,
            burst_window_minutes: 1_440,
            cooldown_minutes: 1,
            traffic_spike_ratio: 1.5,
            traffic_drop_ratio: 0.9,
            digest_hour: 23,
            ..AlertPolicy::default()
        };
        assert_eq!(p.validate(), Ok(()));
    }

    #[test]
    fn quiet_hours_wrap_midnight_in_the_tenant_time_zone() {
        let mut p = AlertPolicy {
            time_zone: "Europe/Paris".into(),
            quiet_hours: Some(QuietHours { from: "22:00".into(), to: "07:00".into() }),
            ..AlertPolicy::default()
        };
        let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis();
        // Winter: Paris is UTC+1.
        assert!(p.is_quiet(at("2026-01-10T21:00:00Z"))); // 22:00 local
        assert!(!p.is_quiet(at("2026-01-10T20:59:00Z"))); // 21:59 local
        assert!(p.is_quiet(at("2026-01-11T05:59:00Z"))); // 06:59 local
        assert!(!p.is_quiet(at("2026-01-11T06:00:00Z"))); // 07:00 local
        // Summer: UTC+2.
        assert!(p.is_quiet(at("2026-07-10T20:00:00Z")));
        assert!(!p.is_quiet(at("2026-07-11T05:00:00Z")));
        p.quiet_hours = None;
        assert!(!p.is_quiet(at("2026-01-10T21:00:00Z")));
    }
}
