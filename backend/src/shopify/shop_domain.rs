//! Shop domains and the admin `host` parameter, parsed once at the edge. A `ShopDomain` is
//! always `^[a-z0-9][a-z0-9-]*\.myshopify\.com$` (spec shopify-auth §1.4, production rule),
//! so it is safe in URLs, headers (CSP) and logs.

use std::fmt;

use base64::Engine;
use serde::{Deserialize, Serialize};

const SUFFIX: &str = ".myshopify.com";
/// DNS label limit for the shop name.
const MAX_NAME_LEN: usize = 63;

/// A sanitized `{name}.myshopify.com` domain.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ShopDomain(String);

impl ShopDomain {
    /// Accepts exactly a shop domain (case-insensitive, surrounding spaces ignored).
    /// Everything else — other domains, `x.myshopify.com.evil.com`, sub-subdomains, schemes,
    /// paths, control characters, percent-escapes — is rejected.
    pub fn parse(raw: &str) -> Option<Self> {
        // Only spaces are forgiven: a newline or other control character (`%0a…`) is hostile.
        let candidate = raw.trim_matches(' ').to_ascii_lowercase();
        let name = candidate.strip_suffix(SUFFIX)?;
        let mut bytes = name.bytes();
        let first = bytes.next()?;
        let valid = name.len() <= MAX_NAME_LEN
            && first.is_ascii_alphanumeric()
            && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        valid.then_some(ShopDomain(candidate))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The store handle: `acme` for `acme.myshopify.com`.
    pub fn handle(&self) -> &str {
        self.0.strip_suffix(SUFFIX).unwrap_or(&self.0)
    }

    /// `https://{shop}`, the origin App Bridge and CSP use.
    pub fn origin(&self) -> String {
        format!("https://{}", self.0)
    }
}

impl fmt::Display for ShopDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ShopDomain {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        ShopDomain::parse(&raw).ok_or_else(|| serde::de::Error::custom("not a valid {name}.myshopify.com shop domain"))
    }
}

/// Decodes the admin `host` parameter (base64 of e.g. `admin.shopify.com/store/acme`, padding
/// usually stripped) and returns it only when it names a Shopify admin (spec §1.4
/// `sanitizeHost`, production suffixes only).
pub fn decode_host(raw: &str) -> Option<String> {
    let valid_chars = !raw.is_empty()
        && raw.trim_end_matches('=').bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        && raw.len() - raw.trim_end_matches('=').len() <= 2;
    if !valid_chars {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD_NO_PAD.decode(raw.trim_end_matches('=')).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let hostname = decoded.split('/').next()?;
    let allowed = hostname == "admin.shopify.com" || ShopDomain::parse(hostname).is_some();
    let clean = decoded.bytes().all(|b| b.is_ascii_graphic());
    (allowed && clean).then_some(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_shop_domains_are_normalized() {
        for (raw, want) in [
            ("acme.myshopify.com", "acme.myshopify.com"),
            ("test-shop.myshopify.com", "test-shop.myshopify.com"),
            ("  My-ShOp.MyShopify.com ", "my-shop.myshopify.com"),
            ("0shop.myshopify.com", "0shop.myshopify.com"),
        ] {
            assert_eq!(ShopDomain::parse(raw).map(|s| s.to_string()).as_deref(), Some(want), "{raw}");
        }
    }

    #[test]
    fn malformed_and_hostile_shop_domains_are_rejected() {
        for raw in [
            "",
            "evil.com",
            "myshopify.com",
            ".myshopify.com",
            "x.myshopify.com.evil.com",
            "store.myshopify.com.evil.com",
            "%0a123.myshopify.com",
            "\n123.myshopify.com",
            "acme.myshopify.com\r\nX-Injected: 1",
            "-invalid.myshopify.com",
            "foo.bar.myshopify.com",
            "my shop.myshopify.com",
            "https://acme.myshopify.com",
            "acme.myshopify.com/admin",
            "acme_shop.myshopify.com",
            "notshopify.com",
            "acme.myshopify.io",
            "/foo.myshopify.io.evil.ru",
            &format!("{}.myshopify.com", "a".repeat(64)),
        ] {
            assert_eq!(ShopDomain::parse(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn host_parameter_decodes_to_an_admin_location_only() {
        // The doc example host (spec §1.4).
        assert_eq!(
            decode_host("YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvemwtMDMwNDExMjE").as_deref(),
            Some("admin.shopify.com/store/zl-03041121")
        );
        let legacy = base64::engine::general_purpose::STANDARD.encode("acme.myshopify.com/admin");
        assert_eq!(decode_host(&legacy).as_deref(), Some("acme.myshopify.com/admin"));
        let evil = base64::engine::general_purpose::STANDARD.encode("evil.com/admin");
        assert_eq!(decode_host(&evil), None);
        assert_eq!(decode_host("not base64!"), None);
        assert_eq!(decode_host(""), None);
    }
}
