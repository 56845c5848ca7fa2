//! Which IP a request came from, and the truncated form we are allowed to keep.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// IPv4 addresses are kept as their /24 network.
pub const IPV4_KEEP_PREFIX: u8 = 24;
/// IPv6 addresses are kept as their /48 network (a typical site allocation).
pub const IPV6_KEEP_PREFIX: u8 = 48;

/// The client address: the TCP peer, or — only when the peer is a trusted proxy — the
/// right-most address in `X-Forwarded-For` that is not itself a trusted proxy. (Left-most
/// entries are whatever the client chose to send and cannot be trusted.)
pub fn resolve(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let Some(header) = forwarded_for else { return peer };
    let mut candidate = peer;
    for hop in header.rsplit(',') {
        match parse_hop(hop) {
            Some(ip) => {
                candidate = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            // A garbled hop ends the chain of trust: use what we had.
            None => break,
        }
    }
    candidate
}

fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>().ok().or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|s| s.ip())).map(canonical)
}

/// IPv4-mapped IPv6 (`::ffff:1.2.3.4`) is treated as the IPv4 address it carries.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The stored, truncated form: `81.2.69.0/24` or `2001:db8:1::/48`.
pub fn truncated(ip: IpAddr) -> IpNet {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpNet::new(IpAddr::V4(Ipv4Addr::new(a, b, c, 0)), IPV4_KEEP_PREFIX).expect("valid prefix")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let net = Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0);
            IpNet::new(IpAddr::V6(net), IPV6_KEEP_PREFIX).expect("valid prefix")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(resolve(peer, Some("1.1.1.1"), &nets(&["10.0.0.0/8"])), peer);
        assert_eq!(resolve(peer, Some("1.1.1.1"), &[]), peer);
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let peer: IpAddr = "10.0.0.2".parse().unwrap();
        let trusted = nets(&["10.0.0.0/8"]);
        let ip = resolve(peer, Some("6.6.6.6, 81.2.69.142, 10.0.0.7"), &trusted);
        assert_eq!(ip, "81.2.69.142".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_garbled_hop_stops_the_walk() {
        let peer: IpAddr = "10.0.0.2".parse().unwrap();
        let ip = resolve(peer, Some("81.2.69.142, garbage"), &nets(&["10.0.0.0/8"]));
        assert_eq!(ip, peer);
    }

    #[test]
    fn addresses_are_truncated_to_24_and_48_bits() {
        assert_eq!(truncated("81.2.69.142".parse().unwrap()).to_string(), "81.2.69.0/24");
        assert_eq!(truncated("::ffff:81.2.69.142".parse().unwrap()).to_string(), "81.2.69.0/24");
        assert_eq!(truncated("2001:db8:abcd:12::1".parse().unwrap()).to_string(), "2001:db8:abcd::/48");
    }
}
