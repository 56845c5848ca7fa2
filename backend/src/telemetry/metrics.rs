//! Prometheus metrics, exposed in text format at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::ingest::DropReason;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteStatus {
    pub route: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Route {
    pub route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: &'static str,
}

/// Outcome of one alert delivery attempt: `delivered`, `retry` or `dead`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub outcome: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 100 µs … ~6.5 s
    Histogram::new(exponential_buckets(0.0001, 2.0, 17))
}

pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<RouteStatus, Counter>,
    pub http_duration: HistogramFamily<Route>,
    pub events_accepted: Counter,
    pub dropped: Family<Reason, Counter>,
    pub commits: Counter,
    pub commit_failures: Counter,
    pub commit_events: Histogram,
    pub commit_seconds: Histogram,
    pub buffered_events: Gauge,
    pub alert_deliveries: Family<Outcome, Counter>,
    /// Whether detection runs on Redis or on its local fallback.
    pub detect_state: crate::detect::failover::StateHealth,
    /// Live-feed wake-ups received from other nodes through Redis pub/sub.
    pub live_remote_notifications: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ghosttrack");
        let http_requests = Family::<RouteStatus, Counter>::default();
        let http_duration: HistogramFamily<Route> = Family::new_with_constructor(latency_histogram);
        let events_accepted = Counter::default();
        let dropped = Family::<Reason, Counter>::default();
        let commits = Counter::default();
        let commit_failures = Counter::default();
        let commit_events = Histogram::new(exponential_buckets(1.0, 2.0, 15));
        let commit_seconds = latency_histogram();
        let buffered_events = Gauge::default();
        let alert_deliveries = Family::<Outcome, Counter>::default();

        registry.register("http_requests", "HTTP requests by route and status", http_requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency by route", http_duration.clone());
        registry.register("ingest_events_accepted", "Events committed and acknowledged", events_accepted.clone());
        registry.register(
            "ingest_dropped",
            "Dropped input by reason (events for event-level reasons, requests for request-level ones)",
            dropped.clone(),
        );
        registry.register("writer_commits", "Group commits", commits.clone());
        registry.register("writer_commit_failures", "Group commits the database refused", commit_failures.clone());
        registry.register("writer_commit_events", "Events per group commit", commit_events.clone());
        registry.register("writer_commit_seconds", "Duration of a group commit", commit_seconds.clone());
        registry.register("writer_buffered_events", "Events waiting to be committed", buffered_events.clone());
        registry.register(
            "alert_deliveries",
            "Alert delivery attempts by outcome (delivered, retry, dead)",
            alert_deliveries.clone(),
        );
        let detect_state = crate::detect::failover::StateHealth::default();
        registry.register(
            "detect_state_local_fallback",
            "1 while detection runs on in-process state because Redis is unreachable",
            detect_state.local_fallback.clone(),
        );
        registry.register(
            "detect_state_fallbacks",
            "Switches of detection state from Redis to in-process state",
            detect_state.fallbacks.clone(),
        );
        let live_remote_notifications = Counter::default();
        registry.register(
            "live_remote_notifications",
            "Live threat feed wake-ups received from other nodes through Redis pub/sub",
            live_remote_notifications.clone(),
        );
        for outcome in ["delivered", "retry", "dead"] {
            let _ = alert_deliveries.get_or_create(&Outcome { outcome });
        }

        // Every reason appears from the start, so dashboards and alerts see zeros, not gaps.
        for reason in DropReason::ALL {
            let _ = dropped.get_or_create(&Reason { reason: reason.as_str() });
        }

        Metrics {
            registry,
            http_requests,
            http_duration,
            events_accepted,
            dropped,
            commits,
            commit_failures,
            commit_events,
            commit_seconds,
            buffered_events,
            alert_deliveries,
            detect_state,
            live_remote_notifications,
        }
    }

    pub fn record_drop(&self, reason: DropReason, count: u64) {
        self.dropped.get_or_create(&Reason { reason: reason.as_str() }).inc_by(count);
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
