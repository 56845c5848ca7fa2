//! The enrich step: what we can learn from the request itself (user agent, IP → place and network).

pub mod geo;
pub mod tor;
pub mod ua;

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

pub use geo::{GeoInfo, GeoLookup};
pub use tor::TorExitList;
pub use ua::{UaParser, UserAgentInfo};

use super::client_ip;

/// Enrichment shared by every event of one request.
#[derive(Clone, Debug)]
pub struct Enrichment {
    pub ua: Arc<UserAgentInfo>,
    pub geo: GeoInfo,
    /// The only form of the IP that is stored.
    pub ip_prefix: IpNet,
}

pub struct Enricher {
    pub ua: UaParser,
    pub geo: GeoLookup,
    /// `detect.tor_exit_list`, reloaded in place by `tor::run_refresh`.
    pub tor: Option<Arc<TorExitList>>,
}

impl Enricher {
    pub fn new(geo: GeoLookup) -> Self {
        Enricher { ua: UaParser::new(), geo, tor: None }
    }

    pub fn with_tor(mut self, tor: Option<Arc<TorExitList>>) -> Self {
        self.tor = tor;
        self
    }

    pub fn enrich(&self, ip: IpAddr, user_agent: &str) -> Enrichment {
        let mut geo = self.geo.lookup(ip);
        geo.net_flags |= self.tor_flag(ip);
        Enrichment { ua: self.ua.parse(user_agent), geo, ip_prefix: client_ip::truncated(ip) }
    }

    /// MaxMind's network flags of `ip` plus the Tor exit list's.
    pub fn net_flags(&self, ip: IpAddr) -> i32 {
        self.geo.lookup(ip).net_flags | self.tor_flag(ip)
    }

    fn tor_flag(&self, ip: IpAddr) -> i32 {
        match &self.tor {
            Some(list) if list.contains(ip) => geo::net_flags::TOR_EXIT,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ip_on_the_tor_exit_list_carries_the_tor_flag() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tor-exit-list.txt");
        let tor = Arc::new(TorExitList::open(&path).unwrap());
        let enricher = Enricher::new(GeoLookup::open(None, None, None).unwrap()).with_tor(Some(tor));
        let listed = enricher.enrich("185.220.101.1".parse().unwrap(), "curl/8");
        assert_eq!(listed.geo.net_flags & geo::net_flags::TOR_EXIT, geo::net_flags::TOR_EXIT);
        assert_eq!(enricher.net_flags("171.25.193.77".parse().unwrap()), geo::net_flags::TOR_EXIT);
        assert_eq!(enricher.net_flags("185.220.101.9".parse().unwrap()), 0, "a neighbour is not listed");
    }
}
