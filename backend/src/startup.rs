//! One start-up function, used by `main` and by every test: connect, migrate, start the
//! writer and background jobs, bind the listener. `run_until_stopped` serves until the given
//! signal, then drains: in-flight requests finish, buffered events are committed, pending
//! drop counters are written.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{EndpointExt, Server};
use sea_orm::DatabaseConnection;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::detect::bus::ThreatBus;
use crate::detect::service::{self as detect_service, Detector};
use crate::domain::{SiteKey, UnixMillis};
use crate::ingest::enrich::{Enricher, GeoLookup};
use crate::ingest::writer::{self, Sink, WriterConfig};
use crate::ingest::{DropLedger, Ingest};
use crate::settings::Settings;
use crate::shopify::{Shopify, ShopifyConfig};
use crate::storage::pg_writer::PgBatchWriter;
use crate::storage::sqlite_writer::SqliteBatchWriter;
use crate::storage::{self, sites::SiteKind};
use crate::telemetry::metrics::Metrics;

/// How often pending drop counters are written and expired salts deleted.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(10);
/// Salts older than this are deleted (see `ingest::identity`).
const SALT_MAX_AGE_MS: i64 = 48 * 3_600_000;
/// How long shutdown waits for open connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Domain of the site created for the demo page.
pub const DEMO_DOMAIN: &str = "localhost";

/// Shared by every handler.
pub struct AppState {
    pub db: DatabaseConnection,
    pub settings: Settings,
    pub ingest: Ingest,
    pub metrics: Arc<Metrics>,
    pub demo_site: Option<SiteKey>,
    /// The detection engine (`None` when `detect.enabled` is false).
    pub detector: Option<Arc<Detector>>,
    /// Wakes live threat feeds when verdicts are recorded, on every node.
    pub threat_bus: Arc<ThreatBus>,
    /// `None` when the server runs without Shopify credentials.
    pub shopify: Option<Arc<Shopify>>,
    /// Wakes the webhook inbox worker when a new delivery is stored.
    pub inbox_notify: Arc<Notify>,
    /// Stores verified webhook deliveries, many per transaction (group commit).
    pub inbox_writer: crate::shopify::inbox_writer::InboxWriter,
    /// Wakes the alert worker when a test alert is queued.
    pub alerts_notify: Arc<Notify>,
    /// Tenants over their session quota (written by the billing meter, read by ingest).
    pub quota: Arc<crate::billing::quota::QuotaBook>,
    /// The built admin panel served under `/app` (empty when `web/dist` was not built).
    pub panel: Arc<crate::panel::assets::PanelAssets>,
    /// Tenants' event data keys: every reader of `events.props` opens envelopes with them.
    pub event_keys: Arc<crate::keys::EventKeys>,
}

/// A built, bound, not yet serving application.
pub struct Application {
    acceptor: poem::listener::TcpAcceptor,
    local_addr: SocketAddr,
    state: Arc<AppState>,
    writers: Vec<JoinHandle<()>>,
    recorder: Option<JoinHandle<()>>,
    drops: Arc<DropLedger>,
    db: DatabaseConnection,
    /// The alert delivery worker, built (and its settings checked) before serving.
    alerts: Option<crate::alerts::worker::Worker>,
    /// Printed by `serve`: the demo site's API token, only on the start that created it.
    pub demo_created: Option<crate::domain::ApiToken>,
}

impl Application {
    pub async fn build(mut settings: Settings) -> anyhow::Result<Application> {
        let shopify_config = ShopifyConfig::from_settings(&settings).context("invalid Shopify settings")?;
        let url = settings.database_url();
        let db =
            storage::connect(&url).await.with_context(|| format!("cannot open the database {}", url.redacted()))?;
        storage::migrate(&db).await.context("cannot apply database migrations")?;

        let geo = GeoLookup::open(
            settings.geoip_city.as_deref(),
            settings.geoip_asn.as_deref(),
            settings.geoip_anonymous.as_deref(),
        )?;
        let geo_loaded = geo.loaded();
        let tor = match &settings.detect.tor_exit_list {
            Some(path) => Some(Arc::new(crate::ingest::enrich::TorExitList::open(path)?)),
            None => None,
        };
        let metrics = Arc::new(Metrics::new());
        let writers = match settings.ingest.writers {
            0 if url.is_sqlite() => 1,
            0 => automatic_postgres_writers(std::thread::available_parallelism().map_or(1, |n| n.get())),
            n => n,
        };
        let sink = match storage::sqlite_file(&url) {
            Some(path) if url.is_sqlite() => {
                if writers > 1 {
                    tracing::warn!(writers, "SQLite has one writer; ingest.writers is ignored");
                }
                Sink::SqliteFile(
                    SqliteBatchWriter::open(&path)
                        .with_context(|| format!("cannot open {} for writing", path.display()))?,
                )
            }
            _ if url.is_postgres() => Sink::Postgres(PgBatchWriter::new(&db)),
            _ => Sink::Pool(db.clone()),
        };
        let (writer, writer_tasks) = writer::spawn(
            sink,
            WriterConfig {
                buffer_capacity_events: settings.ingest.buffer_capacity_events,
                commit_max_events: settings.ingest.commit_max_events,
                writers,
            },
            metrics.clone(),
        );
        let quota = Arc::new(crate::billing::quota::QuotaBook::default());
        let event_keys = Arc::new(
            crate::keys::EventKeys::new(
                crate::keys::MasterKeys::from_settings(&settings)
                    .context("invalid GHOSTTRACK_SECRET_KEY(_PREVIOUS)")?,
            )
            .with_active_ttl(Duration::from_secs(settings.privacy.data_key_cache_secs)),
        );
        let mut ingest = Ingest::new(
            db.clone(),
            settings.ingest.clone(),
            settings.trusted_proxies.clone(),
            Enricher::new(geo).with_tor(tor.clone()),
            writer,
            metrics.clone(),
        )
        .with_quota(quota.clone())
        .with_event_keys(event_keys.clone())
        .with_rate_limits(crate::ingest::rate_limit::CollectLimits::from_settings(&settings.rate_limit));
        let threat_bus = match &settings.detect.redis_url {
            Some(url) => ThreatBus::with_redis(
                url,
                format!("{}:threats", settings.detect.redis_prefix),
                metrics.live_remote_notifications.clone(),
            )
            .context("invalid Redis URL for the live threat feed (detect.redis_url)")?,
            None => ThreatBus::local(),
        };
        let (detector, recorder) = if settings.detect.enabled {
            let rules = crate::detect::commands::load_rules(settings.detect.rules_dir.as_deref())
                .context("cannot load detection rules (check them with `ghosttrack rules check DIR`)")?;
            let redis = settings.detect.redis_url.as_deref().map(|url| detect_service::SharedState {
                url,
                prefix: settings.detect.redis_prefix.as_str(),
                health: metrics.detect_state.clone(),
            });
            let shared = redis.is_some();
            let (detector, rx) = Detector::new(rules, settings.detect.max_state_keys, redis)
                .context("invalid Redis URL for detection state (detect.redis_url)")?;
            let policies = match &settings.detect.policies_dir {
                Some(dir) => detect_service::load_policies(&detector, &db, dir).await?,
                None => 0,
            };
            // Rule settings made in the panel, before the first event is judged.
            crate::detect::settings::sync(&detector, &db, UnixMillis(0), &mut Default::default())
                .await
                .context("cannot read the rule settings")?;
            tracing::info!(rules = detector.rule_count(), policies, shared_state = shared, "detection engine loaded");
            ingest = ingest.with_detector(detector.clone());
            (Some(detector), Some(tokio::spawn(detect_service::run_recorder(db.clone(), rx, threat_bus.clone()))))
        } else {
            (None, None)
        };
        let restored = ingest.restore_open_sessions().await?;

        let shopify = shopify_config.map(|config| Arc::new(Shopify::new(config, db.clone())));
        let (demo_site, demo_created) = if settings.demo_site { ensure_demo_site(&db).await? } else { (None, None) };

        let acceptor = TcpListener::bind(settings.listen).into_acceptor().await.with_context(|| {
            format!("cannot listen on {} (set GHOSTTRACK_LISTEN to a free address)", settings.listen)
        })?;
        let local_addr = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .context("listener has no socket address")?;

        // Snippets must name the real port when listening on port 0.
        if settings.public_url.is_none() {
            settings.public_url = url::Url::parse(&format!("http://{local_addr}")).ok();
        }
        tracing::info!(
            listen = %local_addr,
            database = storage::backend_name(&db),
            geoip = ?geo_loaded,
            writers,
            sessions.restored = restored,
            shopify = shopify.is_some(),
            "GhostTrack ready"
        );
        let panel = Arc::new(crate::panel::assets::PanelAssets::load(&settings.panel.dist_dir));
        if !panel.is_built() {
            tracing::warn!("{}", panel.missing_message());
        }
        let drops = ingest.drop_ledger();
        let inbox_notify = Arc::new(Notify::new());
        let (inbox_writer, inbox_writer_task) =
            crate::shopify::inbox_writer::InboxWriter::spawn(db.clone(), inbox_notify.clone());
        let mut writer_tasks = writer_tasks;
        writer_tasks.push(inbox_writer_task);
        let state = Arc::new(AppState {
            db: db.clone(),
            settings,
            ingest,
            metrics,
            demo_site,
            detector,
            threat_bus,
            shopify,
            inbox_notify,
            inbox_writer,
            alerts_notify: Arc::new(Notify::new()),
            quota,
            panel,
            event_keys,
        });
        let alerts = if state.settings.alerts.enabled {
            Some(
                crate::alerts::worker::Worker::new(db.clone(), &state.settings, state.metrics.clone())
                    .context("invalid alert settings (alerts.*)")?,
            )
        } else {
            None
        };
        Ok(Application {
            acceptor,
            local_addr,
            state,
            writers: writer_tasks,
            recorder,
            drops,
            db,
            alerts,
            demo_created,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn demo_site(&self) -> Option<&SiteKey> {
        self.state.demo_site.as_ref()
    }

    pub fn settings(&self) -> &Settings {
        &self.state.settings
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Serves until `shutdown` resolves, then drains every buffer.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let Application { acceptor, state, writers, recorder, drops, db, alerts, .. } = self;
        let (stop_jobs, stopped) = watch::channel(false);
        let housekeeping = tokio::spawn(housekeeping(state.clone(), stopped.clone()));
        let retention = tokio::spawn(crate::privacy::run(
            db.clone(),
            state.settings.privacy.clone(),
            state.settings.billing.clone(),
            stopped.clone(),
        ));
        let stopped_alerts = stopped.clone();
        let rollups = tokio::spawn(storage::rollups::run(db.clone(), state.event_keys.clone(), stopped.clone()));
        let partitions = tokio::spawn(storage::partitions::run(
            db.clone(),
            longest_retention_days(&state.settings),
            stopped.clone(),
        ));
        // Deliveries are stored even without a worker; the worker only runs when Shopify is on.
        let inbox = state.shopify.is_some().then(|| {
            let worker = crate::shopify::inbox::Worker {
                db: db.clone(),
                detector: state.detector.clone(),
                shopify: state.shopify.clone(),
                billing: Arc::new(state.settings.billing.clone()),
                event_keys: state.event_keys.clone(),
            };
            tokio::spawn(crate::shopify::inbox::run(worker, state.inbox_notify.clone(), stopped.clone()))
        });

        let tor_refresh = state.ingest.tor_exit_list().map(|list| {
            let every = Duration::from_secs(state.settings.detect.tor_exit_list_refresh_secs.max(1));
            tokio::spawn(crate::ingest::enrich::tor::run_refresh(list, every, stopped.clone()))
        });
        // Carts no tracked session produced are judged where webhooks are handled.
        let untracked = match (&inbox, &state.detector) {
            (Some(_), Some(detector)) => Some(tokio::spawn(crate::shopify::untracked::run(
                db.clone(),
                state.event_keys.clone(),
                detector.clone(),
                Duration::from_secs(state.settings.detect.untracked_judge_interval_secs.max(1)),
                stopped.clone(),
            ))),
            _ => None,
        };
        let alerts = alerts.map(|worker| tokio::spawn(worker.run(state.alerts_notify.clone(), stopped_alerts)));
        let rule_sync = state
            .detector
            .clone()
            .map(|detector| tokio::spawn(crate::detect::settings::run_sync(detector, db.clone(), stopped.clone())));
        let meter = tokio::spawn(crate::billing::quota::run(state.clone(), stopped));

        let app = crate::api::routes(state).map_to_response();
        Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(app, shutdown, Some(SHUTDOWN_GRACE))
            .await
            .context("HTTP server failed")?;

        // Stop background jobs; once the last `AppState` is gone the writer queue closes.
        let _ = stop_jobs.send(true);
        let _ = housekeeping.await;
        let _ = retention.await;
        let _ = rollups.await;
        let _ = partitions.await;
        if let Some(inbox) = inbox {
            let _ = inbox.await;
        }
        if let Some(task) = untracked {
            let _ = task.await;
        }
        if let Some(task) = tor_refresh {
            let _ = task.await;
        }
        if let Some(alerts) = alerts {
            let _ = alerts.await;
        }
        let _ = meter.await;
        if let Some(task) = rule_sync {
            let _ = task.await;
        }
        for task in writers {
            let _ = task.await;
        }
        // The recorder ends once the last detector handle (in `AppState`) is gone.
        if let Some(task) = recorder {
            let _ = task.await;
        }
        if let Err(error) = drops.flush(&db).await {
            tracing::error!(error = %error, "could not write the last drop counters");
        }
        let _ = db.close().await;
        tracing::info!("GhostTrack stopped; every acknowledged event is committed");
        Ok(())
    }
}

/// Periodic jobs of one node: persist drop counters, delete expired salts.
async fn housekeeping(state: Arc<AppState>, mut stopped: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(HOUSEKEEPING_INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.changed() => break,
        }
        if let Err(error) = state.ingest.drop_ledger().flush(&state.db).await {
            tracing::warn!(error = %error, "could not write drop counters; will retry");
        }
        let now = UnixMillis::now();
        match storage::salts::delete_created_before(&state.db, UnixMillis(now.0 - SALT_MAX_AGE_MS)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(salts.deleted = n, "expired daily salts deleted"),
            Err(error) => tracing::warn!(error = %error, "could not delete expired salts; will retry"),
        }
        state.ingest.salts().forget_before(now.day());
        state.ingest.rate_limits().prune();
        // Ended login sessions are kept a day (logout replays answer 401 either way), then deleted.
        if let Err(error) =
            storage::accounts::delete_ended_sessions(&state.db, UnixMillis(now.0 - UnixMillis::DAY)).await
        {
            tracing::warn!(error = %error, "could not delete ended login sessions; will retry");
        }
    }
}

/// The longest any tenant's raw events may be kept (privacy modes and plans): event partitions
/// wholly older than this hold nothing anyone may still read.
fn longest_retention_days(settings: &Settings) -> i64 {
    let b = &settings.billing;
    [
        settings.privacy.retention_days,
        settings.privacy.forensic_retention_days,
        b.free.retention_days,
        b.pro.retention_days,
        b.business.retention_days,
    ]
    .into_iter()
    .max()
    .map_or(365, i64::from)
}

/// Creates the demo site on first start. Returns its key, and its token when just created.
async fn ensure_demo_site(
    db: &DatabaseConnection,
) -> anyhow::Result<(Option<SiteKey>, Option<crate::domain::ApiToken>)> {
    if let Some(site) = storage::sites::find_by_domain(db, DEMO_DOMAIN).await? {
        return Ok((Some(site.key), None));
    }
    let (site, token) = storage::sites::create(db, DEMO_DOMAIN, SiteKind::Standalone).await?;
    Ok((Some(site.key), Some(token)))
}

/// Cores per automatic PostgreSQL writer task, and the most tasks `ingest.writers = 0` starts.
const CORES_PER_POSTGRES_WRITER: usize = 2;
const MAX_AUTOMATIC_POSTGRES_WRITERS: usize = 4;

/// PostgreSQL writer tasks when `ingest.writers` is 0: one per [`CORES_PER_POSTGRES_WRITER`]
/// cores, 1 to [`MAX_AUTOMATIC_POSTGRES_WRITERS`]. A group is one statement whose cost hardly
/// depends on its size (0.6–0.8 ms on 2 vCPU with the database on the same machine, 7 to 25
/// events), so where the database shares the cores one writer gathering larger groups beats
/// several committing small ones: 1-event requests did 40.9 K req/s with 1 writer, 36.1 K with
/// 2 and 33.5 K with 4 there (docs/BENCHMARKS.md, session 16). A database on its own host, with
/// round trips to wait for, wants more (docs/SCALING.md).
fn automatic_postgres_writers(cores: usize) -> usize {
    (cores / CORES_PER_POSTGRES_WRITER).clamp(1, MAX_AUTOMATIC_POSTGRES_WRITERS)
}

#[cfg(test)]
mod tests {
    use super::automatic_postgres_writers;

    #[test]
    fn automatic_postgres_writers_are_one_per_two_cores_from_one_to_four() {
        let by_cores: Vec<usize> = [1, 2, 3, 4, 6, 8, 9, 64].into_iter().map(automatic_postgres_writers).collect();
        assert_eq!(by_cores, [1, 1, 1, 2, 3, 4, 4, 4]);
    }
}
