//! The webhook inbox worker: claims due deliveries, runs the topic handler, and records the
//! outcome. Handlers are idempotent (Shopify retries and duplicates; spec §3.4) and tolerate
//! out-of-order delivery. Transient failures (database) retry with exponential backoff; a
//! payload that cannot be understood is parked at once, any row still failing after
//! [`MAX_ATTEMPTS`] is parked; parked rows keep their body and error for an operator.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;
use serde::Deserialize;
use tokio::sync::{Notify, watch};

use super::Shopify;
use super::shop_domain::ShopDomain;
use super::signals::{self, OrderLink};
use crate::billing::{self, settings::BillingSettings};
use crate::detect::service::Detector;
use crate::detect::{Verdict, subject_of};
use crate::domain::UnixMillis;
use crate::storage::shopify_orders::{self, OrderUpdate};
use crate::storage::webhook_inbox::{self, InboxRow};
use crate::storage::{StorageError, shops};

/// Attempts before a failing row is parked (Shopify itself retries 8 times).
pub const MAX_ATTEMPTS: i32 = 8;
/// How long a claimed row is hidden from other workers.
const LEASE_MS: i64 = 60_000;
/// Rows claimed per round.
const CLAIM_BATCH: u64 = 64;
/// Poll interval when nobody notifies (other nodes' deliveries, retries coming due).
const POLL: Duration = Duration::from_secs(1);
/// How far before an order its tracked session's cart or checkout events are looked for.
const LINK_WINDOW_MS: i64 = 7 * 24 * 3_600_000;

/// What the handlers use besides the database: the detection engine (webhook facts become
/// detection events) and the Shopify client (verdicts are written back onto orders).
#[derive(Clone)]
pub struct Worker {
    pub db: DatabaseConnection,
    pub detector: Option<Arc<Detector>>,
    pub shopify: Option<Arc<Shopify>>,
    /// Plans: `app_subscriptions/update` changes the tenant's plan.
    pub billing: Arc<BillingSettings>,
    /// Opens blind indexes of encrypted tenants' cart and checkout tokens (the order join).
    pub event_keys: Arc<crate::keys::EventKeys>,
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The payload can never be processed: park it.
    #[error("unprocessable payload: {0}")]
    Poison(String),
    /// Worth retrying later.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A tenant's data key cannot be read (database, or a missing secret): retry later.
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyError),
}

/// Delay before attempt `attempts + 1`: 2, 4, 8 … seconds, at most an hour.
pub fn backoff_ms(attempts: i32) -> i64 {
    1000 * (1i64 << attempts.clamp(1, 12)).min(3600)
}

/// Runs until `stopped` flips, waking on `notify` (a new delivery) or every second.
pub async fn run(worker: Worker, notify: Arc<Notify>, mut stopped: watch::Receiver<bool>) {
    loop {
        match drain(&worker, UnixMillis::now()).await {
            Ok(_) => {}
            Err(error) => tracing::warn!(error = %error, "webhook inbox claim failed; will retry"),
        }
        tokio::select! {
            _ = notify.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = stopped.changed() => break,
        }
    }
}

/// Processes every row due at `now`; returns how many were handled (successfully or not).
pub async fn drain(worker: &Worker, now: UnixMillis) -> Result<usize, StorageError> {
    let db = &worker.db;
    let mut handled = 0;
    loop {
        let rows = webhook_inbox::claim_due(db, now, LEASE_MS, CLAIM_BATCH).await?;
        if rows.is_empty() {
            return Ok(handled);
        }
        // Successes are marked together after the batch: one write instead of one per row. A
        // crash before that reprocesses them after the lease; handlers are idempotent.
        let mut done = Vec::with_capacity(rows.len());
        for row in rows {
            handled += 1;
            let outcome = process(worker, &row).await;
            let recorded = match outcome {
                Ok(()) => {
                    done.push(row.id);
                    Ok(())
                }
                Err(HandlerError::Poison(reason)) => {
                    tracing::warn!(webhook.topic = %row.topic, webhook.row = row.id, error = %reason, "webhook parked");
                    webhook_inbox::mark_failed(db, row.id, &reason, None).await
                }
                Err(error @ (HandlerError::Storage(_) | HandlerError::Keys(_))) => {
                    let retry = (row.attempts < MAX_ATTEMPTS).then(|| UnixMillis(now.0 + backoff_ms(row.attempts)));
                    tracing::warn!(
                        webhook.topic = %row.topic, webhook.row = row.id, attempts = row.attempts,
                        parked = retry.is_none(), error = %error, "webhook handler failed"
                    );
                    webhook_inbox::mark_failed(db, row.id, &error.to_string(), retry).await
                }
            };
            recorded?;
        }
        webhook_inbox::mark_done(db, &done).await?;
    }
}

fn parse<T: for<'de> Deserialize<'de>>(row: &InboxRow) -> Result<T, HandlerError> {
    serde_json::from_str(&row.body).map_err(|e| HandlerError::Poison(format!("{}: {e}", row.topic)))
}

/// Runs the handler of one delivery.
pub async fn process(worker: &Worker, row: &InboxRow) -> Result<(), HandlerError> {
    let db = &worker.db;
    let billing = &*worker.billing;
    let shop = ShopDomain::parse(&row.shop_domain)
        .ok_or_else(|| HandlerError::Poison("stored shop domain is invalid".into()))?;
    match row.topic.as_str() {
        "orders/create" | "orders/paid" | "orders/updated" => {
            let order: OrderPayload = parse(row)?;
            let Some(found) = shops::find(db, &shop).await?.filter(|s| s.active) else {
                tracing::info!(shop = %shop, webhook.topic = %row.topic, "order for a shop that is not installed; ignored");
                return Ok(());
            };
            let paid = row.topic == "orders/paid" || order.financial_status.as_deref() == Some("paid");
            let ts = signals::event_time(order.created_at.as_deref(), UnixMillis::now().0);
            let browser_ip =
                order.browser_ip.as_deref().or(order.client_details.as_ref().and_then(|c| c.browser_ip.as_deref()));
            let ip_prefix = signals::ip_prefix(browser_ip);
            let keys = &worker.event_keys;
            let (cart, checkout) = keys
                .join_needles(db, found.scope(), order.cart_token.as_deref(), order.checkout_token.as_deref())
                .await?;
            let session =
                shopify_orders::tracked_session(db, found.scope(), &cart, &checkout, UnixMillis(ts - LINK_WINDOW_MS))
                    .await?;
            let link = OrderLink {
                session,
                ip_prefix,
                user_agent: order.client_details.as_ref().and_then(|c| c.user_agent.clone()),
                cart_token: order.cart_token.clone(),
                checkout_token: order.checkout_token.clone(),
                guest: order.customer.is_none(),
            };
            let total_minor = signals::minor_units(order.total_price.as_deref());
            let update = OrderUpdate {
                order_id: order.id,
                customer_id: order.customer.and_then(|c| c.id),
                checkout_token: order.checkout_token,
                cart_token: order.cart_token,
                total_price: order.total_price,
                currency: order.currency,
                financial_status: order.financial_status,
                paid,
                updated_at: order.updated_at,
                session_id: session,
                ip_prefix: ip_prefix.map(|p| p.to_string()),
            };
            shopify_orders::upsert(db, found.scope(), &update).await?;
            if row.topic == "orders/create" && session.is_none() {
                // Judged again after the grace period (`shopify::untracked`): the tracker's
                // batch may still be on its way.
                let seen = shopify_orders::CartSeen {
                    kind: "order",
                    token: link.checkout_token.clone().unwrap_or_else(|| format!("order-{}", order.id)),
                    cart_token: link.cart_token.clone(),
                    ip_prefix: ip_prefix.map(|p| p.to_string()),
                };
                shopify_orders::record_cart(db, found.scope(), &seen, false).await?;
            }
            if row.topic == "orders/create" {
                let event = signals::order_created(&link, ts, total_minor);
                if let Some(verdict) = worker.observe(&found, &event) {
                    worker.write_risk(&found, order.id, &verdict).await;
                }
            }
        }
        "app/uninstalled" => {
            let known = shops::mark_uninstalled(db, &shop).await?;
            if let Some(found) = shops::find(db, &shop).await? {
                // Shopify removes the app's pixel on uninstall; a reinstall starts the job over.
                crate::storage::shopify_setup::delete(db, found.scope()).await?;
            }
            tracing::info!(shop = %shop, known, "app uninstalled; tokens dropped");
        }
        "app/scopes_update" => {
            let payload: ScopesUpdate = parse(row)?;
            shops::set_scope(db, &shop, &payload.current.join(",")).await?;
        }
        "app_subscriptions/update" => {
            let payload: SubscriptionUpdate = parse(row)?;
            let s = payload.app_subscription;
            let detail = serde_json::json!({
                "subscription_id": s.admin_graphql_api_id,
                "name": s.name,
                "status": s.status,
                "updated_at": s.updated_at,
            });
            shops::audit(db, &shop, "app_subscription", &detail).await?;
            let Some(found) = shops::find(db, &shop).await? else {
                tracing::info!(shop = %shop, "subscription update for an unknown shop; ignored");
                return Ok(());
            };
            let outcome =
                billing::shopify::apply_webhook(db, billing, found.site_id, &s).await.map_err(|e| match e {
                    billing::BillingError::Storage(e) => HandlerError::Storage(e),
                    other => HandlerError::Poison(other.to_string()),
                })?;
            tracing::info!(shop = %shop, subscription.status = %s.status, outcome = ?outcome, "subscription update");
        }
        "customers/data_request" => {
            let payload: CustomerRequest = parse(row)?;
            let customer_id = payload.customer.as_ref().and_then(|c| c.id);
            let orders = match shops::find(db, &shop).await? {
                Some(found) => {
                    shopify_orders::customer_orders(db, found.scope(), customer_id, &payload.orders_requested).await?
                }
                None => Vec::new(),
            };
            let export: Vec<serde_json::Value> = orders
                .iter()
                .map(|o| {
                    serde_json::json!({
                        "order_id": o.order_id, "checkout_token": o.checkout_token, "cart_token": o.cart_token,
                        "total_price": o.total_price, "currency": o.currency,
                        "financial_status": o.financial_status, "paid": o.paid,
                    })
                })
                .collect();
            // `json!` orders keys alphabetically, so the detail starts with the customer id
            // (customers/redact finds and deletes these exports by that prefix).
            let detail = serde_json::json!({
                "customer_id": customer_id.map(|c| c.to_string()),
                "data_request_id": payload.data_request.map(|d| d.id),
                "orders": export,
            });
            shops::audit(db, &shop, super::compliance::EXPORT_ACTION, &detail).await?;
            tracing::info!(shop = %shop, orders = orders.len(), "customer data export stored");
        }
        "customers/redact" => {
            let payload: CustomerRequest = parse(row)?;
            let customer_id = payload.customer.as_ref().and_then(|c| c.id);
            let deleted = super::compliance::redact_customer(db, &shop, customer_id, &payload.orders_to_redact).await?;
            tracing::info!(shop = %shop, orders.deleted = deleted, "customer redacted");
        }
        "shop/redact" => {
            let deleted = super::compliance::redact_shop(db, &shop).await?;
            tracing::info!(shop = %shop, rows.deleted = deleted, "shop redacted");
        }
        "carts/create" | "carts/update" | "checkouts/create" | "checkouts/update" => {
            let payload: CartPayload = parse(row)?;
            let is_cart = row.topic.starts_with("carts/");
            let token = payload
                .token
                .or_else(|| payload.id.as_ref().and_then(|v| v.as_str().map(str::to_owned)))
                .ok_or_else(|| HandlerError::Poison(format!("{}: no token", row.topic)))?;
            let Some(found) = shops::find(db, &shop).await?.filter(|s| s.active) else {
                return Ok(());
            };
            let keys = &worker.event_keys;
            let cart_token = if is_cart { Some(token.as_str()) } else { payload.cart_token.as_deref() };
            let checkout_token = (!is_cart).then_some(token.as_str());
            let (cart, checkout) = keys.join_needles(db, found.scope(), cart_token, checkout_token).await?;
            // A checkout counts as tracked when its cart was, or when the pixel reported it (`ck`).
            let tracked = shopify_orders::tracked_session(db, found.scope(), &cart, &checkout, UnixMillis(i64::MIN))
                .await?
                .is_some();
            let seen = shopify_orders::CartSeen {
                kind: if is_cart { "cart" } else { "checkout" },
                token,
                cart_token: if is_cart { None } else { payload.cart_token },
                ip_prefix: None,
            };
            shopify_orders::record_cart(db, found.scope(), &seen, tracked).await?;
            if !tracked {
                tracing::info!(shop = %shop, webhook.topic = %row.topic, "cart not produced by a tracked session");
            }
        }
        "order_transactions/create" => {
            let t: TransactionPayload = parse(row)?;
            let Some(found) = shops::find(db, &shop).await?.filter(|s| s.active) else {
                return Ok(());
            };
            let details = t.payment_details.unwrap_or_default();
            let card_number = details.credit_card_number;
            let attempt = shopify_orders::PaymentAttempt {
                transaction_id: t.id,
                order_id: t.order_id,
                kind: t.kind,
                gateway: t.gateway,
                status: t.status,
                error_code: t.error_code,
                card_bin: details.credit_card_bin,
                avs_result_code: details.avs_result_code,
                cvv_result_code: details.cvv_result_code,
                amount: t.amount,
                currency: t.currency,
                test: t.test.unwrap_or(false),
            };
            shopify_orders::record_payment_attempt(db, found.scope(), &attempt).await?;
            // Keyed on what the order tells (an order not stored yet gives no subject; its
            // later attempts still count once it is).
            let order = match t.order_id {
                Some(id) => shopify_orders::find_order(db, found.scope(), id).await?,
                None => None,
            };
            let link = order.map_or_else(OrderLink::default, |o| OrderLink {
                session: o.session_id,
                ip_prefix: o.ip_prefix.as_deref().and_then(|p| p.parse().ok()),
                user_agent: None,
                cart_token: o.cart_token,
                checkout_token: o.checkout_token,
                guest: o.customer_id.is_none(),
            });
            let transaction = crate::detect::event::Transaction {
                status: attempt.status.clone(),
                error_code: attempt.error_code.clone(),
                bin: attempt.card_bin.clone(),
                last4: signals::last4(card_number.as_deref()),
                amount_minor: signals::minor_units(attempt.amount.as_deref()),
                avs: attempt.avs_result_code.clone(),
                cvv: attempt.cvv_result_code.clone(),
                guest: link.guest,
            };
            let ts = signals::event_time(t.created_at.as_deref(), UnixMillis::now().0);
            worker.observe(&found, &signals::order_transaction(&link, ts, transaction));
        }
        other => {
            tracing::debug!(shop = %shop, webhook.topic = other, "no handler for this topic yet");
        }
    }
    Ok(())
}

impl Worker {
    /// Feeds one webhook event to the engine; returns the subject's verdict when it is not ALLOW.
    fn observe(&self, shop: &shops::Shop, event: &crate::detect::DetectEvent) -> Option<Verdict> {
        let detector = self.detector.as_ref()?;
        let changes = detector.observe(shop.site_id, std::slice::from_ref(event));
        let subject = subject_of(event)?;
        let verdict = changes
            .into_iter()
            .rev()
            .find(|v| v.subject == subject)
            .or_else(|| detector.verdict_of(shop.site_id, &subject, UnixMillis(event.ts)))?;
        (verdict.decision != crate::detect::Decision::Allow).then_some(verdict)
    }

    /// Writes a CHALLENGE or BLOCK verdict onto the order (`orderRiskAssessmentCreate`), when the
    /// shop granted `write_orders` and its plan includes the write-back (Pro and up). Failures are logged, not retried: the order itself is stored.
    async fn write_risk(&self, shop: &shops::Shop, order_id: u64, verdict: &Verdict) {
        let Some(shopify) = self.shopify.as_ref() else { return };
        if !shop.scope.as_deref().is_some_and(|s| s.split(',').any(|x| x.trim() == "write_orders")) {
            return;
        }
        match crate::billing::entitlements(&self.db, &self.billing, shop.scope()).await {
            Ok(plan) if plan.allows(crate::billing::Feature::OrderRiskWriteBack) => {}
            Ok(_) => {
                tracing::debug!(shop = %shop.domain, "order risk write-back is not part of this shop's plan");
                return;
            }
            Err(error) => {
                tracing::warn!(shop = %shop.domain, error = %error, "entitlements lookup failed; no risk write-back");
                return;
            }
        }
        let Some((level, facts)) = super::risk::assessment(verdict) else { return };
        match shopify.order_risk_assessment_create(&shop.domain, order_id, level, &facts).await {
            Ok(outcome) => {
                tracing::info!(shop = %shop.domain, level = level.as_str(), outcome = ?outcome, "order risk assessment written")
            }
            Err(error) => {
                tracing::warn!(shop = %shop.domain, error = %error, "could not write the order risk assessment")
            }
        }
    }
}

// The payload types are public for the `webhook_body` fuzz target (fuzz/), which decodes
// bodies the way `process` does.

/// Fields of the Order webhook payload GhostTrack keeps. Ids are u64 (they exceed 2^53);
/// money is a decimal string; statuses are strings so unknown values are kept.
#[derive(Debug, Deserialize)]
pub struct OrderPayload {
    pub id: u64,
    #[serde(default)]
    pub customer: Option<CustomerRef>,
    #[serde(default)]
    pub checkout_token: Option<String>,
    #[serde(default)]
    pub cart_token: Option<String>,
    #[serde(default)]
    pub total_price: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub financial_status: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    /// Read only to be truncated to its network.
    #[serde(default)]
    pub browser_ip: Option<String>,
    #[serde(default)]
    pub client_details: Option<ClientDetails>,
}

/// `client_details` of an order.
#[derive(Debug, Deserialize)]
pub struct ClientDetails {
    #[serde(default)]
    pub browser_ip: Option<String>,
    #[serde(default)]
    pub user_agent: Option<String>,
}

/// A customer reference; the compliance payloads may carry only an email (id absent or null).
#[derive(Debug, Deserialize)]
pub struct CustomerRef {
    #[serde(default)]
    pub id: Option<u64>,
}

/// The REST Transaction payload of `order_transactions/create`, the fields GhostTrack keeps.
#[derive(Debug, Deserialize)]
pub struct TransactionPayload {
    id: u64,
    #[serde(default)]
    order_id: Option<u64>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    gateway: Option<String>,
    status: String,
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default)]
    amount: Option<String>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    test: Option<bool>,
    #[serde(default)]
    payment_details: Option<PaymentDetails>,
    #[serde(default)]
    created_at: Option<String>,
}

/// Card facts only; `credit_card_name` is not read.
#[derive(Debug, Default, Deserialize)]
pub struct PaymentDetails {
    #[serde(default)]
    credit_card_bin: Option<String>,
    #[serde(default)]
    avs_result_code: Option<String>,
    #[serde(default)]
    cvv_result_code: Option<String>,
    /// Masked (`•••• •••• •••• 4242`); only its last four digits reach detection, never storage.
    #[serde(default)]
    credit_card_number: Option<String>,
}

/// Carts (`token`, also in `id`) and checkouts (`token`, `cart_token`).
#[derive(Debug, Deserialize)]
pub struct CartPayload {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    cart_token: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ScopesUpdate {
    current: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct SubscriptionUpdate {
    app_subscription: billing::shopify::WebhookSubscription,
}

#[derive(Debug, Deserialize)]
pub struct CustomerRequest {
    #[serde(default)]
    customer: Option<CustomerRef>,
    #[serde(default)]
    orders_requested: Vec<u64>,
    #[serde(default)]
    orders_to_redact: Vec<u64>,
    #[serde(default)]
    data_request: Option<DataRequest>,
}

#[derive(Debug, Deserialize)]
pub struct DataRequest {
    id: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped_at_an_hour() {
        assert_eq!(backoff_ms(1), 2_000);
        assert_eq!(backoff_ms(2), 4_000);
        assert_eq!(backoff_ms(7), 128_000);
        assert_eq!(backoff_ms(40), 3_600_000);
    }

    #[test]
    fn order_payloads_keep_u64_ids_decimal_money_and_unknown_statuses() {
        let json = r#"{"id": 18446744073709551615, "customer": {"id": 9007199254740993, "email": "x@example.com"},
            "total_price": "199.00", "currency": "EUR", "financial_status": "brand_new_status",
            "cart_token": "c1", "checkout_token": null, "updated_at": "2026-11-21T10:00:00-05:00"}"#;
        let o: OrderPayload = serde_json::from_str(json).unwrap();
        assert_eq!(o.id, u64::MAX);
        assert_eq!(o.customer.unwrap().id, Some(9_007_199_254_740_993));
        assert_eq!(o.total_price.as_deref(), Some("199.00"));
        assert_eq!(o.financial_status.as_deref(), Some("brand_new_status"));
        assert_eq!(o.checkout_token, None);
    }
}
