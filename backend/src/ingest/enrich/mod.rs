//! The enrich step: what we can learn from the request itself (user agent, IP → place and network).

pub mod geo;
pub mod ua;

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

pub use geo::{GeoInfo, GeoLookup};
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
}

impl Enricher {
    pub fn new(geo: GeoLookup) -> Self {
        Enricher { ua: UaParser::new(), geo }
    }

    pub fn enrich(&self, ip: IpAddr, user_agent: &str) -> Enrichment {
        Enrichment { ua: self.ua.parse(user_agent), geo: self.geo.lookup(ip), ip_prefix: client_ip::truncated(ip) }
    }
}
