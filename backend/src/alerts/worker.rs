//! The delivery worker: claims due outbox rows with a lease, sends each to its channel, and
//! records the outcome — delivered, retried later (exponential backoff with jitter), or moved
//! to the dead letters after `alerts.max_attempts` or a permanent error. It also runs the
//! periodic alert step (roll-ups, digests, traffic) every `alerts.tick_interval_ms`.
//! Any number of nodes may run it: claims are atomic and a node that dies loses its lease.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use sea_orm::{DatabaseConnection, DbErr, EntityTrait};
use tokio::sync::{Notify, watch};

use super::channels::email::Mailer;
use super::channels::{self, DeliveryError, Destination, Envelope, chat, webhook};
use super::engine::Alert;
use super::invitation;
use super::service;
use crate::domain::UnixMillis;
use crate::settings::{AlertSettings, Settings};
use crate::shopify::token_cipher::TokenCipher;
use crate::storage::alerts::{self as store, DeliveryRow};
use crate::storage::entities::sites;
use crate::telemetry::metrics::{Metrics, Outcome};

/// Deliveries claimed per round (sent concurrently, so well within one lease).
const CLAIM_BATCH: u64 = 16;
/// Delivered outbox rows are kept this long for the panel's delivery list, then pruned.
pub const DELIVERED_RETENTION_MS: i64 = 30 * 86_400_000;

pub struct Worker {
    db: DatabaseConnection,
    settings: AlertSettings,
    public_url: url::Url,
    cipher: Option<TokenCipher>,
    unsubscribe_key: Option<[u8; 32]>,
    http: reqwest::Client,
    mailer: Mailer,
    metrics: Arc<Metrics>,
}

impl Worker {
    pub fn new(db: DatabaseConnection, settings: &Settings, metrics: Arc<Metrics>) -> anyhow::Result<Worker> {
        anyhow::ensure!(
            settings.alerts.lease_ms > settings.alerts.send_timeout_secs.saturating_mul(1000),
            "alerts.lease_ms ({}) must exceed alerts.send_timeout_secs ({} s), or a slow delivery could be sent twice",
            settings.alerts.lease_ms,
            settings.alerts.send_timeout_secs
        );
        let secret = settings.secret_key.as_ref().map(|s| s.expose());
        let cipher = secret.map(TokenCipher::new).transpose()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.alerts.send_timeout_secs))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Worker {
            db,
            settings: settings.alerts.clone(),
            public_url: settings.public_url(),
            cipher,
            unsubscribe_key: secret.map(service::unsubscribe_key),
            http,
            mailer: Mailer::new(&settings.alerts)?,
            metrics,
        })
    }

    /// Delivers and ticks until `stopped` flips; `notify` wakes it for new rows.
    pub async fn run(self, notify: Arc<Notify>, mut stopped: watch::Receiver<bool>) {
        let poll = Duration::from_millis(self.settings.poll_interval_ms.max(10));
        let tick_every = self.settings.tick_interval_ms.max(100) as i64;
        // The first periodic step comes one interval after start.
        let mut last_tick = UnixMillis::now().0;
        loop {
            let now = UnixMillis::now();
            if now.0 - last_tick >= tick_every {
                last_tick = now.0;
                if let Err(error) = self.tick(now).await {
                    tracing::warn!(error = %error, "alert tick failed; will retry");
                }
            }
            loop {
                match self.deliver_due(UnixMillis::now()).await {
                    Ok(n) if n as u64 == CLAIM_BATCH => continue,
                    Ok(_) => break,
                    Err(error) => {
                        tracing::warn!(error = %error, "alert outbox claim failed; will retry");
                        break;
                    }
                }
            }
            tokio::select! {
                _ = notify.notified() => {}
                _ = tokio::time::sleep(poll) => {}
                _ = stopped.changed() => break,
            }
        }
    }

    /// The periodic step of every tenant that has something due, and outbox pruning.
    pub async fn tick(&self, now: UnixMillis) -> Result<usize, DbErr> {
        let pruned = store::prune_delivered(&self.db, UnixMillis(now.0 - DELIVERED_RETENTION_MS)).await?;
        if pruned > 0 {
            tracing::info!(deliveries.pruned = pruned, "old delivered alerts pruned");
        }
        let mut written = super::record::enqueue_billing_notices(&self.db, now).await?;
        for (site, policy, state) in store::all_states(&self.db).await? {
            if super::record::needs_tick(policy.as_deref(), &state, now) {
                written += super::record::tick_site(&self.db, site, now).await?;
            }
        }
        Ok(written)
    }

    /// Claims and delivers one batch of due rows; returns how many were claimed.
    pub async fn deliver_due(&self, now: UnixMillis) -> Result<usize, DbErr> {
        let token = format!("{:016x}", rand::rng().random::<u64>());
        let lease = self.settings.lease_ms as i64;
        let rows = store::claim_due(&self.db, now, lease, CLAIM_BATCH, &token).await?;
        let n = rows.len();
        let outcomes = futures_util::future::join_all(rows.iter().map(|row| self.deliver(row))).await;
        for (row, outcome) in rows.iter().zip(outcomes) {
            self.finish(row, &token, outcome).await?;
        }
        Ok(n)
    }

    async fn finish(&self, row: &DeliveryRow, token: &str, outcome: Result<(), DeliveryError>) -> Result<(), DbErr> {
        let now = UnixMillis::now();
        let fields = (row.id, row.site_id.0, row.channel_id.0, row.attempts);
        match outcome {
            Ok(()) => {
                self.metrics.alert_deliveries.get_or_create(&Outcome { outcome: "delivered" }).inc();
                if !store::mark_delivered(&self.db, row.id, token, now).await? {
                    tracing::warn!(delivery.id = fields.0, "alert sent but the claim had expired");
                }
                tracing::info!(delivery.id = fields.0, site.id = fields.1, channel.id = fields.2, kind = %row.kind, "alert delivered");
            }
            Err(error) => {
                let permanent = matches!(error, DeliveryError::Permanent(_));
                let retry = (!permanent && (row.attempts as u32) < self.settings.max_attempts)
                    .then(|| UnixMillis(now.0 + backoff_ms(&self.settings, row.attempts)));
                store::mark_failed(&self.db, row.id, token, &error.to_string(), retry).await?;
                let outcome = if retry.is_some() { "retry" } else { "dead" };
                self.metrics.alert_deliveries.get_or_create(&Outcome { outcome }).inc();
                if retry.is_some() {
                    tracing::warn!(delivery.id = fields.0, channel.id = fields.2, attempts = fields.3, error = %error, "alert delivery failed; will retry");
                } else {
                    tracing::error!(delivery.id = fields.0, channel.id = fields.2, attempts = fields.3, error = %error, "alert delivery moved to the dead letters");
                }
            }
        }
        Ok(())
    }

    async fn deliver(&self, row: &DeliveryRow) -> Result<(), DeliveryError> {
        if row.kind == invitation::KIND {
            return self.deliver_invitation(row).await;
        }
        let db_err = |e: DbErr| DeliveryError::Transient(format!("database: {e}"));
        let channel = store::channel_of_delivery(&self.db, row)
            .await
            .map_err(db_err)?
            .ok_or_else(|| DeliveryError::Permanent("the channel was deleted".into()))?;
        if !channel.enabled {
            return Err(DeliveryError::Permanent("the channel is disabled (unsubscribed)".into()));
        }
        let cipher = self.cipher.as_ref().ok_or_else(|| {
            DeliveryError::Transient("secret_key is not set; channel secrets cannot be opened".into())
        })?;
        let destination = service::open_destination(cipher, &channel)
            .map_err(|e| DeliveryError::Permanent(format!("cannot open the channel: {e}")))?;
        let alert: Alert = serde_json::from_str(&row.payload)
            .map_err(|e| DeliveryError::Permanent(format!("unreadable alert payload: {e}")))?;
        let site = sites::Entity::find_by_id(row.site_id)
            .one(&self.db)
            .await
            .map_err(db_err)?
            .map(|s| s.domain)
            .unwrap_or_default();
        let link = self.public_url.join(&alert.link_path).map(|u| u.to_string()).unwrap_or_default();
        let unsubscribe = match (&destination, &self.unsubscribe_key) {
            (Destination::Email { .. }, Some(key)) => Some(service::unsubscribe_url(&self.public_url, key, channel.id)),
            _ => None,
        };
        let env = Envelope {
            alert: &alert,
            alert_id: &row.alert_id,
            idempotency_key: &row.idempotency_key,
            site: &site,
            link,
            unsubscribe,
        };
        match &destination {
            Destination::Email { to } => self.mailer.send(to, &env).await,
            Destination::Slack { url } => {
                channels::post_json(&self.http, url, chat::slack_body(&env).to_string(), env.idempotency_key, &[]).await
            }
            Destination::Discord { url } => {
                channels::post_json(&self.http, url, chat::discord_body(&env).to_string(), env.idempotency_key, &[])
                    .await
            }
            Destination::Webhook { url, secret } => {
                let body = webhook::body(&env).to_string();
                let ts = chrono::Utc::now().timestamp();
                let headers = [
                    (webhook::TIMESTAMP_HEADER, ts.to_string()),
                    (webhook::SIGNATURE_HEADER, webhook::signature(secret, ts, &body)),
                ];
                channels::post_json(&self.http, url, body, env.idempotency_key, &headers).await
            }
        }
    }
}

impl Worker {
    /// An invitation email: the sealed payload opened with the server key, sent to the invitee.
    async fn deliver_invitation(&self, row: &DeliveryRow) -> Result<(), DeliveryError> {
        let cipher = self
            .cipher
            .as_ref()
            .ok_or_else(|| DeliveryError::Transient("secret_key is not set; the invitation cannot be opened".into()))?;
        let email = invitation::open(cipher, row.site_id.0, &row.alert_id, &row.payload).ok_or_else(|| {
            DeliveryError::Permanent("the invitation email does not open with this server key".into())
        })?;
        self.mailer.send_invitation(&email, &row.idempotency_key).await
    }
}

/// Delay before the attempt after `attempts`: `retry_base_ms × 2^(attempts−1)`, capped at
/// `retry_max_ms`, then "equal jitter" (a uniform draw in the upper half) so a burst of
/// failures does not retry in lockstep.
pub fn backoff_ms(settings: &AlertSettings, attempts: i32) -> i64 {
    let exp = attempts.clamp(1, 30) - 1;
    let full = settings.retry_base_ms.saturating_mul(1u64 << exp).min(settings.retry_max_ms).max(1);
    let half = full / 2;
    (half + rand::rng().random_range(0..=full - half)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_in_the_upper_half_and_is_capped() {
        let s = AlertSettings { retry_base_ms: 1_000, retry_max_ms: 60_000, ..AlertSettings::default() };
        for _ in 0..200 {
            let first = backoff_ms(&s, 1);
            assert!((500..=1_000).contains(&first), "{first}");
            let fourth = backoff_ms(&s, 4);
            assert!((4_000..=8_000).contains(&fourth), "{fourth}");
            let late = backoff_ms(&s, 20);
            assert!((30_000..=60_000).contains(&late), "{late}");
        }
    }
}
