//! Shop tokens: install from a verified id token (token exchange), and hand out a usable access
//! token, refreshing it before expiry. Refreshes are serialized per shop: in this process by a
//! per-shop async lock, across nodes by a compare-and-set on `token_version` (the loser of a
//! race re-reads the winner's tokens). Shopify invalidates a refresh token as soon as it is
//! used, so two concurrent refreshes would lose the shop (spec §1.7, §10 fact 6).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use sea_orm::DatabaseConnection;
use secrecy::{ExposeSecret, SecretString};

use super::ShopifyConfig;
use super::oauth::{self, OAuthError, TokenResponse};
use super::shop_domain::ShopDomain;
use super::token_cipher::{CipherError, Sealed, TokenCipher};
use crate::domain::UnixMillis;
use crate::storage::StorageError;
use crate::storage::shops::{self, Shop, StoredTokens};

/// Refresh when the access token has less than this left (JS-RR `WITHIN_MILLISECONDS_OF_EXPIRY`).
pub const REFRESH_MARGIN_MS: i64 = 5 * 60 * 1000;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("GHOSTTRACK_SECRET_KEY is not set: shop tokens cannot be stored")]
    NoSecretKey,
    #[error("the shop is not installed")]
    NotInstalled,
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    #[error(transparent)]
    Cipher(#[from] CipherError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the shop's tokens kept changing under a refresh; try again")]
    RefreshRace,
}

/// Token flows of one server.
pub struct Tokens {
    config: Arc<ShopifyConfig>,
    http: reqwest::Client,
    db: DatabaseConnection,
    locks: Mutex<HashMap<ShopDomain, Arc<tokio::sync::Mutex<()>>>>,
}

fn context(shop: &ShopDomain, kind: &str) -> String {
    format!("{shop}/{kind}")
}

impl Tokens {
    pub fn new(config: Arc<ShopifyConfig>, http: reqwest::Client, db: DatabaseConnection) -> Self {
        Tokens { config, http, db, locks: Mutex::new(HashMap::new()) }
    }

    fn cipher(&self) -> Result<&TokenCipher, TokenError> {
        self.config.cipher.as_ref().ok_or(TokenError::NoSecretKey)
    }

    fn lock_for(&self, shop: &ShopDomain) -> Arc<tokio::sync::Mutex<()>> {
        self.locks.lock().entry(shop.clone()).or_default().clone()
    }

    fn seal(&self, shop: &ShopDomain, resp: &TokenResponse, now: UnixMillis) -> Result<StoredTokens, TokenError> {
        let cipher = self.cipher()?;
        let access = cipher.seal(&context(shop, "access"), resp.access_token.expose_secret());
        let refresh = resp.refresh_token.as_ref().map(|r| cipher.seal(&context(shop, "refresh"), r.expose_secret()));
        Ok(StoredTokens {
            key_id: access.key_id,
            access_token: access.ciphertext,
            access_expires_at: resp.expires_in.map(|s| UnixMillis(now.0 + s * 1000)),
            refresh_token: refresh.map(|r| r.ciphertext),
            refresh_expires_at: resp.refresh_token_expires_in.map(|s| UnixMillis(now.0 + s * 1000)),
        })
    }

    /// Returns the installed shop, running token exchange first when the shop has no usable
    /// token (new install, reinstall after `app/uninstalled`, refresh token expired). The
    /// id token must already be verified and name `shop`.
    pub async fn ensure_installed(&self, shop: &ShopDomain, id_token: &str) -> Result<Shop, TokenError> {
        let lock = self.lock_for(shop);
        let _guard = lock.lock().await;
        let now = UnixMillis::now();
        if let Some(existing) = shops::find(&self.db, shop).await? {
            let usable = existing.active
                && existing.tokens.as_ref().is_some_and(|t| {
                    t.key_id == self.cipher().map(|c| c.key_id()).unwrap_or_default()
                        && t.refresh_expires_at.is_none_or(|at| at.0 > now.0 + REFRESH_MARGIN_MS)
                })
                && existing.scope.is_some();
            if usable {
                return Ok(existing);
            }
        }
        let resp = oauth::exchange_id_token(&self.http, &self.config, shop, id_token).await?;
        let sealed = self.seal(shop, &resp, now)?;
        let installed = shops::install(&self.db, shop, resp.scope.as_deref(), &sealed).await?;
        tracing::info!(shop = %shop, token_version = installed.token_version, "shop installed via token exchange");
        Ok(installed)
    }

    /// Stores tokens obtained by the authorization-code grant (a fresh install or reinstall).
    pub async fn install_with(&self, shop: &ShopDomain, resp: &TokenResponse) -> Result<Shop, TokenError> {
        let lock = self.lock_for(shop);
        let _guard = lock.lock().await;
        let sealed = self.seal(shop, resp, UnixMillis::now())?;
        let installed = shops::install(&self.db, shop, resp.scope.as_deref(), &sealed).await?;
        tracing::info!(shop = %shop, token_version = installed.token_version, "shop installed via authorization code");
        Ok(installed)
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// A usable access token for Admin API calls, refreshed first if it expires within
    /// [`REFRESH_MARGIN_MS`].
    pub async fn access_token(&self, shop: &ShopDomain) -> Result<SecretString, TokenError> {
        let lock = self.lock_for(shop);
        let _guard = lock.lock().await;
        let cipher = self.cipher()?;
        // Bounded: each round either returns or observed another node's newer tokens.
        for _ in 0..3 {
            let current = shops::find(&self.db, shop).await?.filter(|s| s.active).ok_or(TokenError::NotInstalled)?;
            let tokens = current.tokens.clone().ok_or(TokenError::NotInstalled)?;
            let now = UnixMillis::now();
            let fresh = tokens.access_expires_at.is_none_or(|at| at.0 > now.0 + REFRESH_MARGIN_MS);
            // Tokens sealed before a change of the server secret open with the previous key.
            let sealer = match &self.config.previous_cipher {
                Some(previous) if previous.key_id() == tokens.key_id => previous,
                _ => cipher,
            };
            let open = |ciphertext: &str, kind: &str| {
                sealer.open(
                    &context(shop, kind),
                    &Sealed { key_id: tokens.key_id.clone(), ciphertext: ciphertext.to_owned() },
                )
            };
            if fresh {
                return Ok(SecretString::from(open(&tokens.access_token, "access")?));
            }
            let refresh_token = tokens.refresh_token.as_deref().ok_or(TokenError::NotInstalled)?;
            let refresh_token = SecretString::from(open(refresh_token, "refresh")?);
            let resp = oauth::refresh(&self.http, &self.config, shop, &refresh_token).await?;
            let sealed = self.seal(shop, &resp, now)?;
            if shops::replace_tokens_if_version(&self.db, current.id, current.token_version, &sealed).await? {
                tracing::info!(shop = %shop, token_version = current.token_version + 1, "access token refreshed");
                return Ok(resp.access_token);
            }
            tracing::info!(shop = %shop, "another node refreshed first; using its tokens");
        }
        Err(TokenError::RefreshRace)
    }
}
