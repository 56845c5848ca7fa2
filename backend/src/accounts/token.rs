//! Random secrets handed to a browser (session cookies, invitation links) and what the server
//! keeps of them. A secret is 256 random bits, base64url; only its SHA-256 is stored. With that
//! much entropy a fast unsalted hash is the right tool: nothing is left to brute-force.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Bytes of randomness in every secret (256 bits).
const SECRET_BYTES: usize = 32;
/// Length of the base64url text of a secret.
const SECRET_CHARS: usize = 43;
/// Domain separation: the CSRF token is a different function of the session secret than the
/// stored hash, so neither reveals the other.
const CSRF_CONTEXT: &[u8] = b"ghosttrack csrf v1\0";

/// A session cookie value or an invitation token.
#[derive(Clone)]
pub struct SecretToken(SecretString);

/// Hex SHA-256 of a `SecretToken`: what the database stores and looks up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenHash(pub String);

impl SecretToken {
    pub fn generate() -> Self {
        let mut bytes = [0u8; SECRET_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        SecretToken(URL_SAFE_NO_PAD.encode(bytes).into())
    }

    /// A presented value; `None` when it cannot be one we issued (wrong length or alphabet),
    /// which spares the database a lookup.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let ok = raw.len() == SECRET_CHARS && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| SecretToken(raw.to_owned().into()))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(hex::encode(Sha256::digest(self.expose().as_bytes())))
    }

    /// The CSRF token bound to this session secret. Deterministic, so `GET /me` can hand the
    /// panel the same token again after a reload, and nothing extra is stored.
    pub fn csrf_token(&self) -> String {
        let mut h = Sha256::new();
        h.update(CSRF_CONTEXT);
        h.update(self.expose().as_bytes());
        URL_SAFE_NO_PAD.encode(h.finalize())
    }

    /// Whether `presented` is this session's CSRF token (constant-time comparison).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        let expected = self.csrf_token();
        expected.len() == presented.len() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
    }
}

impl std::fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretToken(***)")
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[test]
    fn generated_tokens_parse_are_distinct_and_hash_to_64_hex_chars() {
        let a = SecretToken::generate();
        let b = SecretToken::generate();
        assert_ne!(a.expose(), b.expose());
        let parsed = SecretToken::parse(a.expose()).expect("a generated token parses");
        assert_eq!(parsed.hash(), a.hash());
        assert_eq!(a.hash().0.len(), 64);
        assert!(a.hash().0.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn the_stored_hash_is_sha256_of_the_token_text() {
        let token = SecretToken::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        assert_eq!(token.hash().0, hex::encode(Sha256::digest(b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")));
    }

    #[rstest]
    #[case("")]
    #[case("short")]
    #[case("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    #[case("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    #[case("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")]
    #[case("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA;")]
    fn values_we_never_issue_do_not_parse(#[case] raw: &str) {
        assert!(SecretToken::parse(raw).is_none());
    }

    #[test]
    fn the_csrf_token_is_bound_to_its_session_and_differs_from_the_stored_hash() {
        let a = SecretToken::generate();
        let b = SecretToken::generate();
        assert!(a.csrf_matches(&a.csrf_token()));
        assert!(!a.csrf_matches(&b.csrf_token()));
        assert!(!a.csrf_matches(""));
        assert_ne!(a.csrf_token(), a.hash().0);
        assert_ne!(a.csrf_token(), a.expose());
    }
}
