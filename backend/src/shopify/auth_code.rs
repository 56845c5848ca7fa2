//! The legacy authorization-code grant (spec shopify-auth §1.2), for standalone and
//! development installs; embedded installs use token exchange. Built on the `oauth2` crate for
//! the authorize URL and the code exchange. Shopify's token response has no `token_type`,
//! which `oauth2` requires (spec rust-stack G3), so the HTTP adapter adds `"bearer"` to a
//! successful response before `oauth2` parses it.
//!
//! The `state` nonce travels in a cookie signed with a key derived from
//! `GHOSTTRACK_SECRET_KEY` — never with the client secret, so the cookie can never double as a
//! webhook HMAC (spec §3.1 security note).

use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken, ExtraTokenFields, RedirectUrl,
    RequestTokenError, StandardRevocableToken, StandardTokenResponse, TokenResponse as _, TokenUrl,
};
use rand::RngCore;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::ShopifyConfig;
use super::oauth::{OAuthError, TokenResponse};
use super::shop_domain::ShopDomain;
use super::signing;

/// Cookie holding the signed state nonce (the name JS-API uses).
pub const STATE_COOKIE: &str = "shopify_app_state";
/// The cookie lives as long as the official libraries' (60 s).
const STATE_MAX_AGE_SECS: u32 = 60;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ShopifyExtraFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_expires_in: Option<i64>,
}

impl ExtraTokenFields for ShopifyExtraFields {}

type ShopifyTokenResponse = StandardTokenResponse<ShopifyExtraFields, BasicTokenType>;

#[derive(Debug, thiserror::Error)]
pub enum AuthCodeError {
    #[error("GHOSTTRACK_APP_URL and GHOSTTRACK_SECRET_KEY are required for the authorization-code grant")]
    NotConfigured,
    #[error("invalid URL: {0}")]
    Url(String),
}

/// Where to send the merchant, and the `Set-Cookie` value carrying the signed nonce.
pub struct Begin {
    pub location: String,
    pub set_cookie: String,
}

fn redirect_url(config: &ShopifyConfig) -> Result<String, AuthCodeError> {
    let app = config.app_url.as_ref().ok_or(AuthCodeError::NotConfigured)?;
    Ok(format!("{}{}", app.as_str().trim_end_matches('/'), crate::api::AUTH_CALLBACK_PATH))
}

/// Starts the grant: a 32-byte hex nonce, the authorize URL (scopes omitted: they are deployed
/// from `shopify.app.toml`; `grant_options[]` empty for an offline token, as JS-API sends it).
pub fn begin(config: &ShopifyConfig, shop: &ShopDomain) -> Result<Begin, AuthCodeError> {
    let key = config.cookie_key.ok_or(AuthCodeError::NotConfigured)?;
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let nonce = hex::encode(raw);
    let client = Client::<
        BasicErrorResponse,
        ShopifyTokenResponse,
        BasicTokenIntrospectionResponse,
        StandardRevocableToken,
        BasicRevocationErrorResponse,
    >::new(ClientId::new(config.api_key.clone()))
    .set_auth_uri(
        AuthUrl::new(format!("{}/admin/oauth/authorize", config.shop_base(shop)))
            .map_err(|e| AuthCodeError::Url(e.to_string()))?,
    )
    .set_redirect_uri(RedirectUrl::new(redirect_url(config)?).map_err(|e| AuthCodeError::Url(e.to_string()))?);
    let state = nonce.clone();
    let (url, _) = client.authorize_url(move || CsrfToken::new(state)).add_extra_param("grant_options[]", "").url();
    let signature = signing::sign_with_key(&key, nonce.as_bytes());
    let set_cookie = format!(
        "{STATE_COOKIE}={nonce}.{signature}; Max-Age={STATE_MAX_AGE_SECS}; Path={}; HttpOnly; Secure; SameSite=Lax",
        crate::api::AUTH_CALLBACK_PATH
    );
    Ok(Begin { location: url.to_string(), set_cookie })
}

/// Clears the state cookie (sent with the callback's answer: the nonce is single use).
pub fn clear_cookie() -> String {
    format!("{STATE_COOKIE}=; Max-Age=0; Path={}; HttpOnly; Secure; SameSite=Lax", crate::api::AUTH_CALLBACK_PATH)
}

/// Whether the `Cookie` header carries a validly signed nonce equal to `state`.
pub fn state_matches(config: &ShopifyConfig, cookie_header: Option<&str>, state: &str) -> bool {
    let Some(key) = config.cookie_key else { return false };
    let Some(value) = cookie_header.into_iter().flat_map(|h| h.split(';')).find_map(|c| {
        let (name, value) = c.trim().split_once('=')?;
        (name == STATE_COOKIE).then_some(value)
    }) else {
        return false;
    };
    let Some((nonce, signature)) = value.split_once('.') else { return false };
    signing::verify_with_key(&key, nonce.as_bytes(), signature)
        && nonce.len() == state.len()
        && subtle::ConstantTimeEq::ct_eq(nonce.as_bytes(), state.as_bytes()).into()
}

/// Exchanges a callback `code` for an expiring offline token through `oauth2`.
pub async fn exchange(
    http: &reqwest::Client,
    config: &ShopifyConfig,
    shop: &ShopDomain,
    code: &str,
) -> Result<TokenResponse, OAuthError> {
    let invalid = |e: String| OAuthError::Rejected { status: 0, error: e };
    let client = Client::<
        BasicErrorResponse,
        ShopifyTokenResponse,
        BasicTokenIntrospectionResponse,
        StandardRevocableToken,
        BasicRevocationErrorResponse,
    >::new(ClientId::new(config.api_key.clone()))
    .set_client_secret(ClientSecret::new(config.secrets.current().expose().to_owned()))
    // Shopify reads client_id and client_secret from the body, not HTTP Basic auth.
    .set_auth_type(AuthType::RequestBody)
    .set_token_uri(
        TokenUrl::new(format!("{}/admin/oauth/access_token", config.shop_base(shop)))
            .map_err(|e| invalid(e.to_string()))?,
    )
    .set_redirect_uri(
        RedirectUrl::new(redirect_url(config).map_err(|e| invalid(e.to_string()))?)
            .map_err(|e| invalid(e.to_string()))?,
    );
    let adapter = |request: oauth2::HttpRequest| {
        let http = http.clone();
        async move {
            let (parts, body) = request.into_parts();
            let resp =
                http.request(parts.method, parts.uri.to_string()).headers(parts.headers).body(body).send().await?;
            let status = resp.status();
            let bytes = resp.bytes().await?;
            let body = if status.is_success() { with_token_type(&bytes) } else { bytes.to_vec() };
            let mut response = oauth2::http::Response::new(body);
            *response.status_mut() = status;
            response
                .headers_mut()
                .insert(oauth2::http::header::CONTENT_TYPE, oauth2::http::HeaderValue::from_static("application/json"));
            Ok::<_, reqwest::Error>(response)
        }
    };
    let token = client
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .add_extra_param("expiring", "1")
        .request_async(&adapter)
        .await
        .map_err(|e| match e {
            RequestTokenError::ServerResponse(r) => OAuthError::InvalidGrant(r.error().to_string()),
            RequestTokenError::Request(e) => OAuthError::Transport(e.without_url().to_string()),
            other => invalid(other.to_string()),
        })?;
    Ok(TokenResponse {
        access_token: SecretString::from(token.access_token().secret().to_owned()),
        scope: token.scopes().map(|s| s.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(",")),
        expires_in: token.expires_in().map(|d| d.as_secs() as i64),
        refresh_token: token.refresh_token().map(|r| SecretString::from(r.secret().to_owned())),
        refresh_token_expires_in: token.extra_fields().refresh_token_expires_in,
    })
}

/// Adds `"token_type":"bearer"` to a JSON object that lacks it (Shopify's responses).
fn with_token_type(bytes: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(serde_json::Value::Object(mut map)) => {
            map.entry("token_type").or_insert_with(|| "bearer".into());
            serde_json::to_vec(&map).unwrap_or_else(|_| bytes.to_vec())
        }
        _ => bytes.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Secret;
    use crate::shopify::signing::SecretSet;

    fn config() -> ShopifyConfig {
        ShopifyConfig {
            api_key: "test_key".into(),
            secrets: SecretSet::new(Secret::new("hush"), None),
            api_base: "https://{shop}".into(),
            app_url: Some(url::Url::parse("https://app.example.com").unwrap()),
            cipher: None,
            previous_cipher: None,
            cookie_key: Some(signing::derive_key(b"0123456789abcdef0123456789abcdef", "cookie/v1")),
        }
    }

    #[test]
    fn the_authorize_url_and_state_cookie_follow_the_spec() {
        let shop = ShopDomain::parse("acme.myshopify.com").unwrap();
        let b = begin(&config(), &shop).unwrap();
        let url = url::Url::parse(&b.location).unwrap();
        assert_eq!(url.host_str(), Some("acme.myshopify.com"));
        assert_eq!(url.path(), "/admin/oauth/authorize");
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["client_id"], "test_key");
        assert_eq!(q["redirect_uri"], "https://app.example.com/auth/callback");
        assert_eq!(q["grant_options[]"], "");
        assert!(!q.contains_key("scope"), "managed install: scopes come from the TOML");
        let state = &q["state"];
        assert_eq!(state.len(), 64);
        let cookie = b.set_cookie.split(';').next().unwrap().to_owned();
        assert!(b.set_cookie.contains("HttpOnly") && b.set_cookie.contains("SameSite=Lax"));
        assert!(state_matches(&config(), Some(&cookie), state));
        assert!(!state_matches(&config(), Some(&cookie), "0".repeat(64).as_str()));
        assert!(!state_matches(&config(), None, state));
        let forged = format!("{STATE_COOKIE}={state}.{}", "0".repeat(64));
        assert!(!state_matches(&config(), Some(&forged), state));
        // The cookie signature is not a Shopify HMAC of the nonce with the client secret.
        assert!(!cookie.contains(&signing::sign_admin_query("hush", [("state", state.as_str())])));
    }

    #[test]
    fn token_type_is_added_only_when_missing() {
        let v: serde_json::Value = serde_json::from_slice(&with_token_type(br#"{"access_token":"a"}"#)).unwrap();
        assert_eq!(v["token_type"], "bearer");
        let v: serde_json::Value =
            serde_json::from_slice(&with_token_type(br#"{"access_token":"a","token_type":"x"}"#)).unwrap();
        assert_eq!(v["token_type"], "x");
    }
}
