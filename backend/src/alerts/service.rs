//! What the Alerts API calls: read and replace the policy, manage channels (destinations sealed
//! with the server key), queue a test alert, list deliveries, retry a dead letter, and the
//! unsubscribe link of email channels.

use sea_orm::{DatabaseConnection, DbErr};

use super::channels::{self, Destination, webhook};
use super::policy::{AlertPolicy, PolicyError};
use crate::domain::{AlertChannelId, UnixMillis};
use crate::shopify::signing::{derive_key, sign_with_key, verify_with_key};
use crate::shopify::token_cipher::{Sealed, TokenCipher};
use crate::storage::TenantScope;
use crate::storage::alerts::{self as store, ChannelRow, DeliveryRow, NewChannel, Retry};

/// Most recipients of one email channel.
pub const MAX_EMAIL_RECIPIENTS: usize = 10;
/// Longest channel name.
pub const MAX_CHANNEL_NAME: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    #[error("{0}")]
    Invalid(PolicyError),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("secret_key is not configured; alert channels are encrypted with it (set GHOSTTRACK_SECRET_KEY)")]
    NoSecretKey,
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

fn invalid(field: &str, message: impl Into<String>) -> AlertsError {
    AlertsError::Invalid(PolicyError { field: field.into(), message: message.into() })
}

pub async fn policy(db: &DatabaseConnection, scope: TenantScope) -> Result<AlertPolicy, AlertsError> {
    Ok(match store::policy(db, scope).await? {
        Some(json) => serde_json::from_str(&json).unwrap_or_default(),
        None => AlertPolicy::default(),
    })
}

/// Validates and stores a policy; the first invalid field is the error.
pub async fn put_policy(
    db: &DatabaseConnection,
    scope: TenantScope,
    policy: AlertPolicy,
) -> Result<AlertPolicy, AlertsError> {
    if let Err(mut errors) = policy.validate() {
        return Err(AlertsError::Invalid(errors.remove(0)));
    }
    let json = serde_json::to_string(&policy).unwrap_or_default();
    store::save_policy(db, scope, &json, UnixMillis::now()).await?;
    Ok(policy)
}

/// Input of a new channel: `email` needs `to`, the others `url`.
#[derive(Debug, Clone)]
pub struct ChannelInput {
    pub kind: String,
    pub name: String,
    pub to: Vec<String>,
    pub url: Option<String>,
    /// `alerts.allow_private_targets`: accept loopback/private webhook hosts.
    pub allow_private: bool,
}

/// Creates a channel; for webhooks also returns the generated signing secret (shown once).
pub async fn create_channel(
    db: &DatabaseConnection,
    cipher: Option<&TokenCipher>,
    scope: TenantScope,
    input: ChannelInput,
) -> Result<(ChannelRow, Option<String>), AlertsError> {
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > MAX_CHANNEL_NAME {
        return Err(invalid("name", format!("must be 1 to {MAX_CHANNEL_NAME} characters")));
    }
    let url = || -> Result<String, AlertsError> {
        let url =
            input.url.clone().ok_or_else(|| invalid("url", format!("is required for {} channels", input.kind)))?;
        channels::check_url(&url, input.allow_private).map_err(|m| invalid("url", m))?;
        Ok(url)
    };
    let mut secret = None;
    let destination = match input.kind.as_str() {
        "email" => {
            if input.to.is_empty() || input.to.len() > MAX_EMAIL_RECIPIENTS {
                return Err(invalid("to", format!("needs 1 to {MAX_EMAIL_RECIPIENTS} addresses")));
            }
            for (i, a) in input.to.iter().enumerate() {
                if a.parse::<lettre::Address>().is_err() {
                    return Err(invalid(&format!("to[{i}]"), format!("`{a}` is not an email address")));
                }
            }
            Destination::Email { to: input.to.clone() }
        }
        "slack" => Destination::Slack { url: url()? },
        "discord" => Destination::Discord { url: url()? },
        "webhook" => {
            let s = webhook::generate_secret();
            secret = Some(s.clone());
            Destination::Webhook { url: url()?, secret: s }
        }
        other => {
            return Err(invalid("kind", format!("unknown channel kind `{other}` (email, slack, discord, webhook)")));
        }
    };
    let cipher = cipher.ok_or(AlertsError::NoSecretKey)?;
    let sealed = seal_destination(cipher, scope.site_id().0, &destination);
    let row = store::insert_channel(
        db,
        scope,
        &NewChannel {
            kind: destination.kind(),
            name,
            display: &destination.display(),
            key_id: &sealed.key_id,
            sealed: &sealed.ciphertext,
        },
        UnixMillis::now(),
    )
    .await?;
    Ok((row, secret))
}

/// The associated data a channel's destination is sealed with (also `keys::rotate`).
pub(crate) fn destination_context(site_id: i64) -> String {
    format!("alert-channel/{site_id}")
}

pub fn seal_destination(cipher: &TokenCipher, site_id: i64, d: &Destination) -> Sealed {
    cipher.seal(&destination_context(site_id), &serde_json::to_string(d).unwrap_or_default())
}

/// Decrypts a channel's destination (bound to its site: a row copied to another site fails).
pub fn open_destination(cipher: &TokenCipher, row: &ChannelRow) -> Result<Destination, String> {
    let sealed = Sealed { key_id: row.key_id.clone(), ciphertext: row.sealed.clone() };
    let json = cipher.open(&destination_context(row.site_id.0), &sealed).map_err(|e| e.to_string())?;
    serde_json::from_str(&json).map_err(|e| e.to_string())
}

pub async fn channels(db: &DatabaseConnection, scope: TenantScope) -> Result<Vec<ChannelRow>, AlertsError> {
    Ok(store::channels(db, scope).await?)
}

pub async fn delete_channel(
    db: &DatabaseConnection,
    scope: TenantScope,
    id: AlertChannelId,
) -> Result<(), AlertsError> {
    if store::delete_channel(db, scope, id).await? { Ok(()) } else { Err(AlertsError::NotFound) }
}

/// Queues a test alert to one channel; returns its alert id.
pub async fn send_test(db: &DatabaseConnection, scope: TenantScope, id: AlertChannelId) -> Result<String, AlertsError> {
    let channel = store::channel(db, scope, id).await?.ok_or(AlertsError::NotFound)?;
    if !channel.enabled {
        return Err(AlertsError::Conflict("the channel is disabled (unsubscribed); create it again".into()));
    }
    Ok(super::record::enqueue_test(db, &channel, UnixMillis::now()).await?)
}

pub async fn deliveries(
    db: &DatabaseConnection,
    scope: TenantScope,
    status: Option<&str>,
    limit: u64,
) -> Result<Vec<DeliveryRow>, AlertsError> {
    Ok(store::deliveries(db, scope, status, limit).await?)
}

pub async fn retry(db: &DatabaseConnection, scope: TenantScope, id: i64) -> Result<(), AlertsError> {
    match store::retry_dead(db, scope, id, UnixMillis::now()).await? {
        Retry::Queued => Ok(()),
        Retry::NotFound => Err(AlertsError::NotFound),
        Retry::NotDead => Err(AlertsError::Conflict("only dead deliveries can be retried".into())),
    }
}

/// Key of unsubscribe tokens, derived from the server secret.
pub fn unsubscribe_key(secret_key: &str) -> [u8; 32] {
    derive_key(secret_key.as_bytes(), "alerts-unsubscribe/v1")
}

fn unsubscribe_message(channel: AlertChannelId) -> String {
    format!("unsubscribe/{}", channel.0)
}

pub fn unsubscribe_url(public_url: &url::Url, key: &[u8; 32], channel: AlertChannelId) -> String {
    let token = sign_with_key(key, unsubscribe_message(channel).as_bytes());
    let mut url = public_url.join("/api/v1/alerts/unsubscribe").expect("static path joins");
    url.query_pairs_mut().append_pair("channel", &channel.0.to_string()).append_pair("token", &token);
    url.to_string()
}

/// Disables the channel when the token is its unsubscribe token.
pub async fn unsubscribe(
    db: &DatabaseConnection,
    secret_key: Option<&str>,
    channel: AlertChannelId,
    token: &str,
) -> Result<(), AlertsError> {
    let key = unsubscribe_key(secret_key.ok_or(AlertsError::NoSecretKey)?);
    if !verify_with_key(&key, unsubscribe_message(channel).as_bytes(), token) {
        return Err(AlertsError::NotFound);
    }
    if store::disable_channel(db, channel).await? { Ok(()) } else { Err(AlertsError::NotFound) }
}
