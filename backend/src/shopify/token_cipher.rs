//! Shop access and refresh tokens encrypted at rest: AES-256-GCM with a key derived from
//! `GHOSTTRACK_SECRET_KEY`. Each ciphertext is stored with the id of the key that sealed it
//! (so a key rotation can tell old rows from new ones) and is bound to its shop and purpose
//! through the associated data, so a ciphertext copied to another shop's row does not decrypt.
//! The same key, as the master key, wraps tenants' event data keys (`keys::master`).

use base64::Engine;
use sha2::{Digest, Sha256};

use super::signing::derive_key;
use crate::keys::aead::AeadKey;

/// Smallest accepted `GHOSTTRACK_SECRET_KEY`, in bytes.
pub const MIN_SECRET_KEY_BYTES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    #[error(
        "GHOSTTRACK_SECRET_KEY must be at least {MIN_SECRET_KEY_BYTES} bytes (generate one with `openssl rand -hex 32`)"
    )]
    KeyTooShort,
    #[error("the token was sealed with key `{0}`, which is not the configured GHOSTTRACK_SECRET_KEY")]
    UnknownKey(String),
    #[error("the stored token cannot be decrypted (corrupt, or sealed for another shop)")]
    Corrupt,
}

/// A sealed token as stored: base64(nonce ‖ ciphertext ‖ tag) and the key id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub ciphertext: String,
}

pub struct TokenCipher {
    cipher: AeadKey,
    key_id: String,
}

impl std::fmt::Debug for TokenCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenCipher(key_id={})", self.key_id)
    }
}

impl TokenCipher {
    pub fn new(secret_key: &str) -> Result<Self, CipherError> {
        if secret_key.len() < MIN_SECRET_KEY_BYTES {
            return Err(CipherError::KeyTooShort);
        }
        let key = derive_key(secret_key.as_bytes(), "token-encryption/v1");
        // The key id is a fingerprint of the derived key: public, stable, and different for
        // every secret.
        let key_id = format!("k1-{}", &hex::encode(Sha256::digest(key))[..12]);
        let cipher = AeadKey::new(&key);
        Ok(TokenCipher { cipher, key_id })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Encrypts `plaintext` bound to `context` (e.g. `acme.myshopify.com/access`).
    pub fn seal(&self, context: &str, plaintext: &str) -> Sealed {
        let raw = self.cipher.seal(context.as_bytes(), plaintext.as_bytes());
        Sealed { key_id: self.key_id.clone(), ciphertext: base64::engine::general_purpose::STANDARD.encode(raw) }
    }

    pub fn open(&self, context: &str, sealed: &Sealed) -> Result<String, CipherError> {
        if sealed.key_id != self.key_id {
            return Err(CipherError::UnknownKey(sealed.key_id.clone()));
        }
        let raw =
            base64::engine::general_purpose::STANDARD.decode(&sealed.ciphertext).map_err(|_| CipherError::Corrupt)?;
        let plain = self.cipher.open(context.as_bytes(), &raw).map_err(|_| CipherError::Corrupt)?;
        String::from_utf8(plain).map_err(|_| CipherError::Corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn sealed_tokens_round_trip_and_do_not_contain_the_plaintext() {
        let c = TokenCipher::new(KEY).unwrap();
        let sealed = c.seal("acme.myshopify.com/access", "shpat_secret_value");
        assert!(!sealed.ciphertext.contains("shpat"));
        assert_eq!(c.open("acme.myshopify.com/access", &sealed).unwrap(), "shpat_secret_value");
        // A fresh nonce every time.
        assert_ne!(c.seal("acme.myshopify.com/access", "shpat_secret_value"), sealed);
    }

    #[test]
    fn a_ciphertext_moved_to_another_shop_or_purpose_does_not_open() {
        let c = TokenCipher::new(KEY).unwrap();
        let sealed = c.seal("acme.myshopify.com/access", "shpat_x");
        assert_eq!(c.open("other.myshopify.com/access", &sealed), Err(CipherError::Corrupt));
        assert_eq!(c.open("acme.myshopify.com/refresh", &sealed), Err(CipherError::Corrupt));
        let mut tampered = sealed.clone();
        tampered.ciphertext.replace_range(20..21, if &tampered.ciphertext[20..21] == "A" { "B" } else { "A" });
        assert_eq!(c.open("acme.myshopify.com/access", &tampered), Err(CipherError::Corrupt));
    }

    #[test]
    fn another_secret_key_is_detected_by_its_key_id() {
        let a = TokenCipher::new(KEY).unwrap();
        let b = TokenCipher::new("another-secret-key-of-32-bytes-or-more").unwrap();
        assert_ne!(a.key_id(), b.key_id());
        let sealed = a.seal("ctx", "t");
        assert_eq!(b.open("ctx", &sealed), Err(CipherError::UnknownKey(a.key_id().to_owned())));
        assert_eq!(TokenCipher::new("short").unwrap_err(), CipherError::KeyTooShort);
    }
}
