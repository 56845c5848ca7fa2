//! A fake Stripe at the HTTP level, strict where Stripe is: form-encoded requests with bracket
//! keys (`line_items[0][price]`), `Authorization: Bearer sk_…` (401 with Stripe's error body
//! otherwise), Stripe's JSON object shapes and `invalid_request_error`s, and webhooks signed
//! exactly like Stripe's (`Stripe-Signature: t=…,v1=HMAC-SHA256(secret, "t.payload")`).
//!
//! Implemented: `POST /v1/checkout/sessions`, `GET /v1/checkout/sessions/:id`,
//! `POST /v1/billing_portal/sessions`, `DELETE /v1/subscriptions/:id`; test controls complete a checkout (creating the
//! customer and subscription and sending `checkout.session.completed` and
//! `customer.subscription.created`), change a subscription's status
//! (`customer.subscription.updated|deleted`) and fail an invoice (`invoice.payment_failed`).

// Stripe objects are wide; `json!` needs more macro recursion for them.
#![recursion_limit = "256"]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use parking_lot::Mutex;
use poem::http::StatusCode;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::{Data, Path};
use poem::{EndpointExt, Request, Response, Route, get, handler, post};
use rand::Rng;
use sha2::Sha256;

/// One checkout session as the fake holds it.
#[derive(Clone, Debug)]
pub struct Session {
    pub id: String,
    pub price: String,
    pub client_reference_id: Option<String>,
    pub customer: Option<String>,
    pub metadata: HashMap<String, String>,
    pub subscription_metadata: HashMap<String, String>,
    pub trial_period_days: Option<u32>,
    pub success_url: String,
    pub status: String,
    pub subscription: Option<String>,
}

/// One subscription.
#[derive(Clone, Debug)]
pub struct Subscription {
    pub id: String,
    pub customer: String,
    pub price: String,
    pub status: String,
    pub metadata: HashMap<String, String>,
    pub trial_end: Option<i64>,
}

#[derive(Default)]
struct State {
    sessions: HashMap<String, Session>,
    subscriptions: HashMap<String, Subscription>,
    /// Requests refused for bad credentials.
    unauthorized: u32,
    webhook_url: Option<String>,
}

struct Inner {
    secret_key: String,
    webhook_secret: String,
    prices: Vec<String>,
    state: Mutex<State>,
}

/// A running fake Stripe.
#[derive(Clone)]
pub struct FakeStripe {
    inner: Arc<Inner>,
    pub base_url: String,
    http: reqwest::Client,
}

fn random_id(prefix: &str) -> String {
    let mut buf = [0u8; 12];
    rand::rng().fill(&mut buf[..]);
    format!("{prefix}_{}", hex::encode(buf))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// `Stripe-Signature` for `payload` at time `t` with `secret`.
pub fn signature_header(secret: &str, t: i64, payload: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(payload);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn stripe_error(status: StatusCode, kind: &str, message: &str, param: Option<&str>, code: Option<&str>) -> Response {
    Response::builder().status(status).content_type("application/json").body(
        serde_json::json!({ "error": { "type": kind, "message": message, "param": param, "code": code,
            "doc_url": code.map(|c| format!("https://stripe.com/docs/error-codes/{c}")) } })
        .to_string(),
    )
}

fn ok(body: serde_json::Value) -> Response {
    Response::builder().status(StatusCode::OK).content_type("application/json").body(body.to_string())
}

impl FakeStripe {
    /// Starts the fake; `prices` are the Price ids that exist.
    pub async fn start(secret_key: &str, webhook_secret: &str, prices: &[&str]) -> anyhow::Result<FakeStripe> {
        let inner = Arc::new(Inner {
            secret_key: secret_key.into(),
            webhook_secret: webhook_secret.into(),
            prices: prices.iter().map(|p| p.to_string()).collect(),
            state: Mutex::new(State::default()),
        });
        let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await?;
        let local = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .ok_or_else(|| anyhow::anyhow!("no local address"))?;
        let routes = Route::new()
            .at("/v1/checkout/sessions", post(create_session))
            .at("/v1/checkout/sessions/:id", get(get_session))
            .at("/v1/billing_portal/sessions", post(create_portal_session))
            .at("/v1/subscriptions/:id", poem::delete(cancel_subscription))
            .data(inner.clone());
        tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(routes).await;
        });
        Ok(FakeStripe {
            inner,
            base_url: format!("http://{local}"),
            http: reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?,
        })
    }

    /// Where webhooks go (the app's Stripe webhook endpoint).
    pub fn set_webhook_url(&self, url: &str) {
        self.inner.state.lock().webhook_url = Some(url.to_owned());
    }

    pub fn session(&self, id: &str) -> Option<Session> {
        self.inner.state.lock().sessions.get(id).cloned()
    }

    /// The checkout session whose URL is `url`.
    pub fn session_by_url(&self, url: &str) -> Option<Session> {
        let id = url.rsplit('/').next()?.split('#').next()?.to_owned();
        self.session(&id)
    }

    pub fn subscription(&self, id: &str) -> Option<Subscription> {
        self.inner.state.lock().subscriptions.get(id).cloned()
    }

    pub fn unauthorized_requests(&self) -> u32 {
        self.inner.state.lock().unauthorized
    }

    /// The customer pays: the session completes, a customer and a subscription exist, and
    /// `checkout.session.completed` then `customer.subscription.created` are delivered. Returns
    /// the subscription id and the two webhook responses' statuses.
    pub async fn complete_checkout(&self, session_id: &str) -> anyhow::Result<(String, Vec<u16>)> {
        let (session, sub) = {
            let mut state = self.inner.state.lock();
            let session = state.sessions.get_mut(session_id).ok_or_else(|| anyhow::anyhow!("no such session"))?;
            let customer = session.customer.clone().unwrap_or_else(|| random_id("cus"));
            let sub = Subscription {
                id: random_id("sub"),
                customer: customer.clone(),
                price: session.price.clone(),
                status: if session.trial_period_days.is_some() { "trialing" } else { "active" }.into(),
                metadata: session.subscription_metadata.clone(),
                trial_end: session.trial_period_days.map(|d| unix_now() + i64::from(d) * 86_400),
            };
            session.status = "complete".into();
            session.customer = Some(customer);
            session.subscription = Some(sub.id.clone());
            let session = session.clone();
            state.subscriptions.insert(sub.id.clone(), sub.clone());
            (session, sub)
        };
        let mut statuses = Vec::new();
        let completed = event("checkout.session.completed", session_json(&session, "complete"));
        statuses.push(self.deliver_event(&completed).await?);
        let created = event("customer.subscription.created", subscription_json(&sub));
        statuses.push(self.deliver_event(&created).await?);
        Ok((sub.id, statuses))
    }

    /// Stripe changes a subscription's status (`past_due`, `canceled`, `active` …) and sends
    /// `customer.subscription.updated` (or `.deleted` for `canceled`). Returns the response status.
    pub async fn set_subscription_status(&self, id: &str, status: &str) -> anyhow::Result<u16> {
        let sub = {
            let mut state = self.inner.state.lock();
            let sub = state.subscriptions.get_mut(id).ok_or_else(|| anyhow::anyhow!("no such subscription"))?;
            sub.status = status.to_owned();
            sub.clone()
        };
        let kind = if status == "canceled" { "customer.subscription.deleted" } else { "customer.subscription.updated" };
        self.deliver_event(&event(kind, subscription_json(&sub))).await
    }

    /// An invoice of the subscription failed to be paid: `invoice.payment_failed`.
    pub async fn fail_invoice(&self, id: &str) -> anyhow::Result<u16> {
        let sub = self.subscription(id).ok_or_else(|| anyhow::anyhow!("no such subscription"))?;
        let invoice = serde_json::json!({
            "id": random_id("in"), "object": "invoice", "customer": sub.customer, "status": "open",
            "attempted": true, "attempt_count": 1, "billing_reason": "subscription_cycle", "livemode": false,
            "parent": { "type": "subscription_details", "quote_details": null,
                "subscription_details": { "metadata": sub.metadata, "subscription": sub.id } },
        });
        self.deliver_event(&event("invoice.payment_failed", invoice)).await
    }

    /// A subscription event as Stripe would send it, not delivered (for ordering tests).
    pub fn subscription_event(&self, id: &str, kind: &str, status: &str, created: i64) -> Option<String> {
        let mut sub = self.subscription(id)?;
        sub.status = status.to_owned();
        let mut e = event(kind, subscription_json(&sub));
        e["created"] = created.into();
        Some(e.to_string())
    }

    /// Signs and delivers an event body now with the endpoint secret.
    pub async fn deliver_event(&self, event: &serde_json::Value) -> anyhow::Result<u16> {
        let body = event.to_string();
        let header = signature_header(&self.inner.webhook_secret, unix_now(), body.as_bytes());
        self.deliver_raw(&body, &header).await
    }

    /// Delivers `body` with a given `Stripe-Signature` header (bad or stale signatures in tests).
    pub async fn deliver_raw(&self, body: &str, signature: &str) -> anyhow::Result<u16> {
        let url = self.inner.state.lock().webhook_url.clone().ok_or_else(|| anyhow::anyhow!("no webhook url"))?;
        let resp = self
            .http
            .post(url)
            .header("content-type", "application/json; charset=utf-8")
            .header("user-agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
            .header("stripe-signature", signature)
            .body(body.to_owned())
            .send()
            .await?;
        Ok(resp.status().as_u16())
    }

    /// The endpoint secret (to sign by hand in tests).
    pub fn webhook_secret(&self) -> &str {
        &self.inner.webhook_secret
    }
}

fn event(kind: &str, object: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "id": random_id("evt"), "object": "event", "api_version": "2025-09-30.clover", "created": unix_now(),
        "data": { "object": object }, "livemode": false, "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null }, "type": kind,
    })
}

fn session_json(s: &Session, status: &str) -> serde_json::Value {
    let now = unix_now();
    serde_json::json!({
        "id": s.id, "object": "checkout.session", "after_expiration": null, "allow_promotion_codes": null,
        "amount_subtotal": null, "amount_total": null,
        "automatic_tax": { "enabled": false, "liability": null, "provider": null, "status": null },
        "billing_address_collection": null, "cancel_url": null, "client_reference_id": s.client_reference_id,
        "consent": null, "consent_collection": null, "created": now, "currency": null, "custom_fields": [],
        "custom_text": { "after_submit": null, "shipping_address": null, "submit": null, "terms_of_service_acceptance": null },
        "customer": s.customer, "customer_creation": "always", "customer_details": null, "customer_email": null,
        "expires_at": now + 86_400, "invoice": null, "livemode": false, "locale": null, "metadata": s.metadata,
        "mode": "subscription", "payment_intent": null, "payment_link": null, "payment_method_collection": "always",
        "payment_method_types": ["card"], "payment_status": if status == "complete" { "paid" } else { "unpaid" },
        "phone_number_collection": { "enabled": false }, "recovered_from": null, "setup_intent": null,
        "shipping_address_collection": null, "shipping_cost": null, "shipping_options": [],
        "status": status, "submit_type": null, "subscription": s.subscription, "success_url": s.success_url,
        "total_details": null, "ui_mode": "hosted",
        "url": if status == "open" { serde_json::Value::from(format!("https://checkout.stripe.com/c/pay/{}", s.id)) } else { serde_json::Value::Null },
    })
}

fn price_json(price: &str, now: i64) -> serde_json::Value {
    serde_json::json!({
        "id": price, "object": "price", "active": true, "billing_scheme": "per_unit", "created": now,
        "currency": "usd", "livemode": false, "lookup_key": null, "metadata": {}, "nickname": null,
        "product": "prod_ghosttrack", "tax_behavior": "unspecified", "type": "recurring", "unit_amount": 1900,
        "recurring": { "interval": "month", "interval_count": 1, "meter": null, "trial_period_days": null, "usage_type": "licensed" },
    })
}

fn plan_json(price: &str, now: i64) -> serde_json::Value {
    serde_json::json!({
        "id": price, "object": "plan", "active": true, "amount": 1900, "billing_scheme": "per_unit", "created": now,
        "currency": "usd", "interval": "month", "interval_count": 1, "livemode": false, "metadata": {},
        "nickname": null, "product": "prod_ghosttrack", "usage_type": "licensed",
    })
}

fn subscription_json(s: &Subscription) -> serde_json::Value {
    let now = unix_now();
    let item = serde_json::json!({
        "id": format!("si_{}", &s.id[4..]), "object": "subscription_item", "created": now, "quantity": 1,
        "current_period_start": now, "current_period_end": now + 30 * 86_400, "discounts": [], "metadata": {},
        "plan": plan_json(&s.price, now), "price": price_json(&s.price, now), "subscription": s.id, "tax_rates": [],
    });
    serde_json::json!({
        "id": s.id, "object": "subscription", "customer": s.customer, "status": s.status, "livemode": false,
        "metadata": s.metadata, "cancel_at_period_end": false, "created": now, "start_date": now, "currency": "usd",
        "collection_method": "charge_automatically", "trial_end": s.trial_end, "billing_cycle_anchor": now,
        "automatic_tax": { "enabled": false, "disabled_reason": null, "liability": null },
        "billing_mode": { "type": "classic", "flexible": null }, "billing_schedules": [], "discounts": [],
        "invoice_settings": { "account_tax_ids": null, "issuer": { "type": "self" } },
        "canceled_at": if s.status == "canceled" { serde_json::Value::from(now) } else { serde_json::Value::Null },
        "items": { "object": "list", "has_more": false, "url": format!("/v1/subscription_items?subscription={}", s.id),
            "data": [item] },
    })
}

/// Form body → map of bracket keys (`line_items[0][price]` → value).
fn form(bytes: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(bytes).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// `Authorization: Bearer sk_…` as the Stripe client sends it; otherwise Stripe's 401 body.
fn unauthorized(req: &Request, inner: &Inner) -> Option<Response> {
    let header = req.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    let presented = header.strip_prefix("Bearer ").map(str::to_owned);
    if presented.as_deref() == Some(inner.secret_key.as_str()) {
        return None;
    }
    inner.state.lock().unauthorized += 1;
    let masked = presented.map(|k| format!("{}****{}", &k[..k.len().min(8)], &k[k.len().saturating_sub(4)..]));
    let message = match masked {
        Some(m) => format!("Invalid API Key provided: {m}"),
        None => "You did not provide an API key.".into(),
    };
    Some(stripe_error(StatusCode::UNAUTHORIZED, "invalid_request_error", &message, None, None))
}

fn prefixed(params: &HashMap<String, String>, prefix: &str) -> HashMap<String, String> {
    params
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(prefix).and_then(|r| r.strip_suffix(']')).map(|key| (key.to_owned(), v.clone()))
        })
        .collect()
}

/// `POST /v1/checkout/sessions`.
#[handler]
async fn create_session(req: &Request, body: poem::Body, Data(inner): Data<&Arc<Inner>>) -> Response {
    if let Some(resp) = unauthorized(req, inner) {
        return resp;
    }
    let is_form = req.content_type().is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "Invalid request: body must be form-encoded",
            None,
            None,
        );
    }
    let p = form(&body.into_vec().await.unwrap_or_default());
    let invalid = |message: &str, param: &str| {
        stripe_error(StatusCode::BAD_REQUEST, "invalid_request_error", message, Some(param), Some("parameter_missing"))
    };
    if p.get("mode").map(String::as_str) != Some("subscription") {
        return invalid("This fake only creates sessions in `subscription` mode.", "mode");
    }
    let Some(success_url) = p.get("success_url").cloned() else {
        return invalid("Missing required param: success_url.", "success_url");
    };
    let Some(price) = p.get("line_items[0][price]").cloned() else {
        return invalid("Missing required param: line_items[0][price].", "line_items[0][price]");
    };
    if !inner.prices.contains(&price) {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            &format!("No such price: '{price}'"),
            Some("line_items[0][price]"),
            Some("resource_missing"),
        );
    }
    let session = Session {
        id: random_id("cs_test"),
        price,
        client_reference_id: p.get("client_reference_id").cloned(),
        customer: p.get("customer").cloned(),
        metadata: prefixed(&p, "metadata["),
        subscription_metadata: prefixed(&p, "subscription_data[metadata]["),
        trial_period_days: p.get("subscription_data[trial_period_days]").and_then(|d| d.parse().ok()),
        success_url,
        status: "open".into(),
        subscription: None,
    };
    let body = session_json(&session, "open");
    inner.state.lock().sessions.insert(session.id.clone(), session);
    ok(body)
}

/// `GET /v1/checkout/sessions/:id`.
#[handler]
async fn get_session(req: &Request, Path(id): Path<String>, Data(inner): Data<&Arc<Inner>>) -> Response {
    if let Some(resp) = unauthorized(req, inner) {
        return resp;
    }
    let found = inner.state.lock().sessions.get(&id).cloned();
    match found {
        Some(s) => {
            let status = s.status.clone();
            ok(session_json(&s, &status))
        }
        None => stripe_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            &format!("No such checkout.session: '{id}'"),
            Some("id"),
            Some("resource_missing"),
        ),
    }
}

/// `POST /v1/billing_portal/sessions`.
#[handler]
async fn create_portal_session(req: &Request, body: poem::Body, Data(inner): Data<&Arc<Inner>>) -> Response {
    if let Some(resp) = unauthorized(req, inner) {
        return resp;
    }
    let p = form(&body.into_vec().await.unwrap_or_default());
    let Some(customer) = p.get("customer").cloned() else {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "Missing required param: customer.",
            Some("customer"),
            Some("parameter_missing"),
        );
    };
    let known = inner.state.lock().subscriptions.values().any(|s| s.customer == customer);
    if !known {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            &format!("No such customer: '{customer}'"),
            Some("customer"),
            Some("resource_missing"),
        );
    }
    let id = random_id("bps");
    ok(serde_json::json!({
        "id": id, "object": "billing_portal.session", "configuration": random_id("bpc"), "created": unix_now(),
        "customer": customer, "flow": null, "livemode": false, "locale": null, "on_behalf_of": null,
        "return_url": p.get("return_url"), "url": format!("https://billing.stripe.com/p/session/test_{id}"),
    }))
}

/// `DELETE /v1/subscriptions/:id`: cancels now, answers the subscription, sends
/// `customer.subscription.deleted`.
#[handler]
async fn cancel_subscription(req: &Request, Path(id): Path<String>, Data(inner): Data<&Arc<Inner>>) -> Response {
    if let Some(resp) = unauthorized(req, inner) {
        return resp;
    }
    let (sub, url) = {
        let mut state = inner.state.lock();
        let url = state.webhook_url.clone();
        match state.subscriptions.get_mut(&id) {
            Some(sub) if sub.status != "canceled" => {
                sub.status = "canceled".into();
                (sub.clone(), url)
            }
            Some(_) => {
                return stripe_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    "A canceled subscription can only update its cancellation_details and metadata.",
                    None,
                    None,
                );
            }
            None => {
                return stripe_error(
                    StatusCode::NOT_FOUND,
                    "invalid_request_error",
                    &format!("No such subscription: '{id}'"),
                    Some("id"),
                    Some("resource_missing"),
                );
            }
        }
    };
    if let Some(url) = url {
        let body = event("customer.subscription.deleted", subscription_json(&sub)).to_string();
        let header = signature_header(&inner.webhook_secret, unix_now(), body.as_bytes());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let _ = client
                .post(url)
                .header("content-type", "application/json")
                .header("stripe-signature", header)
                .body(body)
                .send()
                .await;
        });
    }
    ok(subscription_json(&sub))
}
