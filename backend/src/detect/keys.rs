//! Keys and subjects: which state slot an event updates for a rule, and which subject its
//! verdict judges. Hot path: hashes are computed without allocating; text is built only when a
//! rule fires.

use std::hash::{Hash, Hasher};

use rustc_hash::FxHasher;

use super::event::{Body, DetectEvent};
use super::rules::{Field, KeyKind};

/// The subject a verdict judges: the session when tracked, else the client key, else the
/// network, else the checkout or cart.
pub fn subject_of(event: &DetectEvent) -> Option<String> {
    let mut out = String::new();
    write_subject(event, &mut out).then_some(out)
}

pub(super) fn hash_str(s: &str) -> u64 {
    let mut h = FxHasher::default();
    s.hash(&mut h);
    h.finish()
}

/// A small stack buffer for formatting keys without allocating (falls back to a `String`).
struct KeyBuf {
    buf: [u8; 192],
    len: usize,
    spill: Option<String>,
}

impl KeyBuf {
    fn new() -> Self {
        KeyBuf { buf: [0; 192], len: 0, spill: None }
    }

    fn as_str(&self) -> &str {
        match &self.spill {
            Some(s) => s,
            // Only whole `&str`s are copied in, so the prefix is valid UTF-8.
            None => std::str::from_utf8(&self.buf[..self.len]).unwrap_or(""),
        }
    }
}

impl std::fmt::Write for KeyBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if let Some(spill) = &mut self.spill {
            spill.push_str(s);
        } else if self.len + s.len() <= self.buf.len() {
            self.buf[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
            self.len += s.len();
        } else {
            let mut spill = String::with_capacity(self.len + s.len());
            spill.push_str(std::str::from_utf8(&self.buf[..self.len]).unwrap_or(""));
            spill.push_str(s);
            self.spill = Some(spill);
        }
        Ok(())
    }
}

/// Writes the subject of `event` (see [`subject_of`]) into `out`; `false` when it has none.
fn write_subject(event: &DetectEvent, out: &mut impl std::fmt::Write) -> bool {
    // Every event hashes its subject: the two common ones skip the formatting machinery (`itoa`
    // writes an integer exactly as `{}` does).
    let r = if let Some(s) = event.session {
        out.write_str("session:").and_then(|()| out.write_str(itoa::Buffer::new().format(s)))
    } else if let Some(k) = &event.client_key {
        out.write_str("client:").and_then(|()| out.write_str(k))
    } else if let Some(ip) = &event.ip_prefix {
        write!(out, "ip:{ip}")
    } else if let Some(c) = &event.checkout_token {
        write!(out, "checkout:{c}")
    } else if let Some(c) = &event.cart_token {
        write!(out, "cart:{c}")
    } else {
        return false;
    };
    r.is_ok()
}

/// Hash of the subject string, equal to `hash_str(&subject_of(event)?)`, without allocating.
pub(super) fn subject_hash(event: &DetectEvent) -> Option<u64> {
    let mut buf = KeyBuf::new();
    write_subject(event, &mut buf).then(|| hash_str(buf.as_str()))
}

/// Hash of the rule's key value for this event, or `None` if the event lacks it.
pub(super) fn key_hash(kind: KeyKind, event: &DetectEvent) -> Option<u64> {
    let mut h = FxHasher::default();
    (kind as u8).hash(&mut h);
    match kind {
        KeyKind::Subject => return subject_hash(event),
        KeyKind::Visitor => event.visitor?.hash(&mut h),
        KeyKind::Session => event.session?.hash(&mut h),
        KeyKind::IpPrefix => event.ip_prefix?.hash(&mut h),
        KeyKind::Device => event.device.as_deref()?.hash(&mut h),
        KeyKind::CartToken => event.cart_token.as_deref()?.hash(&mut h),
        KeyKind::CheckoutToken => event.checkout_token.as_deref()?.hash(&mut h),
        KeyKind::CardBin => match &event.body {
            Body::OrderTransaction(t) => t.bin.as_deref()?.hash(&mut h),
            _ => return None,
        },
        KeyKind::Asn => event.asn?.hash(&mut h),
        KeyKind::Country => event.country.as_deref()?.hash(&mut h),
        KeyKind::ClientKey => event.client_key.as_deref()?.hash(&mut h),
        KeyKind::Variant => match &event.body {
            Body::AddToCart { variant, .. } | Body::CartChange { variant, .. } if !variant.is_empty() => {
                variant.hash(&mut h)
            }
            _ => return None,
        },
        KeyKind::Shop => {}
    }
    Some(h.finish())
}

/// The key value as shown in reasons (only built when a rule fires).
pub(super) fn key_text(kind: KeyKind, event: &DetectEvent) -> String {
    let text = match kind {
        KeyKind::Subject => subject_of(event),
        KeyKind::Visitor => event.visitor.map(|v| v.to_string()),
        KeyKind::Session => event.session.map(|v| v.to_string()),
        KeyKind::IpPrefix => event.ip_prefix.map(|v| v.to_string()),
        KeyKind::Device => event.device.clone(),
        KeyKind::CartToken => event.cart_token.clone(),
        KeyKind::CheckoutToken => event.checkout_token.clone(),
        KeyKind::CardBin => match &event.body {
            Body::OrderTransaction(t) => t.bin.clone(),
            _ => None,
        },
        KeyKind::Asn => event.asn.map(|a| format!("AS{a}")),
        KeyKind::Country => event.country.clone(),
        KeyKind::ClientKey => event.client_key.clone(),
        KeyKind::Variant => match &event.body {
            Body::AddToCart { variant, .. } | Body::CartChange { variant, .. } => Some(variant.clone()),
            _ => None,
        },
        KeyKind::Shop => Some("shop".to_owned()),
    };
    text.unwrap_or_default()
}

/// The value of a distinct/same field (hashed).
pub(super) fn field_of(field: Field, event: &DetectEvent) -> Option<u64> {
    let h = match (field, &event.body) {
        (Field::Path, body) => hash_str(body.path()?),
        (Field::UserAgent, _) => hash_str(event.user_agent.as_deref()?),
        (Field::Card, Body::OrderTransaction(t)) => {
            hash_str(&format!("{}-{}", t.bin.as_deref()?, t.last4.as_deref().unwrap_or("")))
        }
        (Field::Bin, Body::OrderTransaction(t)) => hash_str(t.bin.as_deref()?),
        (Field::IpPrefix, _) => {
            let mut h = FxHasher::default();
            event.ip_prefix?.hash(&mut h);
            h.finish()
        }
        (Field::Variant, Body::AddToCart { variant, .. } | Body::CartChange { variant, .. }) => hash_str(variant),
        (Field::Product, Body::Pageview { product, .. }) => hash_str(product.as_deref()?),
        (Field::Session, _) => event.session? as u64,
        (Field::CartToken, _) => hash_str(event.cart_token.as_deref()?),
        _ => return None,
    };
    Some(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::event::Body;

    fn event(session: Option<i64>, client_key: Option<&str>) -> DetectEvent {
        DetectEvent {
            ts: 0,
            session,
            visitor: None,
            client_key: client_key.map(str::to_owned),
            ip_prefix: Some("10.1.2.0/24".parse().unwrap()),
            device: None,
            asn: None,
            country: None,
            net_flags: 0,
            user_agent: None,
            cart_token: None,
            checkout_token: None,
            body: Body::CheckoutStarted,
        }
    }

    #[test]
    fn subjects_read_as_before_and_hash_as_their_text() {
        for (e, text) in [
            (event(Some(1_234_567_890_123), None), "session:1234567890123"),
            (event(Some(-42), Some("k")), "session:-42"),
            (event(Some(i64::MIN), None), "session:-9223372036854775808"),
            (event(None, Some("203.0.113.9")), "client:203.0.113.9"),
            (event(None, None), "ip:10.1.2.0/24"),
        ] {
            assert_eq!(subject_of(&e).as_deref(), Some(text));
            assert_eq!(subject_hash(&e), Some(hash_str(text)));
        }
        // A client key longer than the stack buffer spills to the heap and hashes the same.
        let long = "x".repeat(300);
        assert_eq!(subject_hash(&event(None, Some(&long))), Some(hash_str(&format!("client:{long}"))));
    }
}
