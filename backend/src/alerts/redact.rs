//! What an alert may say about a subject: merchants see sessions and truncated networks in the
//! panel already; client keys, cart and checkout tokens can be raw IPs or shopper-linked
//! tokens, so they are shown as short keyed-free hashes. Sentences of rules are scrubbed of
//! full IP addresses and email addresses in case a rule interpolates one.

use sha2::{Digest, Sha256};

/// A display label and the panel path for a threat subject.
pub fn describe_subject(subject: &str) -> (String, String) {
    match subject.split_once(':') {
        Some(("session", id)) if !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()) => {
            (format!("session {id}"), format!("/app/sessions/{id}"))
        }
        Some(("ip", prefix)) if prefix.contains('/') => (format!("network {prefix}"), "/app/threats".into()),
        Some((kind, value)) => (format!("{kind} #{}", short_hash(value)), "/app/threats".into()),
        None => (format!("subject #{}", short_hash(subject)), "/app/threats".into()),
    }
}

fn short_hash(value: &str) -> String {
    hex::encode(&Sha256::digest(value.as_bytes())[..5])
}

/// Masks full IPv4 addresses (last octet → `x`), full IPv6 addresses (after the /48) and
/// email addresses; CIDR prefixes (`203.0.113.0/24`) are already truncated and stay.
pub fn scrub(text: &str) -> String {
    text.split_inclusive(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')')
        .map(|token| {
            let end = token.trim_end_matches(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')');
            let tail = &token[end.len()..];
            let word = end.trim_end_matches(['.', ';', ':', '!', '?']);
            let punct = &end[word.len()..];
            format!("{}{punct}{tail}", scrub_word(word))
        })
        .collect()
}

fn scrub_word(word: &str) -> String {
    if word.contains('/') {
        return word.to_owned();
    }
    if let Ok(std::net::IpAddr::V4(v4)) = word.parse() {
        let o = v4.octets();
        return format!("{}.{}.{}.x", o[0], o[1], o[2]);
    }
    if let Ok(std::net::IpAddr::V6(v6)) = word.parse() {
        let s = v6.segments();
        return format!("{:x}:{:x}:{:x}::x", s[0], s[1], s[2]);
    }
    if let Some((local, domain)) = word.split_once('@')
        && !local.is_empty()
        && domain.contains('.')
    {
        return "[email]".into();
    }
    word.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_become_labels_without_raw_identifiers() {
        assert_eq!(describe_subject("session:42"), ("session 42".into(), "/app/sessions/42".into()));
        assert_eq!(describe_subject("ip:203.0.113.0/24").0, "network 203.0.113.0/24");
        let (label, path) = describe_subject("client:203.0.113.9");
        assert!(label.starts_with("client #") && !label.contains("203.0"), "{label}");
        assert_eq!(path, "/app/threats");
        assert!(!describe_subject("checkout:abc123token").0.contains("abc123"));
    }

    #[test]
    fn sentences_lose_full_ips_and_emails_but_keep_prefixes() {
        assert_eq!(
            scrub("10 requests from 203.0.113.9, then jo@example.com (and 2001:db8:1:2::7)."),
            "10 requests from 203.0.113.x, then [email] (and 2001:db8:1::x)."
        );
        assert_eq!(
            scrub("4 failed payments from 203.0.113.0/24 in 10 min."),
            "4 failed payments from 203.0.113.0/24 in 10 min."
        );
    }
}
