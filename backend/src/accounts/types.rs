//! Typed ids and the normalised email of standalone accounts.

use std::fmt;

use sea_orm::DeriveValueType;
use serde::{Deserialize, Serialize};

/// Internal id of a standalone user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, DeriveValueType)]
pub struct UserId(pub i64);

/// Internal id of a login session (never the cookie value).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, DeriveValueType)]
pub struct AccountSessionId(pub i64);

/// Internal id of an invitation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, DeriveValueType)]
pub struct InvitationId(pub i64);

/// An email address, trimmed and lowercased so `Ann@Example.com ` and `ann@example.com` are
/// one account. Personal data: never logged (its `Debug` is redacted).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize, DeriveValueType)]
pub struct Email(String);

/// Longest address SMTP can carry (RFC 5321 path limit).
const MAX_EMAIL_LEN: usize = 254;

impl Email {
    /// Accepts `local@domain` with a dot-free-or-dotted domain, no spaces, at most 254 bytes.
    pub fn parse(raw: &str) -> Option<Email> {
        let email = raw.trim().to_lowercase();
        let (local, domain) = email.split_once('@')?;
        let ok = !local.is_empty()
            && !domain.is_empty()
            && !domain.contains('@')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && email.len() <= MAX_EMAIL_LEN
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        ok.then_some(Email(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Email(***)")
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case("ann@example.com", "ann@example.com")]
    #[case("  Ann@Example.COM ", "ann@example.com")]
    #[case("a.b+tag@sub.example.co.uk", "a.b+tag@sub.example.co.uk")]
    fn emails_are_normalised(#[case] raw: &str, #[case] expected: &str) {
        assert_eq!(Email::parse(raw).unwrap().as_str(), expected);
    }

    #[rstest]
    #[case("")]
    #[case("ann")]
    #[case("@example.com")]
    #[case("ann@")]
    #[case("ann@@example.com")]
    #[case("an n@example.com")]
    #[case("ann@.example.com")]
    fn garbage_is_not_an_email(#[case] raw: &str) {
        assert_eq!(Email::parse(raw), None);
    }

    #[test]
    fn debug_hides_the_address() {
        assert!(!format!("{:?}", Email::parse("ann@example.com").unwrap()).contains("ann"));
    }
}
