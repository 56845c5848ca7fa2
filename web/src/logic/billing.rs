//! The Billing page and the quota banner: what each plan card offers and what the banner says.

use ghosttrack_wire::{BillingPage, PlanItem, QuotaItem};

/// What a plan card's button does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanAction {
    /// The plan in effect: no button.
    Current,
    /// Subscribe to a higher paid plan.
    Upgrade,
    /// Move to a lower paid plan.
    Downgrade,
    /// Back to Free: cancel the subscription.
    Cancel,
    /// The user may not change the plan, or plans are not enforced: no button.
    None,
}

fn rank(id: &str) -> u8 {
    match id {
        "free" => 0,
        "pro" => 1,
        "business" => 2,
        _ => 0,
    }
}

/// The action of `plan`'s card for this tenant and user.
pub fn action(page: &BillingPage, plan: &PlanItem) -> PlanAction {
    if plan.current || plan.id == page.plan {
        return PlanAction::Current;
    }
    if !page.enforced || !page.can_manage {
        return PlanAction::None;
    }
    match (rank(&plan.id), rank(&page.plan)) {
        (0, _) => PlanAction::Cancel,
        (new, now) if new > now => PlanAction::Upgrade,
        _ => PlanAction::Downgrade,
    }
}

/// Button text of an action.
pub fn action_label(action: &PlanAction, plan: &PlanItem) -> Option<String> {
    match action {
        PlanAction::Upgrade => Some(format!("Upgrade to {}", plan.name)),
        PlanAction::Downgrade => Some(format!("Switch to {}", plan.name)),
        PlanAction::Cancel => Some(format!("Cancel and move to {}", plan.name)),
        PlanAction::Current | PlanAction::None => None,
    }
}

/// Share of the quota used, 0–100 (capped), when there is a quota.
pub fn used_percent(q: &QuotaItem) -> Option<u8> {
    let limit = q.limit?;
    if limit == 0 {
        return Some(100);
    }
    Some(((q.used as f64 / limit as f64) * 100.0).floor().min(100.0) as u8)
}

/// The banner every page shows when over quota or sampling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaBanner {
    /// `critical` or `warning` (the CSS class).
    pub level: &'static str,
    pub text: String,
}

pub fn banner(q: &QuotaItem) -> Option<QuotaBanner> {
    let limit = q.limit?;
    if q.sampling {
        return Some(QuotaBanner {
            level: "critical",
            text: format!(
                "This month's {limit} sessions are used up: GhostTrack now records {}% of new sessions. \
                 Security signals from Shopify are still all checked. Upgrade to record every session.",
                q.sample_percent
            ),
        });
    }
    q.over.then(|| QuotaBanner {
        level: "warning",
        text: format!("This month's {limit} sessions are used up. Upgrade to keep recording every session."),
    })
}

/// A feature id as the plan cards list it.
pub fn feature_label(feature: &str) -> String {
    match feature {
        "all_rules" => "All detection rules".into(),
        "email_alerts" => "Email alerts".into(),
        "slack_alerts" => "Slack alerts".into(),
        "discord_alerts" => "Discord alerts".into(),
        "webhook_alerts" => "Webhook alerts".into(),
        "order_risk_writeback" => "Order risk on Shopify orders".into(),
        "evaluate_api" => "Evaluate API".into(),
        "exports" => "Exports".into(),
        other => other.replace('_', " "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn plan(id: &str, current: bool) -> PlanItem {
        PlanItem {
            id: id.into(),
            name: id.to_uppercase(),
            price: "19.00".into(),
            currency: "USD".into(),
            trial_days: 7,
            sessions_per_month: 250_000,
            retention_days: 90,
            features: vec![],
            current,
        }
    }

    fn quota(used: u64, limit: Option<u64>, over: bool, sampling: bool) -> QuotaItem {
        QuotaItem { month: "2026-11".into(), used, limit, over, sampling, sample_percent: 10 }
    }

    fn page(current: &str, enforced: bool, can_manage: bool) -> BillingPage {
        BillingPage {
            plan: current.into(),
            enforced,
            channel: "shopify".into(),
            provider: None,
            subscription_status: None,
            test: false,
            trial_ends_at: None,
            current_period_end: None,
            features: vec![],
            quota: quota(0, Some(10_000), false, false),
            plans: ["free", "pro", "business"].into_iter().map(|p| plan(p, p == current)).collect(),
            can_manage,
            portal: false,
        }
    }

    #[rstest]
    #[case("free", "free", PlanAction::Current)]
    #[case("free", "pro", PlanAction::Upgrade)]
    #[case("free", "business", PlanAction::Upgrade)]
    #[case("business", "pro", PlanAction::Downgrade)]
    #[case("pro", "free", PlanAction::Cancel)]
    fn each_card_offers_the_move_from_the_current_plan(
        #[case] current: &str,
        #[case] card: &str,
        #[case] expected: PlanAction,
    ) {
        let p = page(current, true, true);
        let card = p.plans.iter().find(|c| c.id == card).unwrap();
        assert_eq!(action(&p, card), expected);
    }

    #[test]
    fn without_the_right_or_without_enforcement_no_card_has_a_button() {
        for p in [page("free", true, false), page("free", false, true)] {
            for card in &p.plans {
                let a = action(&p, card);
                assert!(action_label(&a, card).is_none(), "{card:?}");
            }
        }
    }

    #[rstest]
    #[case(quota(2_500, Some(10_000), false, false), Some(25))]
    #[case(quota(12_000, Some(10_000), true, false), Some(100))]
    #[case(quota(5, None, false, false), None)]
    fn usage_is_a_capped_percent_of_the_quota(#[case] q: QuotaItem, #[case] expected: Option<u8>) {
        assert_eq!(used_percent(&q), expected);
    }

    #[test]
    fn the_banner_shows_only_over_quota_and_says_sampling_first() {
        assert_eq!(banner(&quota(10, Some(10_000), false, false)), None);
        assert_eq!(banner(&quota(10, None, true, true)), None, "no quota, no banner");
        let over = banner(&quota(10_000, Some(10_000), true, false)).unwrap();
        assert_eq!(over.level, "warning");
        let sampling = banner(&quota(10_000, Some(10_000), true, true)).unwrap();
        assert_eq!(sampling.level, "critical");
        assert!(sampling.text.contains("10% of new sessions"), "{}", sampling.text);
    }
}
