//! Shopify's Billing API (spec shopify-storefront §5): create a subscription and hand the
//! merchant Shopify's `confirmationUrl`; after approval, decline or any doubt, re-query
//! `currentAppInstallation.activeSubscriptions` — the only source of truth, never the query
//! parameters of the return URL; cancel; and apply `app_subscriptions/update` webhooks in
//! provider-time order.

use serde::Deserialize;

use super::BillingError;
use super::entitlements::{self, Entitlements};
use super::plans::Plan;
use super::settings::BillingSettings;
use crate::domain::{SiteId, UnixMillis};
use crate::shopify::Shopify;
use crate::shopify::admin::AdminError;
use crate::shopify::shop_domain::ShopDomain;
use crate::storage::TenantScope;
use crate::storage::billing::{self as store, Replace, SubscriptionState};

const PROVIDER: &str = "shopify";

const CREATE: &str = r#"mutation AppSubscriptionCreate($name: String!, $lineItems: [AppSubscriptionLineItemInput!]!, $returnUrl: URL!, $test: Boolean, $trialDays: Int, $replacementBehavior: AppSubscriptionReplacementBehavior) {
  appSubscriptionCreate(name: $name, returnUrl: $returnUrl, lineItems: $lineItems, test: $test, trialDays: $trialDays, replacementBehavior: $replacementBehavior) {
    userErrors { field message }
    confirmationUrl
    appSubscription { id status }
  }
}"#;

const ACTIVE_SUBSCRIPTIONS: &str = r#"query ActiveSubscriptions { currentAppInstallation { id
  activeSubscriptions { id name status test trialDays createdAt currentPeriodEnd
    lineItems { id plan { pricingDetails {
      __typename
      ... on AppRecurringPricing { price { amount currencyCode } interval }
    } } } } } }"#;

const CANCEL: &str = r#"mutation AppSubscriptionCancel($id: ID!) {
  appSubscriptionCancel(id: $id) { userErrors { field message } appSubscription { id status } }
}"#;

fn provider_error(e: AdminError) -> BillingError {
    BillingError::Provider { provider: PROVIDER, message: e.to_string() }
}

fn unexpected(what: &str, e: impl std::fmt::Display) -> BillingError {
    BillingError::Provider { provider: PROVIDER, message: format!("unexpected {what} shape: {e}") }
}

#[derive(Debug, Deserialize)]
struct UserError {
    #[serde(default)]
    field: Option<Vec<String>>,
    message: String,
}

fn refused(errors: &[UserError]) -> BillingError {
    let message = errors
        .iter()
        .map(|e| match &e.field {
            Some(f) => format!("{}: {}", f.join("."), e.message),
            None => e.message.clone(),
        })
        .collect::<Vec<_>>()
        .join("; ");
    BillingError::Refused { provider: PROVIDER, message }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreatePayload {
    #[serde(default)]
    user_errors: Vec<UserError>,
    confirmation_url: Option<String>,
}

/// Creates a subscription to `plan` and returns the `confirmationUrl` the merchant must open
/// in the top window. Development stores get test charges (`shop.plan.partnerDevelopment`).
/// A change of plan replaces the current subscription at once (`APPLY_IMMEDIATELY`), so
/// upgrades and downgrades need no reinstall.
pub async fn start(
    shopify: &Shopify,
    db: &impl sea_orm::ConnectionTrait,
    billing: &BillingSettings,
    shop: &ShopDomain,
    tenant: TenantScope,
    plan: Plan,
    return_url: &str,
) -> Result<String, BillingError> {
    if !plan.is_paid() {
        return Err(BillingError::InvalidPlan("the free plan needs no subscription: cancel the current one".into()));
    }
    let current = entitlements::entitlements(db, billing, tenant).await?;
    if current.plan == plan {
        return Err(BillingError::InvalidPlan(format!("already on the {plan} plan")));
    }
    let info = shopify.shop_info(shop).await.map_err(provider_error)?;
    let spec = plan.settings(billing);
    let amount: f64 = spec.price.parse().map_err(|_| BillingError::InvalidPlan("plan price is not a number".into()))?;
    let variables = serde_json::json!({
        "name": spec.name,
        "returnUrl": return_url,
        "test": info.plan.partner_development,
        "trialDays": spec.trial_days,
        "replacementBehavior": "APPLY_IMMEDIATELY",
        "lineItems": [{ "plan": { "appRecurringPricingDetails": {
            "price": { "amount": amount, "currencyCode": billing.currency },
            "interval": "EVERY_30_DAYS",
        } } }],
    });
    let data = shopify.graphql(shop, CREATE, variables).await.map_err(provider_error)?;
    let payload: CreatePayload = serde_json::from_value(data["appSubscriptionCreate"].clone())
        .map_err(|e| unexpected("appSubscriptionCreate", e))?;
    if !payload.user_errors.is_empty() {
        return Err(refused(&payload.user_errors));
    }
    let url = payload.confirmation_url.ok_or_else(|| unexpected("appSubscriptionCreate", "no confirmationUrl"))?;
    tracing::info!(shop = %shop, plan = %plan, test = info.plan.partner_development, "Shopify subscription created; awaiting approval");
    Ok(url)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ActiveSubscription {
    id: String,
    name: String,
    status: String,
    #[serde(default)]
    test: bool,
    #[serde(default)]
    trial_days: Option<i64>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    current_period_end: Option<String>,
}

fn parse_time(s: Option<&str>) -> Option<UnixMillis> {
    s.and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()).map(|t| UnixMillis(t.timestamp_millis()))
}

/// Re-reads the shop's active subscriptions from Shopify and stores what they say; returns the
/// resulting entitlements. Called by the return URL handler (whatever its query says) and
/// available to any code that doubts the stored state.
pub async fn sync(
    shopify: &Shopify,
    db: &impl sea_orm::ConnectionTrait,
    billing: &BillingSettings,
    shop: &ShopDomain,
    tenant: TenantScope,
) -> Result<Entitlements, BillingError> {
    let data = shopify.graphql(shop, ACTIVE_SUBSCRIPTIONS, serde_json::json!({})).await.map_err(provider_error)?;
    let active: Vec<ActiveSubscription> =
        serde_json::from_value(data["currentAppInstallation"]["activeSubscriptions"].clone())
            .map_err(|e| unexpected("activeSubscriptions", e))?;
    let now = UnixMillis::now();
    let ours = active
        .iter()
        .filter(|s| s.status == "ACTIVE")
        .filter_map(|s| Plan::by_name(billing, &s.name).map(|p| (p, s)))
        .max_by_key(|(p, _)| *p);
    match ours {
        Some((plan, sub)) => {
            let trial_ends_at = match (parse_time(sub.created_at.as_deref()), sub.trial_days) {
                (Some(created), Some(days)) if days > 0 => Some(UnixMillis(created.0 + days * UnixMillis::DAY)),
                _ => None,
            };
            let state = SubscriptionState {
                provider: PROVIDER,
                external_id: Some(sub.id.clone()),
                customer_id: None,
                plan: plan.as_str().into(),
                status: sub.status.clone(),
                test: sub.test,
                trial_ends_at,
                current_period_end: parse_time(sub.current_period_end.as_deref()),
                provider_updated_at: now,
            };
            store::apply(db, tenant.site_id(), &state, Replace::AnyOlder).await?;
        }
        None => {
            // Nothing of ours is active: a stored ACTIVE row is stale (its cancellation or
            // freeze webhook may still be on its way).
            if let Some(row) = store::subscription(db, tenant).await?
                && row.provider == PROVIDER
                && entitlements::status_grants_plan(&row.provider, &row.status)
            {
                let state = SubscriptionState {
                    provider: PROVIDER,
                    external_id: row.external_id.clone(),
                    customer_id: None,
                    plan: row.plan.clone(),
                    status: "INACTIVE".into(),
                    test: row.test,
                    trial_ends_at: row.trial_ends_at,
                    current_period_end: None,
                    provider_updated_at: now,
                };
                store::apply(db, tenant.site_id(), &state, Replace::SameSubscriptionOlder).await?;
            }
        }
    }
    entitlements::entitlements(db, billing, tenant).await
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CancelPayload {
    #[serde(default)]
    user_errors: Vec<UserError>,
    app_subscription: Option<CancelledSubscription>,
}

#[derive(Debug, Deserialize)]
struct CancelledSubscription {
    id: String,
    status: String,
}

/// Cancels the tenant's Shopify subscription (back to Free).
pub async fn cancel(
    shopify: &Shopify,
    db: &impl sea_orm::ConnectionTrait,
    billing: &BillingSettings,
    shop: &ShopDomain,
    tenant: TenantScope,
) -> Result<Entitlements, BillingError> {
    let row = store::subscription(db, tenant).await?;
    let Some(row) = row.filter(|r| r.provider == PROVIDER && entitlements::status_grants_plan(&r.provider, &r.status))
    else {
        return Err(BillingError::NothingToDo("no active Shopify subscription to cancel".into()));
    };
    let id = row.external_id.clone().unwrap_or_default();
    let data = shopify.graphql(shop, CANCEL, serde_json::json!({ "id": id })).await.map_err(provider_error)?;
    let payload: CancelPayload = serde_json::from_value(data["appSubscriptionCancel"].clone())
        .map_err(|e| unexpected("appSubscriptionCancel", e))?;
    if !payload.user_errors.is_empty() {
        return Err(refused(&payload.user_errors));
    }
    let cancelled =
        payload.app_subscription.ok_or_else(|| unexpected("appSubscriptionCancel", "no appSubscription"))?;
    let state = SubscriptionState {
        provider: PROVIDER,
        external_id: Some(cancelled.id),
        customer_id: None,
        plan: row.plan.clone(),
        status: cancelled.status,
        test: row.test,
        trial_ends_at: row.trial_ends_at,
        current_period_end: None,
        provider_updated_at: UnixMillis::now(),
    };
    store::apply(db, tenant.site_id(), &state, Replace::SameSubscriptionOlder).await?;
    tracing::info!(shop = %shop, "Shopify subscription cancelled");
    entitlements::entitlements(db, billing, tenant).await
}

/// The `app_subscription` object of an `app_subscriptions/update` webhook.
#[derive(Debug, Deserialize)]
pub struct WebhookSubscription {
    pub admin_graphql_api_id: String,
    pub name: String,
    /// Verbatim (ACTIVE, CANCELLED, DECLINED, EXPIRED, FROZEN, PENDING, …).
    pub status: String,
    pub updated_at: String,
}

/// What an `app_subscriptions/update` delivery did.
#[derive(Debug, PartialEq, Eq)]
pub enum WebhookOutcome {
    Applied,
    /// Older than the stored state, or about a subscription that was already replaced.
    Stale,
    /// Not one of our plans, or still pending approval.
    Ignored,
}

/// Applies an `app_subscriptions/update` webhook (already HMAC-verified). ACTIVE of one of our
/// plans replaces any older state; every other status applies only to the subscription it
/// names, so the cancellation of a replaced subscription never downgrades its successor.
/// `updated_at` orders deliveries: an older one arriving late changes nothing.
pub async fn apply_webhook(
    db: &impl sea_orm::ConnectionTrait,
    billing: &BillingSettings,
    site: SiteId,
    sub: &WebhookSubscription,
) -> Result<WebhookOutcome, super::BillingError> {
    let Some(updated_at) = parse_time(Some(&sub.updated_at)) else {
        return Err(BillingError::InvalidPlan(format!("updated_at `{}` is not a timestamp", sub.updated_at)));
    };
    if sub.status == "PENDING" {
        return Ok(WebhookOutcome::Ignored);
    }
    let plan = Plan::by_name(billing, &sub.name);
    let replace = if sub.status == "ACTIVE" { Replace::AnyOlder } else { Replace::SameSubscriptionOlder };
    let Some(plan) = plan else {
        return Ok(WebhookOutcome::Ignored);
    };
    let state = SubscriptionState {
        provider: PROVIDER,
        external_id: Some(sub.admin_graphql_api_id.clone()),
        customer_id: None,
        plan: plan.as_str().into(),
        status: sub.status.clone(),
        test: false,
        trial_ends_at: None,
        current_period_end: None,
        provider_updated_at: updated_at,
    };
    let applied = store::apply(db, site, &state, replace).await?;
    Ok(if applied { WebhookOutcome::Applied } else { WebhookOutcome::Stale })
}
