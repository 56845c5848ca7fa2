//! Every log line of the end-to-end test binary goes to one in-memory capture (one global
//! subscriber, installed by the first `Spawn::start`), and is scanned for what must never be
//! logged: tokens (Shopify access/refresh tokens, GhostTrack API tokens, Stripe secret and
//! webhook keys, Shopify session tokens), the secret values the servers were configured with
//! (`GHOSTTRACK_SECRET_KEY`, the Shopify client secret, …, registered by `Spawn::start`),
//! emails and raw (untruncated) client IPs. Each `TestApp` checks the lines captured so far when
//! it is dropped, so any test that leaks fails the run.

use std::sync::{Mutex, OnceLock};

use regex::Regex;

/// What a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leak {
    Token,
    ConfiguredSecret,
    Email,
    RawIp,
}

/// One forbidden value in one line; `line` has the value masked, so printing it leaks nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: Leak,
    pub line: String,
}

struct Capture {
    text: Vec<u8>,
    /// Bytes already scanned (up to a line end).
    scanned: usize,
    secrets: Vec<String>,
}

static CAPTURE: OnceLock<&'static Mutex<Capture>> = OnceLock::new();

/// Secrets shorter than this are not looked for (they would match ordinary words).
const MIN_SECRET_LEN: usize = 8;

fn capture() -> &'static Mutex<Capture> {
    CAPTURE.get_or_init(|| {
        let cap: &'static Mutex<Capture> =
            Box::leak(Box::new(Mutex::new(Capture { text: Vec::new(), scanned: 0, secrets: Vec::new() })));
        struct Writer(&'static Mutex<Capture>);
        impl std::io::Write for Writer {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap_or_else(|e| e.into_inner()).text.extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        // Everything the server (crate `ghosttrack`) logs, at every level; other crates' errors.
        // Not the database drivers' statement logs: they echo the tests' own SQL.
        let filter = tracing_subscriber::EnvFilter::new("error,ghosttrack=trace");
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(move || Writer(cap))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber in the e2e binary");
        cap
    })
}

/// Starts capturing (idempotent).
pub fn install() {
    capture();
}

/// Everything captured so far.
pub fn text() -> String {
    String::from_utf8_lossy(&capture().lock().unwrap_or_else(|e| e.into_inner()).text).into_owned()
}

/// A configured secret value that must never be logged.
pub fn register_secret(secret: &str) {
    if secret.len() < MIN_SECRET_LEN {
        return;
    }
    let mut cap = capture().lock().unwrap_or_else(|e| e.into_inner());
    if !cap.secrets.iter().any(|s| s == secret) {
        cap.secrets.push(secret.to_owned());
    }
}

/// Scans the lines captured since the last call; each line is reported once.
pub fn new_findings() -> Vec<Finding> {
    let (chunk, secrets) = {
        let mut cap = capture().lock().unwrap_or_else(|e| e.into_inner());
        let Some(end) = cap.text.iter().rposition(|b| *b == b'\n').map(|i| i + 1) else { return Vec::new() };
        if end <= cap.scanned {
            return Vec::new();
        }
        let chunk = String::from_utf8_lossy(&cap.text[cap.scanned..end]).into_owned();
        cap.scanned = end;
        (chunk, cap.secrets.clone())
    };
    scan(&chunk, &secrets)
}

/// Panics (failing the test) when lines captured since the last check leak anything.
pub fn assert_clean() {
    let findings = new_findings();
    assert!(
        findings.is_empty(),
        "{} log line(s) leak a token, secret, email or raw IP (values masked):\n{}",
        findings.len(),
        findings.iter().map(|f| format!("  {:?}: {}", f.kind, f.line)).collect::<Vec<_>>().join("\n")
    );
}

struct Patterns {
    tokens: Regex,
    email: Regex,
    ipv4: Regex,
    ipv6: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| Patterns {
        tokens: Regex::new(concat!(
            r"shp(?:at|ua|ca|pa|rt|ss)_[0-9A-Za-z]{8,}", // Shopify access / refresh tokens
            r"|gtk_[0-9A-Za-z]{16,}",                    // GhostTrack API tokens
            r"|\b(?:sk|rk)_(?:test|live)_[0-9A-Za-z]{8,}", // Stripe secret / restricted keys
            r"|whsec_[0-9A-Za-z]{6,}",                   // Stripe webhook secrets
            r"|eyJ[0-9A-Za-z_-]{8,}\.eyJ[0-9A-Za-z_-]{8,}\.", // JWTs (Shopify session / id tokens)
        ))
        .unwrap(),
        email: Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}").unwrap(),
        ipv4: Regex::new(r"(?:^|[^0-9.])((?:[0-9]{1,3}\.){3}[0-9]{1,3})(/[0-9]+)?(?:[^0-9.]|$)").unwrap(),
        ipv6: Regex::new(r"(?i)(?:^|[^0-9a-f:])((?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4})(/[0-9]+)?").unwrap(),
    })
}

/// An IPv4 address that is a client's: not loopback, unspecified or a truncated prefix
/// (`x.y.z.0`, what GhostTrack stores and may log).
fn raw_ipv4(ip: &str, prefix: Option<&str>) -> bool {
    let octets: Vec<u16> = ip.split('.').filter_map(|o| o.parse().ok()).collect();
    if octets.len() != 4 || octets.iter().any(|o| *o > 255) || prefix.is_some() {
        return false;
    }
    !(octets[0] == 127 || octets == [0, 0, 0, 0] || octets[3] == 0)
}

/// An IPv6 address that is a client's: a full address, not `::1` or a `/48` prefix.
fn raw_ipv6(ip: &str, prefix: Option<&str>) -> bool {
    let groups = ip.split(':').filter(|g| !g.is_empty()).count();
    let compressed = ip.contains("::");
    prefix.is_none() && ip != "::1" && (groups == 8 || (compressed && groups >= 2 && !ip.ends_with("::")))
}

/// The findings in `text` (one per line and kind), given the configured secret values.
pub fn scan(text: &str, secrets: &[String]) -> Vec<Finding> {
    let p = patterns();
    let mut out = Vec::new();
    for line in text.lines() {
        let mut masked = line.to_owned();
        let mut kinds = Vec::new();
        for secret in secrets.iter().filter(|s| s.len() >= MIN_SECRET_LEN) {
            if masked.contains(secret.as_str()) {
                masked = masked.replace(secret.as_str(), "<secret>");
                kinds.push(Leak::ConfiguredSecret);
            }
        }
        if p.tokens.is_match(&masked) {
            masked = p.tokens.replace_all(&masked, "<token>").into_owned();
            kinds.push(Leak::Token);
        }
        if p.email.is_match(&masked) {
            masked = p.email.replace_all(&masked, "<email>").into_owned();
            kinds.push(Leak::Email);
        }
        let v4: Vec<String> = p
            .ipv4
            .captures_iter(&masked)
            .filter(|c| raw_ipv4(&c[1], c.get(2).map(|m| m.as_str())))
            .map(|c| c[1].to_owned())
            .collect();
        let v6: Vec<String> = p
            .ipv6
            .captures_iter(&masked)
            .filter(|c| raw_ipv6(&c[1], c.get(2).map(|m| m.as_str())))
            .map(|c| c[1].to_owned())
            .collect();
        if !v4.is_empty() || !v6.is_empty() {
            for ip in v4.iter().chain(&v6) {
                masked = masked.replace(ip.as_str(), "<ip>");
            }
            kinds.push(Leak::RawIp);
        }
        kinds.dedup();
        out.extend(kinds.into_iter().map(|kind| Finding { kind, line: masked.clone() }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(line: &str, secrets: &[&str]) -> Vec<Leak> {
        let secrets: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
        scan(line, &secrets).into_iter().map(|f| f.kind).collect()
    }

    #[test]
    fn planted_tokens_secrets_emails_and_ips_are_caught_and_masked() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig";
        for token in ["shpat_0123456789abcdef", "shprt_0123456789abcdef", "gtk_abcdefghijklmnopqrstuvwxyz", jwt]
            .into_iter()
            .chain(["sk_test_51Habcdefgh", "whsec_abcdef123"])
        {
            assert_eq!(kinds(&format!("INFO refresh failed token={token}"), &[]), [Leak::Token], "{token}");
        }
        let secret = "0123456789abcdef0123456789abcdef";
        assert_eq!(kinds(&format!("WARN bad key {secret}"), &[secret]), [Leak::ConfiguredSecret]);
        assert_eq!(kinds("INFO alert sent to jane.doe@example.com", &[]), [Leak::Email]);
        assert_eq!(kinds("INFO collect from 198.51.100.77 accepted", &[]), [Leak::RawIp]);
        assert_eq!(kinds("INFO client=81.2.69.142:443", &[]), [Leak::RawIp]);
        assert_eq!(kinds("INFO client 2001:db8:85a3::8a2e:370:7334 seen", &[]), [Leak::RawIp]);
        let found = scan(&format!("x {secret} jane@example.com 198.51.100.77"), &[secret.to_owned()]);
        assert_eq!(found.len(), 3);
        assert!(found.iter().all(|f| !f.line.contains(secret) && !f.line.contains("jane@") && !f.line.contains(".77")));
    }

    #[test]
    fn what_ghosttrack_may_log_is_not_a_finding() {
        for line in [
            "2026-11-21T13:02:01.123456Z  INFO ghosttrack: listening addr=127.0.0.1:41234",
            "INFO session recorded ip_prefix=81.2.69.0/24 asn=12345 shop=acme.myshopify.com",
            "INFO v6 prefix 2001:db8:1::/48 and localhost ::1",
            "DEBUG ua=Mozilla/5.0 Chrome/131.0.6778.85 Safari/537.36 HeadlessChrome/131.0.0.0",
            "INFO database postgres://postgres@127.0.0.1:5432/gt_test_00ab",
            "INFO site key gt_abcdefghijklmnopqrst, rule card_testing.bin_velocity fired (score 80)",
        ] {
            assert_eq!(scan(line, &["short".into()]), [], "{line}");
        }
    }
}
