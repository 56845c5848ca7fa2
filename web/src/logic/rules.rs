//! The Rules page's editing: a rule's settings as the inputs hold them, checked against the
//! bounds the server sends with each rule (errors name the API's field).

use ghosttrack_wire::{RuleChange, RuleSetting};

use super::alerts::FormError;

#[derive(Clone, Debug, PartialEq)]
pub struct RuleForm {
    pub rule: String,
    pub enabled: bool,
    pub shadow: bool,
    /// Empty: the rule's own threshold.
    pub threshold: String,
    pub window_secs: String,
    pub threshold_bounds: Option<(u32, u32)>,
    pub window_bounds: Option<(u64, u64)>,
}

impl From<&RuleSetting> for RuleForm {
    fn from(r: &RuleSetting) -> Self {
        RuleForm {
            rule: r.id.clone(),
            enabled: r.enabled,
            shadow: r.shadow,
            threshold: r.threshold.map(|t| t.to_string()).unwrap_or_default(),
            window_secs: r.window_secs.map(|w| w.to_string()).unwrap_or_default(),
            threshold_bounds: r.default_threshold.map(|_| (r.threshold_min, r.threshold_max)),
            window_bounds: r.default_window_secs.map(|_| (r.window_min, r.window_max)),
        }
    }
}

fn bounded<T>(field: &str, raw: &str, bounds: Option<(T, T)>) -> Result<Option<T>, FormError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let Some((lo, hi)) = bounds else {
        return Err(FormError { field: field.into(), message: format!("{field}: this rule has none to change") });
    };
    match raw.parse::<T>() {
        Ok(v) if v >= lo && v <= hi => Ok(Some(v)),
        _ => Err(FormError {
            field: field.into(),
            message: format!("{field}: must be a whole number from {lo} to {hi}"),
        }),
    }
}

impl RuleForm {
    pub fn to_change(&self) -> Result<RuleChange, FormError> {
        Ok(RuleChange {
            rule: self.rule.clone(),
            enabled: self.enabled,
            shadow: self.shadow,
            threshold: bounded("threshold", &self.threshold, self.threshold_bounds)?,
            window_secs: bounded("window_secs", &self.window_secs, self.window_bounds)?,
        })
    }
}

/// "10 in 60 s" for a rule's threshold and window.
pub fn describe(threshold: Option<u32>, window_secs: Option<u64>) -> Option<String> {
    match (threshold, window_secs) {
        (Some(t), Some(w)) => Some(format!("{t} within {w} s")),
        (Some(t), None) => Some(t.to_string()),
        (None, Some(w)) => Some(format!("within {w} s")),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn setting(tunable: bool) -> RuleSetting {
        RuleSetting {
            id: "card/ct1-ip-failures".into(),
            description: "Many failed payments from one network".into(),
            enabled: true,
            shadow: false,
            threshold: None,
            window_secs: None,
            default_threshold: tunable.then_some(5),
            default_window_secs: tunable.then_some(600),
            threshold_min: 1,
            threshold_max: 1000,
            window_min: 1,
            window_max: 691_200,
        }
    }

    #[rstest]
    #[case("", "", Ok((None, None)))]
    #[case("3", "120", Ok((Some(3), Some(120))))]
    #[case("0", "", Err("threshold"))]
    #[case("1001", "", Err("threshold"))]
    #[case("2.5", "", Err("threshold"))]
    #[case("", "691201", Err("window_secs"))]
    #[case("", "soon", Err("window_secs"))]
    fn overrides_are_checked_against_the_rule_bounds(
        #[case] threshold: &str,
        #[case] window: &str,
        #[case] expected: Result<(Option<u32>, Option<u64>), &str>,
    ) {
        let mut form = RuleForm::from(&setting(true));
        form.threshold = threshold.into();
        form.window_secs = window.into();
        match (form.to_change(), expected) {
            (Ok(c), Ok((t, w))) => assert_eq!((c.threshold, c.window_secs), (t, w)),
            (Err(e), Err(field)) => assert_eq!(e.field, field),
            (got, want) => panic!("{got:?} != {want:?}"),
        }
    }

    #[test]
    fn a_rule_without_a_threshold_refuses_one() {
        let mut form = RuleForm::from(&setting(false));
        assert_eq!(form.to_change().unwrap().threshold, None);
        form.threshold = "4".into();
        assert_eq!(form.to_change().unwrap_err().field, "threshold");
    }

    #[test]
    fn thresholds_read_as_counts_within_a_window() {
        assert_eq!(describe(Some(5), Some(600)).as_deref(), Some("5 within 600 s"));
        assert_eq!(describe(None, None), None);
    }
}
