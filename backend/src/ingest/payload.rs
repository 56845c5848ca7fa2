//! The collect wire format (docs/COLLECT-PROTOCOL.md) and its parsing into validated events.
//!
//! Parsing is two-level: the batch envelope must be well-formed (else the whole request is a
//! 400), while each event is parsed on its own so one bad event drops only itself.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::DropReason;

/// Longest stored string fields, in characters.
pub const MAX_PATH_CHARS: usize = 512;
const MAX_TITLE_CHARS: usize = 200;
const MAX_SELECTOR_CHARS: usize = 100;
const MAX_SHORT_TEXT_CHARS: usize = 100;
/// Pointer-path samples are `[dt,dx,dy]` triples; the tracker caps a page at 300 samples.
pub const MAX_POINTER_SAMPLES: usize = 300;
/// Coordinates and sizes beyond this are not a real screen.
const MAX_PIXELS: i32 = 1_000_000;

/// The envelope as it arrives. Borrowed where possible: this runs for every request.
#[derive(Deserialize)]
struct WireBatch<'a> {
    k: Option<&'a str>,
    v: Option<u32>,
    s: Option<i64>,
    u: Option<String>,
    c: Option<u8>,
    #[serde(borrow)]
    e: Vec<&'a RawValue>,
}

/// A batch whose envelope is valid; its events are still raw.
#[derive(Debug)]
pub struct Batch<'a> {
    pub site_key: Option<&'a str>,
    pub sent_at: i64,
    pub url: String,
    pub consent: bool,
    pub events: Vec<&'a RawValue>,
}

/// Why the envelope was refused, with a message for the client.
#[derive(Debug, PartialEq, Eq)]
pub struct Rejection {
    pub reason: DropReason,
    pub message: String,
}

impl Rejection {
    fn malformed(message: impl Into<String>) -> Self {
        Rejection { reason: DropReason::MalformedPayload, message: message.into() }
    }
}

/// Parses the envelope. `max_events` is `ingest.max_events_per_batch`.
pub fn parse_batch(body: &[u8], max_events: usize) -> Result<Batch<'_>, Rejection> {
    let wire: WireBatch<'_> =
        serde_json::from_slice(body).map_err(|e| Rejection::malformed(format!("invalid JSON batch: {e}")))?;
    if let Some(v) = wire.v
        && v != 1
    {
        return Err(Rejection::malformed(format!("unsupported protocol version {v} (this server speaks 1)")));
    }
    let sent_at = wire.s.ok_or_else(|| Rejection::malformed("missing `s` (client send time in ms)"))?;
    let url = wire.u.ok_or_else(|| Rejection::malformed("missing `u` (page URL)"))?;
    if wire.e.is_empty() {
        return Err(Rejection::malformed("`e` holds no events"));
    }
    if wire.e.len() > max_events {
        return Err(Rejection {
            reason: DropReason::TooManyEvents,
            message: format!("{} events in one batch; the limit is {max_events}", wire.e.len()),
        });
    }
    Ok(Batch { site_key: wire.k, sent_at, url, consent: wire.c != Some(0), events: wire.e })
}

/// One event after validation: its client time and its typed body.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub ts: i64,
    pub body: EventBody,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "t")]
pub enum EventBody {
    #[serde(rename = "pv")]
    Pageview(Pageview),
    #[serde(rename = "cl")]
    Click(Click),
    #[serde(rename = "sc")]
    Scroll(Scroll),
    #[serde(rename = "pp")]
    PointerPath(PointerPath),
    #[serde(rename = "ix")]
    Interaction(Interaction),
    #[serde(rename = "vi")]
    Visibility(Visibility),
    #[serde(rename = "en")]
    Environment(Environment),
    #[serde(rename = "ac")]
    AddToCart(AddToCart),
    /// Web pixel `checkout_started`.
    #[serde(rename = "co")]
    CheckoutStarted(CheckoutStep),
    /// Web pixel `payment_info_submitted`.
    #[serde(rename = "pi")]
    PaymentInfoSubmitted(CheckoutStep),
    /// Web pixel `alert_displayed` (checkout only).
    #[serde(rename = "al")]
    AlertDisplayed(Alert),
    /// Web pixel `checkout_completed`.
    #[serde(rename = "cc")]
    CheckoutCompleted(CheckoutStep),
}

/// Longest checkout token kept (Shopify's are 32 hex characters).
const MAX_CHECKOUT_TOKEN_CHARS: usize = 64;
/// Longest alert type (`MERCHANDISE_ERROR` is the longest Shopify sends today).
const MAX_ALERT_TYPE_CHARS: usize = 32;

/// A checkout step seen by the web pixel: only the checkout token, never the checkout's
/// contents (email, addresses, lines, transactions).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
pub struct CheckoutStep {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ck: Option<String>,
}

/// A checkout alert: its type only (the message, target and value may hold what the shopper typed).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Alert {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ck: Option<String>,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
pub struct Pageview {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ti: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pt: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Click {
    pub x: i32,
    pub y: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pw: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ph: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ap: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Scroll {
    pub d: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ph: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct PointerPath {
    pub p: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
pub struct Interaction {
    #[serde(default)]
    pub kc: u32,
    #[serde(default)]
    pub tc: u32,
    #[serde(default)]
    pub mc: u32,
    #[serde(default)]
    pub wc: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Visibility {
    pub vs: String,
    #[serde(default)]
    pub tp: u64,
    #[serde(default)]
    pub at: u64,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
pub struct Environment {
    #[serde(default)]
    pub wd: u8,
    #[serde(default)]
    pub hl: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pl: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lg: Option<u32>,
    #[serde(default)]
    pub pi: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ow: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oh: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iw: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ih: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sw: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sh: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpr: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gl: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tz: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hc: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dm: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mt: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cv: Option<String>,
    /// Worker mismatch bits: 1 hardwareConcurrency, 2 platform, 4 user agent differ between page and worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wk: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
pub struct AddToCart {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ct: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<u32>,
}

/// The fields every event has. The body is then read from the same text as its concrete
/// type: two short scans are cheaper than serde's buffering of an internally tagged,
/// flattened enum, and this runs for every event.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    t: Option<Cow<'a, str>>,
    ts: Option<i64>,
}

impl EventBody {
    /// Short storage name of the type (the wire tag).
    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::Pageview(_) => "pv",
            EventBody::Click(_) => "cl",
            EventBody::Scroll(_) => "sc",
            EventBody::PointerPath(_) => "pp",
            EventBody::Interaction(_) => "ix",
            EventBody::Visibility(_) => "vi",
            EventBody::Environment(_) => "en",
            EventBody::AddToCart(_) => "ac",
            EventBody::CheckoutStarted(_) => "co",
            EventBody::PaymentInfoSubmitted(_) => "pi",
            EventBody::AlertDisplayed(_) => "al",
            EventBody::CheckoutCompleted(_) => "cc",
        }
    }

    /// Type-specific fields as a JSON object for the `props` column (`None` when empty).
    pub fn props_json(&self) -> Option<String> {
        let json = match self {
            EventBody::Pageview(b) => serde_json::to_string(b),
            EventBody::Click(b) => serde_json::to_string(b),
            EventBody::Scroll(b) => serde_json::to_string(b),
            EventBody::PointerPath(b) => serde_json::to_string(b),
            EventBody::Interaction(b) => serde_json::to_string(b),
            EventBody::Visibility(b) => serde_json::to_string(b),
            EventBody::Environment(b) => serde_json::to_string(b),
            EventBody::AddToCart(b) => serde_json::to_string(b),
            EventBody::CheckoutStarted(b) | EventBody::PaymentInfoSubmitted(b) | EventBody::CheckoutCompleted(b) => {
                serde_json::to_string(b)
            }
            EventBody::AlertDisplayed(b) => serde_json::to_string(b),
        }
        .ok()?;
        (json != "{}").then_some(json)
    }

    /// Detailed behaviour that needs analytics consent (the rest is security-only telemetry).
    pub fn needs_consent(&self) -> bool {
        matches!(self, EventBody::Click(_) | EventBody::Scroll(_) | EventBody::PointerPath(_))
    }

    /// Removes content that security-only mode must not keep.
    pub fn strip_for_security_only(&mut self) {
        match self {
            EventBody::Pageview(pv) => {
                pv.r = None;
                pv.ti = None;
            }
            EventBody::Environment(en) => {
                en.cv = None;
                en.gl = None;
            }
            _ => {}
        }
    }

    /// Checks ranges and trims free text; `Err` makes the event an `invalid_event` drop.
    fn sanitize(&mut self) -> Result<(), &'static str> {
        match self {
            EventBody::Pageview(pv) => {
                truncate_opt(&mut pv.r, MAX_PATH_CHARS);
                truncate_opt(&mut pv.ti, MAX_TITLE_CHARS);
                truncate_opt(&mut pv.pt, 32);
            }
            EventBody::Click(cl) => {
                for v in [Some(cl.x), Some(cl.y), cl.pw, cl.ph].into_iter().flatten() {
                    if !(-MAX_PIXELS..=MAX_PIXELS).contains(&v) {
                        return Err("click coordinates out of range");
                    }
                }
                truncate_opt(&mut cl.tg, 16);
                truncate_opt(&mut cl.sel, MAX_SELECTOR_CHARS);
            }
            EventBody::Scroll(sc) => {
                if sc.d > 100 {
                    return Err("scroll depth above 100%");
                }
            }
            EventBody::PointerPath(pp) => {
                if pp.p.len() % 3 != 0 {
                    return Err("pointer path is not [dt,dx,dy] triples");
                }
                if pp.p.len() > MAX_POINTER_SAMPLES * 3 {
                    return Err("pointer path longer than 300 samples");
                }
                if pp.p.iter().any(|v| !(-MAX_PIXELS..=MAX_PIXELS).contains(v)) {
                    return Err("pointer path value out of range");
                }
            }
            EventBody::Interaction(_) => {}
            EventBody::Visibility(vi) => {
                if vi.vs != "h" && vi.vs != "v" {
                    return Err("visibility state must be \"h\" or \"v\"");
                }
            }
            EventBody::Environment(en) => {
                truncate_opt(&mut en.gl, MAX_SHORT_TEXT_CHARS);
                truncate_opt(&mut en.tz, 64);
                truncate_opt(&mut en.cv, 16);
                if en.dpr.is_some_and(|v| !v.is_finite()) || en.dm.is_some_and(|v| !v.is_finite()) {
                    return Err("non-finite number");
                }
                if en.wk.is_some_and(|v| v > 7) {
                    return Err("worker mismatch bits above 7");
                }
            }
            EventBody::AddToCart(ac) => {
                truncate_opt(&mut ac.src, 8);
                truncate_opt(&mut ac.ct, MAX_SHORT_TEXT_CHARS);
                truncate_opt(&mut ac.vid, 32);
            }
            EventBody::CheckoutStarted(step)
            | EventBody::PaymentInfoSubmitted(step)
            | EventBody::CheckoutCompleted(step) => {
                sanitize_checkout_token(&mut step.ck)?;
            }
            EventBody::AlertDisplayed(al) => {
                sanitize_checkout_token(&mut al.ck)?;
                if al.at.is_empty()
                    || al.at.len() > MAX_ALERT_TYPE_CHARS
                    || !al.at.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_')
                {
                    return Err("alert type must be 1-32 letters or underscores");
                }
                al.at.make_ascii_uppercase();
            }
        }
        Ok(())
    }
}

/// A checkout token is an opaque id: ASCII letters, digits, `-` and `_`, at most 64 characters.
/// An empty token counts as absent.
fn sanitize_checkout_token(token: &mut Option<String>) -> Result<(), &'static str> {
    if token.as_deref() == Some("") {
        *token = None;
    }
    if let Some(t) = token
        && (t.len() > MAX_CHECKOUT_TOKEN_CHARS
            || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    {
        return Err("checkout token must be at most 64 letters, digits, '-' or '_'");
    }
    Ok(())
}

/// Parses and sanitises one raw event.
pub fn parse_event(raw: &RawValue) -> Result<Event, DropReason> {
    use serde_json::from_str;
    let json = raw.get();
    let head: Head<'_> = from_str(json).map_err(|_| DropReason::InvalidEvent)?;
    let tag = head.t.ok_or(DropReason::InvalidEvent)?;
    let body = match tag.as_ref() {
        "pv" => from_str(json).map(EventBody::Pageview),
        "cl" => from_str(json).map(EventBody::Click),
        "sc" => from_str(json).map(EventBody::Scroll),
        "pp" => from_str(json).map(EventBody::PointerPath),
        "ix" => from_str(json).map(EventBody::Interaction),
        "vi" => from_str(json).map(EventBody::Visibility),
        "en" => from_str(json).map(EventBody::Environment),
        "ac" => from_str(json).map(EventBody::AddToCart),
        "co" => from_str(json).map(EventBody::CheckoutStarted),
        "pi" => from_str(json).map(EventBody::PaymentInfoSubmitted),
        "al" => from_str(json).map(EventBody::AlertDisplayed),
        "cc" => from_str(json).map(EventBody::CheckoutCompleted),
        _ => return Err(DropReason::UnknownEventType),
    };
    let (Ok(mut body), Some(ts)) = (body, head.ts) else { return Err(DropReason::InvalidEvent) };
    body.sanitize().map_err(|_| DropReason::InvalidEvent)?;
    Ok(Event { ts, body })
}

fn truncate_opt(value: &mut Option<String>, max_chars: usize) {
    if let Some(s) = value {
        truncate(s, max_chars);
    }
}

/// Truncates to at most `max_chars` characters without splitting a UTF-8 sequence.
pub fn truncate(s: &mut String, max_chars: usize) {
    if s.len() > max_chars
        && let Some((idx, _)) = s.char_indices().nth(max_chars)
    {
        s.truncate(idx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).unwrap()
    }

    #[test]
    fn a_valid_batch_parses() {
        let body = br#"{"k":"gt_abcdefghij","v":1,"s":1700000000000,"u":"https://shop.example/p/1?x=1","c":1,
            "e":[{"t":"pv","ts":1700000000000,"r":"https://google.com/","ti":"Shoes","pt":"product"}]}"#;
        let batch = parse_batch(body, 50).unwrap();
        assert_eq!(batch.site_key, Some("gt_abcdefghij"));
        assert!(batch.consent);
        let event = parse_event(batch.events[0]).unwrap();
        assert_eq!(event.ts, 1_700_000_000_000);
        assert_eq!(event.body.kind(), "pv");
    }

    #[test]
    fn envelope_errors_say_what_is_missing() {
        assert_eq!(parse_batch(b"{not json", 50).unwrap_err().reason, DropReason::MalformedPayload);
        let no_u = parse_batch(br#"{"s":1,"e":[{}]}"#, 50).unwrap_err();
        assert!(no_u.message.contains("`u`"), "{}", no_u.message);
        let no_events = parse_batch(br#"{"s":1,"u":"x","e":[]}"#, 50).unwrap_err();
        assert!(no_events.message.contains("no events"));
        let v2 = parse_batch(br#"{"v":2,"s":1,"u":"x","e":[{}]}"#, 50).unwrap_err();
        assert!(v2.message.contains("version"));
    }

    #[test]
    fn more_events_than_the_limit_is_too_many_events() {
        let events = vec![r#"{"t":"pv","ts":1}"#; 51].join(",");
        let body = format!(r#"{{"s":1,"u":"x","e":[{events}]}}"#);
        assert_eq!(parse_batch(body.as_bytes(), 50).unwrap_err().reason, DropReason::TooManyEvents);
    }

    #[test]
    fn unknown_type_and_invalid_fields_are_told_apart() {
        assert_eq!(parse_event(&raw(r#"{"t":"zz","ts":1}"#)), Err(DropReason::UnknownEventType));
        assert_eq!(parse_event(&raw(r#"{"t":"cl","ts":1}"#)), Err(DropReason::InvalidEvent));
        assert_eq!(parse_event(&raw(r#"{"t":"sc","ts":1,"d":150}"#)), Err(DropReason::InvalidEvent));
        assert_eq!(parse_event(&raw(r#"{"t":"pp","ts":1,"p":[1,2]}"#)), Err(DropReason::InvalidEvent));
        assert_eq!(parse_event(&raw(r#"{"t":"vi","ts":1,"vs":"x"}"#)), Err(DropReason::InvalidEvent));
        assert_eq!(parse_event(&raw(r#"{"ts":1}"#)), Err(DropReason::InvalidEvent));
        assert_eq!(parse_event(&raw(r#"[]"#)), Err(DropReason::InvalidEvent));
    }

    #[test]
    fn long_text_is_truncated_on_char_boundaries() {
        let title = "é".repeat(500);
        let json = format!(r#"{{"t":"pv","ts":1,"ti":"{title}"}}"#);
        let EventBody::Pageview(pv) = parse_event(&raw(&json)).unwrap().body else { panic!() };
        assert_eq!(pv.ti.unwrap().chars().count(), MAX_TITLE_CHARS);
    }

    #[test]
    fn props_keep_type_fields_and_security_only_strips_content() {
        let mut event = parse_event(&raw(r#"{"t":"pv","ts":1,"r":"https://a.example/","ti":"T"}"#)).unwrap();
        assert_eq!(event.body.props_json().unwrap(), r#"{"r":"https://a.example/","ti":"T"}"#);
        event.body.strip_for_security_only();
        assert_eq!(event.body.props_json(), None);
    }

    #[test]
    fn pixel_checkout_events_parse_and_keep_only_the_token_and_alert_type() {
        let co = parse_event(&raw(r#"{"t":"co","ts":7,"ck":"c1a2b3","email":"a@b.example"}"#)).unwrap();
        assert_eq!(co.body, EventBody::CheckoutStarted(CheckoutStep { ck: Some("c1a2b3".into()) }));
        assert_eq!(co.body.kind(), "co");
        assert_eq!(co.body.props_json().unwrap(), r#"{"ck":"c1a2b3"}"#);
        let pi = parse_event(&raw(r#"{"t":"pi","ts":8,"ck":"c1a2b3"}"#)).unwrap();
        assert_eq!(pi.body.kind(), "pi");
        let cc = parse_event(&raw(r#"{"t":"cc","ts":9}"#)).unwrap();
        assert_eq!(cc.body, EventBody::CheckoutCompleted(CheckoutStep { ck: None }));
        assert_eq!(cc.body.props_json(), None);
        // The alert's message is not kept; the type is normalised to upper case.
        let al = parse_event(&raw(
            r#"{"t":"al","ts":10,"ck":"c1a2b3","at":"payment_error","message":"Card 4242 declined"}"#,
        ))
        .unwrap();
        assert_eq!(al.body, EventBody::AlertDisplayed(Alert { ck: Some("c1a2b3".into()), at: "PAYMENT_ERROR".into() }));
        assert_eq!(al.body.props_json().unwrap(), r#"{"ck":"c1a2b3","at":"PAYMENT_ERROR"}"#);
        assert!(!al.body.needs_consent());
    }

    #[test]
    fn pixel_checkout_events_with_bad_fields_are_invalid() {
        let long = "a".repeat(65);
        for json in [
            format!(r#"{{"t":"co","ts":1,"ck":"{long}"}}"#),
            r#"{"t":"pi","ts":1,"ck":"a b"}"#.to_owned(),
            r#"{"t":"pi","ts":1,"ck":"<script>"}"#.to_owned(),
            r#"{"t":"cc","ts":1,"ck":5}"#.to_owned(),
            r#"{"t":"al","ts":1,"ck":"x"}"#.to_owned(),
            r#"{"t":"al","ts":1,"at":""}"#.to_owned(),
            r#"{"t":"al","ts":1,"at":"PAYMENT ERROR"}"#.to_owned(),
            format!(r#"{{"t":"al","ts":1,"at":"{}"}}"#, "A".repeat(33)),
            r#"{"t":"co","ck":"x"}"#.to_owned(),
        ] {
            assert_eq!(parse_event(&raw(&json)), Err(DropReason::InvalidEvent), "{json}");
        }
        // An empty token is the same as none.
        let pi = parse_event(&raw(r#"{"t":"pi","ts":1,"ck":""}"#)).unwrap();
        assert_eq!(pi.body, EventBody::PaymentInfoSubmitted(CheckoutStep { ck: None }));
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_bytes_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(batch) = parse_batch(&body, 50) {
                for e in batch.events { let _ = parse_event(e); }
            }
        }

        #[test]
        fn parsing_json_shaped_noise_never_panics(
            t in "(pv|cl|sc|pp|ix|vi|en|ac|co|pi|al|cc|zz)",
            ts in any::<i64>(),
            x in any::<i64>(),
            s in ".{0,40}",
        ) {
            let event = format!(
                r#"{{"t":"{t}","ts":{ts},"x":{x},"y":{x},"d":{x},"p":[{x},{x},{x}],"vs":{s:?},"gl":{s:?},"ti":{s:?},"q":{x},"ck":{s:?},"at":{s:?}}}"#
            );
            let body = format!(r#"{{"k":{s:?},"s":{ts},"u":{s:?},"e":[{event}]}}"#);
            if let Ok(batch) = parse_batch(body.as_bytes(), 50) {
                for e in batch.events { let _ = parse_event(e); }
            }
        }
    }
}
