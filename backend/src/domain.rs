//! Typed identifiers and small value types shared by every module. A bare `i64` or `String`
//! in a signature is a smell: these newtypes make a site id impossible to pass as a session id.

use std::fmt;

use rand::Rng;
use rand::distr::Alphanumeric;
use sea_orm::DeriveValueType;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Internal id of a tenant (a site or shop).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, DeriveValueType)]
pub struct SiteId(pub i64);

/// Keyed hash identifying a visitor for one day on one site. Never reversible to IP or UA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, DeriveValueType)]
pub struct VisitorId(pub i64);

/// Random id of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, DeriveValueType)]
pub struct SessionId(pub i64);

impl SessionId {
    /// Random low bits under the start time: ids of new sessions sort by time, so inserts land
    /// at the right edge of the primary key and of the (site, session) event index instead of
    /// on random pages (which multiplied the pages each group commit writes to the WAL).
    pub fn new(started_at: UnixMillis) -> Self {
        let millis = started_at.0.clamp(0, (1 << 43) - 1);
        SessionId((millis << 20) | rand::rng().random_range(0..1 << 20))
    }
}

/// Id of an alert channel (`alert_channels.id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, DeriveValueType)]
pub struct AlertChannelId(pub i64);

/// Milliseconds since the Unix epoch, UTC: the one timestamp representation in storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, DeriveValueType)]
pub struct UnixMillis(pub i64);

impl UnixMillis {
    pub const DAY: i64 = 86_400_000;

    pub fn now() -> Self {
        UnixMillis(chrono::Utc::now().timestamp_millis())
    }

    /// Days since the epoch (UTC): the key of the daily salt.
    pub fn day(self) -> i32 {
        self.0.div_euclid(Self::DAY) as i32
    }

    pub fn to_rfc3339(self) -> String {
        chrono::DateTime::from_timestamp_millis(self.0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default()
    }
}

impl From<chrono::DateTime<chrono::Utc>> for UnixMillis {
    fn from(t: chrono::DateTime<chrono::Utc>) -> Self {
        UnixMillis(t.timestamp_millis())
    }
}

/// Public key of a site, embedded in pages (`gt_` + 20 alphanumerics). Not a secret.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, DeriveValueType)]
pub struct SiteKey(String);

impl SiteKey {
    const PREFIX: &'static str = "gt_";

    pub fn generate() -> Self {
        SiteKey(format!("{}{}", Self::PREFIX, random_alphanumeric(20)))
    }

    /// Accepts what could be a key; anything else cannot name a site and is rejected early.
    pub fn parse(raw: &str) -> Option<Self> {
        let body = raw.strip_prefix(Self::PREFIX)?;
        (8..=60)
            .contains(&body.len())
            .then_some(())
            .filter(|_| body.bytes().all(|b| b.is_ascii_alphanumeric()))
            .map(|_| SiteKey(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SiteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A per-site API token (`gtk_` + 40 alphanumerics). Shown once; only its hash is stored.
#[derive(Clone)]
pub struct ApiToken(secrecy::SecretString);

impl ApiToken {
    pub fn generate() -> Self {
        ApiToken(format!("gtk_{}", random_alphanumeric(40)).into())
    }

    pub fn from_presented(raw: &str) -> Self {
        ApiToken(raw.to_owned().into())
    }

    pub fn expose(&self) -> &str {
        secrecy::ExposeSecret::expose_secret(&self.0)
    }

    /// SHA-256 hex of the token: what the database keeps. Tokens have 238 bits of entropy,
    /// so a fast unsalted hash is the right tool (as for GitHub-style API tokens).
    pub fn hash(&self) -> ApiTokenHash {
        ApiTokenHash(hex::encode(Sha256::digest(self.expose().as_bytes())))
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(***)")
    }
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveValueType)]
pub struct ApiTokenHash(pub String);

/// How much a site collects about its visitors (see DESIGN.md §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PrivacyMode {
    Strict,
    #[default]
    Balanced,
    Forensic,
}

impl PrivacyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PrivacyMode::Strict => "strict",
            PrivacyMode::Balanced => "balanced",
            PrivacyMode::Forensic => "forensic",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "strict" => Some(PrivacyMode::Strict),
            "balanced" => Some(PrivacyMode::Balanced),
            "forensic" => Some(PrivacyMode::Forensic),
            _ => None,
        }
    }
}

fn random_alphanumeric(len: usize) -> String {
    rand::rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_site_keys_parse_and_garbage_does_not() {
        let key = SiteKey::generate();
        assert_eq!(SiteKey::parse(key.as_str()), Some(key));
        for bad in ["", "gt_", "gt_short", "xx_abcdefghijkl", "gt_abc def ghijk", "gt_<script>alert</script>"] {
            assert_eq!(SiteKey::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn api_token_hash_is_stable_and_debug_hides_the_token() {
        let token = ApiToken::generate();
        assert_eq!(token.hash(), ApiToken::from_presented(token.expose()).hash());
        assert!(!format!("{token:?}").contains(token.expose()));
    }

    #[test]
    fn session_ids_are_positive_and_ordered_by_start_time() {
        let earlier = SessionId::new(UnixMillis(1_795_000_000_000));
        let later = SessionId::new(UnixMillis(1_795_000_000_001));
        assert!(earlier.0 > 0 && earlier < later);
    }

    #[test]
    fn day_is_utc_days_since_epoch() {
        assert_eq!(UnixMillis(0).day(), 0);
        assert_eq!(UnixMillis(86_400_000 - 1).day(), 0);
        assert_eq!(UnixMillis(86_400_000).day(), 1);
        assert_eq!(UnixMillis(-1).day(), -1);
    }
}
