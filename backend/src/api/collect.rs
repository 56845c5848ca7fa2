//! `POST /collect` and `GET /collect.gif`.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use poem::error::ReadBodyError;
use poem::http::{HeaderMap, StatusCode, header};
use poem::web::Data;
use poem::{Body, Request, Response, handler};

use crate::domain::UnixMillis;
use crate::ingest::{ClientContext, CollectError, DropReason, NO_SITE};
use crate::shopify::shop_domain::ShopDomain;
use crate::shopify::signing;
use crate::startup::AppState;
use crate::storage::{self, sites::Site};

/// A transparent 1×1 GIF (43 bytes).
const PIXEL_GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
    0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02,
    0x02, 0x44, 0x01, 0x00, 0x3b,
];

fn client<'a>(req: &'a Request, headers: &'a HeaderMap) -> ClientContext<'a> {
    let peer = req.remote_addr().as_socket_addr().map(|a| a.ip()).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    ClientContext {
        peer,
        forwarded_for: headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()),
        user_agent: headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or(""),
        received_at: UnixMillis::now(),
    }
}

#[handler]
pub async fn collect(req: &Request, body: Body, Data(state): Data<&Arc<AppState>>) -> Response {
    collect_for(req, body, state, None).await
}

/// The tenant named by a verified Shopify app-proxy signature, or the error response.
async fn proxy_tenant(req: &Request, state: &AppState) -> Result<Site, Response> {
    let Some(shopify) = state.shopify.as_ref() else { return Err(super::shopify::not_configured()) };
    let query = req.uri().query().unwrap_or("");
    let now = chrono::Utc::now().timestamp();
    let signed = signing::verify_proxy_query(&shopify.config.secrets, query, now).map_err(|error| {
        tracing::info!(error = %error, "app proxy request rejected");
        error_status(StatusCode::UNAUTHORIZED, "invalid_signature", "the app proxy signature is missing or wrong")
    })?;
    let shop = signed
        .get("shop")
        .and_then(ShopDomain::parse)
        .ok_or_else(|| error_status(StatusCode::BAD_REQUEST, "invalid_shop", "the signed shop is not a shop domain"))?;
    match storage::shops::active_site(&state.db, &shop).await {
        Ok(Some(site)) => Ok(site),
        Ok(None) => Err(error(StatusCode::NOT_FOUND, DropReason::UnknownSite, "unknown site")),
        Err(e) => {
            tracing::error!(error = %e, "shop lookup failed");
            Err(error(StatusCode::SERVICE_UNAVAILABLE, DropReason::StorageUnavailable, "try again"))
        }
    }
}

/// `POST /proxy/collect`: the tracker's batch through the Shopify app proxy. The signed `shop`
/// names the tenant, so the batch needs no site key.
#[handler]
pub async fn proxy_collect(req: &Request, body: Body, Data(state): Data<&Arc<AppState>>) -> Response {
    match proxy_tenant(req, state).await {
        Ok(site) => collect_for(req, body, state, Some(site)).await,
        Err(resp) => resp,
    }
}

/// `GET /proxy/collect.gif`: the no-JS pixel through the app proxy.
#[handler]
pub async fn proxy_pixel(req: &Request, Data(state): Data<&Arc<AppState>>) -> Response {
    match proxy_tenant(req, state).await {
        Ok(site) => pixel_for(req, state, Some(site)).await,
        Err(resp) => resp,
    }
}

async fn collect_for(req: &Request, body: Body, state: &AppState, verified: Option<Site>) -> Response {
    let limit = state.settings.ingest.max_body_bytes;
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    let bytes = match declared {
        Some(n) if n > limit => Err(ReadBodyError::PayloadTooLarge),
        _ => body.into_bytes_limit(limit).await,
    };
    let bytes = match bytes {
        Ok(bytes) => bytes,
        Err(ReadBodyError::PayloadTooLarge) => {
            state.ingest.drop_ledger().record(NO_SITE, UnixMillis::now().day(), DropReason::PayloadTooLarge, 1);
            let message = format!("body larger than {limit} bytes");
            return error(StatusCode::PAYLOAD_TOO_LARGE, DropReason::PayloadTooLarge, &message);
        }
        // The client went away or sent a broken body: nothing to store, nothing to count.
        Err(_) => {
            return error(StatusCode::BAD_REQUEST, DropReason::MalformedPayload, "could not read the request body");
        }
    };
    let headers = req.headers();
    match state.ingest.collect_as(&bytes, verified, client(req, headers)).await {
        Ok(accepted) => json(StatusCode::ACCEPTED, &accepted),
        Err(err) => collect_error(err),
    }
}

fn collect_error(err: CollectError) -> Response {
    match err {
        CollectError::Rejected(rejection) => {
            let status = match rejection.reason {
                DropReason::UnknownSite => StatusCode::NOT_FOUND,
                DropReason::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::BAD_REQUEST,
            };
            error(status, rejection.reason, &rejection.message)
        }
        CollectError::Unavailable { reason, message, retry_after } => {
            let mut resp = error(StatusCode::SERVICE_UNAVAILABLE, reason, message);
            resp.headers_mut().insert(header::RETRY_AFTER, retry_after.as_secs().max(1).into());
            resp
        }
        CollectError::Limited(refused) => {
            let secs = refused.retry_after.as_secs().max(1);
            let limit = refused.limit.as_str();
            let body = serde_json::json!({
                "error": "rate_limited",
                "limit": limit,
                "message": format!("too many requests for this {limit}; retry after {secs} s"),
            });
            let mut resp = json(StatusCode::TOO_MANY_REQUESTS, &body);
            resp.headers_mut().insert(header::RETRY_AFTER, secs.into());
            resp
        }
    }
}

/// `k`, `u` and `r` from the query string; the first occurrence wins and anything unparsable
/// is ignored, so no query can turn the pixel into an error page.
fn pixel_query(req: &Request) -> [Option<String>; 3] {
    let mut out: [Option<String>; 3] = [None, None, None];
    for (name, value) in url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        let slot = match name.as_ref() {
            "k" => 0,
            "u" => 1,
            "r" => 2,
            _ => continue,
        };
        out[slot].get_or_insert_with(|| value.into_owned());
    }
    out
}

/// Always answers the GIF: a broken image on a merchant's page helps nobody. Bad input is
/// still counted as a drop.
#[handler]
pub async fn pixel(req: &Request, Data(state): Data<&Arc<AppState>>) -> Response {
    pixel_for(req, state, None).await
}

async fn pixel_for(req: &Request, state: &AppState, verified: Option<Site>) -> Response {
    let [k, u, r] = pixel_query(req);
    let headers = req.headers();
    // Without JavaScript the page URL can only come from the Referer header.
    let referer = headers.get(header::REFERER).and_then(|v| v.to_str().ok());
    let url = u.as_deref().or(referer).unwrap_or("");
    let result = state.ingest.collect_pixel_as(k.as_deref(), verified, url, r.as_deref(), client(req, headers)).await;
    if let Err(err) = result {
        tracing::debug!(error = %err, "pixel request dropped");
    }
    Response::builder()
        .status(StatusCode::OK)
        .content_type("image/gif")
        .header(header::CACHE_CONTROL, "no-store, max-age=0")
        .body(PIXEL_GIF)
}

fn json<T: serde::Serialize>(status: StatusCode, body: &T) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(serde_json::to_vec(body).unwrap_or_default())
}

fn error_status(status: StatusCode, code: &str, message: &str) -> Response {
    json(status, &serde_json::json!({ "error": code, "message": message }))
}

fn error(status: StatusCode, reason: DropReason, message: &str) -> Response {
    json(status, &serde_json::json!({ "error": reason.as_str(), "message": message }))
}
