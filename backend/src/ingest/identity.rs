//! The identify step: cookieless visitor ids and sessions.
//!
//! visitor id = first 63 bits of HMAC-SHA256(key = today's random salt, site ‖ IP ‖ UA).
//! Without the salt the id cannot be linked back to an IP; the salt is deleted after 48 h, so
//! yesterday's ids become unlinkable to today's. Sessions end after `session_idle_secs` of
//! inactivity measured in *event* time, so replays give the same sessions as live traffic.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use moka::sync::Cache;
use parking_lot::{Mutex, RwLock};
use sea_orm::DatabaseConnection;
use sha2::Sha256;

use crate::domain::{SessionId, SiteId, UnixMillis, VisitorId};
use crate::storage::{self, StorageError, salts::SALT_LEN};

/// Computes the visitor id of (site, IP, UA) under a day's salt.
pub fn visitor_id(salt: &[u8; SALT_LEN], site: SiteId, ip: IpAddr, user_agent: &str) -> VisitorId {
    let mut mac = Hmac::<Sha256>::new_from_slice(salt).expect("HMAC accepts any key length");
    mac.update(&site.0.to_le_bytes());
    match client_ip_bytes(ip) {
        IpBytes::V4(b) => mac.update(&b),
        IpBytes::V6(b) => mac.update(&b),
    }
    // Separator so ("1.2.3.4", "5 UA") cannot collide with a different split of the same bytes.
    mac.update(&[0]);
    mac.update(user_agent.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    VisitorId(i64::from_le_bytes(first) & i64::MAX)
}

enum IpBytes {
    V4([u8; 4]),
    V6([u8; 16]),
}

fn client_ip_bytes(ip: IpAddr) -> IpBytes {
    match super::client_ip::canonical(ip) {
        IpAddr::V4(v4) => IpBytes::V4(v4.octets()),
        IpAddr::V6(v6) => IpBytes::V6(v6.octets()),
    }
}

/// Today's (and recently used days') salts, fetched from or created in the database once per
/// day per node.
#[derive(Default)]
pub struct SaltBook {
    by_day: RwLock<HashMap<i32, [u8; SALT_LEN]>>,
}

impl SaltBook {
    pub async fn salt_for(&self, db: &DatabaseConnection, day: i32) -> Result<[u8; SALT_LEN], StorageError> {
        if let Some(salt) = self.by_day.read().get(&day) {
            return Ok(*salt);
        }
        let salt = storage::salts::get_or_create(db, day).await?;
        let mut map = self.by_day.write();
        // Keep only the days that can still be asked for (today and yesterday).
        map.retain(|d, _| *d >= day - 1);
        map.insert(day, salt);
        Ok(salt)
    }

    /// Forgets salts of days before `day - 1` (called by the salt-rotation job).
    pub fn forget_before(&self, day: i32) {
        self.by_day.write().retain(|d, _| *d >= day - 1);
    }
}

/// The open session of one visitor.
#[derive(Clone, Copy, Debug)]
struct OpenSession {
    id: SessionId,
    started_at: UnixMillis,
    last_seen: UnixMillis,
}

/// Which session an event belongs to, and whether it opened that session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub session: SessionId,
    pub started_at: UnixMillis,
    pub is_new: bool,
}

/// Open sessions by (site, visitor), in memory. Entries idle (wall clock) longer than the
/// session timeout are evicted, which bounds memory; correctness uses event time.
pub struct SessionTracker {
    idle_ms: i64,
    open: Cache<(SiteId, VisitorId), Arc<Mutex<OpenSession>>>,
}

impl SessionTracker {
    pub fn new(idle: Duration) -> Self {
        SessionTracker {
            idle_ms: idle.as_millis() as i64,
            open: Cache::builder().max_capacity(2_000_000).time_to_idle(idle + Duration::from_secs(60)).build(),
        }
    }

    /// Re-opens a session loaded from the database at start-up.
    pub fn restore(
        &self,
        site: SiteId,
        visitor: VisitorId,
        id: SessionId,
        started_at: UnixMillis,
        last_seen: UnixMillis,
    ) {
        self.open.insert((site, visitor), Arc::new(Mutex::new(OpenSession { id, started_at, last_seen })));
    }

    /// Assigns an event at time `ts` to the visitor's session, opening a new one when none is
    /// open or the last event is more than the idle timeout earlier.
    pub fn assign(&self, site: SiteId, visitor: VisitorId, ts: UnixMillis) -> Assignment {
        let slot = self.open.get_with((site, visitor), || {
            Arc::new(Mutex::new(OpenSession { id: SessionId(0), started_at: ts, last_seen: ts }))
        });
        let mut open = slot.lock();
        if open.id == SessionId(0) || ts.0 - open.last_seen.0 > self.idle_ms {
            *open = OpenSession { id: SessionId::new(ts), started_at: ts, last_seen: ts };
            return Assignment { session: open.id, started_at: ts, is_new: true };
        }
        if ts > open.last_seen {
            open.last_seen = ts;
        }
        Assignment { session: open.id, started_at: open.started_at, is_new: false }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: [u8; SALT_LEN] = [7; SALT_LEN];
    const UA: &str = "Mozilla/5.0";

    #[test]
    fn visitor_id_depends_on_salt_site_ip_and_ua() {
        let ip: IpAddr = "81.2.69.142".parse().unwrap();
        let base = visitor_id(&SALT, SiteId(1), ip, UA);
        assert_eq!(base, visitor_id(&SALT, SiteId(1), ip, UA));
        assert_ne!(base, visitor_id(&[8; SALT_LEN], SiteId(1), ip, UA));
        assert_ne!(base, visitor_id(&SALT, SiteId(2), ip, UA));
        assert_ne!(base, visitor_id(&SALT, SiteId(1), "81.2.69.143".parse().unwrap(), UA));
        assert_ne!(base, visitor_id(&SALT, SiteId(1), ip, "curl/8"));
        assert!(base.0 >= 0);
    }

    #[test]
    fn ipv4_mapped_ipv6_is_the_same_visitor_as_ipv4() {
        let v4 = visitor_id(&SALT, SiteId(1), "81.2.69.142".parse().unwrap(), UA);
        let mapped = visitor_id(&SALT, SiteId(1), "::ffff:81.2.69.142".parse().unwrap(), UA);
        assert_eq!(v4, mapped);
    }

    #[test]
    fn a_session_ends_after_thirty_idle_minutes_of_event_time() {
        let tracker = SessionTracker::new(Duration::from_secs(30 * 60));
        let (site, visitor) = (SiteId(1), VisitorId(42));
        let first = tracker.assign(site, visitor, UnixMillis(0));
        assert!(first.is_new);
        let within = tracker.assign(site, visitor, UnixMillis(29 * 60_000));
        assert_eq!(within.session, first.session);
        assert!(!within.is_new);
        // 30 minutes after the *last* event is still the same session...
        let edge = tracker.assign(site, visitor, UnixMillis(59 * 60_000));
        assert_eq!(edge.session, first.session);
        // ...one millisecond more is a new one.
        let later = tracker.assign(site, visitor, UnixMillis(89 * 60_000 + 1));
        assert!(later.is_new);
        assert_ne!(later.session, first.session);
    }

    #[test]
    fn visitors_and_sites_have_separate_sessions() {
        let tracker = SessionTracker::new(Duration::from_secs(1800));
        let a = tracker.assign(SiteId(1), VisitorId(1), UnixMillis(0));
        let b = tracker.assign(SiteId(1), VisitorId(2), UnixMillis(0));
        let c = tracker.assign(SiteId(2), VisitorId(1), UnixMillis(0));
        assert_ne!(a.session, b.session);
        assert_ne!(a.session, c.session);
    }
}
