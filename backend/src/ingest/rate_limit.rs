//! Collect rate limits: one token bucket (GCRA, the `governor` crate) per site and one per client
//! network (the same /24 or /48 the server stores), so one tenant's flood or one network's
//! flood cannot starve the others. A request over a limit is answered 429 + `Retry-After` and
//! counted as a drop (`rate_limited_site` / `rate_limited_network`).
//!
//! Memory is bounded by construction: keys are a keyed hash of the site or network reduced to
//! `max_keys` slots, so a flood of distinct networks reuses slots instead of growing the map
//! (two networks sharing a slot share a bucket, which only makes the limit stricter for them;
//! the hash is seeded per process, so a client cannot aim at another's slot). Housekeeping
//! drops slots whose bucket is full again (`prune`).

use std::hash::{BuildHasher, Hash, RandomState};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

use super::client_ip;
use crate::domain::SiteId;
use crate::settings::RateLimitSettings;

/// Which limit refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    Site,
    Network,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Site => "site",
            Limit::Network => "network",
        }
    }
}

/// A refused request: which limit, and when the bucket has room again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    pub limit: Limit,
    pub retry_after: Duration,
}

struct Bucket {
    limiter: DefaultKeyedRateLimiter<u64>,
    hasher: RandomState,
    slots: u64,
}

impl Bucket {
    fn new(quota: Quota, slots: usize) -> Self {
        Bucket { limiter: RateLimiter::keyed(quota), hasher: RandomState::new(), slots: slots.max(1) as u64 }
    }

    fn check(&self, key: impl Hash) -> Result<(), Duration> {
        let slot = self.hasher.hash_one(key) % self.slots;
        self.limiter.check_key(&slot).map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// The collect limits of one node (limits are per node; several nodes each allow the rate).
pub struct CollectLimits {
    site: Option<Bucket>,
    network: Option<Bucket>,
    exempt: Vec<IpNet>,
}

impl CollectLimits {
    pub fn from_settings(s: &RateLimitSettings) -> Self {
        if !s.enabled {
            return Self::new(None, None, s.max_keys, Vec::new());
        }
        Self::new(
            quota(s.site_per_sec, s.site_burst),
            quota(s.network_per_sec, s.network_burst),
            s.max_keys,
            s.exempt.clone(),
        )
    }

    pub fn new(site: Option<Quota>, network: Option<Quota>, max_keys: usize, exempt: Vec<IpNet>) -> Self {
        CollectLimits {
            site: site.map(|q| Bucket::new(q, max_keys)),
            network: network.map(|q| Bucket::new(q, max_keys)),
            exempt,
        }
    }

    fn exempt(&self, ip: IpAddr) -> bool {
        let ip = client_ip::canonical(ip);
        self.exempt.iter().any(|net| net.contains(&ip))
    }

    /// The client's network limit; checked before the body is parsed (cheapest refusal).
    pub fn check_network(&self, ip: IpAddr) -> Result<(), Refused> {
        let Some(bucket) = &self.network else { return Ok(()) };
        if self.exempt(ip) {
            return Ok(());
        }
        bucket.check(client_ip::truncated(ip)).map_err(|wait| refused(Limit::Network, wait))
    }

    /// The tenant's limit, once the site is known.
    pub fn check_site(&self, site: SiteId, ip: IpAddr) -> Result<(), Refused> {
        let Some(bucket) = &self.site else { return Ok(()) };
        if self.exempt(ip) {
            return Ok(());
        }
        bucket.check(site.0).map_err(|wait| refused(Limit::Site, wait))
    }

    /// Forgets slots whose bucket refilled completely (they behave like new ones).
    pub fn prune(&self) {
        for bucket in [&self.site, &self.network].into_iter().flatten() {
            bucket.limiter.retain_recent();
            bucket.limiter.shrink_to_fit();
        }
    }

    /// Slots in memory (site + network).
    pub fn tracked(&self) -> usize {
        [&self.site, &self.network].into_iter().flatten().map(|b| b.limiter.len()).sum()
    }
}

fn refused(limit: Limit, wait: Duration) -> Refused {
    // Whole seconds for `Retry-After`, at least 1.
    Refused { limit, retry_after: Duration::from_secs(wait.as_secs_f64().ceil().max(1.0) as u64) }
}

/// `per_sec` sustained with `burst` at once; `None` (no limit) when `per_sec` is 0.
fn quota(per_sec: u32, burst: u32) -> Option<Quota> {
    let rate = NonZeroU32::new(per_sec)?;
    let burst = NonZeroU32::new(burst).unwrap_or(rate);
    Some(Quota::per_second(rate).allow_burst(burst))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_hour(n: u32) -> Option<Quota> {
        Some(Quota::per_hour(NonZeroU32::new(n).unwrap()))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_network_is_limited_per_24_and_others_are_not_affected() {
        let limits = CollectLimits::new(None, per_hour(2), 1000, Vec::new());
        assert!(limits.check_network(ip("81.2.69.1")).is_ok());
        assert!(limits.check_network(ip("81.2.69.200")).is_ok());
        let refused = limits.check_network(ip("81.2.69.7")).unwrap_err();
        assert_eq!(refused.limit, Limit::Network);
        assert!(refused.retry_after >= Duration::from_secs(1));
        // Another /24 has its own bucket.
        assert!(limits.check_network(ip("81.2.70.1")).is_ok());
        // IPv6: the /48 is the key.
        assert!(limits.check_network(ip("2001:db8:1:1::1")).is_ok());
        assert!(limits.check_network(ip("2001:db8:1:2::1")).is_ok());
        assert!(limits.check_network(ip("2001:db8:1:3::1")).is_err());
    }

    #[test]
    fn a_site_is_limited_on_its_own() {
        let limits = CollectLimits::new(per_hour(1), None, 1000, Vec::new());
        assert!(limits.check_site(SiteId(1), ip("81.2.69.1")).is_ok());
        assert_eq!(limits.check_site(SiteId(1), ip("9.9.9.9")).unwrap_err().limit, Limit::Site);
        assert!(limits.check_site(SiteId(2), ip("81.2.69.1")).is_ok());
        // No network limit configured.
        for _ in 0..100 {
            assert!(limits.check_network(ip("81.2.69.1")).is_ok());
        }
    }

    #[test]
    fn exempt_networks_are_never_limited() {
        let exempt = vec!["127.0.0.0/8".parse().unwrap()];
        let limits = CollectLimits::new(per_hour(1), per_hour(1), 1000, exempt);
        for _ in 0..10 {
            assert!(limits.check_network(ip("127.0.0.1")).is_ok());
            assert!(limits.check_network(ip("::ffff:127.0.0.1")).is_ok());
            assert!(limits.check_site(SiteId(1), ip("127.0.0.1")).is_ok());
        }
    }

    #[test]
    fn memory_is_bounded_by_max_keys_whatever_the_number_of_networks() {
        let limits = CollectLimits::new(None, per_hour(1_000), 64, Vec::new());
        for a in 0..=255u8 {
            for b in 0..40u8 {
                let _ = limits.check_network(IpAddr::from([10, a, b, 1]));
            }
        }
        assert!(limits.tracked() <= 64, "{}", limits.tracked());
    }

    #[test]
    fn zero_turns_a_limit_off_and_disabled_turns_both_off() {
        let mut settings = RateLimitSettings { network_per_sec: 0, ..RateLimitSettings::default() };
        let limits = CollectLimits::from_settings(&settings);
        assert!(limits.network.is_none() && limits.site.is_some());
        settings.enabled = false;
        let limits = CollectLimits::from_settings(&settings);
        assert!(limits.network.is_none() && limits.site.is_none());
    }
}
