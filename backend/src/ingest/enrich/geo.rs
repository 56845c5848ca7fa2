//! Geography and network of an IP from MaxMind databases (GeoIP2/GeoLite2 City, ASN and
//! Anonymous-IP). Each database is optional; a missing one leaves its fields empty.

use std::net::IpAddr;
use std::path::Path;

use maxminddb::{Reader, geoip2};

/// Network flags stored as a bit set in `sessions.net_flags`.
pub mod net_flags {
    pub const TOR_EXIT: i32 = 1;
    pub const VPN: i32 = 2;
    pub const HOSTING: i32 = 4;
    pub const PUBLIC_PROXY: i32 = 8;
    pub const RESIDENTIAL_PROXY: i32 = 16;
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GeoInfo {
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
    /// ISO 3166-2 subdivision code without the country prefix (e.g. `ENG`).
    pub region: Option<String>,
    /// English city name.
    pub city: Option<String>,
    pub asn: Option<u32>,
    pub as_org: Option<String>,
    /// Bit set of [`net_flags`].
    pub net_flags: i32,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot open MaxMind database {path}: {source} (set the path to a readable .mmdb file, or unset it)")]
pub struct GeoOpenError {
    path: String,
    source: maxminddb::MaxMindDbError,
}

/// The loaded databases. Lookups are in-memory and lock-free.
#[derive(Default)]
pub struct GeoLookup {
    city: Option<Reader<Vec<u8>>>,
    asn: Option<Reader<Vec<u8>>>,
    anonymous: Option<Reader<Vec<u8>>>,
}

impl GeoLookup {
    pub fn open(city: Option<&Path>, asn: Option<&Path>, anonymous: Option<&Path>) -> Result<Self, GeoOpenError> {
        let open = |path: Option<&Path>| -> Result<Option<Reader<Vec<u8>>>, GeoOpenError> {
            path.map(|p| {
                Reader::open_readfile(p).map_err(|source| GeoOpenError { path: p.display().to_string(), source })
            })
            .transpose()
        };
        Ok(GeoLookup { city: open(city)?, asn: open(asn)?, anonymous: open(anonymous)? })
    }

    /// Names of the loaded databases, for the start-up log.
    pub fn loaded(&self) -> Vec<&'static str> {
        [("city", self.city.is_some()), ("asn", self.asn.is_some()), ("anonymous", self.anonymous.is_some())]
            .into_iter()
            .filter_map(|(name, on)| on.then_some(name))
            .collect()
    }

    /// Everything the databases know about `ip`. Decoding errors (a corrupt database) leave
    /// the affected fields empty rather than failing ingestion.
    pub fn lookup(&self, ip: IpAddr) -> GeoInfo {
        let mut info = GeoInfo::default();
        if let Some(reader) = &self.city
            && let Ok(Some(city)) = reader.lookup(ip).and_then(|r| r.decode::<geoip2::City>())
        {
            info.country = city.country.iso_code.map(str::to_owned);
            info.region = city.subdivisions.first().and_then(|s| s.iso_code).map(str::to_owned);
            info.city = city.city.names.english.map(str::to_owned);
        }
        if let Some(reader) = &self.asn
            && let Ok(Some(asn)) = reader.lookup(ip).and_then(|r| r.decode::<geoip2::Asn>())
        {
            info.asn = asn.autonomous_system_number;
            info.as_org = asn.autonomous_system_organization.map(str::to_owned);
        }
        if let Some(reader) = &self.anonymous
            && let Ok(Some(anon)) = reader.lookup(ip).and_then(|r| r.decode::<geoip2::AnonymousIp>())
        {
            let flag = |on: Option<bool>, bit: i32| if on == Some(true) { bit } else { 0 };
            info.net_flags = flag(anon.is_tor_exit_node, net_flags::TOR_EXIT)
                | flag(anon.is_anonymous_vpn, net_flags::VPN)
                | flag(anon.is_hosting_provider, net_flags::HOSTING)
                | flag(anon.is_public_proxy, net_flags::PUBLIC_PROXY)
                | flag(anon.is_residential_proxy, net_flags::RESIDENTIAL_PROXY);
        }
        info
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn data(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/maxmind").join(name)
    }

    fn lookup() -> GeoLookup {
        GeoLookup::open(
            Some(&data("GeoIP2-City-Test.mmdb")),
            Some(&data("GeoLite2-ASN-Test.mmdb")),
            Some(&data("GeoIP2-Anonymous-IP-Test.mmdb")),
        )
        .unwrap()
    }

    #[test]
    fn a_london_address_resolves_to_gb_eng_london() {
        let info = lookup().lookup("81.2.69.142".parse().unwrap());
        assert_eq!(info.country.as_deref(), Some("GB"));
        assert_eq!(info.region.as_deref(), Some("ENG"));
        assert_eq!(info.city.as_deref(), Some("London"));
    }

    #[test]
    fn anonymous_ip_flags_are_set_from_the_database() {
        // 81.2.69.0/120 (IPv4-mapped) is Tor + VPN + hosting + public proxy in the test DB.
        let flags = lookup().lookup("81.2.69.1".parse().unwrap()).net_flags;
        assert_ne!(flags & net_flags::TOR_EXIT, 0);
        assert_ne!(flags & net_flags::VPN, 0);
        assert_ne!(flags & net_flags::HOSTING, 0);
    }

    #[test]
    fn asn_and_organisation_come_from_the_asn_database() {
        let info = lookup().lookup("1.128.0.1".parse().unwrap());
        assert_eq!(info.asn, Some(1221));
        assert_eq!(info.as_org.as_deref(), Some("Telstra Pty Ltd"));
    }

    #[test]
    fn unknown_addresses_and_missing_databases_give_empty_info() {
        assert_eq!(lookup().lookup("127.0.0.1".parse().unwrap()), GeoInfo::default());
        assert_eq!(GeoLookup::default().lookup("81.2.69.142".parse().unwrap()), GeoInfo::default());
    }

    #[test]
    fn a_missing_file_is_a_clear_error() {
        let err = GeoLookup::open(Some(Path::new("/nonexistent.mmdb")), None, None).err().unwrap();
        assert!(err.to_string().contains("/nonexistent.mmdb"));
    }
}
