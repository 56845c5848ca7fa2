//! Passwords: the policy new passwords must meet, and argon2id hashing with OWASP's
//! parameters. Hashing costs ~19 MiB and tens of milliseconds of CPU, so it runs on the
//! blocking pool (`spawn_blocking`), never on the async runtime's workers.

use std::sync::LazyLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

/// Shortest password accepted (NIST SP 800-63B allows 8; we ask more of the people who hold
/// a whole site's analytics).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted: bounds the hashing work one request can cause.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// OWASP Password Storage Cheat Sheet, argon2id: m = 19 MiB, t = 2, p = 1.
const ARGON2_MEMORY_KIB: u32 = 19_456;
const ARGON2_ITERATIONS: u32 = 2;
const ARGON2_PARALLELISM: u32 = 1;

/// A password as typed; never logged.
#[derive(Clone)]
pub struct Password(SecretString);

impl Password {
    pub fn new(raw: impl Into<String>) -> Self {
        Password(SecretString::from(raw.into()))
    }

    fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Checks a new password against the policy (existing passwords are only verified).
    pub fn check_policy(&self) -> Result<(), PasswordPolicyError> {
        let pw = self.expose();
        if pw.len() > MAX_PASSWORD_BYTES {
            return Err(PasswordPolicyError::TooLong);
        }
        if pw.chars().count() < MIN_PASSWORD_CHARS {
            return Err(PasswordPolicyError::TooShort);
        }
        if pw.chars().all(|c| pw.starts_with(c)) {
            return Err(PasswordPolicyError::OneRepeatedCharacter);
        }
        Ok(())
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordPolicyError {
    #[error(
        "the password is too short: use at least {MIN_PASSWORD_CHARS} characters (a passphrase of a few words is easiest)"
    )]
    TooShort,
    #[error("the password is too long: at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    #[error("the password repeats one character; choose a passphrase")]
    OneRepeatedCharacter,
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the hashing task did not finish")]
    Join,
}

/// An argon2id PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordHashString(pub String);

fn argon2() -> Argon2<'static> {
    let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, ARGON2_PARALLELISM, None)
        .expect("the OWASP argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_blocking(password: &Password) -> Result<PasswordHashString, HashError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| HashError::Hash(e.to_string()))?;
    let hash =
        argon2().hash_password(password.expose().as_bytes(), &salt).map_err(|e| HashError::Hash(e.to_string()))?;
    Ok(PasswordHashString(hash.to_string()))
}

/// A hash no password matches in practice: verified against when the email is unknown, so an
/// unknown email costs the same work as a wrong password.
static DUMMY_HASH: LazyLock<PasswordHashString> = LazyLock::new(|| {
    let mut random = [0u8; 32];
    rand::rng().fill_bytes(&mut random);
    hash_blocking(&Password::new(hex::encode(random))).expect("hashing a random password")
});

fn verify_blocking(password: &Password, hash: &PasswordHashString) -> bool {
    match PasswordHash::new(&hash.0) {
        Ok(parsed) => argon2().verify_password(password.expose().as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// Hashes a new password with argon2id and a random salt, off the async runtime.
pub async fn hash(password: Password) -> Result<PasswordHashString, HashError> {
    tokio::task::spawn_blocking(move || hash_blocking(&password)).await.map_err(|_| HashError::Join)?
}

/// Whether `password` matches `hash` (`None`: verify against a dummy hash and return false,
/// so unknown accounts take as long as known ones).
pub async fn verify(password: Password, hash: Option<PasswordHashString>) -> Result<bool, HashError> {
    tokio::task::spawn_blocking(move || match hash {
        Some(hash) => verify_blocking(&password, &hash),
        None => {
            verify_blocking(&password, &DUMMY_HASH);
            false
        }
    })
    .await
    .map_err(|_| HashError::Join)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case("correct horse battery", Ok(()))]
    #[case("exactly12chr", Ok(()))]
    #[case("élan vital é", Ok(()))]
    #[case("11charsxxxx", Err(PasswordPolicyError::TooShort))]
    #[case("", Err(PasswordPolicyError::TooShort))]
    #[case("aaaaaaaaaaaaaaaa", Err(PasswordPolicyError::OneRepeatedCharacter))]
    fn new_passwords_meet_the_policy(#[case] raw: &str, #[case] expected: Result<(), PasswordPolicyError>) {
        assert_eq!(Password::new(raw).check_policy(), expected);
    }

    #[test]
    fn overlong_passwords_are_refused_before_hashing() {
        assert_eq!(Password::new("ab".repeat(600)).check_policy(), Err(PasswordPolicyError::TooLong));
    }

    #[tokio::test]
    async fn a_hash_is_argon2id_with_owasp_parameters_and_verifies_only_its_password() {
        let hash = hash(Password::new("correct horse battery")).await.unwrap();
        assert!(hash.0.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{}", hash.0);
        assert!(verify(Password::new("correct horse battery"), Some(hash.clone())).await.unwrap());
        assert!(!verify(Password::new("correct horse battery!"), Some(hash.clone())).await.unwrap());
        let again = super::hash(Password::new("correct horse battery")).await.unwrap();
        assert_ne!(hash, again, "salted");
    }

    #[tokio::test]
    async fn an_unknown_account_never_verifies() {
        assert!(!verify(Password::new("anything at all"), None).await.unwrap());
    }

    #[test]
    fn debug_hides_the_password() {
        assert!(!format!("{:?}", Password::new("correct horse battery")).contains("horse"));
    }
}
