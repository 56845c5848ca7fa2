//! The app-proxy query verification: arbitrary query strings must be refused without a panic,
//! and any parameters correctly signed must verify (unless a security key is repeated or the
//! timestamp is bad), yielding exactly the parameters that were signed.
#![no_main]

use ghosttrack::settings::Secret;
use ghosttrack::shopify::signing::{self, SecretSet, SignatureError};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "fuzz-proxy-secret";
const NOW: i64 = 1_700_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else { return };
    let secrets = SecretSet::new(Secret::new(SECRET), None);
    let _ = signing::verify_proxy_query(&secrets, query, NOW);
    let _ = signing::verify_admin_query(&secrets, query, NOW);

    // Round trip: sign the decoded pairs as Shopify would, then verify.
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k != "signature")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let signature = signing::sign_proxy(SECRET, pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let signed = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .append_pair("signature", &signature)
        .finish();
    match signing::verify_proxy_query(&secrets, &signed, NOW) {
        Ok(verified) => {
            let mut expected = pairs.clone();
            expected.sort_by(|a, b| a.0.cmp(&b.0));
            let got: Vec<(String, String)> = verified.pairs().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
            assert_eq!(got, expected);
        }
        Err(SignatureError::Duplicate(_) | SignatureError::BadTimestamp | SignatureError::Stale) => {}
        Err(other) => panic!("a correctly signed query was refused: {other}"),
    }
});
