//! The billing provider callbacks, outside the OpenAPI document: Shopify's return URL (which
//! re-queries Shopify and trusts none of its query parameters) and the Stripe webhook.

use std::sync::Arc;

use poem::web::Data;

use crate::billing::{self, BillingError};
use crate::domain::UnixMillis;
use crate::shopify::shop_domain::ShopDomain;
use crate::startup::AppState;
use crate::storage as store;

/// Path of the Shopify billing return URL (`returnUrl` of `appSubscriptionCreate`).
pub const SHOPIFY_RETURN_PATH: &str = "/billing/shopify/return";
/// Path of the Stripe webhook endpoint.
pub const STRIPE_WEBHOOK_PATH: &str = "/webhooks/stripe";

/// `GET /billing/shopify/return?shop=…&charge_id=…`: where Shopify sends the merchant after the
/// confirmation page. Nothing in the query is trusted: the shop only selects which installed
/// shop to re-query, and the state comes from `currentAppInstallation.activeSubscriptions`.
/// Then back to the app in Shopify admin.
#[poem::handler]
pub async fn shopify_return(
    poem::web::Query(query): poem::web::Query<std::collections::HashMap<String, String>>,
    Data(state): Data<&Arc<AppState>>,
) -> poem::Response {
    use poem::http::StatusCode;
    let json = |status: StatusCode, error: &str, message: &str| {
        poem::Response::builder()
            .status(status)
            .content_type("application/json")
            .body(serde_json::json!({ "error": error, "message": message }).to_string())
    };
    let Some(shopify) = state.shopify.as_ref() else { return super::shopify::not_configured() };
    let Some(shop) = query.get("shop").and_then(|s| ShopDomain::parse(s)) else {
        return json(StatusCode::BAD_REQUEST, "invalid_shop", "`shop` must be a *.myshopify.com domain");
    };
    let found = match store::shops::find(&state.db, &shop).await {
        Ok(Some(found)) if found.active => found,
        Ok(_) => return json(StatusCode::NOT_FOUND, "not_installed", "the shop has not installed the app"),
        Err(error) => {
            tracing::error!(error = %error, "shop lookup failed");
            return json(StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable", "retry shortly");
        }
    };
    match billing::shopify::sync(shopify, &state.db, &state.settings.billing, &shop, found.scope()).await {
        Ok(ent) => {
            tracing::info!(shop = %shop, plan = %ent.plan, "billing return: state re-read from Shopify");
            let handle = shop.as_str().trim_end_matches(".myshopify.com");
            let admin = format!("https://admin.shopify.com/store/{handle}/apps/{}", shopify.config.api_key);
            poem::Response::builder().status(StatusCode::SEE_OTHER).header("location", admin).finish()
        }
        Err(BillingError::Storage(error)) => {
            tracing::error!(error = %error, "billing return: storage failed");
            json(StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable", "retry shortly")
        }
        Err(error) => {
            tracing::warn!(shop = %shop, error = %error, "billing return: Shopify re-query failed");
            json(
                StatusCode::BAD_GATEWAY,
                "provider_error",
                "could not read the subscription from Shopify; reload the app",
            )
        }
    }
}

/// Largest Stripe event accepted (Stripe's are a few KiB).
const MAX_STRIPE_EVENT_BYTES: usize = 256 * 1024;

/// `POST /webhooks/stripe`: verify `Stripe-Signature` (400 if missing, stale or wrong; nothing
/// changes), apply the event, 200. A storage failure answers 500 so Stripe retries.
#[poem::handler]
pub async fn stripe_webhook(
    req: &poem::Request,
    body: poem::Body,
    Data(state): Data<&Arc<AppState>>,
) -> poem::Response {
    use poem::http::StatusCode;
    let json = |status: StatusCode, error: &str, message: &str| {
        poem::Response::builder()
            .status(status)
            .content_type("application/json")
            .body(serde_json::json!({ "error": error, "message": message }).to_string())
    };
    let billing_settings = &state.settings.billing;
    let bytes = match body.into_bytes_limit(MAX_STRIPE_EVENT_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => return json(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the event body is too large"),
    };
    let secrets: Vec<&crate::settings::Secret> =
        [billing_settings.stripe_webhook_secret.as_ref(), billing_settings.stripe_webhook_secret_previous.as_ref()]
            .into_iter()
            .flatten()
            .collect();
    let header = req.headers().get("stripe-signature").and_then(|v| v.to_str().ok());
    let now = UnixMillis::now().0 / 1000;
    if let Err(e) =
        billing::stripe::verify_signature(header, &bytes, &secrets, billing_settings.stripe_webhook_tolerance_secs, now)
    {
        tracing::warn!(reason = %e, "Stripe webhook refused");
        let status = match e {
            billing::stripe::SignatureError::NotConfigured => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        return json(status, "invalid_signature", &e.to_string());
    }
    let event: billing::stripe::Event = match serde_json::from_slice(&bytes) {
        Ok(event) => event,
        Err(e) => return json(StatusCode::BAD_REQUEST, "invalid_event", &format!("not a Stripe event: {e}")),
    };
    match billing::stripe::apply_event(&state.db, billing_settings, &event).await {
        Ok(outcome) => json(StatusCode::OK, "ok", &format!("{outcome:?}").to_lowercase()),
        Err(e) => {
            tracing::error!(error = %e, event.id = %event.id, "Stripe event not applied; Stripe will retry");
            json(StatusCode::INTERNAL_SERVER_ERROR, "not_applied", "retry later")
        }
    }
}
