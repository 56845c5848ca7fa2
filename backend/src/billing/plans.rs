//! The plans (Free, Pro, Business) and the features they unlock. The numbers come from
//! `billing.*` settings; this module only names things and reads them.

use serde::Serialize;

use super::settings::{BillingSettings, PlanSettings};

/// A plan a tenant can be on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    Free,
    Pro,
    Business,
}

impl Plan {
    pub const ALL: [Plan; 3] = [Plan::Free, Plan::Pro, Plan::Business];

    /// Stable lowercase id (stored in `subscriptions.plan`, used in the API).
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Pro => "pro",
            Plan::Business => "business",
        }
    }

    pub fn parse(s: &str) -> Option<Plan> {
        Plan::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Whether the plan is paid (has a subscription at a provider).
    pub fn is_paid(self) -> bool {
        self != Plan::Free
    }

    /// This plan's settings.
    pub fn settings(self, billing: &BillingSettings) -> &PlanSettings {
        match self {
            Plan::Free => &billing.free,
            Plan::Pro => &billing.pro,
            Plan::Business => &billing.business,
        }
    }

    /// The paid plan whose configured name is `name` (Shopify reports subscriptions by name).
    pub fn by_name(billing: &BillingSettings, name: &str) -> Option<Plan> {
        [Plan::Pro, Plan::Business].into_iter().find(|p| p.settings(billing).name == name)
    }

    /// The paid plan whose Stripe Price id is `price`.
    pub fn by_stripe_price(billing: &BillingSettings, price: &str) -> Option<Plan> {
        [Plan::Pro, Plan::Business].into_iter().find(|p| p.settings(billing).stripe_price.as_deref() == Some(price))
    }
}

impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something a plan may or may not include. Every gated feature asks
/// [`Entitlements::allows`](super::entitlements::Entitlements::allows).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    /// Rule families beyond the core ones (bots, card testing).
    AllRules,
    EmailAlerts,
    SlackAlerts,
    DiscordAlerts,
    WebhookAlerts,
    /// `orderRiskAssessmentCreate` write-back onto Shopify orders.
    OrderRiskWriteBack,
    /// `POST /v1/evaluate`.
    EvaluateApi,
    Exports,
}

impl Feature {
    pub const ALL: [Feature; 8] = [
        Feature::AllRules,
        Feature::EmailAlerts,
        Feature::SlackAlerts,
        Feature::DiscordAlerts,
        Feature::WebhookAlerts,
        Feature::OrderRiskWriteBack,
        Feature::EvaluateApi,
        Feature::Exports,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Feature::AllRules => "all_rules",
            Feature::EmailAlerts => "email_alerts",
            Feature::SlackAlerts => "slack_alerts",
            Feature::DiscordAlerts => "discord_alerts",
            Feature::WebhookAlerts => "webhook_alerts",
            Feature::OrderRiskWriteBack => "order_risk_writeback",
            Feature::EvaluateApi => "evaluate_api",
            Feature::Exports => "exports",
        }
    }

    /// The alert channel feature named `channel` (`email`, `slack`, `discord`, `webhook`).
    pub fn channel(channel: &str) -> Option<Feature> {
        match channel {
            "email" => Some(Feature::EmailAlerts),
            "slack" => Some(Feature::SlackAlerts),
            "discord" => Some(Feature::DiscordAlerts),
            "webhook" => Some(Feature::WebhookAlerts),
            _ => None,
        }
    }

    /// Whether a plan configured as `plan` includes this feature.
    pub fn included_in(self, plan: &PlanSettings) -> bool {
        let channel = |name: &str| plan.channels.iter().any(|c| c == name);
        match self {
            Feature::AllRules => plan.all_rules,
            Feature::EmailAlerts => channel("email"),
            Feature::SlackAlerts => channel("slack"),
            Feature::DiscordAlerts => channel("discord"),
            Feature::WebhookAlerts => channel("webhook"),
            Feature::OrderRiskWriteBack => plan.order_risk_writeback,
            Feature::EvaluateApi => plan.evaluate_api,
            Feature::Exports => plan.exports,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_plans_match_the_issue() {
        let b = BillingSettings::default();
        assert_eq!(Plan::Free.settings(&b).sessions_per_month, 10_000);
        assert_eq!(Plan::Pro.settings(&b).price, "19.00");
        assert_eq!(Plan::Business.settings(&b).retention_days, 365);
        assert!(Feature::EmailAlerts.included_in(&b.free));
        assert!(!Feature::SlackAlerts.included_in(&b.free));
        assert!(Feature::OrderRiskWriteBack.included_in(&b.pro));
        assert!(!Feature::EvaluateApi.included_in(&b.pro));
        assert!(Feature::EvaluateApi.included_in(&b.business) && Feature::Exports.included_in(&b.business));
    }

    #[test]
    fn plans_are_found_by_id_name_and_stripe_price() {
        let mut b = BillingSettings::default();
        b.business.stripe_price = Some("price_biz".into());
        assert_eq!(Plan::parse("pro"), Some(Plan::Pro));
        assert_eq!(Plan::parse("Pro"), None);
        assert_eq!(Plan::by_name(&b, "GhostTrack Business"), Some(Plan::Business));
        assert_eq!(Plan::by_name(&b, "GhostTrack Free"), None, "free is never a subscription");
        assert_eq!(Plan::by_stripe_price(&b, "price_biz"), Some(Plan::Business));
        assert_eq!(Plan::by_stripe_price(&b, "price_other"), None);
    }
}
