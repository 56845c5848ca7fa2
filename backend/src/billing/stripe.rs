//! Stripe, for standalone (non-Shopify) sites of the hosted service: a Checkout Session per
//! plan (subscription mode, the plan's Price from settings, `client_reference_id` = the site),
//! a customer-portal link, cancellation, and the webhook that keeps the stored state in sync.
//! Requests go through `async-stripe` (base URL from `billing.stripe_api_base`, so tests use
//! the fake Stripe). The webhook signature is verified here, not with the crate's helper,
//! because a rotation needs two secrets and a header may carry several `v1` signatures.

use std::collections::HashMap;

use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;
use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_billing::subscription::CancelSubscription;
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionSubscriptionData,
};
use stripe_shared::CheckoutSessionMode;

use super::BillingError;
use super::entitlements::{self, status_grants_plan};
use super::plans::Plan;
use super::settings::BillingSettings;
use crate::domain::{SiteId, UnixMillis};
use crate::settings::Secret;
use crate::startup::AppState;
use crate::storage::TenantScope;
use crate::storage::billing::{self as store, Replace, SubscriptionState};

const PROVIDER: &str = "stripe";
/// Path the Checkout page returns to (the panel's billing page of a standalone site).
const RETURN_PATH: &str = "/app/billing";

fn client(billing: &BillingSettings) -> Result<stripe::Client, BillingError> {
    let secret = billing.stripe_secret_key.as_ref().ok_or(BillingError::NotConfigured("Stripe"))?;
    stripe::ClientBuilder::new(secret.expose())
        .url(billing.stripe_api_base.trim_end_matches('/'))
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .map_err(stripe_error)
}

fn stripe_error(e: stripe::StripeError) -> BillingError {
    match e {
        stripe::StripeError::Stripe(errors, status) => BillingError::Refused {
            provider: PROVIDER,
            message: format!("{} ({status})", errors.message.clone().unwrap_or_else(|| "request refused".into())),
        },
        other => BillingError::Provider { provider: PROVIDER, message: other.to_string() },
    }
}

fn return_url(state: &AppState) -> String {
    format!("{}{RETURN_PATH}", state.settings.public_url().as_str().trim_end_matches('/'))
}

/// A Checkout Session for `plan`; returns its URL (open it in the top window).
pub async fn checkout(state: &AppState, tenant: TenantScope, plan: Plan) -> Result<String, BillingError> {
    let billing = &state.settings.billing;
    let spec = plan.settings(billing);
    let price = spec
        .stripe_price
        .clone()
        .ok_or_else(|| BillingError::NotConfigured("Stripe (no billing.<plan>.stripe_price for this plan)"))?;
    let current = entitlements::entitlements(&state.db, billing, tenant).await?;
    if current.plan == plan {
        return Err(BillingError::InvalidPlan(format!("already on the {plan} plan")));
    }
    if current.plan.is_paid() {
        // Changing a running Stripe subscription happens in the customer portal (proration).
        return Err(BillingError::InvalidPlan("change a running Stripe subscription in the billing portal".into()));
    }
    let site = tenant.site_id().0.to_string();
    let metadata = HashMap::from([("site_id".to_owned(), site.clone()), ("plan".to_owned(), plan.as_str().to_owned())]);
    let mut line = CreateCheckoutSessionLineItems::new();
    line.price = Some(price);
    line.quantity = Some(1);
    let mut subscription = CreateCheckoutSessionSubscriptionData::new();
    subscription.metadata = Some(metadata.clone());
    if spec.trial_days > 0 {
        subscription.trial_period_days = Some(spec.trial_days);
    }
    let mut request = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Subscription)
        .line_items(vec![line])
        .client_reference_id(site)
        .metadata(metadata)
        .subscription_data(subscription)
        .success_url(format!("{}?checkout=success", return_url(state)))
        .cancel_url(format!("{}?checkout=cancelled", return_url(state)));
    if let Some(customer) = current.subscription.as_ref().and_then(|s| s.customer_id.clone()) {
        request = request.customer(customer);
    }
    let session = request.send(&client(billing)?).await.map_err(stripe_error)?;
    tracing::info!(site.id = tenant.site_id().0, plan = %plan, "Stripe checkout session created");
    session
        .url
        .ok_or_else(|| BillingError::Provider { provider: PROVIDER, message: "checkout session without url".into() })
}

/// A customer-portal session URL for the tenant's Stripe customer.
pub async fn portal(state: &AppState, tenant: TenantScope) -> Result<String, BillingError> {
    let billing = &state.settings.billing;
    let row = store::subscription(&state.db, tenant).await?;
    let Some(customer) = row.filter(|r| r.provider == PROVIDER).and_then(|r| r.customer_id) else {
        return Err(BillingError::NothingToDo("no Stripe customer yet: subscribe to a plan first".into()));
    };
    let session = CreateBillingPortalSession::new()
        .customer(customer)
        .return_url(return_url(state))
        .send(&client(billing)?)
        .await
        .map_err(stripe_error)?;
    Ok(session.url)
}

/// Cancels the tenant's Stripe subscription now (back to Free).
pub async fn cancel(state: &AppState, tenant: TenantScope) -> Result<(), BillingError> {
    let billing = &state.settings.billing;
    let row = store::subscription(&state.db, tenant).await?;
    let Some(row) = row.filter(|r| r.provider == PROVIDER && status_grants_plan(&r.provider, &r.status)) else {
        return Err(BillingError::NothingToDo("no active Stripe subscription to cancel".into()));
    };
    let id = row.external_id.clone().unwrap_or_default();
    let cancelled = CancelSubscription::new(id.as_str()).send(&client(billing)?).await.map_err(stripe_error)?;
    let status = cancelled.status.to_string();
    let state_row = SubscriptionState {
        provider: PROVIDER,
        external_id: Some(id),
        customer_id: row.customer_id.clone(),
        plan: row.plan.clone(),
        status,
        test: !cancelled.livemode,
        trial_ends_at: None,
        current_period_end: None,
        provider_updated_at: UnixMillis::now(),
    };
    store::apply(&state.db, tenant.site_id(), &state_row, Replace::SameSubscriptionOlder).await?;
    Ok(())
}

/// Why a webhook was refused (400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("Stripe webhooks are not configured (billing.stripe_webhook_secret)")]
    NotConfigured,
    #[error("missing or malformed Stripe-Signature header")]
    Malformed,
    #[error("the signature timestamp is outside the tolerance")]
    Stale,
    #[error("no signature matches the payload")]
    Mismatch,
}

/// Verifies `Stripe-Signature: t=…,v1=…[,v1=…]` over `"{t}.{payload}"` with HMAC-SHA256, any of
/// `secrets`, timestamp not older than `tolerance_secs` (Stripe's rule).
pub fn verify_signature(
    header: Option<&str>,
    payload: &[u8],
    secrets: &[&Secret],
    tolerance_secs: u64,
    now_secs: i64,
) -> Result<(), SignatureError> {
    if secrets.is_empty() {
        return Err(SignatureError::NotConfigured);
    }
    let header = header.ok_or(SignatureError::Malformed)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", sig)) => signatures.extend(hex::decode(sig).ok()),
            _ => {}
        }
    }
    let (Some(t), false) = (timestamp, signatures.is_empty()) else {
        return Err(SignatureError::Malformed);
    };
    if now_secs.saturating_sub(t) > tolerance_secs as i64 {
        return Err(SignatureError::Stale);
    }
    for secret in secrets {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).map_err(|_| SignatureError::Malformed)?;
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(payload);
        let expected = mac.finalize().into_bytes();
        // Constant-time comparison of each candidate.
        if signatures.iter().any(|s| subtle::ConstantTimeEq::ct_eq(s.as_slice(), expected.as_slice()).into()) {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

/// The parts of a Stripe event GhostTrack reads.
#[derive(Debug, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Seconds since the epoch: orders events of one subscription.
    pub created: i64,
    pub data: EventData,
}

#[derive(Debug, Deserialize)]
pub struct EventData {
    pub object: serde_json::Value,
}

#[derive(Debug, PartialEq, Eq)]
pub enum EventOutcome {
    Applied,
    Stale,
    Ignored,
}

fn str_field<'a>(v: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    match &v[key] {
        serde_json::Value::String(s) => Some(s.as_str()),
        // Expanded objects carry their id.
        serde_json::Value::Object(o) => o.get("id").and_then(|id| id.as_str()),
        _ => None,
    }
}

fn millis(v: &serde_json::Value) -> Option<UnixMillis> {
    v.as_i64().map(|s| UnixMillis(s * 1000))
}

/// Applies a verified Stripe event to the stored subscription state.
pub async fn apply_event(
    db: &impl sea_orm::ConnectionTrait,
    billing: &BillingSettings,
    event: &Event,
) -> Result<EventOutcome, BillingError> {
    let object = &event.data.object;
    let at = UnixMillis(event.created * 1000);
    let (site, state, replace) = match event.kind.as_str() {
        "checkout.session.completed" => {
            if object["mode"].as_str() != Some("subscription") {
                return Ok(EventOutcome::Ignored);
            }
            let Some(site) = object["client_reference_id"].as_str().and_then(|s| s.parse::<i64>().ok()) else {
                return Ok(EventOutcome::Ignored);
            };
            let Some(plan) = object["metadata"]["plan"].as_str().and_then(Plan::parse).filter(|p| p.is_paid()) else {
                return Ok(EventOutcome::Ignored);
            };
            let state = SubscriptionState {
                provider: PROVIDER,
                external_id: str_field(object, "subscription").map(str::to_owned),
                customer_id: str_field(object, "customer").map(str::to_owned),
                plan: plan.as_str().into(),
                // Paid (or in trial) once the session completes; later subscription events refine it.
                status: "active".into(),
                test: object["livemode"].as_bool() == Some(false),
                trial_ends_at: None,
                current_period_end: None,
                provider_updated_at: at,
            };
            (SiteId(site), state, Replace::AnyOlder)
        }
        "customer.subscription.created" | "customer.subscription.updated" | "customer.subscription.deleted" => {
            let id = str_field(object, "id").map(str::to_owned);
            let customer = str_field(object, "customer").map(str::to_owned);
            let site = match object["metadata"]["site_id"].as_str().and_then(|s| s.parse::<i64>().ok()) {
                Some(site) => Some(SiteId(site)),
                None => store::site_of_external(db, PROVIDER, id.as_deref(), customer.as_deref()).await?,
            };
            let Some(site) = site else { return Ok(EventOutcome::Ignored) };
            let item = &object["items"]["data"][0];
            let plan = item["price"]["id"]
                .as_str()
                .and_then(|p| Plan::by_stripe_price(billing, p))
                .or_else(|| object["metadata"]["plan"].as_str().and_then(Plan::parse));
            let Some(plan) = plan else { return Ok(EventOutcome::Ignored) };
            let status = object["status"].as_str().unwrap_or("unknown").to_owned();
            let replace =
                if status_grants_plan(PROVIDER, &status) { Replace::AnyOlder } else { Replace::SameSubscriptionOlder };
            let period_end = millis(&item["current_period_end"]).or_else(|| millis(&object["current_period_end"]));
            let state = SubscriptionState {
                provider: PROVIDER,
                external_id: id,
                customer_id: customer,
                plan: plan.as_str().into(),
                status,
                test: object["livemode"].as_bool() == Some(false),
                trial_ends_at: millis(&object["trial_end"]),
                current_period_end: period_end,
                provider_updated_at: at,
            };
            (site, state, replace)
        }
        "invoice.payment_failed" => {
            let subscription = str_field(object, "subscription")
                .or_else(|| object["parent"]["subscription_details"]["subscription"].as_str())
                .map(str::to_owned);
            let customer = str_field(object, "customer").map(str::to_owned);
            let Some(site) =
                store::site_of_external(db, PROVIDER, subscription.as_deref(), customer.as_deref()).await?
            else {
                return Ok(EventOutcome::Ignored);
            };
            let Some(row) = store::subscription(db, TenantScope::verified(site)).await? else {
                return Ok(EventOutcome::Ignored);
            };
            let state = SubscriptionState {
                provider: PROVIDER,
                external_id: subscription.or(row.external_id.clone()),
                customer_id: customer,
                plan: row.plan.clone(),
                status: "past_due".into(),
                test: row.test,
                trial_ends_at: row.trial_ends_at,
                current_period_end: row.current_period_end,
                provider_updated_at: at,
            };
            (site, state, Replace::SameSubscriptionOlder)
        }
        _ => return Ok(EventOutcome::Ignored),
    };
    let applied = store::apply(db, site, &state, replace).await?;
    tracing::info!(event.id = %event.id, event.kind = %event.kind, site.id = site.0, applied, "Stripe event");
    Ok(if applied { EventOutcome::Applied } else { EventOutcome::Stale })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, t: i64, payload: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(payload);
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn signatures_follow_stripes_scheme_with_rotation_and_tolerance() {
        let (current, previous) = (Secret::new("whsec_new"), Secret::new("whsec_old"));
        let body = br#"{"id":"evt_1"}"#;
        let now = 1_763_700_000;
        let good = format!("t={now},v1={}", sign("whsec_new", now, body));
        assert_eq!(verify_signature(Some(&good), body, &[&current], 300, now), Ok(()));
        // Several v1 (Stripe sends one per active secret), the matching one second.
        let two = format!("t={now},v1={},v1={},v0=ignored", "ab".repeat(32), sign("whsec_old", now, body));
        assert_eq!(verify_signature(Some(&two), body, &[&current, &previous], 300, now), Ok(()));
        assert_eq!(verify_signature(Some(&two), body, &[&current], 300, now), Err(SignatureError::Mismatch));
        assert_eq!(verify_signature(Some(&good), b"{}", &[&current], 300, now), Err(SignatureError::Mismatch));
        assert_eq!(verify_signature(Some(&good), body, &[&current], 300, now + 301), Err(SignatureError::Stale));
        assert_eq!(verify_signature(Some(&good), body, &[&current], 300, now + 300), Ok(()));
        assert_eq!(verify_signature(Some("v1=00"), body, &[&current], 300, now), Err(SignatureError::Malformed));
        assert_eq!(verify_signature(None, body, &[&current], 300, now), Err(SignatureError::Malformed));
        assert_eq!(verify_signature(Some(&good), body, &[], 300, now), Err(SignatureError::NotConfigured));
    }
}
