//! Rules as data: the TOML shape of a rule (`RuleSpec`), its compiled form (`CompiledRule`) and
//! loading with validation. A rule file is `backend/rules/<family>/<name>.toml` with id
//! `<family>/<name>` and a sibling `<name>.md` explainer. Conditions are a typed enum, not a
//! string language; every threshold is a named field that a tenant policy can override.

mod compile;
mod load;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::event::EventType;

pub use compile::{Baseline, CompiledRule, Condition, Filter, MAX_THRESHOLD, MAX_WINDOW_SECS, RuleSet, UaMatcher};
pub use load::{EMBEDDED_RULES, parse_spec};

/// Stable id of a rule, e.g. `card/ct1-ip-failures`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RuleId(pub Arc<str>);

impl RuleId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The family: the rule's folder (`card/ct1-ip-failures` → `card`).
    pub fn family(&self) -> &str {
        self.0.split_once('/').map_or(&self.0, |(family, _)| family)
    }
}

impl std::fmt::Display for RuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What state a rule is grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// The verdict's subject: the session, else the client key, else the network.
    Subject,
    Visitor,
    IpPrefix,
    Session,
    Device,
    CartToken,
    CheckoutToken,
    CardBin,
    Asn,
    Country,
    ClientKey,
    /// A product variant (cart rules).
    Variant,
    Shop,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Subject => "subject",
            KeyKind::Visitor => "visitor",
            KeyKind::IpPrefix => "ip_prefix",
            KeyKind::Session => "session",
            KeyKind::Device => "device",
            KeyKind::CartToken => "cart_token",
            KeyKind::CheckoutToken => "checkout_token",
            KeyKind::CardBin => "card_bin",
            KeyKind::Asn => "asn",
            KeyKind::Country => "country",
            KeyKind::ClientKey => "client_key",
            KeyKind::Variant => "variant",
            KeyKind::Shop => "shop",
        }
    }
}

/// A value whose distinct occurrences a rule counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Path,
    UserAgent,
    /// BIN + last 4 digits: one card.
    Card,
    Bin,
    IpPrefix,
    Variant,
    Product,
    Session,
    CartToken,
}

/// MaxMind / Tor flags an event's network may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetFlag {
    Tor,
    Vpn,
    Hosting,
    PublicProxy,
    ResidentialProxy,
}

impl NetFlag {
    pub fn bit(self) -> i32 {
        use crate::ingest::enrich::geo::net_flags as f;
        match self {
            NetFlag::Tor => f::TOR_EXIT,
            NetFlag::Vpn => f::VPN,
            NetFlag::Hosting => f::HOSTING,
            NetFlag::PublicProxy => f::PUBLIC_PROXY,
            NetFlag::ResidentialProxy => f::RESIDENTIAL_PROXY,
        }
    }
}

/// Automation and stealth tells from the tracker's environment probes (BotD / CreepJS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvFlag {
    Webdriver,
    HeadlessUa,
    /// Desktop Chrome reporting zero plugins.
    NoPluginsDesktopChrome,
    NoLanguages,
    PermissionInconsistent,
    ZeroOuterWindow,
    /// SwiftShader, llvmpipe or Mesa OffScreen: software rendering of headless machines.
    SoftwareWebgl,
    /// puppeteer-extra-plugin-stealth's fixed `Intel Iris OpenGL Engine` on a non-Mac UA.
    StealthWebglMismatch,
    /// A dedicated worker reports another hardwareConcurrency, platform or user agent than the page.
    WorkerMismatch,
}

/// Which events a rule looks at. Every set field must hold (AND); list fields match any entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterSpec {
    #[serde(default)]
    pub events: Vec<EventType>,
    /// Case-insensitive substrings of the user agent.
    #[serde(default)]
    pub ua_contains: Vec<String>,
    /// Tags of the embedded crawler-user-agents list (e.g. `search-engine`).
    #[serde(default)]
    pub ua_list_tags: Vec<String>,
    /// The event carries no user agent, or an empty one.
    #[serde(default)]
    pub ua_missing: bool,
    #[serde(default)]
    pub status_min: Option<u16>,
    #[serde(default)]
    pub status_max: Option<u16>,
    /// Skip static assets (CrowdSec's `static_ressource` extension list).
    #[serde(default)]
    pub exclude_static: bool,
    #[serde(default)]
    pub net_flags: Vec<NetFlag>,
    #[serde(default)]
    pub env_flags: Vec<EnvFlag>,
    #[serde(default)]
    pub payment_failure: Option<bool>,
    #[serde(default)]
    pub payment_attempt: Option<bool>,
    /// Transaction error codes (any).
    #[serde(default)]
    pub error_codes: Vec<String>,
    #[serde(default)]
    pub quantity_min: Option<u32>,
    #[serde(default)]
    pub quantity_max: Option<u32>,
    #[serde(default)]
    pub amount_max_minor: Option<i64>,
    #[serde(default)]
    pub guest: Option<bool>,
    /// Pageviews of product pages only.
    #[serde(default)]
    pub product: Option<bool>,
    /// Cart adds the shop refused (422).
    #[serde(default)]
    pub rejected: Option<bool>,
}

/// Per-session behaviour features (COLLECT-PROTOCOL.md events summed per session).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "feature", rename_all = "snake_case", deny_unknown_fields)]
pub enum Feature {
    /// At least `min_pageviews` pages and not one pointer, touch, key, wheel, click or scroll.
    NoInteraction { min_pageviews: u32 },
    /// Share of pointer steps that exactly repeat the previous (dx, dy).
    RepeatedPointerSteps { min_steps: u32, min_share: f64 },
    /// Share of pointer windows (12 steps of one movement) that are near-perfect lines.
    StraightPointer { min_windows: u32, min_share: f64 },
    /// Share of pointer windows whose step lengths hardly vary (constant speed).
    SteadyPointer { min_windows: u32, min_share: f64 },
    /// Share of clicks with no pointer movement in the 500 ms before them.
    ClicksWithoutApproach { min_clicks: u32, min_share: f64 },
    /// At least `min_clicks` clicks over at least `min_pageviews` pages with no scroll, wheel or touch.
    ClicksWithoutScroll { min_clicks: u32, min_pageviews: u32 },
    /// Share of pages left faster than `max_dwell_ms`.
    ShortDwell { min_pageviews: u32, max_dwell_ms: u64, min_share: f64 },
}

/// The typed condition of a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ConditionSpec {
    /// One matching event fires.
    Trigger {
        #[serde(default)]
        filter: FilterSpec,
    },
    /// At least `threshold` matching events within a sliding `window_secs`.
    Threshold { filter: FilterSpec, window_secs: u64, threshold: u32 },
    /// At least `threshold` distinct values of `field` within a sliding `window_secs`.
    Distinct { filter: FilterSpec, field: Field, window_secs: u64, threshold: u32 },
    /// `first` followed by `then` (same `same` value, within `within_secs`, with no `unless_between`
    /// event in between) at least `threshold` times within `window_secs`.
    Sequence {
        first: FilterSpec,
        then: FilterSpec,
        within_secs: u64,
        #[serde(default)]
        same: Option<Field>,
        #[serde(default)]
        unless_between: Option<FilterSpec>,
        window_secs: u64,
        threshold: u32,
    },
    /// Share of `numerator` among `filter` events within `window_secs` is at least `min_share`
    /// over at least `min_events`; with a baseline, also more than `baseline_multiplier` times the
    /// share over `baseline_window_secs` (floored at `baseline_floor`).
    Ratio {
        filter: FilterSpec,
        numerator: FilterSpec,
        window_secs: u64,
        min_events: u32,
        min_share: f64,
        #[serde(default)]
        baseline_window_secs: Option<u64>,
        #[serde(default)]
        baseline_multiplier: Option<f64>,
        #[serde(default)]
        baseline_floor: Option<f64>,
    },
    /// A per-session behaviour feature crosses its threshold.
    Behaviour { feature: Feature },
}

impl ConditionSpec {
    /// The threshold and window a tenant may override (`ratio`: `min_events` is its threshold);
    /// `None` for conditions without them (triggers, behaviour features).
    pub fn tunables(&self) -> (Option<u32>, Option<u64>) {
        match self {
            ConditionSpec::Threshold { threshold, window_secs, .. }
            | ConditionSpec::Distinct { threshold, window_secs, .. }
            | ConditionSpec::Sequence { threshold, window_secs, .. } => (Some(*threshold), Some(*window_secs)),
            ConditionSpec::Ratio { min_events, window_secs, .. } => (Some(*min_events), Some(*window_secs)),
            ConditionSpec::Trigger { .. } | ConditionSpec::Behaviour { .. } => (None, None),
        }
    }
}

/// One rule file as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub id: String,
    pub description: String,
    /// Behaviour label, e.g. `ecommerce:card-testing`, `bot:crawler`.
    pub behavior: String,
    pub key: KeyKind,
    /// Probability-like severity 0..1 that the subject is abusive when this fires.
    pub weight: f64,
    /// How sure the rule is of its own observation, 0..1.
    pub confidence: f64,
    /// The evidence is a client-reported flag a client can fake.
    #[serde(default)]
    pub spoofable: bool,
    /// `false` for labels that are not attacks (declared crawlers): weight must be 0.
    #[serde(default = "yes")]
    pub attack: bool,
    /// How long a fired signal stays part of the subject's verdict.
    #[serde(default = "default_ttl")]
    pub ttl_secs: u64,
    /// Silence after firing for the same key (default: the window, or the TTL for triggers).
    #[serde(default)]
    pub cooldown_secs: Option<u64>,
    /// Sentence for reasons; placeholders `{count}`, `{threshold}`, `{window}`, `{detail}`, `{key}`.
    pub reason: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Rules over late-judged events (`untracked`): how long after Shopify reports a cart,
    /// checkout or order the judge waits for the tracker's events before calling it untracked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_secs: Option<u64>,
    pub condition: ConditionSpec,
}

fn yes() -> bool {
    true
}

fn default_ttl() -> u64 {
    3600
}

/// A rule that cannot be loaded: which file, which field, which constraint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {field}: {constraint}")]
pub struct RuleError {
    pub file: String,
    pub field: String,
    pub constraint: String,
}

/// Static resources by extension (CrowdSec http-logs static list).
pub fn is_static_path(path: &str) -> bool {
    const STATIC: [&str; 25] = [
        ".jpg", ".css", ".js", ".jpeg", ".png", ".svg", ".map", ".ico", ".otf", ".gif", ".mp3", ".mp4", ".woff",
        ".woff2", ".ttf", ".eot", ".webp", ".wav", ".gz", ".brotli", ".bvr", ".ts", ".bmp", ".avif", ".mjs",
    ];
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let Some(dot) = path.rfind('.') else { return false };
    if path[dot..].contains('/') {
        return false;
    }
    let ext = path[dot..].to_ascii_lowercase();
    STATIC.contains(&ext.as_str())
}
