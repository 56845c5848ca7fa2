//! The login rate limit: at most `MAX_FAILURES_PER_EMAIL` failed logins per email and
//! `MAX_FAILURES_PER_NETWORK` per client network (IPv4 /24, IPv6 /48) in a sliding
//! `WINDOW_MS`. Failures live in the database (`login_attempts`), so every node behind a load
//! balancer sees the same counts. Keys are hashed: the table holds no email or address.

use std::net::IpAddr;

use sha2::{Digest, Sha256};

use super::types::Email;
use crate::domain::UnixMillis;

/// The sliding window (15 minutes, OWASP's usual lockout period).
pub const WINDOW_MS: i64 = 15 * 60_000;
/// Failures per email within the window before logins for it are refused.
pub const MAX_FAILURES_PER_EMAIL: usize = 5;
/// Failures per client network within the window: higher than per email, since an office or
/// a carrier NAT puts many people behind one /24.
pub const MAX_FAILURES_PER_NETWORK: usize = 20;

/// What a failure is counted against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitKey {
    pub key: String,
    pub max_failures: usize,
}

impl LimitKey {
    pub fn email(email: &Email) -> Self {
        LimitKey { key: format!("email:{}", sha256_hex(email.as_str())), max_failures: MAX_FAILURES_PER_EMAIL }
    }

    pub fn network(ip: IpAddr) -> Self {
        let net = match ip {
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                format!("{a}.{b}.{c}.0/24")
            }
            IpAddr::V6(v6) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
            }
        };
        LimitKey { key: format!("net:{}", sha256_hex(&net)), max_failures: MAX_FAILURES_PER_NETWORK }
    }
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Seconds to wait before the next attempt, or `None` when one is allowed now.
/// `recent` holds the key's most recent failures, newest first (at least `max_failures` of
/// them when there are that many). Refused while `max_failures` failures lie in the window;
/// the wait ends when the oldest of those leaves it.
pub fn retry_after_secs(recent: &[UnixMillis], max_failures: usize, now: UnixMillis) -> Option<u64> {
    let since = now.0 - WINDOW_MS;
    let in_window: Vec<_> = recent.iter().filter(|t| t.0 > since).collect();
    if in_window.len() < max_failures {
        return None;
    }
    let mut newest_first = in_window;
    newest_first.sort_by(|a, b| b.cmp(a));
    let oldest_counted = newest_first[max_failures - 1];
    let wait_ms = oldest_counted.0 + WINDOW_MS - now.0;
    Some(((wait_ms.max(1) + 999) / 1000) as u64)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    const NOW: i64 = 1_800_000_000_000;
    const MIN: i64 = 60_000;

    fn ago(minutes: &[i64]) -> Vec<UnixMillis> {
        minutes.iter().map(|m| UnixMillis(NOW - m * MIN)).collect()
    }

    #[rstest]
    #[case::no_failures(&[], None)]
    #[case::four_failures(&[1, 2, 3, 4], None)]
    #[case::five_in_window(&[1, 2, 3, 4, 5], Some(10 * 60))]
    #[case::five_the_oldest_just_in(&[0, 0, 0, 0, 14], Some(60))]
    #[case::one_of_five_expired(&[1, 2, 3, 4, 15], None)]
    #[case::one_of_five_long_expired(&[1, 2, 3, 4, 60], None)]
    #[case::six_wait_for_the_fifth_newest(&[1, 2, 3, 4, 5, 14], Some(10 * 60))]
    fn five_failures_in_fifteen_minutes_lock_until_the_oldest_leaves(
        #[case] failures: &[i64],
        #[case] expected: Option<u64>,
    ) {
        assert_eq!(retry_after_secs(&ago(failures), MAX_FAILURES_PER_EMAIL, UnixMillis(NOW)), expected);
    }

    #[test]
    fn the_wait_is_rounded_up_to_a_whole_second_and_never_zero() {
        let recent = vec![UnixMillis(NOW - WINDOW_MS + 1); 5];
        assert_eq!(retry_after_secs(&recent, 5, UnixMillis(NOW)), Some(1));
    }

    #[test]
    fn addresses_of_one_network_share_a_key_and_keys_hold_no_address() {
        let a = LimitKey::network("203.0.113.9".parse().unwrap());
        let b = LimitKey::network("203.0.113.200".parse().unwrap());
        let c = LimitKey::network("203.0.114.9".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(!a.key.contains("203"));
        let v6a = LimitKey::network("2001:db8:1:2::1".parse().unwrap());
        let v6b = LimitKey::network("2001:db8:1:ffff::9".parse().unwrap());
        assert_eq!(v6a, v6b);
        assert_eq!(a.max_failures, MAX_FAILURES_PER_NETWORK);
    }

    #[test]
    fn email_keys_are_hashed_and_follow_normalisation() {
        let a = LimitKey::email(&Email::parse("Ann@Example.com").unwrap());
        let b = LimitKey::email(&Email::parse("ann@example.com").unwrap());
        assert_eq!(a, b);
        assert!(!a.key.contains("ann"));
        assert_eq!(a.max_failures, MAX_FAILURES_PER_EMAIL);
    }
}
