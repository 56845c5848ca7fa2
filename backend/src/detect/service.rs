//! The engine inside the server: one shared engine behind a mutex, fed by the ingest hook and
//! the evaluate API, and a recorder task that persists verdict changes as threat records.
//! The engine itself stays pure; this is the I/O around it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use sea_orm::DatabaseConnection;
use tokio::sync::mpsc;

use super::bus::ThreatBus;
use super::engine::Engine;
use super::event::{DetectEvent, TrackerContext, from_tracker};
use super::failover::{FailoverStore, StateHealth};
use super::redis_store::AnyStore;
use super::rules::RuleSet;
use super::score::{Decision, Policy, Verdict};
use super::state::MemoryStore;
use crate::domain::{SiteId, UnixMillis};
use crate::ingest::enrich::Enrichment;
use crate::ingest::payload::Event;
use crate::storage::events::EventRow;
use crate::storage::threats::NewThreat;

/// Verdict changes waiting to be written; beyond this they are counted and dropped (the
/// engine's state is unaffected, only the history misses them).
const RECORDER_QUEUE: usize = 10_000;
/// Most threat rows per insert.
const RECORDER_BATCH: usize = 500;

/// Where shared detection state lives (`detect.redis_url`, `detect.redis_prefix`) and where its
/// health is reported.
pub struct SharedState<'a> {
    pub url: &'a str,
    pub prefix: &'a str,
    pub health: StateHealth,
}

pub struct Detector {
    engine: Mutex<Engine<AnyStore>>,
    recorder: mpsc::Sender<NewThreat>,
    unrecorded: AtomicU64,
}

impl Detector {
    /// The detector and the receiving end for [`run_recorder`]. With `redis` the state is
    /// shared through Redis (falling back to in-process state while it is unreachable), else it
    /// is in-process. Only a malformed Redis URL is an error.
    pub fn new(
        rules: Arc<RuleSet>,
        max_state_keys: usize,
        redis: Option<SharedState<'_>>,
    ) -> redis::RedisResult<(Arc<Detector>, mpsc::Receiver<NewThreat>)> {
        let store = match redis {
            Some(r) => AnyStore::Redis(Box::new(FailoverStore::open(r.url, r.prefix, max_state_keys, r.health)?)),
            None => AnyStore::Memory(MemoryStore::new(max_state_keys)),
        };
        let (tx, rx) = mpsc::channel(RECORDER_QUEUE);
        let detector = Detector {
            engine: Mutex::new(Engine::with_store(rules, store)),
            recorder: tx,
            unrecorded: AtomicU64::new(0),
        };
        Ok((Arc::new(detector), rx))
    }

    /// Number of loaded rules (for the start-up log).
    pub fn rule_count(&self) -> usize {
        self.engine.lock().rules().rules.len()
    }

    /// `(id, description, behavior, attack, weight)` of every loaded rule, in load order.
    pub fn rule_summaries(&self) -> Vec<(String, String, String, bool, f64)> {
        let engine = self.engine.lock();
        engine
            .rules()
            .rules
            .iter()
            .map(|r| (r.id.to_string(), r.description.clone(), r.behavior.clone(), r.attack, r.weight))
            .collect()
    }

    /// Verdict changes that could not be queued for recording.
    pub fn unrecorded(&self) -> u64 {
        self.unrecorded.load(Ordering::Relaxed)
    }

    pub fn set_policy(&self, site: SiteId, policy: Policy) -> Result<(), Vec<super::RuleError>> {
        self.engine.lock().set_policy(site, policy)
    }

    /// Plan limits (see [`Engine::set_plan_limits`]); the quota meter refreshes them.
    pub fn set_plan_limits(&self, core: Option<Arc<[String]>>, unlimited: std::collections::HashSet<i64>) {
        self.engine.lock().set_plan_limits(core, unlimited);
    }

    /// The tenant's policy in force (the default policy when it has none).
    pub fn policy(&self, site: SiteId) -> Policy {
        self.engine.lock().policy(site).clone()
    }

    /// Changes a tenant's policy under the engine lock (no concurrent change is lost); the new
    /// policy is validated and compiled like any policy. Returns the policy before the change.
    pub fn update_policy(
        &self,
        site: SiteId,
        change: impl FnOnce(&mut Policy),
    ) -> Result<Policy, Vec<super::RuleError>> {
        let mut engine = self.engine.lock();
        let before = engine.policy(site).clone();
        let mut policy = before.clone();
        change(&mut policy);
        engine.set_policy(site, policy)?;
        Ok(before)
    }

    /// Reads the loaded rules.
    pub fn with_rules<R>(&self, read: impl FnOnce(&RuleSet) -> R) -> R {
        read(self.engine.lock().rules())
    }

    /// Feeds events of one tenant in order; records and returns the verdict changes.
    pub fn observe(&self, site: SiteId, events: &[DetectEvent]) -> Vec<Verdict> {
        let verdicts: Vec<Verdict> = {
            let mut engine = self.engine.lock();
            engine.observe_batch(site, events).into_iter().filter_map(|o| o.verdict).collect()
        };
        for v in &verdicts {
            self.record(site, v);
        }
        verdicts
    }

    /// The ingest hook: one accepted tracker batch, after identify. `rows[i]` is `events[i]`
    /// with its session.
    pub fn observe_tracker(
        &self,
        site: SiteId,
        events: &[Event],
        rows: &[EventRow],
        enrichment: &Enrichment,
        user_agent: &str,
        path: &str,
    ) {
        let detect_events: Vec<DetectEvent> = events
            .iter()
            .zip(rows)
            .map(|(event, row)| {
                let ctx = TrackerContext {
                    session: row.session_id.0,
                    visitor: row.visitor_id.0,
                    ip_prefix: Some(enrichment.ip_prefix),
                    asn: enrichment.geo.asn,
                    country: enrichment.geo.country.as_deref(),
                    net_flags: enrichment.geo.net_flags,
                    user_agent,
                    path,
                };
                from_tracker(&ctx, row.ts.0, &event.body)
            })
            .collect();
        self.observe(site, &detect_events);
    }

    /// The evaluate API: feeds one request event and answers the subject's current verdict
    /// (ALLOW with score 0 when nothing fired).
    pub fn evaluate(&self, site: SiteId, event: &DetectEvent) -> Verdict {
        let subject = super::subject_of(event).unwrap_or_else(|| "shop".into());
        let (change, current, allow_ttl) = {
            let mut engine = self.engine.lock();
            let change = engine.observe(site, event).verdict;
            let current = engine.verdict_of(site, &subject, event.ts);
            (change, current, engine.policy(site).allow_ttl_secs)
        };
        if let Some(v) = &change {
            self.record(site, v);
        }
        current.unwrap_or(Verdict {
            subject,
            decision: Decision::Allow,
            score: 0,
            reasons: Vec::new(),
            ttl: allow_ttl,
            evidence: Vec::new(),
            labels: Vec::new(),
            at: event.ts,
        })
    }

    /// The live verdict of a subject at `now`, if the engine holds state for it.
    pub fn verdict_of(&self, site: SiteId, subject: &str, now: UnixMillis) -> Option<Verdict> {
        self.engine.lock().verdict_of(site, subject, now.0)
    }

    /// Live state slots (for `/v1/stats`).
    pub fn state_keys(&self) -> usize {
        use super::state::StateStore;
        self.engine.lock().store().len()
    }

    fn record(&self, site: SiteId, v: &Verdict) {
        let row = NewThreat {
            site_id: site,
            subject: v.subject.clone(),
            decision: v.decision.as_str(),
            score: v.score,
            reasons_json: serde_json::to_string(&v.reasons).unwrap_or_else(|_| "[]".into()),
            evidence_json: serde_json::to_string(&v.evidence).unwrap_or_else(|_| "[]".into()),
            ttl_secs: v.ttl,
            at: UnixMillis(v.at),
        };
        if self.recorder.try_send(row).is_err() {
            self.unrecorded.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Loads tenant policies from `dir`: one `<site key>.toml` per site (`detect::score::Policy`).
/// Any unreadable file, unknown site or invalid policy fails with the file's name.
pub async fn load_policies(
    detector: &Detector,
    db: &DatabaseConnection,
    dir: &std::path::Path,
) -> anyhow::Result<usize> {
    use anyhow::Context;
    let mut loaded = 0;
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read detect.policies_dir {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    for path in paths {
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        let key = crate::domain::SiteKey::parse(stem)
            .with_context(|| format!("{}: the file name must be a site key (gt_….toml)", path.display()))?;
        let site = crate::storage::sites::find_by_key(db, &key)
            .await?
            .with_context(|| format!("{}: no site has the key {stem}", path.display()))?;
        let policy = super::commands::load_policy(&path)?;
        detector.set_policy(site.id, policy).map_err(|errors| {
            let list: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            anyhow::anyhow!("{}: {}", path.display(), list.join("; "))
        })?;
        loaded += 1;
    }
    Ok(loaded)
}

/// Writes queued verdict changes in batches until every [`Detector`] is gone and the queue is
/// drained. Each batch is one transaction with the alerts it triggers (`alerts::record`).
/// After each commit the batch's tenants are announced on `bus` (live feeds, every node).
pub async fn run_recorder(db: DatabaseConnection, mut rx: mpsc::Receiver<NewThreat>, bus: Arc<ThreatBus>) {
    let mut batch = Vec::with_capacity(RECORDER_BATCH);
    while rx.recv_many(&mut batch, RECORDER_BATCH).await > 0 {
        match crate::alerts::record::record_threats(&db, &batch, UnixMillis::now()).await {
            Ok(_) => {
                let mut sites: Vec<SiteId> = batch.iter().map(|t| t.site_id).collect();
                sites.sort_unstable();
                sites.dedup();
                for site in sites {
                    bus.announce(site);
                }
            }
            Err(error) => tracing::error!(error = %error, threats = batch.len(), "could not record verdict changes"),
        }
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::event::Body;

    #[tokio::test]
    async fn policies_are_loaded_per_site_key_and_change_that_sites_decisions() {
        let db = crate::storage::connect(&crate::settings::DatabaseUrl::new("sqlite::memory:")).await.unwrap();
        crate::storage::migrate(&db).await.unwrap();
        let (site, _) =
            crate::storage::sites::create(&db, "a.example", crate::storage::sites::SiteKind::Standalone).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(format!("{}.toml", site.key)),
            "allow_user_agents = [\"curl/\"]\n[rules.\"rate/burst\"]\nshadow = true\n",
        )
        .unwrap();
        let (detector, _rx) = Detector::new(crate::detect::commands::load_rules(None).unwrap(), 1000, None).unwrap();
        assert_eq!(load_policies(&detector, &db, dir.path()).await.unwrap(), 1);

        let curl = DetectEvent {
            ts: 1,
            session: None,
            visitor: None,
            client_key: Some("c".into()),
            ip_prefix: None,
            device: None,
            asn: None,
            country: None,
            net_flags: 0,
            user_agent: Some("curl/8".into()),
            cart_token: None,
            checkout_token: None,
            body: Body::Request { method: "GET".into(), path: "/".into(), status: 200 },
        };
        // Allowlisted on the policy's site, judged elsewhere.
        assert!(detector.observe(site.id, std::slice::from_ref(&curl)).is_empty());
        assert_eq!(detector.observe(SiteId(site.id.0 + 1), &[curl])[0].decision, Decision::Block);

        std::fs::write(dir.path().join("gt_doesnotexist1.toml"), "").unwrap();
        let error = load_policies(&detector, &db, dir.path()).await.unwrap_err().to_string();
        assert!(error.contains("no site has the key gt_doesnotexist1"), "{error}");
    }
}
