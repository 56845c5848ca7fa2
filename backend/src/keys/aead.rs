//! The one AES-256-GCM seal/open used for everything GhostTrack encrypts at rest (shop tokens,
//! alert destinations, wrapped data keys, event payloads): a fresh random 96-bit nonce per
//! message, stored as `nonce ‖ ciphertext ‖ tag`, and associated data that binds the
//! ciphertext to its tenant and purpose.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;

const NONCE_LEN: usize = 12;
/// Bytes of a key.
pub const KEY_LEN: usize = 32;

/// A 256-bit AES-GCM key ready to seal and open.
#[derive(Clone)]
pub struct AeadKey(Aes256Gcm);

impl std::fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AeadKey(..)")
    }
}

/// Opening failed: wrong key, wrong associated data, or a tampered or truncated ciphertext
/// (AES-GCM does not say which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFailed;

impl AeadKey {
    pub fn new(key: &[u8; KEY_LEN]) -> Self {
        AeadKey(Aes256Gcm::new_from_slice(key).expect("32-byte key"))
    }

    /// A fresh random key (a tenant's data key).
    pub fn generate() -> [u8; KEY_LEN] {
        let mut key = [0u8; KEY_LEN];
        rand::rng().fill_bytes(&mut key);
        key
    }

    /// `nonce ‖ ciphertext ‖ tag` of `msg` bound to `aad`.
    pub fn seal(&self, aad: &[u8], msg: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .0
            .encrypt(&Nonce::from(nonce), Payload { msg, aad })
            // Only fails past AES-GCM's 64 GiB message limit.
            .expect("AES-GCM encryption of an in-memory message cannot fail");
        let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    /// The plaintext of a [`seal`](Self::seal) output, if `aad` and the key match.
    pub fn open(&self, aad: &[u8], raw: &[u8]) -> Result<Vec<u8>, OpenFailed> {
        if raw.len() <= NONCE_LEN {
            return Err(OpenFailed);
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| OpenFailed)?;
        self.0.decrypt(&Nonce::from(nonce), Payload { msg: ciphertext, aad }).map_err(|_| OpenFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_bytes_open_only_with_the_same_key_and_associated_data() {
        let key = AeadKey::new(&AeadKey::generate());
        let sealed = key.seal(b"site:1", b"hello");
        assert_eq!(key.open(b"site:1", &sealed).unwrap(), b"hello");
        assert_eq!(key.open(b"site:2", &sealed), Err(OpenFailed));
        assert_eq!(AeadKey::new(&AeadKey::generate()).open(b"site:1", &sealed), Err(OpenFailed));
        assert_eq!(key.open(b"site:1", &sealed[..NONCE_LEN]), Err(OpenFailed));
        let mut tampered = sealed.clone();
        tampered[NONCE_LEN] ^= 1;
        assert_eq!(key.open(b"site:1", &tampered), Err(OpenFailed));
        assert_ne!(key.seal(b"site:1", b"hello"), sealed, "a fresh nonce every time");
    }
}
