//! App Bridge id tokens (session tokens), spec shopify-auth §2.1–2.2, §10 fact 3–4: HS256 only,
//! 10 s leeway, `nbf` checked, `aud` = our client id, `host(iss)` = `host(dest)`, `iss` ends in
//! `/admin`, the shop taken from the verified `dest`.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use super::shop_domain::ShopDomain;
use super::signing::SecretSet;

/// Clock tolerance of every official library (`clockTolerance: 10`, `leeway: 10`).
pub const LEEWAY_SECS: u64 = 10;

/// The claims of an admin id token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IdTokenClaims {
    pub iss: String,
    pub dest: String,
    pub aud: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    pub exp: i64,
    pub nbf: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// A token that passed every check: the shop it names is the tenant of the request.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedIdToken {
    pub shop: ShopDomain,
    /// The admin user (`sub`), when numeric.
    pub user_id: Option<u64>,
    pub claims: IdTokenClaims,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("the id token is expired")]
    Expired,
    #[error("the id token is not valid yet")]
    NotYetValid,
    #[error("the id token was issued for another app")]
    WrongAudience,
    #[error("the id token signature does not match")]
    BadSignature,
    #[error("the id token is malformed: {0}")]
    Malformed(String),
    #[error("the id token's iss and dest name different hosts")]
    HostMismatch,
    #[error("the id token's dest is not a shop domain")]
    BadShop,
}

fn host_of(url: &str) -> Option<(String, String)> {
    let parsed = url::Url::parse(url).ok()?;
    if parsed.scheme() != "https" {
        return None;
    }
    Some((parsed.host_str()?.to_owned(), parsed.path().to_owned()))
}

/// Verifies an id token with the current client secret, then the previous one.
pub fn verify(token: &str, api_key: &str, secrets: &SecretSet) -> Result<VerifiedIdToken, IdTokenError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.algorithms = vec![Algorithm::HS256];
    validation.leeway = LEEWAY_SECS;
    validation.validate_nbf = true;
    validation.validate_exp = true;
    validation.set_audience(&[api_key]);
    validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud"]);

    let mut last = IdTokenError::BadSignature;
    for secret in secrets.candidates() {
        let key = DecodingKey::from_secret(secret.expose().as_bytes());
        match jsonwebtoken::decode::<IdTokenClaims>(token, &key, &validation) {
            Ok(data) => return check_claims(data.claims),
            Err(e) => {
                last = map_error(e.kind());
                if last != IdTokenError::BadSignature {
                    // The signature matched this secret; another secret will not help.
                    return Err(last);
                }
            }
        }
    }
    Err(last)
}

fn map_error(kind: &ErrorKind) -> IdTokenError {
    match kind {
        ErrorKind::InvalidSignature => IdTokenError::BadSignature,
        ErrorKind::ExpiredSignature => IdTokenError::Expired,
        ErrorKind::ImmatureSignature => IdTokenError::NotYetValid,
        ErrorKind::InvalidAudience => IdTokenError::WrongAudience,
        other => IdTokenError::Malformed(format!("{other:?}")),
    }
}

fn check_claims(claims: IdTokenClaims) -> Result<VerifiedIdToken, IdTokenError> {
    let (iss_host, iss_path) = host_of(&claims.iss).ok_or(IdTokenError::HostMismatch)?;
    let (dest_host, _) = host_of(&claims.dest).ok_or(IdTokenError::BadShop)?;
    if iss_host != dest_host || iss_path.trim_end_matches('/') != "/admin" {
        return Err(IdTokenError::HostMismatch);
    }
    let shop = ShopDomain::parse(&dest_host).ok_or(IdTokenError::BadShop)?;
    let user_id = claims.sub.as_deref().and_then(|s| s.parse().ok());
    Ok(VerifiedIdToken { shop, user_id, claims })
}

/// Mints an id token exactly as Shopify does (for the fake Shopify and tests): HS256 over the
/// compact JSON claims.
/// The header is the constant `{"alg":"HS256","typ":"JWT"}` ("never change", spec §2.1).
pub fn mint(secret: &str, claims: &IdTokenClaims) -> String {
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = b64.encode(serde_json::to_vec(claims).expect("claims serialize"));
    let signing_input = format!("{header}.{payload}");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(signing_input.as_bytes());
    format!("{signing_input}.{}", b64.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Secret;

    /// Spec §2.5 vector T2 (exp in 2100).
    const T2: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL3Rlc3Qtc2hvcC5teXNob3BpZnkuaW8vYWRtaW4iLCJkZXN0IjoiaHR0cHM6Ly90ZXN0LXNob3AubXlzaG9waWZ5LmlvIiwiYXVkIjoidGVzdF9rZXkiLCJzdWIiOiIxIiwiZXhwIjo0MTAyNDQ0ODAwLCJuYmYiOjEyMzQsImlhdCI6MTIzNCwianRpIjoiNDMyMSIsInNpZCI6ImFiYzEyMyJ9.H4uTTSs-WEWeLMk83Z8FqK_3PDHfwYuli1KU1E_Xf7c";

    fn secrets(s: &str) -> SecretSet {
        SecretSet::new(Secret::new(s), None)
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn claims(shop: &str, nbf: i64, exp: i64) -> IdTokenClaims {
        IdTokenClaims {
            iss: format!("https://{shop}/admin"),
            dest: format!("https://{shop}"),
            aud: "test_key".into(),
            sub: Some("42".into()),
            exp,
            nbf,
            iat: Some(nbf),
            jti: Some("f8912129-1af6-4cad-9ca3-76b0f7621087".into()),
            sid: Some("aaea18".into()),
        }
    }

    #[test]
    fn vector_t2_has_a_valid_signature_and_the_documented_claims() {
        // T2's shop is on the test-only myshopify.io suffix, which production rejects: the
        // signature and claim checks pass, the shop rule refuses it.
        assert_eq!(verify(T2, "test_key", &secrets("test_secret_key")), Err(IdTokenError::BadShop));
        assert_eq!(verify(T2, "test_key", &secrets("other")), Err(IdTokenError::BadSignature));
        assert_eq!(verify(T2, "other_key", &secrets("test_secret_key")), Err(IdTokenError::WrongAudience));
        // Our minting reproduces the vector byte for byte.
        let t2 = IdTokenClaims {
            iss: "https://test-shop.myshopify.io/admin".into(),
            dest: "https://test-shop.myshopify.io".into(),
            aud: "test_key".into(),
            sub: Some("1".into()),
            exp: 4102444800,
            nbf: 1234,
            iat: Some(1234),
            jti: Some("4321".into()),
            sid: Some("abc123".into()),
        };
        assert_eq!(mint("test_secret_key", &t2), T2);
    }

    #[test]
    fn a_fresh_token_verifies_and_names_its_shop_and_user() {
        let token = mint("test_secret_key", &claims("acme.myshopify.com", now(), now() + 60));
        let v = verify(&token, "test_key", &secrets("test_secret_key")).unwrap();
        assert_eq!(v.shop.as_str(), "acme.myshopify.com");
        assert_eq!(v.user_id, Some(42));
    }

    #[test]
    fn leeway_is_ten_seconds_for_exp_and_nbf() {
        let s = secrets("k");
        let ok_exp = mint("k", &claims("acme.myshopify.com", now() - 68, now() - 8));
        assert!(verify(&ok_exp, "test_key", &s).is_ok());
        let expired = mint("k", &claims("acme.myshopify.com", now() - 100, now() - 40));
        assert_eq!(verify(&expired, "test_key", &s), Err(IdTokenError::Expired));
        let ok_nbf = mint("k", &claims("acme.myshopify.com", now() + 8, now() + 68));
        assert!(verify(&ok_nbf, "test_key", &s).is_ok());
        let early = mint("k", &claims("acme.myshopify.com", now() + 12, now() + 72));
        assert_eq!(verify(&early, "test_key", &s), Err(IdTokenError::NotYetValid));
    }

    #[test]
    fn mismatched_hosts_foreign_shops_and_other_algorithms_are_rejected() {
        let s = secrets("k");
        let mut c = claims("acme.myshopify.com", now(), now() + 60);
        c.dest = "https://other.myshopify.com".into();
        assert_eq!(verify(&mint("k", &c), "test_key", &s), Err(IdTokenError::HostMismatch));
        let c = claims("evil.com", now(), now() + 60);
        assert_eq!(verify(&mint("k", &c), "test_key", &s), Err(IdTokenError::BadShop));
        let mut c = claims("acme.myshopify.com", now(), now() + 60);
        c.iss = "http://acme.myshopify.com/admin".into();
        assert_eq!(verify(&mint("k", &c), "test_key", &s), Err(IdTokenError::HostMismatch));
        let c = claims("acme.myshopify.com", now(), now() + 60);
        let hs512 = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS512),
            &c,
            &jsonwebtoken::EncodingKey::from_secret(b"k"),
        )
        .unwrap();
        assert!(verify(&hs512, "test_key", &s).is_err());
        assert!(matches!(verify("not.a.jwt", "test_key", &s), Err(IdTokenError::Malformed(_))));
    }

    #[test]
    fn tokens_signed_with_the_previous_secret_verify_during_rotation() {
        let token = mint("old", &claims("acme.myshopify.com", now(), now() + 60));
        let rotating = SecretSet::new(Secret::new("new"), Some(Secret::new("old")));
        assert!(verify(&token, "test_key", &rotating).is_ok());
        assert_eq!(verify(&token, "test_key", &secrets("new")), Err(IdTokenError::BadSignature));
    }
}
