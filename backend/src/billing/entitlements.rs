//! One answer to "what may this tenant do": [`entitlements`] reads the tenant's stored
//! subscription and maps it through the plan settings. A subscription counts only while its
//! provider says it is paid for (Shopify `ACTIVE`; Stripe `active` or `trialing`); any other
//! status (pending, declined, frozen, cancelled, expired, past due …) means Free.

use serde::Serialize;

use super::BillingError;
use super::plans::{Feature, Plan};
use super::settings::{BillingSettings, PlanSettings};
use crate::domain::UnixMillis;
use crate::storage::TenantScope;
use crate::storage::billing::{self as store, SubscriptionRow};

/// What a tenant's plan allows.
#[derive(Clone, Debug, PartialEq)]
pub struct Entitlements {
    pub plan: Plan,
    /// `billing.enabled`: plans are enforced. When false (self-hosted) everything is allowed.
    pub enforced: bool,
    limits: PlanSettings,
    /// The stored subscription (also when it no longer grants a paid plan).
    pub subscription: Option<SubscriptionRow>,
}

impl Entitlements {
    /// The entitlements of a tenant whose subscription row is `row`.
    pub fn from_row(billing: &BillingSettings, row: Option<SubscriptionRow>) -> Entitlements {
        let plan = row.as_ref().map_or(Plan::Free, effective_plan);
        Entitlements { plan, enforced: billing.enabled, limits: plan.settings(billing).clone(), subscription: row }
    }

    pub fn allows(&self, feature: Feature) -> bool {
        !self.enforced || feature.included_in(&self.limits)
    }

    /// Sessions per calendar month before over-quota sampling (unlimited when not enforced).
    pub fn session_quota(&self) -> u64 {
        if self.enforced { self.limits.sessions_per_month } else { u64::MAX }
    }

    /// Days of raw data the plan keeps (the plan's number even when not enforced: a retention
    /// job may still use it as a default).
    pub fn retention_days(&self) -> u32 {
        self.limits.retention_days
    }

    /// The alert channels the plan includes.
    pub fn channels(&self) -> &[String] {
        &self.limits.channels
    }

    /// Every feature the plan includes.
    pub fn features(&self) -> Vec<Feature> {
        Feature::ALL.into_iter().filter(|f| self.allows(*f)).collect()
    }

    pub fn trial_ends_at(&self) -> Option<UnixMillis> {
        self.subscription.as_ref().and_then(|s| s.trial_ends_at)
    }
}

/// Whether a provider status means "paid for".
pub fn status_grants_plan(provider: &str, status: &str) -> bool {
    match provider {
        "shopify" => status == "ACTIVE",
        "stripe" => matches!(status, "active" | "trialing"),
        _ => false,
    }
}

/// The plan a stored subscription grants now.
pub fn effective_plan(row: &SubscriptionRow) -> Plan {
    match Plan::parse(&row.plan) {
        Some(plan) if status_grants_plan(&row.provider, &row.status) => plan,
        _ => Plan::Free,
    }
}

/// The tenant's entitlements; every gated feature asks this.
pub async fn entitlements(
    db: &impl sea_orm::ConnectionTrait,
    billing: &BillingSettings,
    tenant: TenantScope,
) -> Result<Entitlements, BillingError> {
    let row = store::subscription(db, tenant).await?;
    Ok(Entitlements::from_row(billing, row))
}

/// Hands the plans' rule limits to the detection engine: with plans enforced, tenants whose
/// plan lacks `all_rules` run only `billing.core_rule_families`. Called by the quota meter on
/// every node, so a subscription change reaches every engine within one meter interval.
pub async fn sync_rule_limits(
    db: &impl sea_orm::ConnectionTrait,
    billing: &BillingSettings,
    detector: &crate::detect::service::Detector,
) -> Result<(), BillingError> {
    if !billing.enabled {
        detector.set_plan_limits(None, Default::default());
        return Ok(());
    }
    let unlimited = store::all_subscriptions(db)
        .await?
        .into_iter()
        .filter(|row| Entitlements::from_row(billing, Some(row.clone())).allows(Feature::AllRules))
        .map(|row| row.site_id.0)
        .collect();
    detector.set_plan_limits(Some(billing.core_rule_families.clone().into()), unlimited);
    Ok(())
}

/// Why [`require`] refused.
#[derive(Debug, thiserror::Error)]
pub enum Denied {
    /// The plan does not include the feature; the message says which plan does.
    #[error("{0}")]
    NotInPlan(String),
    #[error(transparent)]
    Lookup(#[from] BillingError),
}

/// The tenant's entitlements if they include `feature`; the one gate API handlers call.
pub async fn require(
    db: &impl sea_orm::ConnectionTrait,
    billing: &BillingSettings,
    tenant: TenantScope,
    feature: Feature,
) -> Result<Entitlements, Denied> {
    let ent = entitlements(db, billing, tenant).await?;
    if ent.allows(feature) {
        return Ok(ent);
    }
    let cheapest = Plan::ALL.into_iter().find(|p| feature.included_in(p.settings(billing)));
    Err(Denied::NotInPlan(match cheapest {
        Some(plan) => format!("{} is not part of the {} plan; it comes with {plan}", feature.as_str(), ent.plan),
        None => format!("{} is not part of any plan on this server", feature.as_str()),
    }))
}

/// The entitlements as the API shows them.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub plan: Plan,
    pub sessions_per_month: u64,
    pub retention_days: u32,
    pub features: Vec<Feature>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SiteId;

    fn row(provider: &str, plan: &str, status: &str) -> SubscriptionRow {
        SubscriptionRow {
            id: 1,
            site_id: SiteId(1),
            provider: provider.into(),
            external_id: Some("x".into()),
            customer_id: None,
            plan: plan.into(),
            status: status.into(),
            test: false,
            trial_ends_at: None,
            current_period_end: None,
            provider_updated_at: UnixMillis(0),
            updated_at: UnixMillis(0),
        }
    }

    fn enforced() -> BillingSettings {
        BillingSettings { enabled: true, ..BillingSettings::default() }
    }

    #[test]
    fn without_enforcement_everything_is_allowed_and_there_is_no_quota() {
        let b = BillingSettings::default();
        assert!(!b.enabled, "self-hosted installs are not limited by default");
        let e = Entitlements::from_row(&b, None);
        assert_eq!(e.plan, Plan::Free);
        assert!(Feature::ALL.iter().all(|f| e.allows(*f)));
        assert_eq!(e.session_quota(), u64::MAX);
    }

    #[test]
    fn only_a_paid_for_status_grants_the_plan() {
        let b = enforced();
        let e = Entitlements::from_row(&b, Some(row("shopify", "pro", "ACTIVE")));
        assert_eq!(e.plan, Plan::Pro);
        assert_eq!(e.session_quota(), 250_000);
        assert!(e.allows(Feature::SlackAlerts));
        for status in ["PENDING", "DECLINED", "FROZEN", "CANCELLED", "EXPIRED", "ACCEPTED", "SOMETHING_NEW"] {
            let e = Entitlements::from_row(&b, Some(row("shopify", "pro", status)));
            assert_eq!(e.plan, Plan::Free, "{status}");
            assert_eq!(e.session_quota(), 10_000);
            assert!(!e.allows(Feature::SlackAlerts));
        }
        assert_eq!(Entitlements::from_row(&b, Some(row("stripe", "business", "trialing"))).plan, Plan::Business);
        for status in ["past_due", "unpaid", "canceled", "incomplete", "incomplete_expired", "paused"] {
            assert_eq!(Entitlements::from_row(&b, Some(row("stripe", "business", status))).plan, Plan::Free);
        }
        assert_eq!(Entitlements::from_row(&b, None).plan, Plan::Free);
        assert_eq!(Entitlements::from_row(&b, Some(row("shopify", "gold", "ACTIVE"))).plan, Plan::Free);
    }

    #[test]
    fn numbers_come_from_settings() {
        let mut b = enforced();
        b.pro.sessions_per_month = 42;
        b.pro.retention_days = 3;
        b.pro.evaluate_api = true;
        let e = Entitlements::from_row(&b, Some(row("shopify", "pro", "ACTIVE")));
        assert_eq!((e.session_quota(), e.retention_days()), (42, 3));
        assert!(e.allows(Feature::EvaluateApi));
    }
}
