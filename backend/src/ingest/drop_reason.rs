//! Why the ingest pipeline refused something. The set is closed: every step can only drop with
//! one of these, each is counted on `/metrics` and in the `drop_counters` table, and each has a
//! test. Request-level reasons count the request once; event-level reasons count each event.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// Body is not valid JSON or misses a required batch field (400).
    MalformedPayload,
    /// Body exceeds `ingest.max_body_bytes` (413).
    PayloadTooLarge,
    /// More than `ingest.max_events_per_batch` events (400).
    TooManyEvents,
    /// The site key names no site (404, no hint whether the key was well-formed).
    UnknownSite,
    /// The client clock differs from ours by more than `ingest.max_clock_skew_secs`.
    ClockSkew,
    /// Event time is more than `ingest.max_event_age_secs` before its batch's send time.
    EventTooOld,
    /// Event time is after its batch's send time by more than the skew allowance.
    EventInFuture,
    /// `t` names no event type of the protocol.
    UnknownEventType,
    /// A known event type with missing or out-of-range fields.
    InvalidEvent,
    /// A detailed event (click, scroll, pointer path) sent without analytics consent or to a
    /// site in strict privacy mode.
    NotConsented,
    /// The write buffer is full (503 + Retry-After).
    Overloaded,
    /// The database refused the commit (503 + Retry-After); nothing was acknowledged.
    StorageUnavailable,
    /// The tenant is over its plan's monthly session quota and this new session was sampled
    /// out (still 202; see `billing::quota`).
    OverQuota,
    /// The site sent more collect requests than `rate_limit.site_per_sec` allows (429).
    RateLimitedSite,
    /// The client's network (/24, /48) sent more than `rate_limit.network_per_sec` allows (429).
    RateLimitedNetwork,
}

impl DropReason {
    pub const ALL: [DropReason; 15] = [
        DropReason::MalformedPayload,
        DropReason::PayloadTooLarge,
        DropReason::TooManyEvents,
        DropReason::UnknownSite,
        DropReason::ClockSkew,
        DropReason::EventTooOld,
        DropReason::EventInFuture,
        DropReason::UnknownEventType,
        DropReason::InvalidEvent,
        DropReason::NotConsented,
        DropReason::Overloaded,
        DropReason::StorageUnavailable,
        DropReason::OverQuota,
        DropReason::RateLimitedSite,
        DropReason::RateLimitedNetwork,
    ];

    /// Stable snake_case name used in metrics labels, the database and API responses.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::MalformedPayload => "malformed_payload",
            DropReason::PayloadTooLarge => "payload_too_large",
            DropReason::TooManyEvents => "too_many_events",
            DropReason::UnknownSite => "unknown_site",
            DropReason::ClockSkew => "clock_skew",
            DropReason::EventTooOld => "event_too_old",
            DropReason::EventInFuture => "event_in_future",
            DropReason::UnknownEventType => "unknown_event_type",
            DropReason::InvalidEvent => "invalid_event",
            DropReason::NotConsented => "not_consented",
            DropReason::Overloaded => "overloaded",
            DropReason::StorageUnavailable => "storage_unavailable",
            DropReason::OverQuota => "over_quota",
            DropReason::RateLimitedSite => "rate_limited_site",
            DropReason::RateLimitedNetwork => "rate_limited_network",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case() {
        let mut names: Vec<&str> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        assert!(names.iter().all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::ALL.len());
    }
}
