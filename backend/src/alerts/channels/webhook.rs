//! The generic webhook: a JSON body signed with HMAC-SHA256 over `timestamp + "." + body`
//! (headers `GhostTrack-Timestamp` and `GhostTrack-Signature: v1=<hex>`). docs/ALERTS.md has the
//! verification recipe.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::Envelope;

pub const TIMESTAMP_HEADER: &str = "GhostTrack-Timestamp";
pub const SIGNATURE_HEADER: &str = "GhostTrack-Signature";
/// Prefix of generated signing secrets.
pub const SECRET_PREFIX: &str = "whsec_";

pub fn body(env: &Envelope<'_>) -> Value {
    let a = env.alert;
    json!({
        "id": env.alert_id,
        "type": a.kind.as_str(),
        "site": env.site,
        "title": a.title,
        "summary": a.summary,
        "details": a.details,
        "subject": a.subject,
        "decision": a.decision,
        "score": a.score,
        "suppressed": a.suppressed,
        "at": chrono::DateTime::from_timestamp_millis(a.at).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        "link": env.link,
    })
}

/// `v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// A new signing secret: `whsec_` + 32 random bytes in hex.
pub fn generate_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_dot_body() {
        // Known answer computed with: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test
        assert_eq!(
            signature("whsec_test", 1_700_000_000, r#"{"a":1}"#),
            "v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
    }
}
