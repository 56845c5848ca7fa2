//! Email alerts through SMTP (lettre): STARTTLS, implicit TLS or plain (local relays), text and
//! HTML bodies, `Message-ID` from the idempotency key, `List-Unsubscribe` (+ one-click POST,
//! RFC 8058) and a link to the session in the panel.

use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{DeliveryError, Envelope};
use crate::settings::{AlertSettings, SmtpTls};

/// The SMTP side of the worker; `None` transport when no `alerts.smtp_host` is set.
pub struct Mailer {
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
    /// Right-hand side of `Message-ID`s.
    domain: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    #[error("alerts.email_from `{0}` is not a mailbox (e.g. GhostTrack <alerts@example.com>)")]
    From(String),
    #[error("alerts.smtp_ca_file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("alerts.smtp_host: {0}")]
    Tls(String),
}

impl Mailer {
    pub fn new(settings: &AlertSettings) -> Result<Mailer, MailerError> {
        let from: Mailbox = settings.email_from.parse().map_err(|_| MailerError::From(settings.email_from.clone()))?;
        let domain = from.email.domain().to_owned();
        let Some(host) = settings.smtp_host.as_deref() else {
            return Ok(Mailer { transport: None, from, domain });
        };
        let tls = match settings.smtp_tls {
            SmtpTls::None => Tls::None,
            mode => {
                let mut params = TlsParameters::builder(host.to_owned());
                if let Some(path) = &settings.smtp_ca_file {
                    let ca_err = |reason: String| MailerError::CaFile { path: path.display().to_string(), reason };
                    let pem = std::fs::read(path).map_err(|e| ca_err(e.to_string()))?;
                    params =
                        params.add_root_certificate(Certificate::from_pem(&pem).map_err(|e| ca_err(e.to_string()))?);
                }
                let params = params.build().map_err(|e| MailerError::Tls(e.to_string()))?;
                if mode == SmtpTls::Tls { Tls::Wrapper(params) } else { Tls::Required(params) }
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(settings.smtp_port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(settings.send_timeout_secs)));
        if let (Some(user), Some(password)) = (&settings.smtp_username, &settings.smtp_password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        Ok(Mailer { transport: Some(builder.build()), from, domain })
    }

    pub async fn send(&self, to: &[String], env: &Envelope<'_>) -> Result<(), DeliveryError> {
        let message = self.message(to, env)?;
        self.send_message(message).await
    }

    /// Sends the invitation email (`alerts::invitation`) to the invitee.
    pub async fn send_invitation(
        &self,
        email: &crate::alerts::invitation::InvitationEmail,
        idempotency_key: &str,
    ) -> Result<(), DeliveryError> {
        let message = self.invitation_message(email, idempotency_key)?;
        self.send_message(message).await
    }

    /// The invitation message (public for tests of headers and bodies).
    pub fn invitation_message(
        &self,
        email: &crate::alerts::invitation::InvitationEmail,
        idempotency_key: &str,
    ) -> Result<Message, DeliveryError> {
        use crate::alerts::invitation;
        let to: Mailbox = email
            .to
            .parse()
            .map_err(|_| DeliveryError::Permanent("the invitee's address is not an email address".into()))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(invitation::subject(email))
            .message_id(Some(format!("<{idempotency_key}@{}>", self.domain)))
            .multipart(MultiPart::alternative_plain_html(invitation::text_body(email), invitation::html_body(email)))
            .map_err(|e| DeliveryError::Permanent(format!("cannot build the email: {e}")))
    }

    async fn send_message(&self, message: Message) -> Result<(), DeliveryError> {
        let Some(transport) = &self.transport else {
            return Err(DeliveryError::Transient("no SMTP server configured (set alerts.smtp_host)".into()));
        };
        transport.send(message).await.map(|_| ()).map_err(|e| {
            // Server replies can echo the recipient; the error is stored and logged.
            let text = crate::alerts::redact::scrub(&format!("SMTP: {e}"));
            if e.is_permanent() { DeliveryError::Permanent(text) } else { DeliveryError::Transient(text) }
        })
    }

    /// The full message (public for tests of headers and bodies).
    pub fn message(&self, to: &[String], env: &Envelope<'_>) -> Result<Message, DeliveryError> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(format!("[GhostTrack] {} — {}", env.alert.title, env.site))
            .message_id(Some(format!("<{}@{}>", env.idempotency_key, self.domain)));
        for address in to {
            let mailbox: Mailbox = address
                .parse()
                .map_err(|_| DeliveryError::Permanent(format!("`{address}` is not an email address")))?;
            builder = builder.to(mailbox);
        }
        if let Some(url) = &env.unsubscribe {
            builder = builder
                .raw_header(header("List-Unsubscribe", format!("<{url}>")))
                .raw_header(header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".into()));
        }
        builder = builder.raw_header(header("X-GhostTrack-Alert", env.alert_id.to_owned()));
        builder
            .multipart(MultiPart::alternative_plain_html(text_body(env), html_body(env)))
            .map_err(|e| DeliveryError::Permanent(format!("cannot build the email: {e}")))
    }
}

fn header(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
}

/// The plain-text part.
pub fn text_body(env: &Envelope<'_>) -> String {
    let a = env.alert;
    let mut out = format!("{}\n{}\n\n{}\n", a.title, "=".repeat(a.title.chars().count()), a.summary);
    out.push_str(&format!("\nSite: {}\n", env.site));
    if let Some(subject) = &a.subject {
        out.push_str(&format!("Subject: {subject}\n"));
    }
    if let (Some(decision), Some(score)) = (&a.decision, a.score) {
        out.push_str(&format!("Decision: {decision} (score {score})\n"));
    }
    if let Some(at) = chrono::DateTime::from_timestamp_millis(a.at) {
        out.push_str(&format!("When: {}\n", at.format("%Y-%m-%d %H:%M:%S UTC")));
    }
    if !a.details.is_empty() {
        out.push('\n');
        for d in &a.details {
            out.push_str(&format!("- {d}\n"));
        }
    }
    if a.suppressed > 0 {
        out.push_str(&format!(
            "\n{} similar alerts were suppressed by the cooldown since the last one.\n",
            a.suppressed
        ));
    }
    out.push_str(&format!("\nOpen in GhostTrack: {}\n", env.link));
    if let Some(url) = &env.unsubscribe {
        out.push_str(&format!(
            "\n--\nYou receive this because this address is an alert channel of {}.\nUnsubscribe: {url}\n",
            env.site
        ));
    }
    out
}

/// The HTML part (every interpolated value escaped).
pub fn html_body(env: &Envelope<'_>) -> String {
    let a = env.alert;
    let e = escape;
    let mut out = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\"><h2>{}</h2><p>{}</p><table>",
        e(&a.title),
        e(&a.summary)
    );
    out.push_str(&format!("<tr><td>Site</td><td>{}</td></tr>", e(env.site)));
    if let Some(subject) = &a.subject {
        out.push_str(&format!("<tr><td>Subject</td><td>{}</td></tr>", e(subject)));
    }
    if let (Some(decision), Some(score)) = (&a.decision, a.score) {
        out.push_str(&format!("<tr><td>Decision</td><td>{} (score {score})</td></tr>", e(decision)));
    }
    out.push_str("</table>");
    if !a.details.is_empty() {
        out.push_str("<ul>");
        for d in &a.details {
            out.push_str(&format!("<li>{}</li>", e(d)));
        }
        out.push_str("</ul>");
    }
    if a.suppressed > 0 {
        out.push_str(&format!(
            "<p>{} similar alerts were suppressed by the cooldown since the last one.</p>",
            a.suppressed
        ));
    }
    out.push_str(&format!("<p><a href=\"{}\">Open in GhostTrack</a></p>", e(&env.link)));
    if let Some(url) = &env.unsubscribe {
        out.push_str(&format!("<p style=\"color:#666;font-size:12px\"><a href=\"{}\">Unsubscribe</a></p>", e(url)));
    }
    out.push_str("</body></html>");
    out
}

pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
