//! The admin panel's API bodies, defined once. The backend builds them (with the `openapi`
//! feature they are poem-openapi objects in `/api/openapi.json`); the panel reads them with
//! serde. Times are milliseconds since the Unix epoch, UTC. Session ids are 63-bit integers:
//! read them with serde (exact), never as JavaScript numbers.

use serde::{Deserialize, Serialize};

macro_rules! wire {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
        pub struct $name { $($(#[$fmeta])* pub $field: $ty),* }
    };
}

wire! {
    /// An error answer of the panel API.
    pub struct PanelError {
        /// Stable machine-readable code.
        pub error: String,
        /// What went wrong and what to do.
        pub message: String,
    }
}

wire! {
    /// The Overview page: key numbers over a range and the visitors-vs-bots series.
    pub struct Overview {
        /// The range asked for (`24h`, `7d`, `30d`).
        pub range: String,
        pub from: i64,
        pub to: i64,
        /// Width of one series bucket in ms.
        pub bucket_ms: i64,
        /// Distinct daily visitor ids among sessions started in the range.
        pub visitors: i64,
        pub sessions: i64,
        /// Share of sessions flagged automated, 0..1.
        pub automated_share: f64,
        /// Subjects whose latest verdict is CHALLENGE or BLOCK and still in force.
        pub open_threats: i64,
        /// Verdict changes in the range raised by a card-testing rule (bursts of failed payments).
        pub failed_payment_bursts: i64,
        /// Failed or errored payment attempts reported by Shopify in the range.
        pub failed_payments: i64,
        pub series: Vec<SeriesPoint>,
    }
}

wire! {
    /// One bucket of the visitors-vs-bots chart.
    pub struct SeriesPoint {
        pub start: i64,
        pub visitors: i64,
        pub sessions: i64,
        /// Sessions flagged automated (bots).
        pub automated_sessions: i64,
    }
}

wire! {
    /// Why a verdict was reached: one rule and its sentence.
    pub struct ReasonItem {
        /// Rule id, e.g. `card/ct1-ip-failures`.
        pub rule: String,
        pub sentence: String,
        /// The rule runs in shadow mode: reported, not enforced.
        pub shadow: bool,
    }
}

wire! {
    /// One verdict change (a threat record).
    pub struct ThreatItem {
        pub id: i64,
        /// `session:ID`, `client:KEY`, `ip:PREFIX`, …
        pub subject: String,
        /// The session, when the subject is one.
        pub session_id: Option<i64>,
        /// `ALLOW`, `CHALLENGE` or `BLOCK`.
        pub decision: String,
        pub score: i32,
        /// Event time of the verdict.
        pub at: i64,
        pub reasons: Vec<ReasonItem>,
    }
}

wire! {
    /// The newest verdict changes, newest first.
    pub struct ThreatList {
        pub threats: Vec<ThreatItem>,
    }
}

wire! {
    /// A session in the Sessions list.
    pub struct SessionSummary {
        pub id: i64,
        pub started_at: i64,
        pub last_seen_at: i64,
        pub pageviews: i32,
        pub events: i32,
        pub entry_path: String,
        pub country: Option<String>,
        pub device: String,
        pub browser: String,
        pub os: String,
        pub automated: bool,
        /// Latest verdict of the session, if any rule ever fired for it.
        pub decision: Option<String>,
        pub score: Option<i32>,
    }
}

wire! {
    pub struct SessionList {
        pub sessions: Vec<SessionSummary>,
    }
}

wire! {
    /// One stored event of a session.
    pub struct TimelineEvent {
        pub ts: i64,
        /// Wire tag: `pv`, `cl`, `sc`, `pp`, `ix`, `en`, `vi`, `ac`, …
        pub kind: String,
        pub path: String,
        /// A short human description (e.g. "clicked button#buy").
        pub detail: String,
    }
}

wire! {
    /// A pointer sample for the replay: absolute event time and page coordinates.
    pub struct PointerSample {
        pub t: i64,
        pub x: i32,
        pub y: i32,
    }
}

wire! {
    /// A click for the replay.
    pub struct ClickMark {
        pub t: i64,
        pub x: i32,
        pub y: i32,
        /// Short CSS selector of the target (no text content).
        pub target: String,
    }
}

wire! {
    /// The counters behind a signal.
    pub struct EvidenceItem {
        pub behavior: String,
        pub key: String,
        pub count: i64,
        pub threshold: i64,
        pub window_secs: i64,
        pub at: i64,
        pub sample: String,
    }
}

wire! {
    /// One rule that fired for the session, with its evidence and its explainer.
    pub struct SignalItem {
        pub rule: String,
        pub sentence: String,
        pub shadow: bool,
        pub evidence: Vec<EvidenceItem>,
        /// The rule's explainer (Markdown from `backend/rules/<rule>.md`).
        pub explainer: String,
    }
}

wire! {
    /// Everything the session detail page shows.
    pub struct SessionDetail {
        pub session: SessionSummary,
        pub timeline: Vec<TimelineEvent>,
        pub pointer: Vec<PointerSample>,
        pub clicks: Vec<ClickMark>,
        /// Largest page size seen in click events (for scaling the replay), if any.
        pub page_width: Option<i32>,
        pub page_height: Option<i32>,
        pub signals: Vec<SignalItem>,
    }
}

wire! {
    /// The Setup page.
    pub struct SetupStatus {
        /// `shopify` or `standalone`.
        pub kind: String,
        pub domain: String,
        /// The site's public key (`gt_…`), for the snippet of standalone sites.
        pub site_key: String,
        /// `enabled`, `disabled`, `missing`, `no_main_theme`, `unknown` (Shopify could not be asked) or
        /// `not_applicable` (standalone).
        pub app_embed: String,
        /// The theme editor deep link that activates the app embed (Shopify only).
        pub activation_url: Option<String>,
        /// `connected`, `missing`, `unknown` or `not_applicable`.
        pub pixel: String,
        /// Events received in the last 24 hours: is the tracker reporting?
        pub events_last_24h: i64,
    }
}

wire! {
    /// A detection rule as the Rules page lists it.
    pub struct RuleItem {
        /// e.g. `card/ct1-ip-failures`.
        pub id: String,
        pub description: String,
        /// What it watches (`pointer`, `payment`, `rate`, …).
        pub behavior: String,
        /// An attack signal (false: a label such as a declared crawler).
        pub attack: bool,
        /// Weight in the verdict score, 0..1.
        pub weight: f64,
        /// The rule's explainer (Markdown).
        pub explainer: String,
    }
}

wire! {
    pub struct RuleList {
        pub rules: Vec<RuleItem>,
    }
}

mod maps;
mod privacy;
pub use maps::*;
pub use privacy::*;
mod manage;
pub use manage::*;
