//! `GET /api/shopify/session` (`get_shopify_session`): the embedded panel's first call. It is
//! authenticated with the App Bridge id token (`Authorization: Bearer <id token>`), the scheme
//! every panel endpoint uses; the OpenAPI document marks it as `ShopifySessionToken`.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::auth::Bearer;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, SecurityScheme, Tags};

use crate::shopify::embedded::{self, BearerError};
use crate::startup::AppState;

#[derive(Tags)]
enum ApiTags {
    /// The embedded Shopify admin panel.
    Shopify,
}

/// The App Bridge id token (a 60 s HS256 JWT) of the merchant using the embedded app.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT (App Bridge id token)")]
struct ShopifySessionToken(Bearer);

#[derive(Object)]
struct ShopifyApiError {
    /// Stable machine-readable code.
    error: String,
    /// What went wrong.
    message: String,
}

#[derive(Object)]
struct ShopifySession {
    /// The shop of the verified token (`acme.myshopify.com`).
    shop: String,
    /// Whether the shop is installed (has usable tokens).
    installed: bool,
    /// Granted access scopes, comma-separated.
    scope: Option<String>,
}

#[derive(ApiResponse)]
enum GetSessionResponse {
    #[oai(status = 200)]
    Ok(Json<ShopifySession>),
    /// The token is invalid, expired or for another app (then `X-Shopify-Retry-Invalid-Session-Request: 1`
    /// asks App Bridge to retry once with a fresh token), or `shop` names another shop than the token.
    #[oai(status = 401)]
    Unauthorized(Json<ShopifyApiError>, #[oai(header = "X-Shopify-Retry-Invalid-Session-Request")] Option<String>),
    /// Shopify is not configured on this server, or storage is down.
    #[oai(status = 503)]
    Unavailable(Json<ShopifyApiError>),
}

fn error(code: &str, message: impl Into<String>) -> Json<ShopifyApiError> {
    Json(ShopifyApiError { error: code.into(), message: message.into() })
}

pub struct ShopifyApi;

#[OpenApi(prefix_path = "/shopify", tag = "ApiTags::Shopify")]
impl ShopifyApi {
    /// Who the embedded panel is signed in as.
    #[oai(path = "/session", method = "get", operation_id = "get_shopify_session")]
    async fn get_session(
        &self,
        Data(state): Data<&Arc<AppState>>,
        auth: ShopifySessionToken,
        /// Optional; when present it must be the token's shop.
        shop: Query<Option<String>>,
    ) -> GetSessionResponse {
        let Some(shopify) = state.shopify.as_ref() else {
            return GetSessionResponse::Unavailable(error(
                "shopify_not_configured",
                "this server has no Shopify app credentials",
            ));
        };
        let verified = match embedded::authenticate_id_token(&shopify.config, &auth.0.token, shop.0.as_deref()) {
            Ok(v) => v,
            Err(e) => {
                let retry = e.retry().then(|| "1".to_owned());
                let code =
                    if matches!(e, BearerError::ShopMismatch) { "shop_mismatch" } else { "invalid_session_token" };
                return GetSessionResponse::Unauthorized(error(code, e.to_string()), retry);
            }
        };
        match crate::storage::shops::find(&state.db, &verified.shop).await {
            Ok(found) => GetSessionResponse::Ok(Json(ShopifySession {
                shop: verified.shop.to_string(),
                installed: found.as_ref().is_some_and(|s| s.active),
                scope: found.and_then(|s| s.scope),
            })),
            Err(e) => {
                tracing::error!(error = %e, "shop lookup failed");
                GetSessionResponse::Unavailable(error("storage_unavailable", "try again"))
            }
        }
    }
}
