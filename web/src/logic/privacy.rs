//! The Privacy page: what each mode means for the merchant's shoppers, the retention sentence,
//! what encrypting event payloads at rest does and what its switch may do, and what an export
//! contains (shown before a deletion is confirmed).

use ghosttrack_wire::{EncryptionChange, PrivacyView, RetentionView};
use serde_json::Value;

/// A privacy mode as the page explains it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModeInfo {
    pub id: &'static str,
    pub title: &'static str,
    pub summary: &'static str,
}

/// The three modes (DESIGN §5, docs/PRIVACY.md), mildest first.
pub const MODES: [ModeInfo; 3] = [
    ModeInfo {
        id: "strict",
        title: "Strict",
        summary: "Security signals only, for every visitor: no clicks, scroll depths or pointer paths are collected, \
                  referrer, page title and device fingerprints are stripped. Bot detection still works from headers, \
                  rates and payments; the Pages maps and the session replay stay empty.",
    },
    ModeInfo {
        id: "balanced",
        title: "Balanced (recommended)",
        summary: "Everything a visitor consented to, with IP addresses truncated and daily pseudonymous visitor ids. \
                  Pointer paths of sessions no rule flagged are deleted after a day; flagged sessions keep them as \
                  evidence for a week.",
    },
    ModeInfo {
        id: "forensic",
        title: "Forensic",
        summary: "Everything a visitor consented to, kept together for investigations, with a shorter retention of \
                  raw events. Use it while you investigate an attack, then switch back.",
    },
];

pub fn mode(id: &str) -> Option<ModeInfo> {
    MODES.into_iter().find(|m| m.id == id)
}

/// The retention of the current mode in one list of sentences.
pub fn retention_lines(r: &RetentionView) -> Vec<String> {
    // The retention job applies the shorter of the mode's and the plan's numbers.
    let plan_cap = r.plan_retention_days.filter(|d| *d < r.raw_event_days);
    let mut lines = vec![format!("Raw events are deleted after {} days.", plan_cap.unwrap_or(r.raw_event_days))];
    match (r.pointer_paths_stored, r.unflagged_pointer_path_hours, r.flagged_pointer_path_days) {
        (false, _, _) => lines.push("Pointer paths are never stored.".into()),
        (true, Some(h), Some(d)) => lines.push(format!(
            "Pointer paths are deleted after {h} hours, or after {d} days when a rule flagged the session."
        )),
        (true, _, _) => lines.push("Pointer paths are kept as long as the other raw events.".into()),
    }
    if let (Some(plan), Some(days)) = (&r.plan, plan_cap) {
        lines.push(format!(
            "Your {plan} plan keeps raw data {days} days; this mode alone would keep it {} days.",
            r.raw_event_days
        ));
    }
    lines.push("Sessions, verdicts and daily statistics are kept after raw events go, without pointer data.".into());
    lines
}

/// What payload encryption protects (docs/PRIVACY.md, "Threat model"), in the merchant's words.
pub const ENCRYPTION_PROTECTS: &str = "It protects the details of each event (referrer, page title, click targets \
    and positions, cart and checkout tokens, device probes) in database dumps, backups, replicas and disk images, and \
    from anyone who can read the database but not the server's secret key. Dashboards, page maps, session replays \
    and exports work the same either way.";

/// What it does not protect: the server itself, and the columns that stay clear.
pub const ENCRYPTION_DOES_NOT_PROTECT: &str = "It does not protect against a compromised running server or anyone \
    holding the server's secret key, and it does not hide which page was visited, when, by which daily visitor id, \
    nor the sessions list (country, browser, truncated network) and verdicts.";

/// What turning it off means for the rows already encrypted: `EventKeys::disable` only retires
/// the site's data key, so envelopes stay in the database and are opened with the retired key.
pub const ENCRYPTION_OFF_EFFECT: &str = "Turning it off stores new events as plain text. Events stored while it was \
    on stay encrypted in the database and stay readable here and in exports: nothing is decrypted in place.";

/// Why the switch is disabled for someone who is not an owner.
pub const ENCRYPTION_OWNER_ONLY: &str = "Only an owner of this site can turn encryption on or off.";

/// Why the switch is disabled on a server that cannot encrypt (`400 no_secret_key`).
pub const ENCRYPTION_NO_SECRET_KEY: &str = "This server has no secret key (GHOSTTRACK_SECRET_KEY), so it cannot \
    encrypt event details. Whoever runs GhostTrack for you can set one.";

/// The payload-encryption card: the site's state and what its switch would do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncryptionCard {
    /// New events of the site are sealed with its data key.
    pub on: bool,
    /// Why this user cannot use the switch here, shown next to it; `None` when they can.
    pub locked: Option<&'static str>,
}

/// The confirmation step of a change, before anything is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncryptionConfirmation {
    pub question: &'static str,
    pub consequences: &'static str,
    /// The confirming button's label.
    pub confirm: &'static str,
}

impl EncryptionCard {
    pub fn of(view: &PrivacyView) -> EncryptionCard {
        // The owner reason first: a viewer could not change it on any server.
        let locked = if !view.can_manage {
            Some(ENCRYPTION_OWNER_ONLY)
        } else if !view.encryption_available {
            Some(ENCRYPTION_NO_SECRET_KEY)
        } else {
            None
        };
        EncryptionCard { on: view.encrypted_at_rest, locked }
    }

    /// The state in one sentence, next to the switch.
    pub fn state_line(&self) -> &'static str {
        if self.on {
            "On: the details of new events are stored encrypted."
        } else {
            "Off: the details of new events are stored as plain text."
        }
    }

    /// The change the switch asks for: the opposite of the current state.
    pub fn change(&self) -> EncryptionChange {
        EncryptionChange { enabled: !self.on }
    }

    /// What the merchant confirms before the change is sent.
    pub fn confirmation(&self) -> EncryptionConfirmation {
        if self.on {
            EncryptionConfirmation {
                question: "Turn off encryption of event details?",
                consequences: ENCRYPTION_OFF_EFFECT,
                confirm: "Turn off encryption",
            }
        } else {
            EncryptionConfirmation {
                question: "Turn on encryption of event details?",
                consequences: "New events are stored encrypted from now on; events already stored stay as they are \
                    (whoever runs GhostTrack can re-encrypt them with `ghosttrack keys rotate --reencrypt`). If the \
                    server's secret key is ever lost, encrypted details cannot be recovered; sessions, verdicts and \
                    statistics remain.",
                confirm: "Turn on encryption",
            }
        }
    }
}

/// The toast after the server accepted a change.
pub fn encryption_toast(enabled: bool) -> &'static str {
    if enabled { "Encryption of event details turned on" } else { "Encryption of event details turned off" }
}

/// The error shown under the switch when the server refused or could not be reached.
pub fn encryption_failure(enabled: bool, message: &str) -> String {
    let verb = if enabled { "turned on" } else { "turned off" };
    format!("Encryption was not {verb}: {message}")
}

/// What an export holds, for the confirmation step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportSummary {
    pub visitor_id: i64,
    pub sessions: usize,
    pub events: usize,
    pub threats: usize,
}

impl ExportSummary {
    /// Reads the counts of an export document (`ghosttrack privacy export`'s JSON).
    pub fn of(export: &Value) -> ExportSummary {
        let len = |key: &str| export.get(key).and_then(Value::as_array).map_or(0, Vec::len);
        ExportSummary {
            visitor_id: export.get("visitor_id").and_then(Value::as_i64).unwrap_or(0),
            sessions: len("sessions"),
            events: len("events"),
            threats: len("threats"),
        }
    }

    pub fn sentence(&self) -> String {
        format!(
            "Visitor {} has {} session{}, {} event{} and {} verdict{} stored.",
            self.visitor_id,
            self.sessions,
            plural(self.sessions),
            self.events,
            plural(self.events),
            self.threats,
            plural(self.threats)
        )
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Which visitor the lookup form names: a visitor id or a session id, as the API's query.
pub fn lookup_query(kind: &str, raw: &str) -> Result<String, &'static str> {
    let id: i64 = raw.trim().parse().map_err(|_| "Enter the id as a number.")?;
    match kind {
        "visitor" => Ok(format!("visitor_id={id}")),
        "session" if id > 0 => Ok(format!("session_id={id}")),
        "session" => Err("Session ids are positive numbers."),
        _ => Err("Choose a visitor id or a session id."),
    }
}

/// The query string's `session=<id>` (the session detail page links here with it).
pub fn session_from_query(query: &str) -> Option<i64> {
    query
        .trim_start_matches('?')
        .split('&')
        .find_map(|p| p.strip_prefix("session="))
        .and_then(|v| v.parse().ok())
        .filter(|id: &i64| *id > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn retention(stored: bool, hours: Option<u32>, days: Option<u32>, plan: Option<(&str, u32)>) -> RetentionView {
        RetentionView {
            raw_event_days: 90,
            unflagged_pointer_path_hours: hours,
            flagged_pointer_path_days: days,
            pointer_paths_stored: stored,
            plan_retention_days: plan.map(|p| p.1),
            plan: plan.map(|p| p.0.to_owned()),
        }
    }

    fn privacy(can_manage: bool, encrypted_at_rest: bool, encryption_available: bool) -> PrivacyView {
        PrivacyView {
            mode: "balanced".into(),
            retention: retention(true, Some(24), Some(7), None),
            can_manage,
            audit: vec![],
            encrypted_at_rest,
            encryption_available,
        }
    }

    #[rstest]
    #[case::owner_turns_it_on(true, false, true, None, true)]
    #[case::owner_turns_it_off(true, true, true, None, false)]
    #[case::analyst_sees_it_on(false, true, true, Some(ENCRYPTION_OWNER_ONLY), false)]
    #[case::analyst_on_a_server_without_a_key(false, false, false, Some(ENCRYPTION_OWNER_ONLY), true)]
    #[case::owner_on_a_server_without_a_key(true, false, false, Some(ENCRYPTION_NO_SECRET_KEY), true)]
    fn the_switch_asks_for_the_opposite_state_unless_it_is_locked(
        #[case] can_manage: bool,
        #[case] on: bool,
        #[case] available: bool,
        #[case] locked: Option<&str>,
        #[case] asks_to_enable: bool,
    ) {
        let card = EncryptionCard::of(&privacy(can_manage, on, available));
        assert_eq!(card.on, on);
        assert_eq!(card.locked, locked);
        assert_eq!(card.change(), EncryptionChange { enabled: asks_to_enable });
    }

    #[test]
    fn the_confirmation_says_what_happens_to_the_rows_already_stored() {
        let off = EncryptionCard::of(&privacy(true, false, true));
        assert_eq!(off.state_line(), "Off: the details of new events are stored as plain text.");
        let enabling = off.confirmation();
        assert_eq!(enabling.confirm, "Turn on encryption");
        assert!(enabling.consequences.contains("events already stored stay as they are"), "{enabling:?}");
        assert!(enabling.consequences.contains("secret key is ever lost"), "{enabling:?}");

        let on = EncryptionCard::of(&privacy(true, true, true));
        assert_eq!(on.state_line(), "On: the details of new events are stored encrypted.");
        let disabling = on.confirmation();
        assert_eq!(disabling.confirm, "Turn off encryption");
        assert_eq!(disabling.consequences, ENCRYPTION_OFF_EFFECT);
        assert!(ENCRYPTION_OFF_EFFECT.contains("stay encrypted") && ENCRYPTION_OFF_EFFECT.contains("stay readable"));
    }

    #[test]
    fn a_refused_change_names_what_did_not_happen_and_why() {
        assert_eq!(
            encryption_failure(true, "this server has no GHOSTTRACK_SECRET_KEY, so it cannot encrypt event payloads"),
            "Encryption was not turned on: this server has no GHOSTTRACK_SECRET_KEY, so it cannot encrypt event payloads"
        );
        assert_eq!(
            encryption_failure(false, "GhostTrack answered 503"),
            "Encryption was not turned off: GhostTrack answered 503"
        );
    }

    #[test]
    fn every_mode_is_explained() {
        for id in ["strict", "balanced", "forensic"] {
            assert!(mode(id).is_some_and(|m| m.summary.len() > 80), "{id}");
        }
        assert_eq!(mode("lenient"), None);
    }

    #[test]
    fn retention_sentences_follow_the_mode_and_the_plan() {
        let balanced = retention_lines(&retention(true, Some(24), Some(7), None));
        assert_eq!(balanced[0], "Raw events are deleted after 90 days.");
        assert_eq!(
            balanced[1],
            "Pointer paths are deleted after 24 hours, or after 7 days when a rule flagged the session."
        );
        assert_eq!(retention_lines(&retention(false, None, None, None))[1], "Pointer paths are never stored.");
        // The mode keeps 90 days (see `retention`): a 7-day plan caps it, a 365-day one does not.
        let capped = retention_lines(&retention(true, None, None, Some(("free", 7))));
        assert_eq!(capped[0], "Raw events are deleted after 7 days.");
        assert_eq!(capped[1], "Pointer paths are kept as long as the other raw events.");
        assert_eq!(capped[2], "Your free plan keeps raw data 7 days; this mode alone would keep it 90 days.");
        let roomy = retention_lines(&retention(true, None, None, Some(("business", 365))));
        assert_eq!(roomy[0], "Raw events are deleted after 90 days.");
        assert!(!roomy.iter().any(|l| l.contains("plan")), "{roomy:?}");
    }

    #[test]
    fn an_export_is_summarised_by_its_counts() {
        let export = serde_json::json!({
            "visitor_id": 77, "first_seen_at": 1, "last_seen_at": 2,
            "sessions": [{"session_id": 1}], "events": [{}, {}], "threats": []
        });
        let s = ExportSummary::of(&export);
        assert_eq!(s, ExportSummary { visitor_id: 77, sessions: 1, events: 2, threats: 0 });
        assert_eq!(s.sentence(), "Visitor 77 has 1 session, 2 events and 0 verdicts stored.");
        assert_eq!(ExportSummary::of(&serde_json::json!({})), ExportSummary::default());
    }

    #[rstest]
    #[case("visitor", " -42 ", Ok("visitor_id=-42".to_owned()))]
    #[case("session", "7", Ok("session_id=7".to_owned()))]
    #[case("session", "0", Err("Session ids are positive numbers."))]
    #[case("visitor", "abc", Err("Enter the id as a number."))]
    #[case("email", "1", Err("Choose a visitor id or a session id."))]
    fn the_lookup_names_one_visitor(#[case] kind: &str, #[case] raw: &str, #[case] expected: Result<String, &str>) {
        assert_eq!(lookup_query(kind, raw), expected);
    }

    #[rstest]
    #[case("session=12", Some(12))]
    #[case("?x=1&session=5", Some(5))]
    #[case("session=-3", None)]
    #[case("", None)]
    fn the_session_detail_link_prefills_the_lookup(#[case] query: &str, #[case] expected: Option<i64>) {
        assert_eq!(session_from_query(query), expected);
    }
}
