//! Liveness, readiness and metrics.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::Data;
use poem::{Response, handler};

use crate::startup::AppState;

/// 200 while the process serves HTTP.
#[handler]
pub fn health() -> &'static str {
    "ok"
}

/// 200 when the database answers; 503 otherwise (load balancers stop routing here).
#[handler]
pub async fn ready(Data(state): Data<&Arc<AppState>>) -> Response {
    match state.db.ping().await {
        Ok(()) => Response::builder().status(StatusCode::OK).body("ready"),
        Err(error) => {
            tracing::warn!(error = %error, "readiness check: database unavailable");
            Response::builder().status(StatusCode::SERVICE_UNAVAILABLE).body("database unavailable")
        }
    }
}

#[handler]
pub fn metrics(Data(state): Data<&Arc<AppState>>) -> Response {
    Response::builder().content_type("text/plain; version=0.0.4; charset=utf-8").body(state.metrics.encode())
}
