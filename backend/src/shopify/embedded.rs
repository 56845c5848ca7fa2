//! The embedded app load and session-token authentication (spec shopify-auth §2.3–2.4, §6):
//! what to answer for a document load of `application_url`, the bounce page, and the
//! `Authorization: Bearer <id token>` check of fetch requests.

use poem::http::HeaderMap;

use super::ShopifyConfig;
use super::id_token::{self, IdTokenError, VerifiedIdToken};
use super::shop_domain::{ShopDomain, decode_host};
use super::signing;

/// Where App Bridge reloads a document whose id token was missing or invalid.
pub const BOUNCE_PATH: &str = "/auth/session-token";
/// Header asking App Bridge to fetch a fresh id token and retry once.
pub const RETRY_HEADER: &str = "X-Shopify-Retry-Invalid-Session-Request";

/// The decision for a document request to the app home.
#[derive(Debug, PartialEq)]
pub enum AppLoad {
    /// Verified: render the app for this shop (after making sure it is installed).
    Render { token: Box<VerifiedIdToken>, id_token: String },
    /// 302 to `location`; `shop` (sanitized) is for the CSP header.
    Redirect { location: String, shop: Option<ShopDomain> },
    /// 401: forged HMAC, or `?shop=` naming another shop than the token.
    Unauthorized(String),
    /// 400: not a request Shopify would make (bad shop, duplicate keys).
    BadRequest(String),
}

fn pairs(raw_query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw_query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

fn get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Decides a document load of `{app_url}{path}?{raw_query}`.
pub fn app_load(config: &ShopifyConfig, path: &str, raw_query: &str, now_secs: i64) -> AppLoad {
    let params = pairs(raw_query);
    let mut keys: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        return AppLoad::BadRequest("a query parameter appears twice".into());
    }
    let query_shop = get(&params, "shop");
    let parsed_shop = query_shop.and_then(ShopDomain::parse);
    if query_shop.is_some() && parsed_shop.is_none() {
        return AppLoad::BadRequest("`shop` is not a valid shop domain".into());
    }
    if let Some(token) = get(&params, "id_token") {
        match id_token::verify(token, &config.api_key, &config.secrets) {
            Ok(verified) => {
                if parsed_shop.as_ref().is_some_and(|s| *s != verified.shop) {
                    return AppLoad::Unauthorized("`shop` does not match the session token".into());
                }
                return AppLoad::Render { token: Box::new(verified), id_token: token.to_owned() };
            }
            // An expired or invalid token in the URL: get a fresh one through the bounce page.
            Err(error) => tracing::debug!(error = %error, "app load with an invalid id token; bouncing"),
        }
    } else if get(&params, "hmac").is_some()
        && let Err(error) = signing::verify_admin_query(&config.secrets, raw_query, now_secs)
    {
        return AppLoad::Unauthorized(format!("the request signature is invalid: {error}"));
    }
    let Some(shop) = parsed_shop else {
        return AppLoad::BadRequest("open GhostTrack from your Shopify admin".into());
    };
    if get(&params, "embedded") != Some("1") {
        // Re-embed: open the app inside the admin (spec §2.4 A.2).
        let admin = get(&params, "host")
            .and_then(decode_host)
            .unwrap_or_else(|| format!("admin.shopify.com/store/{}", shop.handle()));
        let location = format!("https://{admin}/apps/{}", config.api_key);
        return AppLoad::Redirect { location, shop: Some(shop) };
    }
    let kept: Vec<(String, String)> = params.into_iter().filter(|(k, _)| k != "id_token").collect();
    let kept_query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&kept).finish();
    let app_base = config.app_url.as_ref().map(|u| u.as_str().trim_end_matches('/').to_owned()).unwrap_or_default();
    let reload = format!("{app_base}{path}?{kept_query}");
    let bounce_query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&kept)
        .append_pair("shopify-reload", &reload)
        .finish();
    let location = format!("{BOUNCE_PATH}?{bounce_query}");
    AppLoad::Redirect { location, shop: Some(shop) }
}

/// Why a fetch request is not authenticated.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum BearerError {
    #[error("no Authorization: Bearer header")]
    Missing,
    #[error(transparent)]
    Invalid(#[from] IdTokenError),
    #[error("`shop` does not match the session token")]
    ShopMismatch,
}

impl BearerError {
    /// App Bridge retries once with a fresh token; a shop mismatch is not fixed by that.
    pub fn retry(&self) -> bool {
        !matches!(self, BearerError::ShopMismatch)
    }
}

/// Authenticates a fetch request from the embedded app; the shop is the token's `dest`.
pub fn authenticate_bearer(
    config: &ShopifyConfig,
    headers: &HeaderMap,
    raw_query: &str,
) -> Result<VerifiedIdToken, BearerError> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(BearerError::Missing)?;
    let params = pairs(raw_query);
    authenticate_id_token(config, token, get(&params, "shop"))
}

/// Verifies a bearer id token; `shop_param` (the request's `?shop=`), when present, must name
/// the token's shop.
pub fn authenticate_id_token(
    config: &ShopifyConfig,
    token: &str,
    shop_param: Option<&str>,
) -> Result<VerifiedIdToken, BearerError> {
    let verified = id_token::verify(token, &config.api_key, &config.secrets)?;
    if let Some(shop) = shop_param
        && ShopDomain::parse(shop).as_ref() != Some(&verified.shop)
    {
        return Err(BearerError::ShopMismatch);
    }
    Ok(verified)
}

pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// The bounce page: App Bridge alone (first in `<head>`, spec §6.1); it reads `shopify-reload`
/// and reloads with a fresh token.
pub fn bounce_page(api_key: &str, app_bridge_url: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head>{}<meta charset=\"utf-8\"><title>GhostTrack</title></head>\
         <body></body></html>",
        crate::panel::assets::embedded_head(api_key, app_bridge_url)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Secret;
    use crate::shopify::id_token::{IdTokenClaims, mint};
    use crate::shopify::signing::{SecretSet, sign_admin_query};

    fn config() -> ShopifyConfig {
        ShopifyConfig {
            api_key: "test_key".into(),
            secrets: SecretSet::new(Secret::new("hush"), None),
            api_base: "https://{shop}".into(),
            app_url: Some(url::Url::parse("https://app.example.com").unwrap()),
            cipher: None,
            previous_cipher: None,
            cookie_key: None,
        }
    }

    fn token(shop: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        mint(
            "hush",
            &IdTokenClaims {
                iss: format!("https://{shop}/admin"),
                dest: format!("https://{shop}"),
                aud: "test_key".into(),
                sub: Some("1".into()),
                exp: now + 60,
                nbf: now,
                iat: Some(now),
                jti: None,
                sid: None,
            },
        )
    }

    #[test]
    fn a_load_with_a_valid_token_renders_for_the_token_shop() {
        let q = format!("embedded=1&shop=acme.myshopify.com&id_token={}", token("acme.myshopify.com"));
        match app_load(&config(), "/app", &q, 0) {
            AppLoad::Render { token, .. } => assert_eq!(token.shop.as_str(), "acme.myshopify.com"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_shop_param_disagreeing_with_the_token_is_401() {
        let q = format!("embedded=1&shop=other.myshopify.com&id_token={}", token("acme.myshopify.com"));
        assert!(matches!(app_load(&config(), "/app", &q, 0), AppLoad::Unauthorized(_)));
    }

    #[test]
    fn a_document_without_a_token_goes_to_the_bounce_page_without_id_token() {
        let now = 1_800_000_000;
        let ts = now.to_string();
        let hmac =
            sign_admin_query("hush", [("embedded", "1"), ("shop", "acme.myshopify.com"), ("timestamp", ts.as_str())]);
        let q = format!("embedded=1&shop=acme.myshopify.com&timestamp={now}&hmac={hmac}");
        let AppLoad::Redirect { location, shop } = app_load(&config(), "/app", &q, now) else { panic!() };
        assert_eq!(shop.unwrap().as_str(), "acme.myshopify.com");
        assert!(location.starts_with("/auth/session-token?embedded=1&shop=acme.myshopify.com"), "{location}");
        assert!(location.contains("shopify-reload=https%3A%2F%2Fapp.example.com%2Fapp%3Fembedded%3D1"), "{location}");
        // An expired token is bounced too, and never carried along.
        let q = format!("embedded=1&shop=acme.myshopify.com&id_token={}", "x.y.z");
        let AppLoad::Redirect { location, .. } = app_load(&config(), "/app", &q, now) else { panic!() };
        assert!(location.starts_with(BOUNCE_PATH) && !location.contains("id_token"), "{location}");
    }

    #[test]
    fn forged_hmacs_and_hostile_shops_are_refused() {
        let q = "embedded=1&shop=acme.myshopify.com&timestamp=1800000000&hmac=00";
        assert!(matches!(app_load(&config(), "/app", q, 1_800_000_000), AppLoad::Unauthorized(_)));
        for shop in ["evil.com", "x.myshopify.com.evil.com", "%0aacme.myshopify.com"] {
            let q = format!("embedded=1&shop={shop}");
            assert!(matches!(app_load(&config(), "/app", &q, 0), AppLoad::BadRequest(_)), "{shop}");
        }
        let q = "shop=acme.myshopify.com&shop=evil.myshopify.com";
        assert!(matches!(app_load(&config(), "/app", q, 0), AppLoad::BadRequest(_)));
    }

    #[test]
    fn a_non_embedded_load_is_sent_back_into_the_admin() {
        let host = "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvYWNtZQ"; // admin.shopify.com/store/acme
        let q = format!("shop=acme.myshopify.com&host={host}");
        let AppLoad::Redirect { location, .. } = app_load(&config(), "/app", &q, 0) else { panic!() };
        assert_eq!(location, "https://admin.shopify.com/store/acme/apps/test_key");
    }

    #[test]
    fn bearer_tokens_authenticate_fetches_and_shop_mismatch_is_not_retried() {
        let mut h = HeaderMap::new();
        assert_eq!(authenticate_bearer(&config(), &h, "").unwrap_err(), BearerError::Missing);
        h.insert("authorization", format!("Bearer {}", token("acme.myshopify.com")).parse().unwrap());
        assert_eq!(authenticate_bearer(&config(), &h, "").unwrap().shop.as_str(), "acme.myshopify.com");
        let err = authenticate_bearer(&config(), &h, "shop=other.myshopify.com").unwrap_err();
        assert!(!err.retry());
        h.insert("authorization", "Bearer garbage".parse().unwrap());
        assert!(authenticate_bearer(&config(), &h, "").unwrap_err().retry());
    }
}
