//! Shopify endpoints: webhook and compliance receivers (more to come: embedded app load, app
//! proxy). Thin: read the request, call `shopify::*`, map the outcome to Shopify's statuses.

use std::sync::Arc;

use poem::error::ReadBodyError;
use poem::http::{StatusCode, header};
use poem::web::Data;
use poem::{Body, Request, Response, handler};

use crate::shopify::auth_code;
use crate::shopify::embedded::{self, AppLoad};
use crate::shopify::frame_ancestors;
use crate::shopify::inbox_writer::StoreError;
use crate::shopify::oauth::OAuthError;
use crate::shopify::shop_domain::ShopDomain;
use crate::shopify::shop_domain::decode_host;
use crate::shopify::signing;
use crate::shopify::tokens::TokenError;
use crate::shopify::webhooks::{self, MAX_WEBHOOK_BODY_BYTES, ReceiveError};
use crate::startup::AppState;

fn json(status: StatusCode, error: &str, message: &str) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(serde_json::json!({ "error": error, "message": message }).to_string())
}

/// 503 for every Shopify route on a server without Shopify credentials.
pub fn not_configured() -> Response {
    json(
        StatusCode::SERVICE_UNAVAILABLE,
        "shopify_not_configured",
        "this server has no Shopify app credentials (set GHOSTTRACK_SHOPIFY_API_KEY and GHOSTTRACK_SHOPIFY_API_SECRET)",
    )
}

/// `POST /webhooks/shopify` and `POST /webhooks/compliance`: verify, store in the inbox, 200.
#[handler]
pub async fn webhook(req: &Request, body: Body, Data(state): Data<&Arc<AppState>>) -> Response {
    let Some(shopify) = state.shopify.as_ref() else { return not_configured() };
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    let bytes = match declared {
        Some(n) if n > MAX_WEBHOOK_BODY_BYTES => Err(ReadBodyError::PayloadTooLarge),
        _ => body.into_bytes_limit(MAX_WEBHOOK_BODY_BYTES).await,
    };
    let bytes = match bytes {
        Ok(bytes) if !bytes.is_empty() => bytes,
        Ok(_) => return json(StatusCode::BAD_REQUEST, "missing_body", "the webhook body is empty"),
        Err(ReadBodyError::PayloadTooLarge) => {
            let message = format!("webhook bodies are limited to {MAX_WEBHOOK_BODY_BYTES} bytes");
            return json(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", &message);
        }
        Err(_) => return json(StatusCode::BAD_REQUEST, "unreadable_body", "could not read the request body"),
    };
    let delivery = match webhooks::verify_delivery(&shopify.config.secrets, req.headers(), &bytes) {
        Ok(delivery) => delivery,
        Err(err @ ReceiveError::Unauthorized(_)) => {
            tracing::info!(error = %err, "webhook rejected");
            return json(StatusCode::UNAUTHORIZED, "invalid_hmac", "the webhook HMAC is missing or wrong");
        }
        Err(err) => return json(StatusCode::BAD_REQUEST, "invalid_webhook", &err.to_string()),
    };
    let (topic, shop) = (delivery.topic.clone(), delivery.shop_domain.clone());
    match state.inbox_writer.store(delivery).await {
        Ok(new) => {
            tracing::debug!(webhook.topic = %topic, shop = %shop, duplicate = !new, "webhook stored");
            Response::builder().status(StatusCode::OK).finish()
        }
        // Shopify retries non-2xx deliveries: nothing is lost.
        Err(StoreError::Full) => {
            let mut resp = json(StatusCode::SERVICE_UNAVAILABLE, "busy", "too many webhooks in flight; retry");
            resp.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            resp
        }
        Err(error) => {
            tracing::error!(error = %error, "could not store a webhook");
            json(StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable", "could not store the webhook; retry")
        }
    }
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// An HTML response with the per-shop `frame-ancestors` CSP every HTML route must carry.
fn html(status: StatusCode, shop: Option<&ShopDomain>, body: String) -> Response {
    Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        .header("content-security-policy", frame_ancestors(shop))
        .body(body)
}

fn html_message(status: StatusCode, shop: Option<&ShopDomain>, message: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>GhostTrack</title></head>\
         <body><p>{}</p></body></html>",
        embedded::html_escape(message)
    );
    html(status, shop, body)
}

/// The panel's `index.html` with `head` first in `<head>`, never cached (its asset names change
/// with every build); a clear 503 when the panel was not built.
fn panel_page(state: &AppState, shop: Option<&ShopDomain>, head: &str) -> Response {
    match state.panel.index_html(head) {
        Some(page) => {
            let mut resp = html(StatusCode::OK, shop, page);
            // The fake Shopify's admin page frames the app from its own origin.
            let test_admin = state.shopify.as_ref().and_then(|s| s.config.test_admin_origin());
            let mut csp = match (shop, test_admin) {
                (Some(shop), Some(origin)) => frame_ancestors(Some(shop)).replace(';', &format!(" {origin};")),
                _ => frame_ancestors(shop),
            };
            // App Bridge is in the page only inside Shopify admin (`head` non-empty).
            let app_bridge = (!head.is_empty()).then_some(state.settings.panel.app_bridge_url.as_str());
            csp.push(' ');
            csp.push_str(&state.panel.script_src(app_bridge));
            if let Ok(v) = poem::http::HeaderValue::from_str(&csp) {
                resp.headers_mut().insert("content-security-policy", v);
            }
            resp.headers_mut().insert(header::CACHE_CONTROL, poem::http::HeaderValue::from_static("no-cache"));
            resp
        }
        None => html_message(StatusCode::SERVICE_UNAVAILABLE, shop, &state.panel.missing_message()),
    }
}

/// Whether a load of the app home carries anything Shopify sends (else it is a standalone visit).
fn from_shopify(query: &str) -> bool {
    url::form_urlencoded::parse(query.as_bytes())
        .any(|(k, _)| matches!(k.as_ref(), "shop" | "host" | "hmac" | "id_token" | "embedded" | "session"))
}

/// `GET /app` and `/app/*`: the admin panel. Inside Shopify admin (`application_url`) the
/// app-load decision runs first and the panel gets the API key meta and App Bridge; a visit
/// without Shopify's parameters, or a server without Shopify, gets the standalone panel (login).
#[handler]
pub async fn app_home(req: &Request, Data(state): Data<&Arc<AppState>>) -> Response {
    let query = req.uri().query().unwrap_or("");
    let Some(shopify) = state.shopify.as_ref().filter(|_| from_shopify(query)) else {
        return panel_page(state, None, "");
    };
    let config = &shopify.config;
    match embedded::app_load(config, req.uri().path(), query, now_secs()) {
        AppLoad::Render { token, id_token } => match shopify.tokens.ensure_installed(&token.shop, &id_token).await {
            Ok(shop) => {
                let head = crate::panel::assets::embedded_head(&config.api_key, &state.settings.panel.app_bridge_url);
                let domain = shop.domain.clone();
                crate::shopify::setup::spawn_if_due(shopify.clone(), state.db.clone(), shop);
                panel_page(state, Some(&domain), &head)
            }
            Err(TokenError::OAuth(OAuthError::InvalidSubjectToken)) => {
                let query = req.uri().query().unwrap_or("");
                let stripped: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
                    .filter(|(k, _)| k != "id_token")
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                let q = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&stripped).finish();
                match embedded::app_load(config, req.uri().path(), &q, now_secs()) {
                    AppLoad::Redirect { location, shop } => redirect(&location, shop.as_ref()),
                    _ => html_message(StatusCode::UNAUTHORIZED, Some(&token.shop), "Please reopen GhostTrack."),
                }
            }
            Err(error) => {
                tracing::error!(shop = %token.shop, error = %error, "could not install the shop");
                html_message(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Some(&token.shop),
                    "GhostTrack could not finish connecting to your store. Please try again in a minute.",
                )
            }
        },
        AppLoad::Redirect { location, shop } => redirect(&location, shop.as_ref()),
        AppLoad::Unauthorized(message) => html_message(StatusCode::UNAUTHORIZED, None, &message),
        AppLoad::BadRequest(message) => html_message(StatusCode::BAD_REQUEST, None, &message),
    }
}

fn redirect(location: &str, shop: Option<&ShopDomain>) -> Response {
    Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, location)
        .header("content-security-policy", frame_ancestors(shop))
        .content_type("text/html; charset=utf-8")
        .body(String::new())
}

/// `GET /auth/session-token`: the bounce page.
#[handler]
pub async fn bounce(req: &Request, Data(state): Data<&Arc<AppState>>) -> Response {
    let Some(shopify) = state.shopify.as_ref() else {
        return html_message(StatusCode::SERVICE_UNAVAILABLE, None, "Shopify is not configured on this server.");
    };
    let shop = url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "shop")
        .and_then(|(_, v)| ShopDomain::parse(&v));
    html(
        StatusCode::OK,
        shop.as_ref(),
        embedded::bounce_page(&shopify.config.api_key, &state.settings.panel.app_bridge_url),
    )
}

/// `GET /auth?shop=…`: starts the authorization-code grant (standalone / development installs).
#[handler]
pub async fn auth_begin(req: &Request, Data(state): Data<&Arc<AppState>>) -> Response {
    let Some(shopify) = state.shopify.as_ref() else {
        return html_message(StatusCode::SERVICE_UNAVAILABLE, None, "Shopify is not configured on this server.");
    };
    let shop = url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "shop")
        .and_then(|(_, v)| ShopDomain::parse(&v));
    let Some(shop) = shop else {
        return html_message(StatusCode::BAD_REQUEST, None, "`shop` must be a {name}.myshopify.com domain.");
    };
    match auth_code::begin(&shopify.config, &shop) {
        Ok(begin) => {
            let mut resp = redirect(&begin.location, Some(&shop));
            if let Ok(v) = poem::http::HeaderValue::from_str(&begin.set_cookie) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
        Err(error) => html_message(StatusCode::SERVICE_UNAVAILABLE, Some(&shop), &error.to_string()),
    }
}

/// `GET /auth/callback`: verifies the HMAC, the state cookie and the shop, exchanges the
/// single-use code, stores the tokens and sends the merchant to the app inside the admin.
#[handler]
pub async fn auth_callback(req: &Request, Data(state): Data<&Arc<AppState>>) -> Response {
    let Some(shopify) = state.shopify.as_ref() else {
        return html_message(StatusCode::SERVICE_UNAVAILABLE, None, "Shopify is not configured on this server.");
    };
    let config = &shopify.config;
    let query = req.uri().query().unwrap_or("");
    let signed = match signing::verify_admin_query(&config.secrets, query, now_secs()) {
        Ok(signed) => signed,
        Err(error) => {
            tracing::info!(error = %error, "OAuth callback rejected");
            return html_message(StatusCode::UNAUTHORIZED, None, "The request signature is invalid.");
        }
    };
    let Some(shop) = signed.get("shop").and_then(ShopDomain::parse) else {
        return html_message(StatusCode::BAD_REQUEST, None, "`shop` must be a {name}.myshopify.com domain.");
    };
    let cookie = req.headers().get(header::COOKIE).and_then(|v| v.to_str().ok());
    if !auth_code::state_matches(config, cookie, signed.get("state").unwrap_or_default()) {
        return html_message(StatusCode::UNAUTHORIZED, Some(&shop), "The sign-in expired; please start again.");
    }
    let Some(code) = signed.get("code") else {
        return html_message(StatusCode::BAD_REQUEST, Some(&shop), "The callback has no code.");
    };
    let tokens = match auth_code::exchange(shopify.tokens.http(), config, &shop, code).await {
        Ok(tokens) => tokens,
        Err(error) => {
            tracing::info!(shop = %shop, error = %error, "code exchange failed");
            return html_message(
                StatusCode::BAD_REQUEST,
                Some(&shop),
                "Shopify refused the authorization; please start again.",
            );
        }
    };
    match shopify.tokens.install_with(&shop, &tokens).await {
        Ok(installed) => crate::shopify::setup::spawn_if_due(shopify.clone(), state.db.clone(), installed),
        Err(error) => {
            tracing::error!(shop = %shop, error = %error, "could not store the shop's tokens");
            return html_message(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(&shop),
                "Could not finish the install; please retry.",
            );
        }
    }
    let admin = signed
        .get("host")
        .and_then(decode_host)
        .unwrap_or_else(|| format!("admin.shopify.com/store/{}", shop.handle()));
    let mut resp = redirect(&format!("https://{admin}/apps/{}", config.api_key), Some(&shop));
    if let Ok(v) = poem::http::HeaderValue::from_str(&auth_code::clear_cookie()) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}
