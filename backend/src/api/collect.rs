//! `POST /collect` and `GET /collect.gif`.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use poem::http::{HeaderMap, StatusCode, header};
use poem::web::{Data, Query};
use poem::{Body, Request, Response, handler};
use serde::Deserialize;

use crate::domain::UnixMillis;
use crate::ingest::{ClientContext, CollectError, DropReason, NO_SITE};
use crate::startup::AppState;

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
    let limit = state.settings.ingest.max_body_bytes;
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    let bytes = match declared {
        Some(n) if n > limit => None,
        _ => body.into_bytes_limit(limit).await.ok(),
    };
    let Some(bytes) = bytes else {
        state.ingest.drop_ledger().record(NO_SITE, UnixMillis::now().day(), DropReason::PayloadTooLarge, 1);
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            DropReason::PayloadTooLarge,
            &format!("body larger than {limit} bytes"),
        );
    };
    let headers = req.headers();
    match state.ingest.collect(&bytes, client(req, headers)).await {
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
    }
}

#[derive(Deserialize)]
pub struct PixelQuery {
    k: Option<String>,
    u: Option<String>,
    r: Option<String>,
}

/// Always answers the GIF: a broken image on a merchant's page helps nobody. Bad input is
/// still counted as a drop.
#[handler]
pub async fn pixel(req: &Request, Query(q): Query<PixelQuery>, Data(state): Data<&Arc<AppState>>) -> Response {
    let headers = req.headers();
    // Without JavaScript the page URL can only come from the Referer header.
    let referer = headers.get(header::REFERER).and_then(|v| v.to_str().ok());
    let url = q.u.as_deref().or(referer).unwrap_or("");
    let result = state.ingest.collect_pixel(q.k.as_deref(), url, q.r.as_deref(), client(req, headers)).await;
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

fn error(status: StatusCode, reason: DropReason, message: &str) -> Response {
    json(status, &serde_json::json!({ "error": reason.as_str(), "message": message }))
}
