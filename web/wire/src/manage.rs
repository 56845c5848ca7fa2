//! Bodies of the panel's management pages: Alerts (policy, channels, deliveries), Billing
//! (plan, usage, plan cards, provider redirects) and rule settings (enable, shadow, thresholds).
//! Each page's GET answer also says what the signed-in user and the tenant's plan allow, so the
//! panel shows only actions that will succeed.

use serde::{Deserialize, Serialize};

wire! {
    /// A 422 answer: which field is wrong and why (e.g. `burst_window_minutes`, `to[0]`,
    /// `condition.threshold`).
    pub struct FieldError {
        pub error: String,
        pub field: String,
        pub message: String,
    }
}

wire! {
    /// Quiet hours in local `HH:MM`; may wrap midnight (`22:00`–`07:00`).
    pub struct QuietHoursBody {
        pub from: String,
        pub to: String,
    }
}

wire! {
    /// A tenant's alert policy (docs/ALERTS.md): the same fields as `PUT /api/v1/alerts/policy`.
    pub struct AlertPolicyBody {
        /// `BLOCK`, `CHALLENGE`.
        pub decisions: Vec<String>,
        /// Rule families that count (the part of a rule id before `/`).
        pub families: Vec<String>,
        pub card_testing: bool,
        /// Distinct subjects within `burst_window_minutes`; 0 = off.
        pub burst_subjects: u32,
        pub burst_window_minutes: u32,
        pub traffic: bool,
        pub traffic_spike_ratio: f64,
        pub traffic_drop_ratio: f64,
        pub traffic_min_baseline: u32,
        pub cooldown_minutes: u32,
        /// IANA zone of quiet hours and the digest.
        pub time_zone: String,
        pub quiet_hours: Option<QuietHoursBody>,
        pub digest: bool,
        pub digest_hour: u8,
    }
}

wire! {
    /// An alert channel; the destination is redacted (addresses, or the URL's host).
    pub struct AlertChannelItem {
        pub id: i64,
        /// `email`, `slack`, `discord` or `webhook`.
        pub kind: String,
        pub name: String,
        pub display: String,
        pub enabled: bool,
        pub created_at: i64,
    }
}

wire! {
    /// A channel kind and whether the tenant's plan includes it.
    pub struct ChannelKindItem {
        pub kind: String,
        pub allowed: bool,
    }
}

wire! {
    /// One delivery of an alert to a channel (the outbox).
    pub struct AlertDeliveryItem {
        pub id: i64,
        pub channel_id: i64,
        /// The channel's name and kind (`email`, `slack`, …); empty once the channel is removed.
        pub channel_name: String,
        pub channel_kind: String,
        /// What the alert is about: `test`, `card_testing`, `burst`, `traffic`, `digest`, …
        pub alert_kind: String,
        /// `pending`, `delivered` or `dead`.
        pub status: String,
        pub attempts: i32,
        pub title: String,
        /// The last failure (dead letters: why it gave up).
        pub last_error: Option<String>,
        pub created_at: i64,
        pub next_attempt_at: i64,
        pub delivered_at: Option<i64>,
    }
}

wire! {
    /// Everything the Alerts page shows.
    pub struct AlertsPage {
        pub policy: AlertPolicyBody,
        /// Every rule family a policy may name.
        pub families: Vec<String>,
        pub channels: Vec<AlertChannelItem>,
        /// Channel kinds, with what the plan allows.
        pub channel_kinds: Vec<ChannelKindItem>,
        /// Recent deliveries, newest first.
        pub deliveries: Vec<AlertDeliveryItem>,
        /// The dead letters, newest first.
        pub dead: Vec<AlertDeliveryItem>,
        /// The user may change the policy and channels (owner or analyst).
        pub can_edit: bool,
    }
}

wire! {
    /// A new channel: `email` needs `to`, the others an https `url`.
    pub struct NewAlertChannel {
        pub kind: String,
        pub name: String,
        pub to: Vec<String>,
        pub url: Option<String>,
    }
}

wire! {
    pub struct CreatedAlertChannel {
        pub channel: AlertChannelItem,
        /// Webhook channels: the HMAC signing secret, shown once.
        pub signing_secret: Option<String>,
    }
}

wire! {
    /// A test alert or a retried dead letter was queued.
    pub struct AlertQueued {
        pub alert_id: String,
    }
}

wire! {
    /// This month's metered sessions against the plan's quota.
    pub struct QuotaItem {
        /// `YYYY-MM` (UTC).
        pub month: String,
        pub used: u64,
        /// Absent when plans are not enforced (unlimited).
        pub limit: Option<u64>,
        pub over: bool,
        /// New sessions are being sampled now.
        pub sampling: bool,
        pub sample_percent: u8,
    }
}

wire! {
    /// One plan card.
    pub struct PlanItem {
        /// `free`, `pro` or `business`.
        pub id: String,
        pub name: String,
        /// Price per 30 days, decimal string.
        pub price: String,
        pub currency: String,
        pub trial_days: u32,
        pub sessions_per_month: u64,
        pub retention_days: u32,
        pub features: Vec<String>,
        pub current: bool,
    }
}

wire! {
    /// The Billing page (and the quota banner of every page).
    pub struct BillingPage {
        /// The plan in effect.
        pub plan: String,
        /// Plans are enforced on this server (`billing.enabled`).
        pub enforced: bool,
        /// How the tenant pays: `shopify` (Billing API) or `stripe` (standalone sites).
        pub channel: String,
        pub provider: Option<String>,
        pub subscription_status: Option<String>,
        pub test: bool,
        pub trial_ends_at: Option<String>,
        pub current_period_end: Option<String>,
        /// Features of the plan in effect.
        pub features: Vec<String>,
        pub quota: QuotaItem,
        pub plans: Vec<PlanItem>,
        /// The user may change the plan (owner).
        pub can_manage: bool,
        /// A Stripe customer exists: the portal link works.
        pub portal: bool,
    }
}

wire! {
    /// Subscribe to (or move to) a paid plan.
    pub struct PlanChoice {
        /// `pro` or `business`.
        pub plan: String,
    }
}

wire! {
    /// A provider page to open in the top window (`window.open(url, "_top")`).
    pub struct ProviderRedirect {
        /// `shopify` or `stripe`.
        pub provider: String,
        pub url: String,
    }
}

wire! {
    /// A rule as this tenant runs it: the rule's defaults, the tenant's changes, and the bounds a
    /// threshold or window may take.
    pub struct RuleSetting {
        pub id: String,
        pub description: String,
        pub enabled: bool,
        pub shadow: bool,
        /// The tenant's threshold (`None`: the rule's).
        pub threshold: Option<u32>,
        pub window_secs: Option<u64>,
        /// The rule's own threshold and window; `None` when the rule has none (triggers, behaviour features).
        pub default_threshold: Option<u32>,
        pub default_window_secs: Option<u64>,
        /// Inclusive bounds of an override.
        pub threshold_min: u32,
        pub threshold_max: u32,
        pub window_min: u64,
        pub window_max: u64,
    }
}

wire! {
    /// The Rules page's settings.
    pub struct RuleSettings {
        pub rules: Vec<RuleSetting>,
        /// The user may change rules (owner or analyst).
        pub can_edit: bool,
    }
}

wire! {
    /// A tenant's change to one rule; leaving `threshold`/`window_secs` out keeps the rule's.
    pub struct RuleChange {
        pub rule: String,
        pub enabled: bool,
        pub shadow: bool,
        pub threshold: Option<u32>,
        pub window_secs: Option<u64>,
    }
}
