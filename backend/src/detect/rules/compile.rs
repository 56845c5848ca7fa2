//! Compiled rules: validated specs with windows in ms, filters as bit masks and matchers, and
//! the rule set that owns the shared user-agent matchers.

use std::collections::BTreeMap;
use std::path::Path;

use aho_corasick::AhoCorasick;
use regex::Regex;

use crate::detect::event::EventType;

use super::load::{EMBEDDED_RULES, collect_embedded, read_dir_sources};
use super::{ConditionSpec, EnvFlag, Feature, Field, FilterSpec, KeyKind, RuleError, RuleId, RuleSpec};

/// Compiled event filter.
#[derive(Debug, Clone)]
pub struct Filter {
    pub events_mask: u32,
    /// Index into [`RuleSet::ua_matchers`].
    pub ua: Option<usize>,
    pub ua_missing: bool,
    pub status_min: Option<u16>,
    pub status_max: Option<u16>,
    pub exclude_static: bool,
    pub net_mask: i32,
    pub env_flags: Vec<EnvFlag>,
    pub payment_failure: Option<bool>,
    pub payment_attempt: Option<bool>,
    pub error_codes: Vec<String>,
    pub quantity_min: Option<u32>,
    pub quantity_max: Option<u32>,
    pub amount_max_minor: Option<i64>,
    pub guest: Option<bool>,
    pub product: Option<bool>,
    pub rejected: Option<bool>,
}

/// Compiled condition: windows in ms.
#[derive(Debug, Clone)]
pub enum Condition {
    Trigger {
        filter: Filter,
    },
    Threshold {
        filter: Filter,
        window_ms: i64,
        threshold: u32,
    },
    Distinct {
        filter: Filter,
        field: Field,
        window_ms: i64,
        threshold: u32,
    },
    Sequence {
        first: Filter,
        then: Filter,
        within_ms: i64,
        same: Option<Field>,
        unless_between: Option<Filter>,
        window_ms: i64,
        threshold: u32,
    },
    Ratio {
        filter: Filter,
        numerator: Filter,
        window_ms: i64,
        min_events: u32,
        min_share: f64,
        baseline: Option<Baseline>,
    },
    Behaviour {
        feature: Feature,
    },
}

#[derive(Debug, Clone, Copy)]
pub struct Baseline {
    pub window_ms: i64,
    pub multiplier: f64,
    pub floor: f64,
}

impl Condition {
    /// Event types the condition may look at, as `EventType::bit`s (all for behaviour rules,
    /// which judge the session's features on any of its events, and for filters without `events`).
    pub fn event_mask(&self) -> u32 {
        let of = |f: &Filter| if f.events_mask == 0 { u32::MAX } else { f.events_mask };
        match self {
            Condition::Trigger { filter }
            | Condition::Threshold { filter, .. }
            | Condition::Distinct { filter, .. }
            | Condition::Ratio { filter, .. } => of(filter),
            Condition::Sequence { first, then, unless_between, .. } => {
                of(first) | of(then) | unless_between.as_ref().map_or(0, of)
            }
            Condition::Behaviour { .. } => u32::MAX,
        }
    }

    /// The main threshold and window, for reasons and evidence.
    pub fn threshold_and_window(&self) -> (u32, i64) {
        match self {
            Condition::Trigger { .. } | Condition::Behaviour { .. } => (1, 0),
            Condition::Threshold { threshold, window_ms, .. }
            | Condition::Distinct { threshold, window_ms, .. }
            | Condition::Sequence { threshold, window_ms, .. } => (*threshold, *window_ms),
            Condition::Ratio { min_events, window_ms, .. } => (*min_events, *window_ms),
        }
    }
}

/// A rule ready to run.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    pub id: RuleId,
    pub description: String,
    pub behavior: String,
    pub key: KeyKind,
    pub weight: f64,
    pub confidence: f64,
    pub spoofable: bool,
    pub attack: bool,
    pub ttl_ms: i64,
    pub cooldown_ms: i64,
    pub reason: String,
    pub condition: Condition,
    /// The spec it came from (for `rules check` and overrides).
    pub spec: RuleSpec,
}

/// A case-insensitive UA matcher: literal tokens and/or crawler-list regexes.
#[derive(Debug, Clone)]
pub struct UaMatcher {
    pub tokens: Option<AhoCorasick>,
    pub list: Option<Regex>,
}

impl UaMatcher {
    /// The matched token or list entry, if any.
    pub fn find(&self, ua: &str) -> Option<String> {
        if let Some(ac) = &self.tokens
            && let Some(m) = ac.find(ua)
        {
            return Some(ua[m.start()..m.end()].to_ascii_lowercase());
        }
        if let Some(re) = &self.list
            && let Some(m) = re.find(ua)
        {
            return Some(m.as_str().chars().take(40).collect());
        }
        None
    }
}

/// All loaded rules plus their shared UA matchers.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub rules: Vec<CompiledRule>,
    pub ua_matchers: Vec<UaMatcher>,
    /// Per event type (`EventType as usize`), the indexes (ascending) of the rules that may
    /// accept an event of that type: the engine looks at no other rule. Behaviour rules and
    /// filters without `events` are in every list.
    pub by_event: Vec<Vec<u16>>,
}

const PLACEHOLDERS: [&str; 5] = ["count", "threshold", "window", "detail", "key"];
/// Most rules one set may hold (rule indexes are `u16`, UA matcher results a `u64` bit set).
const MAX_UA_MATCHERS: usize = 64;
/// Longest window (and TTL) a rule or a tenant override may set.
pub const MAX_WINDOW_SECS: u64 = 8 * 86_400;
/// Thresholds bound per-key memory (the engine keeps at most `threshold` timestamps or values).
pub const MAX_THRESHOLD: u32 = 1_000;

impl RuleSet {
    /// The rules compiled into the binary.
    pub fn embedded() -> Result<RuleSet, Vec<RuleError>> {
        let mut files = Vec::new();
        collect_embedded(&EMBEDDED_RULES, &mut files);
        RuleSet::from_sources(files)
    }

    /// The embedded rules, with the rules of `dir` (if any) replacing those with the same id and
    /// adding new ones.
    pub fn load(override_dir: Option<&Path>) -> Result<RuleSet, Vec<RuleError>> {
        let mut files = Vec::new();
        collect_embedded(&EMBEDDED_RULES, &mut files);
        if let Some(dir) = override_dir {
            let extra = read_dir_sources(dir)?;
            for (path, text, md) in extra {
                files.retain(|(p, _, _)| p != &path);
                files.push((path, text, md));
            }
        }
        RuleSet::from_sources(files)
    }

    /// Only the rules under `dir` (what `ghosttrack rules check DIR` validates).
    pub fn load_dir(dir: &Path) -> Result<RuleSet, Vec<RuleError>> {
        RuleSet::from_sources(read_dir_sources(dir)?)
    }

    /// Compiles `(relative path, toml text, has explainer)` triples, collecting every error.
    pub fn from_sources(mut files: Vec<(String, String, bool)>) -> Result<RuleSet, Vec<RuleError>> {
        files.sort_by(|a, b| a.0.cmp(&b.0));
        let mut set = RuleSet::default();
        let mut errors = Vec::new();
        let mut ids = BTreeMap::new();
        for (path, text, has_md) in &files {
            let spec = match super::parse_spec(path, text) {
                Ok(spec) => spec,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            if !has_md {
                errors.push(err(path, "(file)", "needs a sibling .md explainer with the same name"));
            }
            if let Some(previous) = ids.insert(spec.id.clone(), path.clone()) {
                errors.push(err(path, "id", &format!("duplicate id, also used by {previous}")));
            }
            match set.compile(path, spec) {
                Ok(rule) => set.rules.push(rule),
                Err(mut e) => errors.append(&mut e),
            }
        }
        if set.rules.len() > u16::MAX as usize - 1 {
            errors.push(err("(rules)", "(count)", "too many rules"));
        }
        set.by_event = (0..EventType::COUNT)
            .map(|t| {
                let bit = 1u32 << t;
                (0..set.rules.len() as u16)
                    .filter(|&i| set.rules[i as usize].condition.event_mask() & bit != 0)
                    .collect()
            })
            .collect();
        if errors.is_empty() { Ok(set) } else { Err(errors) }
    }

    /// Indexes of the rules that may accept an event of type `t` (see [`RuleSet::by_event`]).
    pub fn rules_for(&self, t: EventType) -> &[u16] {
        &self.by_event[t as usize]
    }

    pub fn get(&self, id: &str) -> Option<&CompiledRule> {
        self.rules.iter().find(|r| r.id.as_str() == id)
    }

    /// Compiles one spec; `path` is for error messages and the id check.
    pub fn compile(&mut self, path: &str, spec: RuleSpec) -> Result<CompiledRule, Vec<RuleError>> {
        let mut errors = Vec::new();
        let expected_id = path.trim_end_matches(".toml");
        if spec.id != expected_id {
            errors.push(err(path, "id", &format!("must equal the file's path without .toml (`{expected_id}`)")));
        }
        if spec.description.trim().len() < 10 {
            errors.push(err(path, "description", "is required (a sentence saying what the rule detects)"));
        }
        if spec.behavior.trim().is_empty() {
            errors.push(err(path, "behavior", "must not be empty (e.g. `bot:automation`)"));
        }
        for (name, v) in [("weight", spec.weight), ("confidence", spec.confidence)] {
            if !(0.0..=1.0).contains(&v) || !v.is_finite() {
                errors.push(err(path, name, "must be between 0 and 1"));
            }
        }
        if !spec.attack && spec.weight != 0.0 {
            errors.push(err(path, "weight", "must be 0 when attack = false (a label, not a threat)"));
        }
        if spec.ttl_secs == 0 || spec.ttl_secs > MAX_WINDOW_SECS {
            errors.push(err(path, "ttl_secs", &format!("must be between 1 and {MAX_WINDOW_SECS}")));
        }
        if spec.grace_secs.is_some_and(|g| g == 0 || g > MAX_WINDOW_SECS) {
            errors.push(err(path, "grace_secs", &format!("must be between 1 and {MAX_WINDOW_SECS}")));
        }
        check_template(path, &spec.reason, &mut errors);
        let condition = self.compile_condition(path, &spec, &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        let condition = condition.expect("no errors means a condition");
        let (_, window_ms) = condition.threshold_and_window();
        let cooldown_ms = spec.cooldown_secs.map(|s| s as i64 * 1000).unwrap_or(if window_ms > 0 {
            window_ms
        } else {
            spec.ttl_secs as i64 * 1000
        });
        Ok(CompiledRule {
            id: RuleId(spec.id.as_str().into()),
            description: spec.description.clone(),
            behavior: spec.behavior.clone(),
            key: spec.key,
            weight: spec.weight,
            confidence: spec.confidence,
            spoofable: spec.spoofable,
            attack: spec.attack,
            ttl_ms: spec.ttl_secs as i64 * 1000,
            cooldown_ms,
            reason: spec.reason.clone(),
            condition,
            spec,
        })
    }

    fn compile_condition(&mut self, path: &str, spec: &RuleSpec, errors: &mut Vec<RuleError>) -> Option<Condition> {
        let window = |field: &str, secs: u64, errors: &mut Vec<RuleError>| -> i64 {
            if secs == 0 || secs > MAX_WINDOW_SECS {
                errors.push(err(
                    path,
                    &format!("condition.{field}"),
                    &format!("must be between 1 and {MAX_WINDOW_SECS}"),
                ));
            }
            secs as i64 * 1000
        };
        let threshold = |t: u32, errors: &mut Vec<RuleError>| {
            if t == 0 || t > MAX_THRESHOLD {
                errors.push(err(path, "condition.threshold", &format!("must be between 1 and {MAX_THRESHOLD}")));
            }
            t
        };
        let share = |field: &str, v: f64, errors: &mut Vec<RuleError>| {
            if !(v > 0.0 && v <= 1.0) {
                errors.push(err(path, field, "must be above 0 and at most 1"));
            }
            v
        };
        Some(match &spec.condition {
            ConditionSpec::Trigger { filter } => {
                Condition::Trigger { filter: self.filter(path, "condition.filter", filter, errors) }
            }
            ConditionSpec::Threshold { filter, window_secs, threshold: t } => Condition::Threshold {
                filter: self.filter(path, "condition.filter", filter, errors),
                window_ms: window("window_secs", *window_secs, errors),
                threshold: threshold(*t, errors),
            },
            ConditionSpec::Distinct { filter, field, window_secs, threshold: t } => Condition::Distinct {
                filter: self.filter(path, "condition.filter", filter, errors),
                field: *field,
                window_ms: window("window_secs", *window_secs, errors),
                threshold: threshold(*t, errors),
            },
            ConditionSpec::Sequence { first, then, within_secs, same, unless_between, window_secs, threshold: t } => {
                let within_ms = window("within_secs", *within_secs, errors);
                let window_ms = window("window_secs", *window_secs, errors);
                if within_ms > window_ms {
                    errors.push(err(path, "condition.within_secs", "must not exceed window_secs"));
                }
                Condition::Sequence {
                    first: self.filter(path, "condition.first", first, errors),
                    then: self.filter(path, "condition.then", then, errors),
                    within_ms,
                    same: *same,
                    unless_between: unless_between
                        .as_ref()
                        .map(|f| self.filter(path, "condition.unless_between", f, errors)),
                    window_ms,
                    threshold: threshold(*t, errors),
                }
            }
            ConditionSpec::Ratio {
                filter,
                numerator,
                window_secs,
                min_events,
                min_share,
                baseline_window_secs,
                baseline_multiplier,
                baseline_floor,
            } => {
                let window_ms = window("window_secs", *window_secs, errors);
                if *min_events == 0 {
                    errors.push(err(path, "condition.min_events", "must be at least 1"));
                }
                let baseline = match (baseline_window_secs, baseline_multiplier) {
                    (None, None) => None,
                    (Some(w), Some(m)) => {
                        let bw = window("baseline_window_secs", *w, errors);
                        if bw <= window_ms {
                            errors.push(err(path, "condition.baseline_window_secs", "must be longer than window_secs"));
                        }
                        if !(*m >= 1.0 && m.is_finite()) {
                            errors.push(err(path, "condition.baseline_multiplier", "must be at least 1"));
                        }
                        let floor = baseline_floor.unwrap_or(0.0);
                        if !(0.0..1.0).contains(&floor) {
                            errors.push(err(path, "condition.baseline_floor", "must be in [0, 1)"));
                        }
                        Some(Baseline { window_ms: bw, multiplier: *m, floor })
                    }
                    _ => {
                        errors.push(err(
                            path,
                            "condition.baseline_window_secs",
                            "baseline_window_secs and baseline_multiplier go together",
                        ));
                        None
                    }
                };
                Condition::Ratio {
                    filter: self.filter(path, "condition.filter", filter, errors),
                    numerator: self.filter(path, "condition.numerator", numerator, errors),
                    window_ms,
                    min_events: *min_events,
                    min_share: share("condition.min_share", *min_share, errors),
                    baseline,
                }
            }
            ConditionSpec::Behaviour { feature } => {
                if spec.key != KeyKind::Session {
                    errors.push(err(path, "key", "behaviour rules are per session: key must be `session`"));
                }
                match feature {
                    Feature::NoInteraction { min_pageviews } | Feature::ClicksWithoutScroll { min_pageviews, .. }
                        if *min_pageviews == 0 =>
                    {
                        errors.push(err(path, "condition.feature.min_pageviews", "must be at least 1"));
                    }
                    Feature::RepeatedPointerSteps { min_steps, min_share } => {
                        if *min_steps < 10 {
                            errors.push(err(path, "condition.feature.min_steps", "must be at least 10"));
                        }
                        share("condition.feature.min_share", *min_share, errors);
                    }
                    Feature::StraightPointer { min_windows, min_share }
                    | Feature::SteadyPointer { min_windows, min_share } => {
                        if *min_windows < 3 {
                            errors.push(err(path, "condition.feature.min_windows", "must be at least 3"));
                        }
                        share("condition.feature.min_share", *min_share, errors);
                    }
                    Feature::ClicksWithoutApproach { min_clicks, min_share } => {
                        if *min_clicks == 0 {
                            errors.push(err(path, "condition.feature.min_clicks", "must be at least 1"));
                        }
                        share("condition.feature.min_share", *min_share, errors);
                    }
                    Feature::ShortDwell { min_pageviews, min_share, .. } => {
                        if *min_pageviews < 2 {
                            errors.push(err(path, "condition.feature.min_pageviews", "must be at least 2"));
                        }
                        share("condition.feature.min_share", *min_share, errors);
                    }
                    _ => {}
                }
                Condition::Behaviour { feature: feature.clone() }
            }
        })
    }

    fn filter(&mut self, path: &str, field: &str, spec: &FilterSpec, errors: &mut Vec<RuleError>) -> Filter {
        let ua = if spec.ua_contains.is_empty() && spec.ua_list_tags.is_empty() {
            None
        } else {
            let tokens = (!spec.ua_contains.is_empty()).then(|| {
                AhoCorasick::builder().ascii_case_insensitive(true).build(&spec.ua_contains).expect("literal tokens")
            });
            let list = if spec.ua_list_tags.is_empty() {
                None
            } else {
                match crate::detect::crawlers::regex_for_tags(&spec.ua_list_tags) {
                    Ok(re) => Some(re),
                    Err(unknown) => {
                        errors.push(err(path, &format!("{field}.ua_list_tags"), &format!("unknown tag `{unknown}`")));
                        None
                    }
                }
            };
            if self.ua_matchers.len() >= MAX_UA_MATCHERS {
                errors.push(err(path, &format!("{field}.ua_contains"), "too many user-agent filters in one rule set"));
            }
            self.ua_matchers.push(UaMatcher { tokens, list });
            Some(self.ua_matchers.len() - 1)
        };
        if let (Some(lo), Some(hi)) = (spec.status_min, spec.status_max)
            && lo > hi
        {
            errors.push(err(path, &format!("{field}.status_min"), "must not exceed status_max"));
        }
        if let (Some(lo), Some(hi)) = (spec.quantity_min, spec.quantity_max)
            && lo > hi
        {
            errors.push(err(path, &format!("{field}.quantity_min"), "must not exceed quantity_max"));
        }
        Filter {
            events_mask: spec.events.iter().fold(0, |m, e| m | e.bit()),
            ua,
            ua_missing: spec.ua_missing,
            status_min: spec.status_min,
            status_max: spec.status_max,
            exclude_static: spec.exclude_static,
            net_mask: spec.net_flags.iter().fold(0, |m, f| m | f.bit()),
            env_flags: spec.env_flags.clone(),
            payment_failure: spec.payment_failure,
            payment_attempt: spec.payment_attempt,
            error_codes: spec.error_codes.iter().map(|c| c.to_ascii_lowercase()).collect(),
            quantity_min: spec.quantity_min,
            quantity_max: spec.quantity_max,
            amount_max_minor: spec.amount_max_minor,
            guest: spec.guest,
            product: spec.product,
            rejected: spec.rejected,
        }
    }
}

pub(super) fn err(file: &str, field: &str, constraint: &str) -> RuleError {
    RuleError { file: file.to_owned(), field: field.to_owned(), constraint: constraint.to_owned() }
}

fn check_template(path: &str, reason: &str, errors: &mut Vec<RuleError>) {
    if reason.trim().is_empty() {
        errors.push(err(path, "reason", "must not be empty"));
    }
    let mut rest = reason;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            errors.push(err(path, "reason", "has an unclosed `{`"));
            return;
        };
        let name = &rest[open + 1..open + close];
        if !PLACEHOLDERS.contains(&name) {
            errors.push(err(
                path,
                "reason",
                &format!("unknown placeholder `{{{name}}}` (use {})", PLACEHOLDERS.join(", ")),
            ));
        }
        rest = &rest[open + close + 1..];
    }
}
