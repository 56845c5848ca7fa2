//! Stored rows → the panel's wire types. Pure functions: decoding the tracker's pointer-path
//! encoding into replay samples, one-line event descriptions, verdict reasons and evidence with
//! the rule's explainer.

use ghosttrack_wire::{
    ClickMark, EvidenceItem, PointerSample, ReasonItem, SessionSummary, SignalItem, ThreatItem, TimelineEvent,
};
use serde::Deserialize;

use crate::storage::entities::{events, sessions, threats};
use crate::storage::panel::session_of;

#[derive(Deserialize)]
struct StoredReason {
    rule: String,
    sentence: String,
    #[serde(default)]
    shadow: bool,
}

#[derive(Deserialize)]
struct StoredEvidence {
    rule: String,
    behavior: String,
    key: String,
    count: i64,
    threshold: i64,
    window_secs: i64,
    at: i64,
    #[serde(default)]
    sample: String,
}

fn reasons_of(t: &threats::Model) -> Vec<StoredReason> {
    serde_json::from_str(&t.reasons).unwrap_or_default()
}

pub fn threat(t: &threats::Model) -> ThreatItem {
    ThreatItem {
        id: t.id,
        subject: t.subject.clone(),
        session_id: session_of(&t.subject),
        decision: t.decision.clone(),
        score: i32::from(t.score),
        at: t.at.0,
        reasons: reasons_of(t)
            .into_iter()
            .map(|r| ReasonItem { rule: r.rule, sentence: r.sentence, shadow: r.shadow })
            .collect(),
    }
}

pub fn session(s: &sessions::Model, verdict: Option<&threats::Model>) -> SessionSummary {
    SessionSummary {
        id: s.id.0,
        started_at: s.started_at.0,
        last_seen_at: s.last_seen_at.0,
        pageviews: s.pageviews,
        events: s.events,
        entry_path: s.entry_path.clone(),
        country: s.country.clone(),
        device: s.device.clone(),
        browser: s.browser.clone(),
        os: s.os.clone(),
        automated: s.automated,
        decision: verdict.map(|t| t.decision.clone()),
        score: verdict.map(|t| i32::from(t.score)),
    }
}

/// The rule's explainer (`backend/rules/<rule id>.md`), or a note for rules from elsewhere.
pub fn explainer(rule: &str) -> String {
    crate::detect::rules::EMBEDDED_RULES
        .get_file(format!("{rule}.md"))
        .and_then(|f| f.contents_utf8())
        .map(str::to_owned)
        .unwrap_or_else(|| "This rule comes from the server's rules directory; its explainer is kept there.".into())
}

/// Each rule of the session's latest verdict, with that rule's evidence and explainer.
pub fn signals(latest: Option<&threats::Model>) -> Vec<SignalItem> {
    let Some(t) = latest else { return Vec::new() };
    let evidence: Vec<StoredEvidence> = serde_json::from_str(&t.evidence).unwrap_or_default();
    reasons_of(t)
        .into_iter()
        .map(|r| SignalItem {
            evidence: evidence
                .iter()
                .filter(|e| e.rule == r.rule)
                .map(|e| EvidenceItem {
                    behavior: e.behavior.clone(),
                    key: e.key.clone(),
                    count: e.count,
                    threshold: e.threshold,
                    window_secs: e.window_secs,
                    at: e.at,
                    sample: e.sample.clone(),
                })
                .collect(),
            explainer: explainer(&r.rule),
            rule: r.rule,
            sentence: r.sentence,
            shadow: r.shadow,
        })
        .collect()
}

fn props(e: &events::Model) -> serde_json::Value {
    e.props.as_deref().and_then(|p| serde_json::from_str(p).ok()).unwrap_or(serde_json::Value::Null)
}

/// A short description of an event for the timeline (no personal data is stored to show).
pub fn describe(e: &events::Model) -> String {
    let p = props(e);
    let int = |k: &str| p[k].as_i64().unwrap_or(0);
    match e.kind.as_str() {
        "pv" => "page view".into(),
        "cl" => format!("click on {} at {},{}", p["sel"].as_str().unwrap_or("?"), int("x"), int("y")),
        "sc" => format!("scrolled to {}%", int("d")),
        "pp" => format!("pointer moved ({} samples)", p["p"].as_array().map_or(0, |a| a.len() / 3)),
        "ix" => format!("{} keys, {} touches, {} pointer moves, {} wheel", int("kc"), int("tc"), int("mc"), int("wc")),
        "en" => format!("environment: webdriver {}, headless {}", int("wd"), int("hl")),
        "vi" => "visibility changed".into(),
        "ac" => "added to cart".into(),
        other => other.to_owned(),
    }
}

/// Decodes one `pp` event: `p` = `[dt,dx,dy, …]`, the first triple relative to page load and
/// absolute, the rest deltas (docs/COLLECT-PROTOCOL.md). `page_start` is the page's load time.
pub fn pointer_samples(p: &serde_json::Value, page_start: i64) -> Vec<PointerSample> {
    let Some(flat) = p["p"].as_array() else { return Vec::new() };
    let nums: Vec<i64> = flat.iter().map(|v| v.as_i64().unwrap_or(0)).collect();
    let mut out = Vec::with_capacity(nums.len() / 3);
    let (mut t, mut x, mut y) = (page_start, 0i64, 0i64);
    for (i, triple) in nums.chunks_exact(3).enumerate() {
        t += triple[0].max(0);
        if i == 0 {
            (x, y) = (triple[1], triple[2]);
        } else {
            x += triple[1];
            y += triple[2];
        }
        let clamp = |v: i64| v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        out.push(PointerSample { t, x: clamp(x), y: clamp(y) });
    }
    out
}

/// The replay of a session: pointer samples (each `pp` decoded from its page's last page view),
/// clicks, and the largest page size seen.
pub fn replay(events: &[events::Model]) -> (Vec<PointerSample>, Vec<ClickMark>, Option<i32>, Option<i32>) {
    let (mut samples, mut clicks) = (Vec::new(), Vec::new());
    let (mut width, mut height): (Option<i32>, Option<i32>) = (None, None);
    let mut page_start: Option<i64> = None;
    for e in events {
        let p = props(e);
        match e.kind.as_str() {
            "pv" => page_start = Some(e.ts.0),
            "pp" => samples.extend(pointer_samples(&p, page_start.unwrap_or(e.ts.0))),
            "cl" => {
                let int = |k: &str| p[k].as_i64().map(|v| v.clamp(0, i64::from(i32::MAX)) as i32);
                if let (Some(x), Some(y)) = (int("x"), int("y")) {
                    clicks.push(ClickMark { t: e.ts.0, x, y, target: p["sel"].as_str().unwrap_or("").to_owned() });
                }
                width = width.max(int("pw"));
                height = height.max(int("ph"));
            }
            _ => {}
        }
    }
    (samples, clicks, width, height)
}

pub fn timeline(events: &[events::Model]) -> Vec<TimelineEvent> {
    events
        .iter()
        .map(|e| TimelineEvent { ts: e.ts.0, kind: e.kind.clone(), path: e.path.clone(), detail: describe(e) })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{SessionId, SiteId, UnixMillis, VisitorId};

    fn event(ts: i64, kind: &str, props: &str) -> events::Model {
        events::Model {
            id: ts,
            site_id: SiteId(1),
            session_id: SessionId(1),
            visitor_id: VisitorId(1),
            ts: UnixMillis(ts),
            received_at: UnixMillis(ts),
            kind: kind.into(),
            path: "/p".into(),
            props: Some(props.into()),
        }
    }

    #[test]
    fn pointer_paths_decode_from_page_load_with_absolute_first_samples() {
        let p = serde_json::json!({ "p": [500, 100, 200, 20, 4, -2, 16, 2, 2] });
        let s = pointer_samples(&p, 10_000);
        let got: Vec<(i64, i32, i32)> = s.iter().map(|s| (s.t, s.x, s.y)).collect();
        assert_eq!(got, [(10_500, 100, 200), (10_520, 104, 198), (10_536, 106, 200)]);
        assert!(pointer_samples(&serde_json::json!({ "p": [1, 2] }), 0).is_empty(), "incomplete triples are ignored");
    }

    #[test]
    fn a_replay_restarts_each_pointer_path_from_its_page_view_and_keeps_clicks() {
        let events = [
            event(1_000, "pv", "{}"),
            event(3_000, "pp", r#"{"p":[100,10,10,50,2,2]}"#),
            event(3_100, "cl", r#"{"x":12,"y":12,"pw":1280,"ph":3000,"sel":"button#buy","tg":"button","ap":1}"#),
            event(9_000, "pv", "{}"),
            event(9_500, "pp", r#"{"p":[40,300,300]}"#),
        ];
        let (samples, clicks, w, h) = replay(&events);
        assert_eq!(samples.iter().map(|s| s.t).collect::<Vec<_>>(), [1_100, 1_150, 9_040]);
        assert_eq!((clicks.len(), clicks[0].target.as_str(), w, h), (1, "button#buy", Some(1280), Some(3000)));
        assert_eq!(describe(&events[2]), "click on button#buy at 12,12");
    }

    #[test]
    fn signals_carry_their_evidence_and_the_rule_explainer() {
        let t = threats::Model {
            id: 1,
            site_id: SiteId(1),
            subject: "session:77".into(),
            decision: "BLOCK".into(),
            score: 90,
            reasons: r#"[{"rule":"ua/automation-library","sentence":"curl"}]"#.into(),
            evidence: r#"[{"rule":"ua/automation-library","behavior":"ua","key":"k","count":1,"threshold":1,"window_secs":60,"at":5,"sample":"curl/8"}]"#.into(),
            ttl_secs: 60,
            at: UnixMillis(5),
            created_at: UnixMillis(5),
        };
        let s = signals(Some(&t));
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].evidence[0].sample, "curl/8");
        assert!(s[0].explainer.len() > 20 && !s[0].explainer.contains("rules directory"), "{}", s[0].explainer);
        assert_eq!(threat(&t).session_id, Some(77));
    }
}
