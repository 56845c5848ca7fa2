//! `billing.*` settings: every plan number (sessions, retention, price, trial, features) lives
//! here, not in code. The annotated defaults are appended to `ghosttrack print-config`.

use serde::{Deserialize, Deserializer, Serialize};

use crate::settings::Secret;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BillingSettings {
    /// Enforce plans (the hosted service). Off (self-hosted): every tenant has every feature and
    /// no session quota; usage is still metered.
    pub enabled: bool,
    /// ISO currency of every plan price.
    pub currency: String,
    /// How often sessions are counted per tenant and month (the quota meter).
    pub meter_interval_secs: u64,
    /// Share of NEW sessions still recorded once a tenant is over its monthly quota (0–100).
    pub over_quota_sample_percent: u8,
    /// Rule families (the folder of a rule id, `card/ct1-…` → `card`) of plans without
    /// `all_rules`: bots and card testing.
    #[serde(deserialize_with = "strings_or_csv")]
    pub core_rule_families: Vec<String>,
    /// Stripe API origin; tests point it at the fake Stripe.
    pub stripe_api_base: String,
    /// Stripe secret API key (`sk_…`); without it the Stripe routes answer 503.
    pub stripe_secret_key: Option<Secret>,
    /// Signing secret of the Stripe webhook endpoint (`whsec_…`).
    pub stripe_webhook_secret: Option<Secret>,
    /// The previous signing secret, still accepted while a rotation settles.
    pub stripe_webhook_secret_previous: Option<Secret>,
    /// Oldest accepted `Stripe-Signature` timestamp, in seconds (Stripe's libraries use 300).
    pub stripe_webhook_tolerance_secs: u64,
    pub free: PlanSettings,
    pub pro: PlanSettings,
    pub business: PlanSettings,
}

/// One plan's numbers and features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlanSettings {
    /// Name shown to the merchant and sent to Shopify as the subscription name.
    pub name: String,
    /// Sessions recorded per calendar month before over-quota sampling starts.
    pub sessions_per_month: u64,
    /// Days of raw data kept.
    pub retention_days: u32,
    /// Price per 30 days as a decimal string ("19.00"); "0" for the free plan.
    #[serde(deserialize_with = "decimal_string")]
    pub price: String,
    /// Free trial days of a new subscription.
    pub trial_days: u32,
    /// All rule families (true) or the core families only (false).
    pub all_rules: bool,
    /// Alert channels: any of email, slack, discord, webhook.
    #[serde(deserialize_with = "strings_or_csv")]
    pub channels: Vec<String>,
    /// Write GhostTrack's verdict onto Shopify orders (order risk assessments).
    pub order_risk_writeback: bool,
    /// The `/v1/evaluate` decision API.
    pub evaluate_api: bool,
    /// Data exports.
    pub exports: bool,
    /// Stripe Price id (`price_…`) of this plan, for non-Shopify sites.
    pub stripe_price: Option<String>,
}

impl Default for PlanSettings {
    fn default() -> Self {
        PlanSettings {
            name: "GhostTrack Free".into(),
            sessions_per_month: 10_000,
            retention_days: 7,
            price: "0".into(),
            trial_days: 0,
            all_rules: false,
            channels: vec!["email".into()],
            order_risk_writeback: false,
            evaluate_api: false,
            exports: false,
            stripe_price: None,
        }
    }
}

impl Default for BillingSettings {
    fn default() -> Self {
        let all_channels = ["email", "slack", "discord", "webhook"].map(String::from).to_vec();
        BillingSettings {
            enabled: false,
            currency: "USD".into(),
            meter_interval_secs: 60,
            over_quota_sample_percent: 10,
            core_rule_families: ["ua", "client", "behavior", "rate", "card"].map(String::from).to_vec(),
            stripe_api_base: "https://api.stripe.com".into(),
            stripe_secret_key: None,
            stripe_webhook_secret: None,
            stripe_webhook_secret_previous: None,
            stripe_webhook_tolerance_secs: 300,
            free: PlanSettings::default(),
            pro: PlanSettings {
                name: "GhostTrack Pro".into(),
                sessions_per_month: 250_000,
                retention_days: 90,
                price: "19.00".into(),
                trial_days: 7,
                all_rules: true,
                channels: all_channels.clone(),
                order_risk_writeback: true,
                evaluate_api: false,
                exports: false,
                stripe_price: None,
            },
            business: PlanSettings {
                name: "GhostTrack Business".into(),
                sessions_per_month: 2_000_000,
                retention_days: 365,
                price: "79.00".into(),
                trial_days: 7,
                all_rules: true,
                channels: all_channels,
                order_risk_writeback: true,
                evaluate_api: true,
                exports: true,
                stripe_price: None,
            },
        }
    }
}

/// A TOML list or a comma-separated string (what an env var can hold).
fn strings_or_csv<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<String>),
        Csv(String),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::List(items) => items,
        Raw::Csv(s) => s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect(),
    })
}

/// A price: a string, or a number (an env value such as `19.00` is typed as a number).
fn decimal_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Str(String),
        Num(f64),
    }
    let s = match Raw::deserialize(d)? {
        Raw::Str(s) => s,
        Raw::Num(n) => format!("{n:.2}"),
    };
    match s.parse::<f64>() {
        Ok(v) if v >= 0.0 && v.is_finite() => Ok(s),
        _ => Err(serde::de::Error::custom(format!("`{s}` is not a price (e.g. \"19.00\")"))),
    }
}

/// The `[billing]` part of the annotated default configuration.
#[macro_export]
macro_rules! billing_annotated_defaults {
    () => {
        r#"
[billing]
# Enforce plans and quotas (the hosted service; GHOSTTRACK_BILLING__ENABLED=true). Off, as for a
# self-hosted install, every tenant has every feature and no session quota; usage is still metered.
enabled = false
# Currency of every plan price (ISO 4217).
currency = "USD"
# How often sessions are counted per tenant and calendar month (the quota meter).
meter_interval_secs = 60
# Percent of NEW sessions still recorded once a tenant is over its monthly quota; webhooks
# (orders, transactions, checkouts) are always processed.
over_quota_sample_percent = 10
# Rule families of plans without all_rules (bots and card testing); the others (cart abuse,
# price scraping, network reputation) need a plan with all_rules = true.
core_rule_families = ["ua", "client", "behavior", "rate", "card"]
# Stripe, for non-Shopify sites of the hosted service (Shopify shops pay through Shopify).
stripe_api_base = "https://api.stripe.com"
# stripe_secret_key = "sk_live_…"               # GHOSTTRACK_BILLING__STRIPE_SECRET_KEY
# stripe_webhook_secret = "whsec_…"             # GHOSTTRACK_BILLING__STRIPE_WEBHOOK_SECRET
# stripe_webhook_secret_previous = "whsec_…"    # accepted during a rotation
# Oldest accepted Stripe-Signature timestamp, seconds.
stripe_webhook_tolerance_secs = 300

[billing.free]
name = "GhostTrack Free"
sessions_per_month = 10000
retention_days = 7
price = "0"
trial_days = 0
# All rule families (true) or the core families (bots, card testing) only.
all_rules = false
# Alert channels: email, slack, discord, webhook.
channels = ["email"]
order_risk_writeback = false
evaluate_api = false
exports = false
# stripe_price = "price_…"

[billing.pro]
name = "GhostTrack Pro"
sessions_per_month = 250000
retention_days = 90
price = "19.00"
trial_days = 7
all_rules = true
channels = ["email", "slack", "discord", "webhook"]
order_risk_writeback = true
evaluate_api = false
exports = false
# Stripe Price id of the plan (GHOSTTRACK_BILLING__PRO__STRIPE_PRICE).
# stripe_price = "price_…"

[billing.business]
name = "GhostTrack Business"
sessions_per_month = 2000000
retention_days = 365
price = "79.00"
trial_days = 7
all_rules = true
channels = ["email", "slack", "discord", "webhook"]
order_risk_writeback = true
evaluate_api = true
exports = true
# stripe_price = "price_…"
"#
    };
}
