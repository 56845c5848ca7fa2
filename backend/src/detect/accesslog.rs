//! Access-log lines (Apache/nginx `combined`) → request events for `ghosttrack ingest-log`.
//! Hostile input is expected: the parser never panics and refuses what it cannot read.

use std::net::IpAddr;

use chrono::DateTime;

use super::event::{Body, DetectEvent, ip_key_prefix};

/// Log formats `ingest-log` reads. nginx's default `combined` is Apache's combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Combined,
    Nginx,
}

/// Why a line was not an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("no client address")]
    Address,
    #[error("no [time]")]
    Time,
    #[error("no \"request\"")]
    Request,
    #[error("no status")]
    Status,
}

/// Parses one `combined` line:
/// `IP - user [10/Oct/2000:13:55:36 -0700] "GET /path HTTP/1.1" 200 2326 "referer" "user agent"`.
pub fn parse_line(line: &str, _format: LogFormat) -> Result<DetectEvent, LineError> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (addr, rest) = line.split_once(' ').ok_or(LineError::Address)?;
    let ip: IpAddr = addr.parse().map_err(|_| LineError::Address)?;
    let open = rest.find('[').ok_or(LineError::Time)?;
    let close = rest[open..].find(']').ok_or(LineError::Time)? + open;
    let time = DateTime::parse_from_str(&rest[open + 1..close], "%d/%b/%Y:%H:%M:%S %z").map_err(|_| LineError::Time)?;
    let rest = &rest[close + 1..];
    let (request, rest) = quoted(rest).ok_or(LineError::Request)?;
    let mut parts = request.split(' ');
    let method = parts.next().filter(|m| !m.is_empty() && m.len() <= 16).ok_or(LineError::Request)?;
    let target = parts.next().unwrap_or("");
    let path = target.split(['?', '#']).next().unwrap_or("");
    let path: String = if path.is_empty() { "/".into() } else { path.chars().take(512).collect() };
    let mut fields = rest.split_whitespace();
    let status: u16 = fields.next().and_then(|s| s.parse().ok()).ok_or(LineError::Status)?;
    // size, then "referer" "user agent" (both optional in `common` lines).
    let after_status = rest.trim_start().splitn(3, ' ').nth(2).unwrap_or("");
    let (_referer, after_ref) = quoted(after_status).unwrap_or(("", ""));
    let user_agent = quoted(after_ref).map(|(ua, _)| ua.chars().take(512).collect::<String>());
    Ok(DetectEvent {
        ts: time.timestamp_millis(),
        session: None,
        visitor: None,
        client_key: Some(ip.to_string()),
        ip_prefix: Some(ip_key_prefix(ip)),
        device: None,
        asn: None,
        country: None,
        net_flags: 0,
        user_agent: user_agent.filter(|u| u != "-"),
        cart_token: None,
        checkout_token: None,
        body: Body::Request { method: method.chars().take(16).collect(), path, status },
    })
}

/// The first `"…"` in `s` (with `\"` escapes) and what follows it.
fn quoted(s: &str) -> Option<(&str, &str)> {
    let start = s.find('"')? + 1;
    let bytes = s.as_bytes();
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some((&s[start..i], &s[i + 1..])),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_combined_line_becomes_a_request_event() {
        let line = r#"203.0.113.9 - - [21/Nov/2026:03:55:21 +0000] "GET /products/a.json?page=2 HTTP/1.1" 404 12 "-" "python-requests/2.32.3""#;
        let e = parse_line(line, LogFormat::Combined).unwrap();
        assert_eq!(e.client_key.as_deref(), Some("203.0.113.9"));
        assert_eq!(e.ip_prefix.unwrap().to_string(), "203.0.113.0/24");
        assert_eq!(e.user_agent.as_deref(), Some("python-requests/2.32.3"));
        assert_eq!(e.body, Body::Request { method: "GET".into(), path: "/products/a.json".into(), status: 404 });
        assert_eq!(e.ts, 1_795_233_321_000);
    }

    #[test]
    fn broken_lines_say_what_is_missing() {
        assert_eq!(parse_line("", LogFormat::Nginx).unwrap_err(), LineError::Address);
        assert_eq!(parse_line("1.2.3.4 - - no time", LogFormat::Nginx).unwrap_err(), LineError::Time);
        assert_eq!(
            parse_line("1.2.3.4 - - [21/Nov/2026:03:55:21 +0000] GET", LogFormat::Nginx).unwrap_err(),
            LineError::Request
        );
        assert_eq!(
            parse_line(r#"1.2.3.4 - - [21/Nov/2026:03:55:21 +0000] "GET / HTTP/1.1" abc"#, LogFormat::Nginx)
                .unwrap_err(),
            LineError::Status
        );
    }

    proptest! {
        #[test]
        fn hostile_lines_never_panic(line in "\\PC{0,200}") {
            let _ = parse_line(&line, LogFormat::Combined);
        }

        #[test]
        fn near_valid_lines_never_panic(ip in "[0-9.:a-f]{0,20}", junk in "[\\[\\]\" \\\\a-zA-Z0-9/:+-]{0,80}") {
            let _ = parse_line(&format!("{ip} - - [21/Nov/2026:03:55:21 +0000] \"{junk}"), LogFormat::Combined);
            let _ = parse_line(&format!("{ip} {junk}"), LogFormat::Nginx);
        }
    }
}
