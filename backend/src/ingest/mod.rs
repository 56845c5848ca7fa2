//! The ingest pipeline: named steps, each continuing or dropping with a [`DropReason`].
//!
//! validate (envelope) → gatekeep (site key → tenant) → validate (events: clock, schema,
//! consent) → enrich (UA, geo, network) → identify (visitor id, session) → buffer (group
//! commit) → 202. The detection engine (when attached) observes each batch between identify
//! and buffer.

pub mod client_ip;
mod drop_ledger;
mod drop_reason;
pub mod enrich;
mod gatekeep;
pub mod identity;
pub mod payload;
pub mod rate_limit;
pub mod writer;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use sea_orm::DatabaseConnection;
use serde::Serialize;

pub use drop_ledger::{DropLedger, NO_SITE};
pub use drop_reason::DropReason;

use crate::domain::{PrivacyMode, SessionId, UnixMillis};
use crate::settings::IngestSettings;
use crate::storage::events::{EventRow, SessionDelta, VisitorDelta};
use crate::storage::sites::Site;
use crate::storage::{self, StorageError};
use crate::telemetry::metrics::Metrics;
use enrich::{Enricher, Enrichment};
use gatekeep::SiteDirectory;
use identity::{SaltBook, SessionTracker};
use payload::{Event, EventBody, Rejection};
use writer::{CommitFailed, SubmitError, WriteJob, WriterHandle};

/// Who sent a request, as the HTTP layer saw it.
#[derive(Clone, Copy, Debug)]
pub struct ClientContext<'a> {
    pub peer: IpAddr,
    pub forwarded_for: Option<&'a str>,
    pub user_agent: &'a str,
    pub received_at: UnixMillis,
}

/// The 202 body.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Accepted {
    pub accepted: usize,
    pub dropped: usize,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub drops: BTreeMap<&'static str, usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The request as a whole is refused (400, 404 or 413 by reason).
    #[error("{}", .0.message)]
    Rejected(Rejection),
    /// Buffer full or database unavailable: retry later (503).
    #[error("{message}")]
    Unavailable { reason: DropReason, message: &'static str, retry_after: Duration },
    /// Over a collect rate limit (429 + `Retry-After`).
    #[error("too many requests from this {}", .0.limit.as_str())]
    Limited(rate_limit::Refused),
}

pub struct Ingest {
    db: DatabaseConnection,
    settings: IngestSettings,
    trusted_proxies: Vec<IpNet>,
    sites: SiteDirectory,
    enricher: Enricher,
    salts: SaltBook,
    sessions: SessionTracker,
    writer: WriterHandle,
    drops: Arc<DropLedger>,
    detector: Option<Arc<crate::detect::service::Detector>>,
    quota: Option<Arc<crate::billing::quota::QuotaBook>>,
    limits: Arc<rate_limit::CollectLimits>,
    keys: Arc<crate::keys::EventKeys>,
}

impl Ingest {
    pub fn new(
        db: DatabaseConnection,
        settings: IngestSettings,
        trusted_proxies: Vec<IpNet>,
        enricher: Enricher,
        writer: WriterHandle,
        metrics: Arc<Metrics>,
    ) -> Self {
        let sessions = SessionTracker::new(Duration::from_secs(settings.session_idle_secs));
        Ingest {
            db,
            trusted_proxies,
            sites: SiteDirectory::default(),
            enricher,
            salts: SaltBook::default(),
            sessions,
            writer,
            drops: Arc::new(DropLedger::new(metrics)),
            settings,
            detector: None,
            quota: None,
            limits: Arc::new(rate_limit::CollectLimits::new(None, None, 1, Vec::new())),
            keys: Arc::new(crate::keys::EventKeys::new(None)),
        }
    }

    /// MaxMind's network flags of `ip` plus the Tor exit list's (for the evaluate API).
    pub fn net_flags(&self, ip: std::net::IpAddr) -> i32 {
        self.enricher.net_flags(ip)
    }

    /// The Tor exit list, when `detect.tor_exit_list` is set (for its refresh task).
    pub fn tor_exit_list(&self) -> Option<Arc<enrich::TorExitList>> {
        self.enricher.tor.clone()
    }

    /// Feeds every accepted batch to the detection engine.
    pub fn with_detector(mut self, detector: Arc<crate::detect::service::Detector>) -> Self {
        self.detector = Some(detector);
        self
    }

    /// Samples new sessions of tenants the quota meter found over their plan's quota.
    pub fn with_quota(mut self, quota: Arc<crate::billing::quota::QuotaBook>) -> Self {
        self.quota = Some(quota);
        self
    }

    /// Seals the props of tenants that turned on payload encryption (none without this).
    pub fn with_event_keys(mut self, keys: Arc<crate::keys::EventKeys>) -> Self {
        self.keys = keys;
        self
    }

    /// Applies per-site and per-network collect rate limits (none without this).
    pub fn with_rate_limits(mut self, limits: rate_limit::CollectLimits) -> Self {
        self.limits = Arc::new(limits);
        self
    }

    /// The collect rate limits (housekeeping prunes them).
    pub fn rate_limits(&self) -> &rate_limit::CollectLimits {
        &self.limits
    }

    pub fn drop_ledger(&self) -> Arc<DropLedger> {
        self.drops.clone()
    }

    pub fn salts(&self) -> &SaltBook {
        &self.salts
    }

    /// Re-opens sessions whose last event is within the idle timeout (after a restart).
    pub async fn restore_open_sessions(&self) -> Result<usize, StorageError> {
        let idle_ms = (self.settings.session_idle_secs * 1000) as i64;
        let open = storage::events::open_sessions_since(&self.db, UnixMillis(UnixMillis::now().0 - idle_ms)).await?;
        for s in &open {
            self.sessions.restore(s.site_id, s.visitor_id, s.id, s.started_at, s.last_seen_at);
        }
        Ok(open.len())
    }

    /// `POST /collect`.
    pub async fn collect(&self, body: &[u8], client: ClientContext<'_>) -> Result<Accepted, CollectError> {
        self.collect_as(body, None, client).await
    }

    /// `POST /collect`, or the same batch through the Shopify app proxy, whose verified
    /// signature already names the tenant (`verified`): then `k` is optional, and a `k` naming
    /// another site is refused as an unknown site.
    pub async fn collect_as(
        &self,
        body: &[u8],
        verified: Option<Site>,
        client: ClientContext<'_>,
    ) -> Result<Accepted, CollectError> {
        let day = client.received_at.day();
        let ip = self.client_ip(&client);
        self.limit_network(ip, day)?;
        let batch =
            payload::parse_batch(body, self.settings.max_events_per_batch).map_err(|r| self.reject(NO_SITE, day, r))?;
        let site = match verified {
            Some(site) => self.gatekeep_verified(site, batch.site_key, day)?,
            None => self.gatekeep(batch.site_key, day).await?,
        };
        self.limit_site(&site, ip, day)?;
        let mut drops = BTreeMap::new();
        let consent = analytics_allowed(&site, batch.consent);
        let events = self.validate_events(&batch, consent, client.received_at, &mut drops);
        self.store(&site, &batch.url, events, consent, client, drops).await
    }

    /// `GET /collect.gif`: a pageview from a browser without JavaScript.
    pub async fn collect_pixel(
        &self,
        site_key: Option<&str>,
        url: &str,
        referrer: Option<&str>,
        client: ClientContext<'_>,
    ) -> Result<Accepted, CollectError> {
        self.collect_pixel_as(site_key, None, url, referrer, client).await
    }

    /// The pixel, optionally for a tenant verified by the app proxy (see [`Ingest::collect_as`]).
    pub async fn collect_pixel_as(
        &self,
        site_key: Option<&str>,
        verified: Option<Site>,
        url: &str,
        referrer: Option<&str>,
        client: ClientContext<'_>,
    ) -> Result<Accepted, CollectError> {
        let day = client.received_at.day();
        let ip = self.client_ip(&client);
        self.limit_network(ip, day)?;
        let site = match verified {
            Some(site) => self.gatekeep_verified(site, site_key, day)?,
            None => self.gatekeep(site_key, day).await?,
        };
        self.limit_site(&site, ip, day)?;
        let mut pageview = EventBody::Pageview(payload::Pageview {
            r: referrer.filter(|r| !r.is_empty()).map(|r| r.chars().take(payload::MAX_PATH_CHARS).collect()),
            ti: None,
            pt: None,
        });
        // A no-JS browser cannot tell us its consent choice; only the site's mode decides.
        let consent = analytics_allowed(&site, true);
        if !consent {
            pageview.strip_for_security_only();
        }
        let events = vec![Event { ts: client.received_at.0, body: pageview }];
        self.store(&site, url, events, consent, client, BTreeMap::new()).await
    }

    fn client_ip(&self, client: &ClientContext<'_>) -> IpAddr {
        client_ip::resolve(client.peer, client.forwarded_for, &self.trusted_proxies)
    }

    /// rate limit (network): before the body is even parsed.
    fn limit_network(&self, ip: IpAddr, day: i32) -> Result<(), CollectError> {
        self.limits.check_network(ip).map_err(|refused| {
            self.drops.record(NO_SITE, day, DropReason::RateLimitedNetwork, 1);
            CollectError::Limited(refused)
        })
    }

    /// rate limit (site): once gatekeep named the tenant.
    fn limit_site(&self, site: &Site, ip: IpAddr, day: i32) -> Result<(), CollectError> {
        self.limits.check_site(site.id, ip).map_err(|refused| {
            self.drops.record(site.id, day, DropReason::RateLimitedSite, 1);
            CollectError::Limited(refused)
        })
    }

    fn reject(&self, site: crate::domain::SiteId, day: i32, rejection: Rejection) -> CollectError {
        self.drops.record(site, day, rejection.reason, 1);
        CollectError::Rejected(rejection)
    }

    /// gatekeep for a tenant proven by a signature: a key, if sent, must be that tenant's.
    fn gatekeep_verified(&self, site: Site, key: Option<&str>, day: i32) -> Result<Site, CollectError> {
        match key {
            Some(key) if key != site.key.as_str() => Err(self.reject(
                NO_SITE,
                day,
                Rejection { reason: DropReason::UnknownSite, message: "unknown site".into() },
            )),
            _ => Ok(site),
        }
    }

    /// gatekeep: the site key must name a site.
    async fn gatekeep(&self, key: Option<&str>, day: i32) -> Result<Site, CollectError> {
        let unknown = || Rejection { reason: DropReason::UnknownSite, message: "unknown site".into() };
        let Some(key) = key else {
            return Err(self.reject(
                NO_SITE,
                day,
                Rejection { reason: DropReason::MalformedPayload, message: "missing `k` (site key)".into() },
            ));
        };
        match self.sites.resolve(&self.db, key).await {
            Ok(Some(site)) => Ok(site),
            Ok(None) => Err(self.reject(NO_SITE, day, unknown())),
            Err(error) => {
                tracing::error!(error = %error, "site lookup failed");
                Err(self.unavailable(NO_SITE, day, DropReason::StorageUnavailable))
            }
        }
    }

    /// validate: clock, per-event schema and consent. Returns the events to keep, with their
    /// timestamps moved onto the server clock.
    fn validate_events(
        &self,
        batch: &payload::Batch<'_>,
        consent: bool,
        received_at: UnixMillis,
        drops: &mut BTreeMap<DropReason, usize>,
    ) -> Vec<Event> {
        let skew_ms = received_at.0.saturating_sub(batch.sent_at);
        let max_skew_ms = (self.settings.max_clock_skew_secs * 1000) as i64;
        if skew_ms.abs() > max_skew_ms {
            *drops.entry(DropReason::ClockSkew).or_default() += batch.events.len();
            return Vec::new();
        }
        let max_age_ms = (self.settings.max_event_age_secs * 1000) as i64;
        let mut events = Vec::with_capacity(batch.events.len());
        for raw in &batch.events {
            let mut event = match payload::parse_event(raw) {
                Ok(event) => event,
                Err(reason) => {
                    *drops.entry(reason).or_default() += 1;
                    continue;
                }
            };
            let age_ms = batch.sent_at.saturating_sub(event.ts);
            if age_ms > max_age_ms {
                *drops.entry(DropReason::EventTooOld).or_default() += 1;
                continue;
            }
            if age_ms < -max_skew_ms {
                *drops.entry(DropReason::EventInFuture).or_default() += 1;
                continue;
            }
            if !consent {
                if event.body.needs_consent() {
                    *drops.entry(DropReason::NotConsented).or_default() += 1;
                    continue;
                }
                event.body.strip_for_security_only();
            }
            event.ts = event.ts.saturating_add(skew_ms);
            events.push(event);
        }
        events
    }

    /// enrich → identify → buffer.
    async fn store(
        &self,
        site: &Site,
        url: &str,
        mut events: Vec<Event>,
        consent: bool,
        client: ClientContext<'_>,
        drops: BTreeMap<DropReason, usize>,
    ) -> Result<Accepted, CollectError> {
        let day = client.received_at.day();
        let mut answer = Accepted::default();
        for (reason, n) in &drops {
            self.drops.record(site.id, day, *reason, *n);
            answer.dropped += n;
            answer.drops.insert(reason.as_str(), *n);
        }
        if events.is_empty() {
            return Ok(answer);
        }
        let Some(page) = Page::parse(url) else {
            return Err(self.reject(
                site.id,
                day,
                Rejection {
                    reason: DropReason::MalformedPayload,
                    message: "`u` is not an absolute http(s) URL".into(),
                },
            ));
        };

        // enrich
        let ip = client_ip::resolve(client.peer, client.forwarded_for, &self.trusted_proxies);
        let enrichment = self.enricher.enrich(ip, client.user_agent);

        // identify
        let salt = match self.salts.salt_for(&self.db, day).await {
            Ok(salt) => salt,
            Err(error) => {
                tracing::error!(error = %error, "daily salt unavailable");
                return Err(self.unavailable(site.id, day, DropReason::StorageUnavailable));
            }
        };
        let visitor = identity::visitor_id(&salt, site.id, ip, client.user_agent);
        events.sort_by_key(|e| e.ts);
        let mut job = self.build_job(site, visitor, &page, &events, consent, &enrichment, client.received_at);

        // quota: sample new sessions of an over-quota tenant (never an error to the browser)
        if let Some(gate) = self.quota.as_ref().and_then(|q| q.gate(site.id)) {
            let sampled = crate::billing::quota::sample(&mut job, gate);
            if sampled > 0 {
                self.drops.record(site.id, day, DropReason::OverQuota, sampled);
                answer.dropped += sampled;
                *answer.drops.entry(DropReason::OverQuota.as_str()).or_default() += sampled;
            }
            if job.events.is_empty() {
                return Ok(answer);
            }
        }

        // detect
        if let Some(detector) = &self.detector {
            detector.observe_tracker(site.id, &events, &job.events, &enrichment, client.user_agent, &page.path);
        }

        // encrypt: after detection (which reads the plain props), before the writers
        if let Err(error) = self.seal_props(site, &mut job).await {
            tracing::error!(site = site.id.0, error = %error, "event data key unavailable");
            return Err(self.unavailable(site.id, day, DropReason::StorageUnavailable));
        }

        // buffer
        let count = job.events.len();
        match self.writer.submit(job).await {
            Ok(()) => {
                answer.accepted = count;
                Ok(answer)
            }
            Err(SubmitError::Overloaded) => Err(self.unavailable(site.id, day, DropReason::Overloaded)),
            Err(SubmitError::CommitFailed(CommitFailed { disk_full: true })) => {
                self.drops.record(site.id, day, DropReason::StorageUnavailable, 1);
                Err(CollectError::Unavailable {
                    reason: DropReason::StorageUnavailable,
                    message: "storage unavailable: the database's disk is full, retry later",
                    retry_after: Duration::from_secs(self.settings.retry_after_secs),
                })
            }
            Err(SubmitError::CommitFailed(_) | SubmitError::ShuttingDown) => {
                Err(self.unavailable(site.id, day, DropReason::StorageUnavailable))
            }
        }
    }

    /// Replaces each row's props by its `gtenc:v1` envelope when the tenant encrypts payloads
    /// (`keys::events`): one AES-GCM seal per event, the tenant's key from memory.
    async fn seal_props(&self, site: &Site, job: &mut WriteJob) -> Result<(), crate::keys::KeyError> {
        let scope = storage::TenantScope::verified(site.id);
        let Some(key) = self.keys.sealer(&self.db, scope).await? else { return Ok(()) };
        for row in &mut job.events {
            if let Some(plain) = row.props.as_deref() {
                row.props = Some(key.seal_with_join_tokens(plain));
            }
        }
        Ok(())
    }

    fn unavailable(&self, site: crate::domain::SiteId, day: i32, reason: DropReason) -> CollectError {
        self.drops.record(site, day, reason, 1);
        let message = match reason {
            DropReason::Overloaded => "server busy, retry later",
            _ => "storage unavailable, retry later",
        };
        CollectError::Unavailable { reason, message, retry_after: Duration::from_secs(self.settings.retry_after_secs) }
    }

    #[allow(clippy::too_many_arguments)]
    fn build_job(
        &self,
        site: &Site,
        visitor: crate::domain::VisitorId,
        page: &Page,
        events: &[Event],
        consent: bool,
        enrichment: &Enrichment,
        received_at: UnixMillis,
    ) -> WriteJob {
        let automated_by_probe = events.iter().any(|e| match &e.body {
            EventBody::Environment(en) => en.wd == 1 || en.hl == 1,
            _ => false,
        });
        let automated = enrichment.ua.is_automated() || automated_by_probe;
        let path = page.path.as_str();
        let mut rows = Vec::with_capacity(events.len());
        let mut sessions: HashMap<SessionId, SessionDelta> = HashMap::new();
        let mut new_sessions: Vec<SessionId> = Vec::new();
        for event in events {
            let ts = UnixMillis(event.ts);
            let assignment = self.sessions.assign(site.id, visitor, ts);
            if assignment.is_new {
                new_sessions.push(assignment.session);
            }
            rows.push(EventRow {
                site_id: site.id,
                session_id: assignment.session,
                visitor_id: visitor,
                ts,
                received_at,
                kind: event.body.kind(),
                path: path.to_owned(),
                props: event.body.props_json(),
            });
            let is_pageview = matches!(event.body, EventBody::Pageview(_));
            let referrer_host = match &event.body {
                EventBody::Pageview(pv) => external_host(pv.r.as_deref(), page.host.as_deref()),
                _ => None,
            };
            let delta = sessions.entry(assignment.session).or_insert_with(|| SessionDelta {
                id: assignment.session,
                site_id: site.id,
                visitor_id: visitor,
                started_at: assignment.started_at,
                last_seen_at: ts,
                pageviews: 0,
                events: 0,
                entry_path: path.to_owned(),
                exit_path: path.to_owned(),
                referrer_host: None,
                ip_prefix: Some(enrichment.ip_prefix.to_string()),
                country: enrichment.geo.country.clone(),
                region: enrichment.geo.region.clone(),
                city: enrichment.geo.city.clone(),
                asn: enrichment.geo.asn.map(i64::from),
                as_org: enrichment.geo.as_org.clone(),
                net_flags: enrichment.geo.net_flags,
                browser: enrichment.ua.browser.clone(),
                browser_version: enrichment.ua.browser_version.clone(),
                os: enrichment.ua.os.clone(),
                device: enrichment.ua.device.to_owned(),
                bot_family: enrichment.ua.bot_family.clone(),
                automated,
                consent,
            });
            delta.last_seen_at = delta.last_seen_at.max(ts);
            delta.events += 1;
            if is_pageview {
                delta.pageviews += 1;
                if assignment.is_new && delta.referrer_host.is_none() {
                    delta.referrer_host = referrer_host;
                }
            }
        }
        // The visitor row changes only when a session starts.
        let visitors = sessions
            .values()
            .filter(|s| new_sessions.contains(&s.id))
            .map(|s| VisitorDelta {
                site_id: site.id,
                visitor_id: visitor,
                first_seen_at: s.started_at,
                last_seen_at: s.started_at,
                sessions: 1,
            })
            .collect();
        WriteJob { events: rows, sessions: sessions.into_values().collect(), visitors }
    }
}

/// Whether detailed analytics may be kept: the visitor allowed it (`c`, DNT, GPC, Shopify's
/// Customer Privacy API, as reported by the tracker) and the site is not in strict mode.
fn analytics_allowed(site: &Site, client_consent: bool) -> bool {
    client_consent && site.privacy != PrivacyMode::Strict
}

/// The page an event happened on, from one parse of the batch's `u`.
struct Page {
    /// Path without query or fragment (which may carry personal data such as emails in reset
    /// links), truncated to the column size.
    path: String,
    host: Option<String>,
}

impl Page {
    /// `None` unless `url` is an absolute http(s) URL.
    fn parse(url: &str) -> Option<Page> {
        let parsed = url::Url::parse(url).ok()?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return None;
        }
        let mut path = parsed.path().to_owned();
        payload::truncate(&mut path, payload::MAX_PATH_CHARS);
        Some(Page { path, host: parsed.host_str().map(str::to_owned) })
    }
}

/// The referrer's host when it is another site (internal navigation is not a referrer).
fn external_host(referrer: Option<&str>, page_host: Option<&str>) -> Option<String> {
    let host = url::Url::parse(referrer?).ok()?.host_str()?.to_ascii_lowercase();
    let host = host.strip_prefix("www.").map(str::to_owned).unwrap_or(host);
    let page = page_host.map(|h| h.trim_start_matches("www.").to_ascii_lowercase());
    (Some(&host) != page.as_ref()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_path_drops_query_and_fragment() {
        let page = Page::parse("https://shop.example/products/a?email=x@y.z#top").unwrap();
        assert_eq!((page.path.as_str(), page.host.as_deref()), ("/products/a", Some("shop.example")));
        assert!(Page::parse("javascript:alert(1)").is_none());
        assert!(Page::parse("not a url").is_none());
    }

    #[test]
    fn only_other_sites_count_as_referrers() {
        assert_eq!(
            external_host(Some("https://www.google.com/search?q=x"), Some("shop.example")).as_deref(),
            Some("google.com")
        );
        assert_eq!(external_host(Some("https://shop.example/cart"), Some("www.shop.example")), None);
        assert_eq!(external_host(Some(""), Some("shop.example")), None);
    }
}
