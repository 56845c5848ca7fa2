//! Alert channels: the destination of each kind (sealed at rest), and how an alert is rendered
//! and sent to it. Every delivery carries its idempotency key (`Idempotency-Key` header,
//! email `Message-ID`), so a receiver can drop the duplicate a lost acknowledgement causes.

pub mod chat;
pub mod email;
pub mod webhook;

use serde::{Deserialize, Serialize};

use super::engine::Alert;

/// Where a channel delivers, as sealed in `alert_channels.sealed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Destination {
    Email { to: Vec<String> },
    Slack { url: String },
    Discord { url: String },
    Webhook { url: String, secret: String },
}

impl Destination {
    pub fn kind(&self) -> &'static str {
        match self {
            Destination::Email { .. } => "email",
            Destination::Slack { .. } => "slack",
            Destination::Discord { .. } => "discord",
            Destination::Webhook { .. } => "webhook",
        }
    }

    /// A form safe to show in the panel and in logs: addresses in full (they are the
    /// merchant's own), URLs by host only (their path is the credential).
    pub fn display(&self) -> String {
        let host =
            |url: &str| url::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
        match self {
            Destination::Email { to } => to.join(", "),
            Destination::Slack { url } | Destination::Discord { url } | Destination::Webhook { url, .. } => {
                format!("{}/…", host(url))
            }
        }
    }
}

/// One alert on its way to one channel.
#[derive(Clone, Debug)]
pub struct Envelope<'a> {
    pub alert: &'a Alert,
    pub alert_id: &'a str,
    pub idempotency_key: &'a str,
    /// The site's domain, for subjects and titles.
    pub site: &'a str,
    /// Absolute panel link (`<public_url>/app/sessions/<id>`).
    pub link: String,
    /// Absolute unsubscribe URL (email channels).
    pub unsubscribe: Option<String>,
}

/// Why a delivery failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Worth retrying (network, 5xx, 429, SMTP 4xx).
    #[error("{0}")]
    Transient(String),
    /// Will never succeed as configured (4xx, SMTP 5xx, bad destination): dead-letter at once.
    #[error("{0}")]
    Permanent(String),
}

/// Classifies an HTTP answer of a webhook receiver.
pub fn http_outcome(status: reqwest::StatusCode) -> Result<(), DeliveryError> {
    if status.is_success() {
        Ok(())
    } else if status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
    {
        Err(DeliveryError::Transient(format!("receiver answered {status}")))
    } else {
        Err(DeliveryError::Permanent(format!("receiver answered {status}")))
    }
}

/// POSTs a JSON body with the idempotency key and any extra headers.
pub async fn post_json(
    http: &reqwest::Client,
    url: &str,
    body: String,
    idempotency_key: &str,
    headers: &[(&str, String)],
) -> Result<(), DeliveryError> {
    let mut req = http
        .post(url)
        .header("content-type", "application/json")
        .header("user-agent", concat!("GhostTrack-Alerts/", env!("CARGO_PKG_VERSION")))
        .header("idempotency-key", idempotency_key)
        .body(body);
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    let resp = req.send().await.map_err(|e| {
        // reqwest's error text can include the URL, whose path is a credential: keep the kind.
        let kind = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "connection failed"
        } else {
            "request failed"
        };
        DeliveryError::Transient(format!("webhook {kind}"))
    })?;
    http_outcome(resp.status())
}

/// Validates a channel URL: https to a public host. With `allow_private` (self-hosted installs
/// and tests: `alerts.allow_private_targets`) loopback and private addresses are accepted too, and
/// plain http to loopback. Without it, a tenant cannot aim the server at its own network (SSRF);
/// host names are not resolved here, so a public name pointing inward is not caught.
pub fn check_url(raw: &str, allow_private: bool) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|_| "is not a URL".to_owned())?;
    let host = url.host().ok_or_else(|| "has no host".to_owned())?;
    let (loopback, private) = match &host {
        url::Host::Domain(d) => {
            let local = *d == "localhost" || d.ends_with(".localhost");
            (local, local || d.ends_with(".internal") || d.ends_with(".local"))
        }
        url::Host::Ipv4(ip) => (
            ip.is_loopback(),
            ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified() || ip.is_broadcast(),
        ),
        url::Host::Ipv6(ip) => {
            let seg = ip.segments()[0];
            let internal = (seg & 0xfe00) == 0xfc00 || (seg & 0xffc0) == 0xfe80;
            (ip.is_loopback(), ip.is_loopback() || ip.is_unspecified() || internal)
        }
    };
    if private && !allow_private {
        return Err("must not point to a loopback or private address".into());
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback && allow_private => Ok(()),
        _ => Err("must be an https:// URL".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_by_host_only_must_be_https_and_public_unless_private_targets_are_allowed() {
        let d = Destination::Slack { url: "https://hooks.slack.com/services/T0/B0/secretpart".into() };
        assert_eq!(d.display(), "hooks.slack.com/…");
        assert!(check_url("https://example.com/hook", false).is_ok());
        assert_eq!(check_url("http://example.com/hook", false), Err("must be an https:// URL".into()));
        assert_eq!(check_url("not a url", false), Err("is not a URL".into()));
        for inward in [
            "http://127.0.0.1:9000/h",
            "https://10.1.2.3/h",
            "https://[::1]/h",
            "https://localhost/h",
            "https://169.254.169.254/h",
            "https://[fd00::1]/h",
        ] {
            assert_eq!(
                check_url(inward, false),
                Err("must not point to a loopback or private address".into()),
                "{inward}"
            );
        }
        // Allowed on self-hosted installs and in tests; plain http only to loopback.
        assert!(check_url("http://127.0.0.1:9000/hook", true).is_ok());
        assert!(check_url("https://10.1.2.3/h", true).is_ok());
        assert_eq!(check_url("http://10.1.2.3/h", true), Err("must be an https:// URL".into()));
    }

    #[test]
    fn http_answers_are_classified_for_retry() {
        use reqwest::StatusCode as S;
        assert_eq!(http_outcome(S::NO_CONTENT), Ok(()));
        assert!(matches!(http_outcome(S::BAD_GATEWAY), Err(DeliveryError::Transient(_))));
        assert!(matches!(http_outcome(S::TOO_MANY_REQUESTS), Err(DeliveryError::Transient(_))));
        assert!(matches!(http_outcome(S::NOT_FOUND), Err(DeliveryError::Permanent(_))));
    }
}
