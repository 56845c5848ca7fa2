//! `GET /app/assets/{name}`: the panel's content-hashed files, immutable, precompressed.

use std::sync::Arc;

use poem::http::{StatusCode, header};
use poem::web::{Data, Path};
use poem::{Request, Response, handler};

use crate::startup::AppState;

#[handler]
pub fn asset(req: &Request, Path(name): Path<String>, Data(state): Data<&Arc<AppState>>) -> Response {
    let Some(asset) = state.panel.asset(&name) else {
        return Response::builder().status(StatusCode::NOT_FOUND).content_type("text/plain").body("no such asset");
    };
    let accept = req.headers().get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (coding, body) = asset.negotiate(accept);
    let mut resp = Response::builder()
        .status(StatusCode::OK)
        .content_type(asset.content_type)
        // The name changes with the content, so a copy never goes stale.
        .header(header::CACHE_CONTROL, "public, max-age=31536000, immutable")
        .header(header::VARY, "accept-encoding");
    if let Some(value) = coding.header() {
        resp = resp.header(header::CONTENT_ENCODING, value);
    }
    resp.body(body.to_vec())
}
