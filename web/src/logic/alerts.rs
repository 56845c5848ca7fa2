//! The Alerts page's forms: the policy as the inputs hold it (text for numbers, so a half-typed
//! value is kept and reported by field) and the new-channel form. Ranges are the server's to
//! judge (a 422 names the field); these only turn inputs into a request body.

use ghosttrack_wire::{AlertPolicyBody, NewAlertChannel, QuietHoursBody};

/// A form field that does not hold, named like the API's fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormError {
    pub field: String,
    pub message: String,
}

fn error(field: &str, message: impl Into<String>) -> FormError {
    FormError { field: field.into(), message: message.into() }
}

/// The field named at the start of an API message (`burst_window_minutes: must be …`).
pub fn field_of(message: &str) -> Option<&str> {
    let (field, _) = message.split_once(": ")?;
    (!field.is_empty() && field.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.[]".contains(&b))).then_some(field)
}

/// The policy form's state.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyForm {
    pub decisions: Vec<String>,
    pub families: Vec<String>,
    pub card_testing: bool,
    pub burst_subjects: String,
    pub burst_window_minutes: String,
    pub traffic: bool,
    pub traffic_spike_ratio: String,
    pub traffic_drop_ratio: String,
    pub traffic_min_baseline: String,
    pub cooldown_minutes: String,
    pub time_zone: String,
    /// Both empty: no quiet hours.
    pub quiet_from: String,
    pub quiet_to: String,
    pub digest: bool,
    pub digest_hour: String,
}

impl From<&AlertPolicyBody> for PolicyForm {
    fn from(p: &AlertPolicyBody) -> Self {
        PolicyForm {
            decisions: p.decisions.clone(),
            families: p.families.clone(),
            card_testing: p.card_testing,
            burst_subjects: p.burst_subjects.to_string(),
            burst_window_minutes: p.burst_window_minutes.to_string(),
            traffic: p.traffic,
            traffic_spike_ratio: p.traffic_spike_ratio.to_string(),
            traffic_drop_ratio: p.traffic_drop_ratio.to_string(),
            traffic_min_baseline: p.traffic_min_baseline.to_string(),
            cooldown_minutes: p.cooldown_minutes.to_string(),
            time_zone: p.time_zone.clone(),
            quiet_from: p.quiet_hours.as_ref().map(|q| q.from.clone()).unwrap_or_default(),
            quiet_to: p.quiet_hours.as_ref().map(|q| q.to.clone()).unwrap_or_default(),
            digest: p.digest,
            digest_hour: p.digest_hour.to_string(),
        }
    }
}

fn number<T: std::str::FromStr>(field: &str, raw: &str) -> Result<T, FormError> {
    raw.trim().parse().map_err(|_| error(field, format!("`{}` is not a number", raw.trim())))
}

/// Adds or removes `item` in a list of choices (checkboxes).
pub fn toggle(list: &mut Vec<String>, item: &str, on: bool) {
    list.retain(|x| x != item);
    if on {
        list.push(item.to_owned());
    }
}

impl PolicyForm {
    /// The request body, or the first field that is not a number / is half filled.
    pub fn to_body(&self) -> Result<AlertPolicyBody, FormError> {
        let quiet_hours = match (self.quiet_from.trim(), self.quiet_to.trim()) {
            ("", "") => None,
            ("", _) => return Err(error("quiet_hours.from", "set both ends of quiet hours, or neither")),
            (_, "") => return Err(error("quiet_hours.to", "set both ends of quiet hours, or neither")),
            (from, to) => Some(QuietHoursBody { from: from.to_owned(), to: to.to_owned() }),
        };
        Ok(AlertPolicyBody {
            decisions: self.decisions.clone(),
            families: self.families.clone(),
            card_testing: self.card_testing,
            burst_subjects: number("burst_subjects", &self.burst_subjects)?,
            burst_window_minutes: number("burst_window_minutes", &self.burst_window_minutes)?,
            traffic: self.traffic,
            traffic_spike_ratio: number("traffic_spike_ratio", &self.traffic_spike_ratio)?,
            traffic_drop_ratio: number("traffic_drop_ratio", &self.traffic_drop_ratio)?,
            traffic_min_baseline: number("traffic_min_baseline", &self.traffic_min_baseline)?,
            cooldown_minutes: number("cooldown_minutes", &self.cooldown_minutes)?,
            time_zone: self.time_zone.trim().to_owned(),
            quiet_hours,
            digest: self.digest,
            digest_hour: number("digest_hour", &self.digest_hour)?,
        })
    }
}

/// The new-channel form.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChannelForm {
    pub kind: String,
    pub name: String,
    /// Email recipients, separated by commas, spaces or new lines.
    pub to: String,
    pub url: String,
}

impl ChannelForm {
    /// The request body; the server checks addresses and URLs and names the field when wrong.
    pub fn to_body(&self) -> Result<NewAlertChannel, FormError> {
        if self.name.trim().is_empty() {
            return Err(error("name", "give the channel a name"));
        }
        let email = self.kind == "email";
        let to: Vec<String> = if email {
            self.to
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        } else {
            Vec::new()
        };
        if email && to.is_empty() {
            return Err(error("to", "add at least one email address"));
        }
        let url = (!email).then(|| self.url.trim().to_owned());
        if url.as_deref() == Some("") {
            return Err(error("url", "paste the incoming-webhook URL"));
        }
        Ok(NewAlertChannel { kind: self.kind.clone(), name: self.name.trim().to_owned(), to, url })
    }
}

/// What a delivery's status means to the merchant.
pub fn status_label(status: &str) -> &'static str {
    match status {
        "delivered" => "Delivered",
        "pending" => "Sending",
        "dead" => "Failed",
        _ => "Unknown",
    }
}

/// The human name of a channel kind.
pub fn kind_label(kind: &str) -> &'static str {
    match kind {
        "email" => "Email",
        "slack" => "Slack",
        "discord" => "Discord",
        "webhook" => "Webhook",
        _ => "Channel",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn policy() -> AlertPolicyBody {
        AlertPolicyBody {
            decisions: vec!["BLOCK".into()],
            families: vec!["card".into(), "ua".into()],
            card_testing: true,
            burst_subjects: 5,
            burst_window_minutes: 10,
            traffic: false,
            traffic_spike_ratio: 3.0,
            traffic_drop_ratio: 0.2,
            traffic_min_baseline: 20,
            cooldown_minutes: 60,
            time_zone: "UTC".into(),
            quiet_hours: None,
            digest: false,
            digest_hour: 8,
        }
    }

    #[test]
    fn a_policy_round_trips_through_the_form() {
        let mut p = policy();
        assert_eq!(PolicyForm::from(&p).to_body(), Ok(p.clone()));
        p.quiet_hours = Some(QuietHoursBody { from: "22:00".into(), to: "07:00".into() });
        assert_eq!(PolicyForm::from(&p).to_body(), Ok(p));
    }

    #[rstest]
    #[case::burst(|f: &mut PolicyForm| f.burst_subjects = "five".into(), "burst_subjects")]
    #[case::window(|f: &mut PolicyForm| f.burst_window_minutes = "-1".into(), "burst_window_minutes")]
    #[case::ratio(|f: &mut PolicyForm| f.traffic_spike_ratio = "3x".into(), "traffic_spike_ratio")]
    #[case::cooldown(|f: &mut PolicyForm| f.cooldown_minutes = "".into(), "cooldown_minutes")]
    #[case::hour(|f: &mut PolicyForm| f.digest_hour = "300".into(), "digest_hour")]
    #[case::quiet(|f: &mut PolicyForm| f.quiet_from = "22:00".into(), "quiet_hours.to")]
    fn a_bad_input_names_its_field(#[case] spoil: fn(&mut PolicyForm), #[case] field: &str) {
        let mut form = PolicyForm::from(&policy());
        spoil(&mut form);
        assert_eq!(form.to_body().unwrap_err().field, field);
    }

    #[test]
    fn toggling_a_choice_adds_or_removes_it_once() {
        let mut list = vec!["BLOCK".to_owned()];
        toggle(&mut list, "CHALLENGE", true);
        toggle(&mut list, "CHALLENGE", true);
        assert_eq!(list, ["BLOCK", "CHALLENGE"]);
        toggle(&mut list, "BLOCK", false);
        assert_eq!(list, ["CHALLENGE"]);
    }

    #[rstest]
    #[case("email", "Ops", "a@x.example, b@x.example\nc@x.example", "", Ok(3))]
    #[case("email", "Ops", "  ", "", Err("to"))]
    #[case("slack", "", "", "https://hooks.slack.com/x", Err("name"))]
    #[case("slack", "Team", "", " ", Err("url"))]
    #[case("webhook", "SIEM", "ignored@x.example", "https://siem.example/in", Ok(0))]
    fn the_channel_form_builds_the_request(
        #[case] kind: &str,
        #[case] name: &str,
        #[case] to: &str,
        #[case] url: &str,
        #[case] expected: Result<usize, &str>,
    ) {
        let form = ChannelForm { kind: kind.into(), name: name.into(), to: to.into(), url: url.into() };
        match (form.to_body(), expected) {
            (Ok(body), Ok(recipients)) => {
                assert_eq!(body.to.len(), recipients);
                assert_eq!(body.url.is_some(), kind != "email");
            }
            (Err(e), Err(field)) => assert_eq!(e.field, field),
            (got, want) => panic!("{got:?} != {want:?}"),
        }
    }

    #[rstest]
    #[case("burst_window_minutes: must be between 1 and 1440, got 0", Some("burst_window_minutes"))]
    #[case("to[0]: `x` is not an email address", Some("to[0]"))]
    #[case("the database is unavailable; retry shortly", None)]
    fn api_messages_name_their_field(#[case] message: &str, #[case] field: Option<&str>) {
        assert_eq!(field_of(message), field);
    }
}
