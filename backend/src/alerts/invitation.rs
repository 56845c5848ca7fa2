//! The invitation email: one message to the invitee with the accept link, sent through the
//! alert outbox (claimed and delivered by the alert worker with its retries, backoff and dead
//! letters). The outbox row carries no channel (`channel_id` = [`NO_CHANNEL`]); its payload is
//! the message's content sealed with the server key (AES-256-GCM, bound to the site and the
//! invitation), because the accept link holds the invitation's secret token: the database only
//! ever stores the token's hash in clear. Nothing here logs the link or the token.

use sea_orm::{ConnectionTrait, DbErr, EntityTrait};
use serde::{Deserialize, Serialize};

use crate::domain::{AlertChannelId, UnixMillis};
use crate::settings::Settings;
use crate::shopify::token_cipher::{Sealed, TokenCipher};
use crate::storage::TenantScope;
use crate::storage::alerts::{self as store, NewDelivery};
use crate::storage::entities::sites;

/// `alert_outbox.kind` of an invitation email.
pub const KIND: &str = "invitation";
/// `alert_outbox.channel_id` of a message addressed to a person, not to a channel.
pub const NO_CHANNEL: i64 = 0;

/// What the email says (sealed in the outbox row).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct InvitationEmail {
    pub to: String,
    pub site: String,
    pub role: String,
    pub accept_url: String,
    pub expires_at: i64,
}

/// Whether the invitation email was queued; when not, why (shown to the inviter, who then
/// sends the link themselves).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EmailStatus {
    Queued,
    NotSent(&'static str),
}

pub const NO_SMTP: &str = "no SMTP server is configured (alerts.smtp_host): send the link to the invitee yourself";
pub const NO_WORKER: &str = "the email worker is off (alerts.enabled = false): send the link to the invitee yourself";
pub const NO_SECRET: &str =
    "GHOSTTRACK_SECRET_KEY is not set, so the link cannot be stored sealed for sending: send it yourself";

fn context(site: i64, invitation: i64) -> String {
    format!("invitation-email/site:{site}/{invitation}")
}

/// Queues the invitation email (when the server can send email) and says what happened.
/// `email.site` is filled in from the tenant's site.
pub async fn enqueue(
    db: &impl ConnectionTrait,
    settings: &Settings,
    scope: TenantScope,
    invitation_id: i64,
    mut email: InvitationEmail,
) -> Result<EmailStatus, DbErr> {
    if settings.alerts.smtp_host.is_none() {
        return Ok(EmailStatus::NotSent(NO_SMTP));
    }
    if !settings.alerts.enabled {
        return Ok(EmailStatus::NotSent(NO_WORKER));
    }
    let Some(cipher) = settings.secret_key.as_ref().and_then(|s| TokenCipher::new(s.expose()).ok()) else {
        return Ok(EmailStatus::NotSent(NO_SECRET));
    };
    email.site = sites::Entity::find_by_id(scope.site_id()).one(db).await?.map(|s| s.domain).unwrap_or_default();
    let site_id = scope.site_id();
    let sealed = cipher.seal(&context(site_id.0, invitation_id), &serde_json::to_string(&email).unwrap_or_default());
    let payload = serde_json::json!({ "key_id": sealed.key_id, "ciphertext": sealed.ciphertext }).to_string();
    let delivery = NewDelivery {
        site_id,
        channel_id: AlertChannelId(NO_CHANNEL),
        alert_id: format!("invitation-{invitation_id}"),
        kind: KIND.into(),
        payload,
        idempotency_key: format!("gt-invitation-{invitation_id}"),
    };
    store::enqueue(db, &[delivery], UnixMillis::now()).await?;
    Ok(EmailStatus::Queued)
}

/// Opens an invitation row's payload (`None`: unreadable with this key).
pub fn open(cipher: &TokenCipher, site: i64, invitation_alert_id: &str, payload: &str) -> Option<InvitationEmail> {
    let id: i64 = invitation_alert_id.strip_prefix("invitation-")?.parse().ok()?;
    let v: serde_json::Value = serde_json::from_str(payload).ok()?;
    let sealed = Sealed { key_id: v["key_id"].as_str()?.to_owned(), ciphertext: v["ciphertext"].as_str()?.to_owned() };
    serde_json::from_str(&cipher.open(&context(site, id), &sealed).ok()?).ok()
}

pub fn subject(email: &InvitationEmail) -> String {
    format!("You are invited to {} on GhostTrack", email.site)
}

fn expiry(email: &InvitationEmail) -> String {
    chrono::DateTime::from_timestamp_millis(email.expires_at)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// The plain-text part.
pub fn text_body(email: &InvitationEmail) -> String {
    format!(
        "You are invited to GhostTrack\n=============================\n\n\
         You have been invited to see {site}'s traffic and threats in GhostTrack as {role}.\n\n\
         Accept the invitation and choose your password (the link works once, until {expiry}):\n\
         {url}\n\n\
         If you did not expect this email, ignore it: nothing happens until the link is used.\n",
        site = email.site,
        role = email.role,
        expiry = expiry(email),
        url = email.accept_url,
    )
}

/// The HTML part.
pub fn html_body(email: &InvitationEmail) -> String {
    let e = super::channels::email::escape;
    format!(
        "<html><body style=\"font-family:sans-serif\"><h2>You are invited to GhostTrack</h2>\
         <p>You have been invited to see <strong>{site}</strong>'s traffic and threats in GhostTrack as \
         <strong>{role}</strong>.</p>\
         <p><a href=\"{url}\">Accept the invitation and choose your password</a></p>\
         <p style=\"color:#666;font-size:12px\">The link works once, until {expiry}. If you did not expect \
         this email, ignore it: nothing happens until the link is used.</p></body></html>",
        site = e(&email.site),
        role = e(&email.role),
        url = e(&email.accept_url),
        expiry = e(&expiry(email)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> InvitationEmail {
        InvitationEmail {
            to: "dora@a.example".into(),
            site: "a.example".into(),
            role: "analyst".into(),
            accept_url: "https://gt.example/app/accept-invitation#token=abc&x<y".into(),
            expires_at: 1_800_000_000_000,
        }
    }

    #[test]
    fn the_email_names_the_site_the_role_the_link_and_its_expiry_in_both_parts() {
        let m = email();
        assert_eq!(subject(&m), "You are invited to a.example on GhostTrack");
        let text = text_body(&m);
        assert!(text.contains("a.example's traffic and threats in GhostTrack as analyst"), "{text}");
        assert!(text.contains("\nhttps://gt.example/app/accept-invitation#token=abc&x<y\n"), "{text}");
        assert!(text.contains("until 2027-01-15 08:00 UTC"), "{text}");
        let html = html_body(&m);
        assert!(html.contains("<a href=\"https://gt.example/app/accept-invitation#token=abc&amp;x&lt;y\">"), "{html}");
        assert!(html.contains("<strong>analyst</strong>"), "{html}");
    }

    #[test]
    fn the_sealed_payload_opens_only_for_its_site_and_invitation_and_hides_the_link() {
        let cipher = TokenCipher::new("0123456789abcdef0123456789abcdef-invite").unwrap();
        let m = email();
        let sealed = cipher.seal(&context(7, 42), &serde_json::to_string(&m).unwrap());
        let payload = serde_json::json!({ "key_id": sealed.key_id, "ciphertext": sealed.ciphertext }).to_string();
        assert!(!payload.contains("token=abc") && !payload.contains("dora"), "{payload}");
        assert_eq!(open(&cipher, 7, "invitation-42", &payload), Some(m));
        assert_eq!(open(&cipher, 8, "invitation-42", &payload), None, "another site");
        assert_eq!(open(&cipher, 7, "invitation-43", &payload), None, "another invitation");
    }
}
