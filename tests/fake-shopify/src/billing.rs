//! Shopify's Billing API, faked strictly: `appSubscriptionCreate` (with Shopify's userErrors),
//! `currentAppInstallation { activeSubscriptions }`, `appSubscriptionCancel`, the merchant's
//! confirmation page (approve / decline), and `app_subscriptions/update` webhooks signed like
//! every Shopify webhook. Development stores only accept test charges, as on Shopify.
//!
//! The lifecycle: create → PENDING; approve → ACTIVE (any other ACTIVE subscription of the
//! shop → CANCELLED: one recurring subscription per app and shop) → webhook(s) → 302 to
//! `returnUrl?charge_id=…`; decline → DECLINED → webhook → 302 to `returnUrl?charge_id=…`.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use poem::http::StatusCode;
use poem::web::{Data, Path, Query};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::{FakeShopify, Inner, random_uuid, signing};

/// One app subscription as the fake holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct FakeSubscription {
    pub number: u64,
    pub shop: String,
    pub name: String,
    pub status: String,
    pub test: bool,
    pub trial_days: i64,
    pub amount: f64,
    pub currency: String,
    pub return_url: String,
    pub replacement_behavior: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub current_period_end_ms: Option<i64>,
}

impl FakeSubscription {
    pub fn gid(&self) -> String {
        format!("gid://shopify/AppSubscription/{}", self.number)
    }
}

/// The fake's billing state.
#[derive(Default)]
pub struct Book {
    state: Mutex<BookState>,
}

#[derive(Default)]
struct BookState {
    subs: Vec<FakeSubscription>,
    next: u64,
    webhook_url: Option<String>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn confirmation_signature(secret: &str, shop: &str, number: u64) -> String {
    signing::webhook_hmac(secret, format!("{shop}/{number}").as_bytes())
}

/// A query-string value (signatures are base64: `+`, `/` and `=` must be escaped).
fn query_value(raw: &str) -> String {
    url::form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}

fn user_error(field: Option<&[&str]>, message: &str) -> serde_json::Value {
    serde_json::json!({ "field": field, "message": message })
}

/// Answers a billing GraphQL operation, or `None` when `query` is not one.
pub(crate) fn graphql(
    inner: &Inner,
    req: &Request,
    shop: &str,
    query: &str,
    vars: &serde_json::Value,
) -> Option<serde_json::Value> {
    if query.contains("appSubscriptionCreate") {
        Some(create(inner, req, shop, vars))
    } else if query.contains("appSubscriptionCancel") {
        Some(cancel(inner, shop, vars))
    } else if query.contains("currentAppInstallation") {
        let state = inner.billing.state.lock();
        let active: Vec<serde_json::Value> =
            state.subs.iter().filter(|s| s.shop == shop && s.status == "ACTIVE").map(subscription_json).collect();
        Some(serde_json::json!({ "currentAppInstallation": {
            "id": "gid://shopify/AppInstallation/1", "activeSubscriptions": active } }))
    } else {
        None
    }
}

fn subscription_json(s: &FakeSubscription) -> serde_json::Value {
    serde_json::json!({
        "id": s.gid(), "name": s.name, "status": s.status, "test": s.test, "trialDays": s.trial_days,
        "createdAt": iso(s.created_at_ms), "currentPeriodEnd": s.current_period_end_ms.map(iso),
        "lineItems": [{ "id": format!("gid://shopify/AppSubscriptionLineItem/{}?v=1&index=0", s.number),
            "plan": { "pricingDetails": { "__typename": "AppRecurringPricing",
                "price": { "amount": format!("{:.1}", s.amount), "currencyCode": s.currency },
                "interval": "EVERY_30_DAYS" } } }],
    })
}

fn create(inner: &Inner, req: &Request, shop: &str, vars: &serde_json::Value) -> serde_json::Value {
    let failed = |errors: Vec<serde_json::Value>| serde_json::json!({ "appSubscriptionCreate": { "userErrors": errors, "confirmationUrl": null, "appSubscription": null } });
    let name = vars["name"].as_str().unwrap_or("");
    if name.trim().is_empty() {
        return failed(vec![user_error(Some(&["name"]), "Name can't be blank")]);
    }
    let return_url = vars["returnUrl"].as_str().unwrap_or("");
    if !(return_url.starts_with("https://") || return_url.starts_with("http://")) {
        return failed(vec![user_error(Some(&["returnUrl"]), "Return url is invalid")]);
    }
    let items = vars["lineItems"].as_array().cloned().unwrap_or_default();
    let recurring: Vec<&serde_json::Value> =
        items.iter().filter_map(|i| i["plan"].get("appRecurringPricingDetails")).collect();
    if recurring.len() != 1 {
        return failed(vec![user_error(
            Some(&["lineItems"]),
            "Only one pricing plan can be defined for each available type",
        )]);
    }
    let price = &recurring[0]["price"];
    let amount = price["amount"].as_f64().or_else(|| price["amount"].as_str().and_then(|s| s.parse().ok()));
    let Some(amount) = amount.filter(|a| *a > 0.0) else {
        return failed(vec![user_error(
            Some(&["lineItems", "0", "plan", "appRecurringPricingDetails", "price"]),
            "Price must be greater than 0",
        )]);
    };
    let currency = price["currencyCode"].as_str().unwrap_or("").to_owned();
    if currency != "USD" {
        return failed(vec![user_error(
            Some(&["lineItems", "0", "plan", "appRecurringPricingDetails", "price", "currencyCode"]),
            "Currency code must match the shop's billing currency",
        )]);
    }
    let test = vars["test"].as_bool().unwrap_or(false);
    // Every shop of the fake is a partner development store: test charges only.
    if !test {
        return failed(vec![user_error(None, "The shop cannot accept the provided charge.")]);
    }
    let trial_days = vars["trialDays"].as_i64().unwrap_or(0);
    if !(0..=1000).contains(&trial_days) {
        return failed(vec![user_error(Some(&["trialDays"]), "Trial days must be between 0 and 1000")]);
    }
    let now = now_ms();
    let mut state = inner.billing.state.lock();
    state.next += 1;
    let sub = FakeSubscription {
        number: 1_029_266_000 + state.next,
        shop: shop.to_owned(),
        name: name.to_owned(),
        status: "PENDING".into(),
        test,
        trial_days,
        amount,
        currency,
        return_url: return_url.to_owned(),
        replacement_behavior: vars["replacementBehavior"].as_str().unwrap_or("STANDARD").to_owned(),
        created_at_ms: now,
        updated_at_ms: now,
        current_period_end_ms: None,
    };
    let host = req.headers().get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let signature = confirmation_signature(&inner.app.client_secret, shop, sub.number);
    let url = format!(
        "http://{host}/{shop}/admin/charges/{}/confirm_recurring_application_charge?signature={}",
        sub.number,
        query_value(&signature)
    );
    let answer = serde_json::json!({ "appSubscriptionCreate": { "userErrors": [], "confirmationUrl": url,
        "appSubscription": { "id": sub.gid(), "status": "PENDING" } } });
    state.subs.push(sub);
    answer
}

fn cancel(inner: &Inner, shop: &str, vars: &serde_json::Value) -> serde_json::Value {
    let id = vars["id"].as_str().unwrap_or("").to_owned();
    let sub = {
        let mut state = inner.billing.state.lock();
        match state.subs.iter_mut().find(|s| s.shop == shop && s.gid() == id) {
            Some(s) if s.status == "ACTIVE" || s.status == "FROZEN" => {
                s.status = "CANCELLED".into();
                s.updated_at_ms = now_ms();
                s.current_period_end_ms = None;
                s.clone()
            }
            Some(_) => {
                return serde_json::json!({ "appSubscriptionCancel": { "userErrors": [user_error(Some(&["id"]), "Cannot cancel a subscription that is not active")], "appSubscription": null } });
            }
            None => {
                return serde_json::json!({ "appSubscriptionCancel": { "userErrors": [user_error(Some(&["id"]), "Couldn't find RecurringApplicationCharge")], "appSubscription": null } });
            }
        }
    };
    spawn_webhook(inner, &sub);
    serde_json::json!({ "appSubscriptionCancel": { "userErrors": [], "appSubscription": { "id": sub.gid(), "status": sub.status } } })
}

/// The `app_subscriptions/update` payload (Shopify's reference shape).
pub fn webhook_body(s: &FakeSubscription) -> String {
    serde_json::json!({ "app_subscription": {
        "admin_graphql_api_id": s.gid(), "name": s.name, "status": s.status,
        "admin_graphql_api_shop_id": "gid://shopify/Shop/548380009",
        "created_at": iso(s.created_at_ms), "updated_at": iso(s.updated_at_ms),
        "currency": s.currency, "capped_amount": null, "price": format!("{:.2}", s.amount),
        "interval": "every_30_days", "plan_handle": null,
    } })
    .to_string()
}

/// Sends the webhook of a subscription change to the app (cancel runs inside the GraphQL
/// handler, so this one is sent from a task; approve and decline await theirs).
fn spawn_webhook(inner: &Inner, sub: &FakeSubscription) {
    let Some(url) = inner.billing.state.lock().webhook_url.clone() else { return };
    let secret = inner.app.client_secret.clone();
    let sub = sub.clone();
    tokio::spawn(async move {
        let _ = send_webhook(&secret, &url, &sub).await;
    });
}

async fn send_webhook(secret: &str, url: &str, sub: &FakeSubscription) -> reqwest::Result<reqwest::Response> {
    let body = webhook_body(sub);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
    client
        .post(url)
        .header("content-type", "application/json")
        .header("X-Shopify-Topic", "app_subscriptions/update")
        .header("X-Shopify-Hmac-Sha256", signing::webhook_hmac(secret, body.as_bytes()))
        .header("X-Shopify-Shop-Domain", &sub.shop)
        .header("X-Shopify-API-Version", "2026-10")
        .header("X-Shopify-Webhook-Id", random_uuid())
        .header("X-Shopify-Event-Id", random_uuid())
        .header("X-Shopify-Triggered-At", iso(sub.updated_at_ms))
        .body(body)
        .send()
        .await
}

#[derive(Deserialize)]
pub(crate) struct Signed {
    #[serde(default)]
    signature: String,
}

/// The pending subscription a signed confirmation link names, or the status and page to show.
fn find_pending(
    inner: &Inner,
    shop: &str,
    number: u64,
    signature: &str,
) -> Result<FakeSubscription, (StatusCode, String)> {
    if signature != confirmation_signature(&inner.app.client_secret, shop, number) {
        return Err((StatusCode::NOT_FOUND, "Not Found".into()));
    }
    let state = inner.billing.state.lock();
    match state.subs.iter().find(|s| s.shop == shop && s.number == number) {
        Some(s) if s.status == "PENDING" => Ok(s.clone()),
        Some(s) => Err((StatusCode::UNPROCESSABLE_ENTITY, format!("This charge is {}", s.status))),
        None => Err((StatusCode::NOT_FOUND, "Not Found".into())),
    }
}

/// `GET /{shop}/admin/charges/{id}/confirm_recurring_application_charge?signature=…`: the page
/// the merchant sees, with Approve and Decline buttons.
#[handler]
pub(crate) async fn confirm_page(
    Path((shop, number)): Path<(String, u64)>,
    Query(q): Query<Signed>,
    Data(inner): Data<&Arc<Inner>>,
) -> Response {
    let sub = match find_pending(inner, &shop, number, &q.signature) {
        Ok(sub) => sub,
        Err(refused) => return refused.into_response(),
    };
    let test = if sub.test { "<p class=\"test\">This is a test charge. You will not be billed.</p>" } else { "" };
    let body = format!(
        "<!doctype html><html><head><title>Approve subscription</title></head><body>\
         <h1>{name}</h1><p>${amount:.2} {currency} every 30 days, {trial} day free trial.</p>{test}\
         <form method=\"post\" action=\"/{shop}/admin/charges/{number}/approve?signature={sig}\"><button id=\"approve\">Approve</button></form>\
         <form method=\"post\" action=\"/{shop}/admin/charges/{number}/decline?signature={sig}\"><button id=\"decline\">Decline</button></form>\
         </body></html>",
        name = sub.name,
        amount = sub.amount,
        currency = sub.currency,
        trial = sub.trial_days,
        sig = query_value(&q.signature),
    );
    Response::builder().status(StatusCode::OK).content_type("text/html; charset=utf-8").body(body)
}

async fn decide(inner: &Inner, shop: &str, number: u64, signature: &str, approved: bool) -> Response {
    let sub = match find_pending(inner, shop, number, signature) {
        Ok(sub) => sub,
        Err(refused) => return refused.into_response(),
    };
    let now = now_ms();
    let (changed, url) = {
        let mut state = inner.billing.state.lock();
        let mut changed = Vec::new();
        if approved {
            // One recurring subscription per app and shop: the new one replaces the old.
            for other in state.subs.iter_mut().filter(|s| s.shop == shop && s.status == "ACTIVE") {
                other.status = "CANCELLED".into();
                other.updated_at_ms = now;
                other.current_period_end_ms = None;
                changed.push(other.clone());
            }
        }
        if let Some(s) = state.subs.iter_mut().find(|s| s.number == sub.number) {
            s.status = if approved { "ACTIVE" } else { "DECLINED" }.into();
            s.updated_at_ms = now;
            if approved {
                s.current_period_end_ms = Some(now + (30 + s.trial_days) * 86_400_000);
            }
            changed.insert(0, s.clone());
        }
        (changed, state.webhook_url.clone())
    };
    if let Some(url) = url {
        for s in &changed {
            let _ = send_webhook(&inner.app.client_secret, &url, s).await;
        }
    }
    let sep = if sub.return_url.contains('?') { '&' } else { '?' };
    let location = format!("{}{sep}charge_id={}", sub.return_url, sub.number);
    Response::builder().status(StatusCode::FOUND).header("location", location).finish()
}

/// `POST …/approve`: the merchant approves.
#[handler]
pub(crate) async fn approve(
    Path((shop, number)): Path<(String, u64)>,
    Query(q): Query<Signed>,
    Data(inner): Data<&Arc<Inner>>,
) -> Response {
    decide(inner, &shop, number, &q.signature, true).await
}

/// `POST …/decline`: the merchant declines.
#[handler]
pub(crate) async fn decline(
    Path((shop, number)): Path<(String, u64)>,
    Query(q): Query<Signed>,
    Data(inner): Data<&Arc<Inner>>,
) -> Response {
    decide(inner, &shop, number, &q.signature, false).await
}

impl FakeShopify {
    /// Where `app_subscriptions/update` webhooks go (the app's webhook URL for that topic).
    pub fn set_billing_webhook_url(&self, url: &str) {
        self.inner.billing.state.lock().webhook_url = Some(url.to_owned());
    }

    /// Every subscription of a shop, oldest first.
    pub fn subscriptions(&self, shop: &str) -> Vec<FakeSubscription> {
        self.inner.billing.state.lock().subs.iter().filter(|s| s.shop == shop).cloned().collect()
    }

    /// Shopify changes a subscription (FROZEN for non-payment, EXPIRED, CANCELLED by support,
    /// ACTIVE again after payment) and sends the webhook. Returns the changed subscription.
    pub async fn set_subscription_status(&self, shop: &str, number: u64, status: &str) -> Option<FakeSubscription> {
        let (sub, url) = {
            let mut state = self.inner.billing.state.lock();
            let url = state.webhook_url.clone();
            let s = state.subs.iter_mut().find(|s| s.shop == shop && s.number == number)?;
            s.status = status.to_owned();
            s.updated_at_ms = now_ms().max(s.updated_at_ms + 1);
            (s.clone(), url)
        };
        if let Some(url) = url {
            let _ = send_webhook(&self.inner.app.client_secret, &url, &sub).await;
        }
        Some(sub)
    }
}
