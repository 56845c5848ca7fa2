//! Calls to `POST https://{shop}/admin/oauth/access_token` (spec shopify-auth §1.5–1.7): token
//! exchange of an id token for an **expiring** offline token, refresh-token rotation, and the
//! legacy authorization-code exchange. Bodies are JSON, as the official libraries send them.
//! Shopify's response has no `token_type`, so it is parsed with our own type.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::ShopifyConfig;
use super::shop_domain::ShopDomain;

pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";
pub const OFFLINE_TOKEN_TYPE: &str = "urn:shopify:params:oauth:token-type:offline-access-token";

/// A token response. The tokens are secrets: `Debug` never shows them.
#[derive(Deserialize)]
pub struct TokenResponse {
    pub access_token: SecretString,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub expires_in: Option<i64>,
    #[serde(default)]
    pub refresh_token: Option<SecretString>,
    #[serde(default)]
    pub refresh_token_expires_in: Option<i64>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("scope", &self.scope)
            .field("expires_in", &self.expires_in)
            .field("refresh_token_expires_in", &self.refresh_token_expires_in)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The id token was refused (expired, forged, for another app): bounce / 401-retry.
    #[error("Shopify refused the id token (invalid_subject_token)")]
    InvalidSubjectToken,
    /// The refresh token or code is spent, expired or unknown: the merchant must relaunch.
    #[error("Shopify refused the grant: {0}")]
    InvalidGrant(String),
    #[error("Shopify answered {status}: {error}")]
    Rejected { status: u16, error: String },
    #[error("cannot reach Shopify: {0}")]
    Transport(String),
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: String,
}

/// One HTTP client for every call to Shopify: 5 s to connect, 20 s in total.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(20))
        .user_agent(concat!("GhostTrack/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("static HTTP client configuration")
}

async fn post_token(
    http: &reqwest::Client,
    config: &ShopifyConfig,
    shop: &ShopDomain,
    body: serde_json::Value,
) -> Result<TokenResponse, OAuthError> {
    let url = format!("{}/admin/oauth/access_token", config.shop_base(shop));
    let resp = http
        .post(url)
        .header("accept", "application/json")
        .json(&body)
        .send()
        .await
        .map_err(|e| OAuthError::Transport(e.without_url().to_string()))?;
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| OAuthError::Transport(e.without_url().to_string()))?;
    if status.is_success() {
        return serde_json::from_slice(&bytes).map_err(|e| OAuthError::Rejected {
            status: status.as_u16(),
            error: format!("unreadable token response: {e}"),
        });
    }
    let error = serde_json::from_slice::<ErrorBody>(&bytes).map(|b| b.error).unwrap_or_default();
    Err(match error.as_str() {
        "invalid_subject_token" => OAuthError::InvalidSubjectToken,
        "invalid_grant" | "invalid_request" => OAuthError::InvalidGrant(error),
        _ => OAuthError::Rejected { status: status.as_u16(), error },
    })
}

/// Token exchange: an id token for an expiring offline access token plus refresh token.
pub async fn exchange_id_token(
    http: &reqwest::Client,
    config: &ShopifyConfig,
    shop: &ShopDomain,
    id_token: &str,
) -> Result<TokenResponse, OAuthError> {
    let body = serde_json::json!({
        "client_id": config.api_key,
        "client_secret": config.secrets.current().expose(),
        "grant_type": TOKEN_EXCHANGE_GRANT,
        "subject_token": id_token,
        "subject_token_type": ID_TOKEN_TYPE,
        "requested_token_type": OFFLINE_TOKEN_TYPE,
        "expiring": "1",
    });
    post_token(http, config, shop, body).await
}

/// Refresh: a new access token and a new (rotated) refresh token.
pub async fn refresh(
    http: &reqwest::Client,
    config: &ShopifyConfig,
    shop: &ShopDomain,
    refresh_token: &SecretString,
) -> Result<TokenResponse, OAuthError> {
    let body = serde_json::json!({
        "client_id": config.api_key,
        "client_secret": config.secrets.current().expose(),
        "grant_type": "refresh_token",
        "refresh_token": refresh_token.expose_secret(),
    });
    post_token(http, config, shop, body).await
}

/// Authorization-code grant (legacy / standalone installs), asking for an expiring token.
pub async fn exchange_code(
    http: &reqwest::Client,
    config: &ShopifyConfig,
    shop: &ShopDomain,
    code: &str,
) -> Result<TokenResponse, OAuthError> {
    let body = serde_json::json!({
        "client_id": config.api_key,
        "client_secret": config.secrets.current().expose(),
        "code": code,
        "expiring": "1",
    });
    post_token(http, config, shop, body).await
}
