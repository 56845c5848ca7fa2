//! The master keys: the key derived from `GHOSTTRACK_SECRET_KEY` seals, and the one derived from
//! `GHOSTTRACK_SECRET_KEY_PREVIOUS` (if set) still opens what was sealed before the secret
//! changed. Every sealed value carries the id of the key that sealed it, so the right key is
//! chosen without trial decryption and a rotation can tell old rows from new.

use crate::settings::Settings;
use crate::shopify::token_cipher::{CipherError, Sealed, TokenCipher};

#[derive(Debug)]
pub struct MasterKeys {
    current: TokenCipher,
    previous: Option<TokenCipher>,
}

impl MasterKeys {
    pub fn new(current: &str, previous: Option<&str>) -> Result<Self, CipherError> {
        let current = TokenCipher::new(current)?;
        let previous = previous.map(TokenCipher::new).transpose()?.filter(|p| p.key_id() != current.key_id());
        Ok(MasterKeys { current, previous })
    }

    /// `None` without `secret_key`.
    pub fn from_settings(settings: &Settings) -> Result<Option<Self>, CipherError> {
        settings
            .secret_key
            .as_ref()
            .map(|k| MasterKeys::new(k.expose(), settings.secret_key_previous.as_ref().map(|p| p.expose())))
            .transpose()
    }

    /// The key that seals new values.
    pub fn current(&self) -> &TokenCipher {
        &self.current
    }

    pub fn previous(&self) -> Option<&TokenCipher> {
        self.previous.as_ref()
    }

    /// Opens a value sealed under the current or the previous master key.
    pub fn open(&self, context: &str, sealed: &Sealed) -> Result<String, CipherError> {
        match &self.previous {
            Some(p) if p.key_id() == sealed.key_id => p.open(context, sealed),
            _ => self.current.open(context, sealed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "0123456789abcdef0123456789abcdef";
    const NEW: &str = "fedcba9876543210fedcba9876543210";

    #[test]
    fn the_previous_secret_still_opens_what_it_sealed_and_new_values_use_the_current_one() {
        let before = MasterKeys::new(OLD, None).unwrap();
        let sealed = before.current().seal("ctx", "v");
        let after = MasterKeys::new(NEW, Some(OLD)).unwrap();
        assert_eq!(after.open("ctx", &sealed).unwrap(), "v");
        assert_ne!(after.current().seal("ctx", "v").key_id, sealed.key_id);
        let without = MasterKeys::new(NEW, None).unwrap();
        assert_eq!(without.open("ctx", &sealed), Err(CipherError::UnknownKey(sealed.key_id.clone())));
    }
}
