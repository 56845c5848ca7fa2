//! How numbers, shares and times are written in the panel.

/// `1234567` → `1,234,567`.
pub fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// A 0..1 share as a percentage with one decimal: `0.1234` → `12.3%`.
pub fn percent(share: f64) -> String {
    if !share.is_finite() {
        return "–".into();
    }
    format!("{:.1}%", share * 100.0)
}

/// UTC date and time of epoch milliseconds, `2026-11-21 06:45:01` (no date library: civil
/// date from days since the epoch, Howard Hinnant's algorithm).
pub fn datetime(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `HH:MM` (UTC) for chart labels of hourly buckets, `MM-DD` for daily ones.
pub fn bucket_label(ms: i64, bucket_ms: i64) -> String {
    let full = datetime(ms);
    if bucket_ms < 86_400_000 { full[11..16].to_owned() } else { full[5..10].to_owned() }
}

/// A duration in ms as `1 h 2 min`, `3 min 4 s`, `5.2 s`.
pub fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    let s = ms / 1000;
    if s >= 3600 {
        format!("{} h {} min", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{} min {} s", s / 60, s % 60)
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(0, "0")]
    #[case(999, "999")]
    #[case(1000, "1,000")]
    #[case(1234567, "1,234,567")]
    #[case(-4200, "-4,200")]
    fn counts_have_thousands_separators(#[case] n: i64, #[case] expected: &str) {
        assert_eq!(count(n), expected);
    }

    #[rstest]
    #[case(0, "1970-01-01 00:00:00")]
    #[case(1_795_000_000_000, "2026-11-18 11:06:40")]
    #[case(951_782_400_000, "2000-02-29 00:00:00")]
    fn datetimes_are_utc(#[case] ms: i64, #[case] expected: &str) {
        assert_eq!(datetime(ms), expected);
    }

    #[rstest]
    #[case(4_200, "4.2 s")]
    #[case(61_000, "1 min 1 s")]
    #[case(3_720_000, "1 h 2 min")]
    fn durations_read_naturally(#[case] ms: i64, #[case] expected: &str) {
        assert_eq!(duration(ms), expected);
    }

    #[test]
    fn shares_and_labels() {
        assert_eq!(percent(0.1234), "12.3%");
        assert_eq!(percent(f64::NAN), "–");
        assert_eq!(bucket_label(1_795_000_000_000, 3_600_000), "11:06");
        assert_eq!(bucket_label(1_795_000_000_000, 86_400_000), "11-18");
    }
}
