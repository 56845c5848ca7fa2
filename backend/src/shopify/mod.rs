//! The Shopify platform: signing schemes, id tokens, shop domains, token storage, the app-load
//! and webhook flows. Protocol facts come from `spec/shopify-auth.md` (cited by section).
//!
//! The module is optional at run time: without `GHOSTTRACK_SHOPIFY_API_KEY` and
//! `GHOSTTRACK_SHOPIFY_API_SECRET` the server starts and the Shopify routes answer 503.

pub mod admin;
pub mod app_toml;
pub mod auth_code;
pub mod compliance;
pub mod embedded;
pub mod id_token;
pub mod inbox;
pub mod inbox_writer;
pub mod oauth;
pub mod pixel;
pub mod risk;
pub mod setup;
pub mod shop_domain;
pub mod signals;
pub mod signing;
pub mod token_cipher;
pub mod tokens;
pub mod untracked;
pub mod webhooks;

use std::sync::Arc;

use crate::settings::Settings;
use shop_domain::ShopDomain;
use signing::SecretSet;
use token_cipher::{CipherError, TokenCipher};

/// Admin API and webhook payload version, the same value as `[webhooks] api_version` in
/// `shopify.app.toml` (spec §5.3: latest stable in 2026-11 is 2026-10).
pub const API_VERSION: &str = "2026-10";

/// The Shopify side of a running server.
pub struct Shopify {
    pub config: Arc<ShopifyConfig>,
    pub tokens: tokens::Tokens,
    /// Shops whose post-install job runs on this node (`setup::spawn_if_due`).
    setup_running: parking_lot::Mutex<std::collections::HashSet<i64>>,
}

impl Shopify {
    pub fn new(config: ShopifyConfig, db: sea_orm::DatabaseConnection) -> Self {
        let config = Arc::new(config);
        let tokens = tokens::Tokens::new(config.clone(), oauth::http_client(), db);
        Shopify { config, tokens, setup_running: Default::default() }
    }
}

/// Everything the Shopify flows need, built once from the settings.
#[derive(Debug)]
pub struct ShopifyConfig {
    pub api_key: String,
    pub secrets: SecretSet,
    /// `https://{shop}` or a test template such as `http://127.0.0.1:PORT/{shop}`.
    pub api_base: String,
    pub app_url: Option<url::Url>,
    /// `None` without `GHOSTTRACK_SECRET_KEY`: verification works, installs are refused.
    pub cipher: Option<TokenCipher>,
    /// From `GHOSTTRACK_SECRET_KEY_PREVIOUS`: still opens tokens sealed before the secret
    /// changed, until `ghosttrack keys rotate` re-seals them.
    pub previous_cipher: Option<TokenCipher>,
    /// Key for our own cookies (OAuth state), derived from the server secret, never the client secret.
    pub cookie_key: Option<[u8; 32]>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("GHOSTTRACK_SHOPIFY_API_KEY is set but GHOSTTRACK_SHOPIFY_API_SECRET is not (set both, or neither)")]
    MissingSecret,
    #[error("GHOSTTRACK_SHOPIFY_API_SECRET is set but GHOSTTRACK_SHOPIFY_API_KEY is not (set both, or neither)")]
    MissingKey,
    #[error("GHOSTTRACK_SHOPIFY_API_BASE must contain `{{shop}}`, e.g. https://{{shop}}")]
    BadApiBase,
    #[error(transparent)]
    SecretKey(#[from] CipherError),
}

impl ShopifyConfig {
    /// `Ok(None)` when Shopify is not configured at all.
    pub fn from_settings(settings: &Settings) -> Result<Option<Self>, ConfigError> {
        let (api_key, secret) = match (&settings.shopify_api_key, &settings.shopify_api_secret) {
            (None, None) => return Ok(None),
            (Some(_), None) => return Err(ConfigError::MissingSecret),
            (None, Some(_)) => return Err(ConfigError::MissingKey),
            (Some(k), Some(s)) => (k.clone(), s.clone()),
        };
        if !settings.shopify_api_base.contains("{shop}") {
            return Err(ConfigError::BadApiBase);
        }
        let cipher = settings.secret_key.as_ref().map(|k| TokenCipher::new(k.expose())).transpose()?;
        let previous_cipher =
            settings.secret_key_previous.as_ref().map(|k| TokenCipher::new(k.expose())).transpose()?;
        let cookie_key = settings.secret_key.as_ref().map(|k| signing::derive_key(k.expose().as_bytes(), "cookie/v1"));
        Ok(Some(ShopifyConfig {
            api_key,
            secrets: SecretSet::new(secret, settings.shopify_api_secret_previous.clone()),
            api_base: settings.shopify_api_base.trim_end_matches('/').to_owned(),
            app_url: settings.app_url.clone(),
            cipher,
            previous_cipher,
            cookie_key,
        }))
    }

    /// With a test `api_base` (the fake Shopify, which also serves the admin page framing the
    /// app), that origin; `None` with the real `https://{shop}`.
    pub fn test_admin_origin(&self) -> Option<String> {
        let base = url::Url::parse(&self.api_base.replace("{shop}", "shop.invalid")).ok()?;
        (base.host_str() != Some("shop.invalid")).then(|| base.origin().ascii_serialization())
    }

    /// Base URL of calls to one shop, e.g. `https://acme.myshopify.com`.
    pub fn shop_base(&self, shop: &ShopDomain) -> String {
        self.api_base.replace("{shop}", shop.as_str())
    }
}

/// `Content-Security-Policy` for an HTML response framed by a shop's admin (spec §6.2), or
/// `frame-ancestors 'none'` when no verified shop is known.
pub fn frame_ancestors(shop: Option<&ShopDomain>) -> String {
    match shop {
        Some(shop) => format!("frame-ancestors {} https://admin.shopify.com;", shop.origin()),
        None => "frame-ancestors 'none';".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Secret;

    #[test]
    fn shopify_is_optional_but_half_a_configuration_is_an_error() {
        let mut s = Settings::default();
        assert!(ShopifyConfig::from_settings(&s).unwrap().is_none());
        s.shopify_api_key = Some("key".into());
        assert!(matches!(ShopifyConfig::from_settings(&s), Err(ConfigError::MissingSecret)));
        s.shopify_api_secret = Some(Secret::new("secret"));
        let c = ShopifyConfig::from_settings(&s).unwrap().unwrap();
        assert!(c.cipher.is_none());
        assert_eq!(c.shop_base(&ShopDomain::parse("acme.myshopify.com").unwrap()), "https://acme.myshopify.com");
        s.shopify_api_base = "http://127.0.0.1:4000/{shop}/".into();
        s.secret_key = Some(Secret::new("0123456789abcdef0123456789abcdef"));
        let c = ShopifyConfig::from_settings(&s).unwrap().unwrap();
        assert!(c.cipher.is_some());
        assert_eq!(
            c.shop_base(&ShopDomain::parse("acme.myshopify.com").unwrap()),
            "http://127.0.0.1:4000/acme.myshopify.com"
        );
        s.shopify_api_base = "https://example.com".into();
        assert!(matches!(ShopifyConfig::from_settings(&s), Err(ConfigError::BadApiBase)));
    }

    #[test]
    fn csp_names_the_sanitized_shop_and_the_admin() {
        let shop = ShopDomain::parse("acme.myshopify.com").unwrap();
        assert_eq!(
            frame_ancestors(Some(&shop)),
            "frame-ancestors https://acme.myshopify.com https://admin.shopify.com;"
        );
        assert_eq!(frame_ancestors(None), "frame-ancestors 'none';");
    }
}
