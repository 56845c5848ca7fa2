//! The Sessions filters and their query string (the page URL and the API call share it).

/// What the merchant filters sessions by. Empty fields are "any".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionFilters {
    /// `ALLOW`, `CHALLENGE` or `BLOCK`.
    pub decision: String,
    /// A rule id, e.g. `ua/automation-library`.
    pub rule: String,
    /// ISO country code.
    pub country: String,
    /// `desktop`, `mobile`, `tablet`, …
    pub device: String,
    /// Time window: `24h`, `7d` or `30d`.
    pub range: String,
}

const KEYS: [&str; 5] = ["decision", "rule", "country", "device", "range"];

impl SessionFilters {
    /// Reads filters from a query string; unknown keys are ignored, values trimmed.
    pub fn from_query(query: &str) -> SessionFilters {
        let mut f = SessionFilters::default();
        for pair in query.trim_start_matches('?').split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = decode(v).trim().to_owned();
            match k {
                "decision" => f.decision = v.to_uppercase(),
                "rule" => f.rule = v,
                "country" => f.country = v.to_uppercase(),
                "device" => f.device = v.to_lowercase(),
                "range" => f.range = v,
                _ => {}
            }
        }
        f
    }

    /// The query string (no `?`), keys in a fixed order, empty filters left out.
    pub fn to_query(&self) -> String {
        let values = [&self.decision, &self.rule, &self.country, &self.device, &self.range];
        KEYS.iter()
            .zip(values)
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(k, v)| format!("{k}={}", encode(v.trim())))
            .collect::<Vec<_>>()
            .join("&")
    }

    pub fn is_empty(&self) -> bool {
        self.to_query().is_empty()
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` and `+`; invalid escapes are kept as they are.
pub fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi * 16 + lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("", SessionFilters::default())]
    #[case("decision=block", SessionFilters { decision: "BLOCK".into(), ..Default::default() })]
    #[case("?country=de&device=Mobile&x=1", SessionFilters { country: "DE".into(), device: "mobile".into(), ..Default::default() })]
    #[case("rule=ua%2Fautomation-library", SessionFilters { rule: "ua/automation-library".into(), ..Default::default() })]
    #[case("range=7d&rule=%zz", SessionFilters { range: "7d".into(), rule: "%zz".into(), ..Default::default() })]
    fn queries_parse_to_filters(#[case] query: &str, #[case] expected: SessionFilters) {
        assert_eq!(SessionFilters::from_query(query), expected);
    }

    #[test]
    fn filters_round_trip_through_the_query_in_a_fixed_order() {
        let f = SessionFilters {
            decision: "BLOCK".into(),
            rule: "card/ct1-ip-failures".into(),
            country: "US".into(),
            device: "".into(),
            range: "7d".into(),
        };
        let q = f.to_query();
        assert_eq!(q, "decision=BLOCK&rule=card%2Fct1-ip-failures&country=US&range=7d");
        assert_eq!(SessionFilters::from_query(&q), f);
        assert!(SessionFilters::default().is_empty());
    }

    #[test]
    fn a_truncated_escape_does_not_panic() {
        assert_eq!(decode("a%4"), "a%4");
        assert_eq!(decode("%"), "%");
    }
}
