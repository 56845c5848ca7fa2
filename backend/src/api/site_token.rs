//! What the token-authenticated APIs (`/api/v1/stats`, `/v1/*`) share: the bearer scheme, the
//! error body, and the one rule that turns a presented token and a requested site key into a
//! tenant.

use poem_openapi::auth::Bearer;
use poem_openapi::payload::Json;
use poem_openapi::{Object, SecurityScheme};

use crate::domain::ApiToken;
use crate::storage::sites::Site;
use crate::storage::{self as store, TenantScope};

/// A site's API token, printed once by `ghosttrack site add`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "gtk_…")]
pub(super) struct SiteToken(Bearer);

#[derive(Object)]
pub(super) struct ApiError {
    /// Stable machine-readable code.
    error: String,
    /// What went wrong and how to fix it.
    message: String,
}

impl ApiError {
    pub(super) fn new(error: &str, message: impl Into<String>) -> Json<ApiError> {
        Json(ApiError { error: error.into(), message: message.into() })
    }
}

/// Why a token and site key did not yield a tenant.
pub(super) enum AuthFailure {
    /// 401: not a valid API token.
    Unauthorized,
    /// 404: the token is valid but for another site (no hint which).
    NotFound,
    /// 503: the lookup failed.
    Unavailable,
}

impl AuthFailure {
    pub(super) fn body(&self) -> Json<ApiError> {
        match self {
            AuthFailure::Unauthorized => ApiError::new("invalid_token", "the API token is not valid"),
            AuthFailure::NotFound => ApiError::new("site_not_found", "no such site for this token"),
            AuthFailure::Unavailable => ApiError::new("unavailable", "the database is unavailable; retry shortly"),
        }
    }
}

/// The tenant: the token's site, which must be the site the request names. A token reads only
/// its own site; another site's key is simply not found.
pub(super) async fn tenant(
    db: &sea_orm::DatabaseConnection,
    token: &SiteToken,
    site: &str,
) -> Result<(TenantScope, Site), AuthFailure> {
    match store::sites::authenticate_token(db, &ApiToken::from_presented(&token.0.token)).await {
        Ok(Some((scope, tenant))) if tenant.key.as_str() == site => Ok((scope, tenant)),
        Ok(Some(_)) => Err(AuthFailure::NotFound),
        Ok(None) => Err(AuthFailure::Unauthorized),
        Err(error) => {
            tracing::error!(error = %error, "token lookup failed");
            Err(AuthFailure::Unavailable)
        }
    }
}
