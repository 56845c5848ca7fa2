//! Policy decisions in event time: thresholds, cooldown, quiet hours, digest grouping.

use super::*;
use crate::alerts::policy::QuietHours;

const MIN: i64 = 60_000;
/// 2026-01-12 00:00 UTC.
const T0: i64 = 1_768_176_000_000;

fn threat(subject: &str, decision: &str, rules: &[&str], at: i64) -> ThreatFacts {
    ThreatFacts {
        subject: subject.into(),
        decision: decision.into(),
        score: 90,
        reasons: rules
            .iter()
            .map(|r| ReasonFacts { rule: (*r).into(), sentence: format!("{r} fired."), shadow: false })
            .collect(),
        at,
    }
}

fn card(subject: &str, at: i64) -> ThreatFacts {
    threat(subject, "BLOCK", &["card/ct1-ip-failures-block"], at)
}

fn bot(subject: &str, at: i64) -> ThreatFacts {
    threat(subject, "BLOCK", &["ua/automation-library"], at)
}

#[test]
fn a_block_card_testing_verdict_alerts_at_once_with_a_link_to_the_session() {
    let (p, mut s) = (AlertPolicy::default(), AlertState::default());
    let alert = observe(&p, &mut s, &card("session:42", T0)).expect("alert");
    assert_eq!(alert.kind, AlertKind::CardTesting);
    assert_eq!(alert.link_path, "/app/sessions/42");
    assert_eq!(alert.subject.as_deref(), Some("session 42"));
    assert_eq!(alert.decision.as_deref(), Some("BLOCK"));
}

#[test]
fn challenge_verdicts_cart_rules_and_shadow_reasons_do_not_alert_by_default() {
    let (p, mut s) = (AlertPolicy::default(), AlertState::default());
    assert_eq!(observe(&p, &mut s, &threat("session:1", "CHALLENGE", &["card/ct2-distinct-cards"], T0)), None);
    assert_eq!(observe(&p, &mut s, &threat("session:2", "BLOCK", &["cart/add-burst"], T0)), None);
    let mut shadow = card("session:3", T0);
    shadow.reasons[0].shadow = true;
    assert_eq!(observe(&p, &mut s, &shadow), None);
    assert!(s.counts.is_empty(), "{:?}", s.counts);
}

#[test]
fn a_burst_needs_n_distinct_subjects_within_m_minutes() {
    let (p, mut s) = (AlertPolicy::default(), AlertState::default());
    // Four subjects, the same one twice: no burst.
    for (i, subject) in ["session:1", "session:2", "session:2", "session:3", "session:4"].iter().enumerate() {
        assert_eq!(observe(&p, &mut s, &bot(subject, T0 + i as i64 * MIN)), None, "{subject}");
    }
    // The fifth distinct subject, but the first one left the 10-minute window: still none.
    assert_eq!(observe(&p, &mut s, &bot("session:5", T0 + 10 * MIN + 1)), None);
    // A sixth inside the window of 2..6: burst.
    let alert = observe(&p, &mut s, &bot("session:6", T0 + 11 * MIN)).expect("burst");
    assert_eq!(alert.kind, AlertKind::HighRiskBurst);
    assert_eq!(alert.title, "5 high-risk sessions within 10 minutes");
    assert_eq!(alert.details, vec!["ua/automation-library: 5"]);
    assert!(s.burst.is_empty());
}

#[test]
fn the_cooldown_suppresses_the_same_key_and_counts_what_it_suppressed() {
    let (p, mut s) = (AlertPolicy::default(), AlertState::default());
    assert!(observe(&p, &mut s, &card("session:1", T0)).is_some());
    for i in 0..3 {
        assert_eq!(observe(&p, &mut s, &card(&format!("session:{}", 10 + i), T0 + (i + 1) * MIN)), None);
    }
    // Another card rule is another key.
    let other = threat("session:20", "BLOCK", &["card/ct3-distinct-bins", "ua/automation-library"], T0 + 5 * MIN);
    assert!(observe(&p, &mut s, &other).is_some());
    // 60 minutes later the key alerts again and says how many it held back.
    let again = observe(&p, &mut s, &card("session:30", T0 + 60 * MIN)).expect("after cooldown");
    assert_eq!(again.suppressed, 3);
}

#[test]
fn quiet_hours_hold_alerts_and_one_rollup_follows_when_they_end() {
    let p = AlertPolicy {
        time_zone: "America/New_York".into(), // UTC-5 in January
        quiet_hours: Some(QuietHours { from: "22:00".into(), to: "07:00".into() }),
        ..AlertPolicy::default()
    };
    let mut s = AlertState::default();
    // 00:00 UTC = 19:00 New York: not quiet.
    assert!(observe(&p, &mut s, &card("session:1", T0)).is_some());
    // 04:00 UTC = 23:00: quiet; held even though another rule's key is not cooling down.
    let night = T0 + 4 * 60 * MIN;
    assert_eq!(observe(&p, &mut s, &threat("session:2", "BLOCK", &["card/ct2-distinct-cards"], night)), None);
    assert_eq!(observe(&p, &mut s, &threat("session:3", "BLOCK", &["card/ct2-distinct-cards"], night + MIN)), None);
    assert!(tick(&p, &mut s, night + 2 * MIN).is_empty(), "no roll-up during quiet hours");
    // 12:00 UTC = 07:00: the roll-up.
    let morning = tick(&p, &mut s, T0 + 12 * 60 * MIN);
    assert_eq!(morning.len(), 1);
    assert_eq!(morning[0].kind, AlertKind::Rollup);
    assert_eq!(morning[0].details, vec!["2 × Card testing (card/ct2-distinct-cards)"]);
    assert!(tick(&p, &mut s, T0 + 12 * 60 * MIN + MIN).is_empty(), "sent once");
}

#[test]
fn the_digest_groups_counts_by_family_and_held_alerts_once_a_local_day() {
    let p = AlertPolicy {
        digest: true,
        digest_hour: 8,
        quiet_hours: Some(QuietHours { from: "00:00".into(), to: "06:00".into() }),
        ..AlertPolicy::default()
    };
    let mut s = AlertState::default();
    // Quiet (00:00–06:00 UTC): held for the digest.
    assert_eq!(observe(&p, &mut s, &card("session:1", T0 + MIN)), None);
    for i in 0..5 {
        assert_eq!(observe(&p, &mut s, &bot(&format!("session:{}", 100 + i), T0 + (2 + i) * MIN)), None);
    }
    // After quiet hours but before 08:00: held alerts wait for the digest.
    assert!(tick(&p, &mut s, T0 + 7 * 60 * MIN).is_empty());
    let digest = tick(&p, &mut s, T0 + 8 * 60 * MIN);
    assert_eq!(digest.len(), 1);
    assert_eq!(digest[0].kind, AlertKind::Digest);
    assert_eq!(
        digest[0].details,
        vec![
            "card: 1 verdicts",
            "ua: 5 verdicts",
            "1 × Card testing (card/ct1-ip-failures-block)",
            "1 × High-risk burst"
        ]
    );
    assert!(tick(&p, &mut s, T0 + 9 * 60 * MIN).is_empty(), "one digest per local day");
    assert!(s.counts.is_empty() && s.held.is_empty());
}

#[test]
fn a_storm_of_ten_thousand_verdicts_makes_a_handful_of_alerts() {
    let (p, mut s) = (AlertPolicy::default(), AlertState::default());
    let mut sent = Vec::new();
    for i in 0..10_000i64 {
        let t = if i % 2 == 0 {
            card(&format!("session:{i}"), T0 + i * 100)
        } else {
            bot(&format!("session:{i}"), T0 + i * 100)
        };
        sent.extend(observe(&p, &mut s, &t));
    }
    // 1,000 s of storm: one card-testing alert and one burst alert, the rest suppressed.
    assert_eq!(sent.iter().map(|a| a.kind).collect::<Vec<_>>(), vec![AlertKind::CardTesting, AlertKind::HighRiskBurst]);
    let after = tick(&p, &mut s, T0 + 61 * MIN);
    assert_eq!(after.len(), 1, "one roll-up of what the cooldown suppressed");
    assert_eq!(
        after[0].details,
        vec![
            "4999 × Card testing (card/ct1-ip-failures-block) (suppressed by the cooldown)",
            "999 × High-risk burst (suppressed by the cooldown)"
        ]
    );
    // The state stays small.
    assert!(serde_json::to_string(&s).unwrap().len() < 2_000);
}

#[test]
fn traffic_spikes_and_drops_are_judged_against_the_baseline_with_a_floor() {
    let mut p = AlertPolicy::default();
    let mut s = AlertState::default();
    assert_eq!(traffic(&p, &mut s, T0, 300, 50.0), None, "off by default");
    p.traffic = true;
    assert_eq!(traffic(&p, &mut s, T0, 149, 50.0), None);
    assert_eq!(traffic(&p, &mut s, T0, 150, 50.0).unwrap().kind, AlertKind::TrafficSpike);
    assert_eq!(traffic(&p, &mut s, T0, 10, 50.0).unwrap().kind, AlertKind::TrafficDrop);
    assert_eq!(traffic(&p, &mut s, T0 + MIN, 0, 50.0), None, "drop key cooling down");
    assert_eq!(traffic(&p, &mut s, T0, 0, 19.0), None, "baseline under traffic_min_baseline");
    assert_eq!(s.last_traffic_check, T0);
}

/// The text part of the email of the default policy's card-testing alert, as a merchant reads it
/// (docs/ALERTS.md quotes it).
#[test]
fn the_card_testing_email_reads_like_this() {
    let (p, mut s) = (AlertPolicy::default(), AlertState::default());
    let facts = ThreatFacts {
        subject: "session:7541230981".into(),
        decision: "BLOCK".into(),
        score: 91,
        reasons: vec![ReasonFacts {
            rule: "card/ct1-ip-failures-block".into(),
            sentence: "12 failed payments from network 203.0.113.0/24 within 10 minutes (threshold 10).".into(),
            shadow: false,
        }],
        at: T0 + 9 * 60 * MIN + 14 * MIN,
    };
    let alert = observe(&p, &mut s, &facts).expect("alert");
    let env = crate::alerts::channels::Envelope {
        alert: &alert,
        alert_id: "3f9c0a4e5b6d7e8f9a0b1c2d",
        idempotency_key: "gt-3f9c0a4e5b6d7e8f9a0b1c2d-1",
        site: "acme.myshopify.com",
        link: format!("https://ghosttrack.example{}", alert.link_path),
        unsubscribe: Some("https://ghosttrack.example/alerts/unsubscribe?c=1&t=…".into()),
    };
    insta::assert_snapshot!(crate::alerts::channels::email::text_body(&env));
}
