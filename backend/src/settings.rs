//! Typed configuration: built-in defaults → optional TOML file → `GHOSTTRACK_*` environment
//! variables (`__` separates nested keys, e.g. `GHOSTTRACK_INGEST__MAX_BODY_BYTES`).
//!
//! Unknown `GHOSTTRACK_*` variables are reported (likely typos), invalid values fail start-up
//! with the key, the problem and how to fix it. Secrets are `secrecy` types whose `Debug`
//! never prints them.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Environment prefix of every setting.
pub const ENV_PREFIX: &str = "GHOSTTRACK_";
/// `GHOSTTRACK_*` variables that are read by tools around the binary, not settings.
const NON_SETTING_VARS: &[&str] =
    &["CONFIG", "TEST_DATABASE_URL", "TEST_REDIS_URL", "CHROMIUM", "BROWSER_XFF", "ADMIN_PASSWORD"];

/// Every setting key, dotted. Kept next to the struct; a unit test checks both agree.
pub const KNOWN_KEYS: &[&str] = &[
    "listen",
    "public_url",
    "database_url",
    "data_dir",
    "geoip_city",
    "geoip_asn",
    "geoip_anonymous",
    "trusted_proxies",
    "demo_site",
    "shopify_api_key",
    "shopify_api_secret",
    "shopify_api_secret_previous",
    "shopify_api_base",
    "app_url",
    "secret_key",
    "secret_key_previous",
    "ingest.max_body_bytes",
    "ingest.max_events_per_batch",
    "ingest.max_clock_skew_secs",
    "ingest.max_event_age_secs",
    "ingest.buffer_capacity_events",
    "ingest.commit_max_events",
    "ingest.writers",
    "ingest.session_idle_secs",
    "ingest.retry_after_secs",
    "log.format",
    "log.filter",
    "detect.enabled",
    "detect.rules_dir",
    "detect.max_state_keys",
    "detect.redis_url",
    "detect.redis_prefix",
    "detect.policies_dir",
    "detect.tor_exit_list",
    "detect.tor_exit_list_refresh_secs",
    "detect.untracked_judge_interval_secs",
    "privacy.retention_days",
    "privacy.forensic_retention_days",
    "privacy.unflagged_pointer_path_hours",
    "privacy.flagged_pointer_path_days",
    "privacy.sweep_interval_secs",
    "privacy.data_key_cache_secs",
    "alerts.enabled",
    "alerts.smtp_host",
    "alerts.smtp_port",
    "alerts.smtp_tls",
    "alerts.smtp_username",
    "alerts.smtp_password",
    "alerts.smtp_ca_file",
    "alerts.email_from",
    "alerts.max_attempts",
    "alerts.retry_base_ms",
    "alerts.retry_max_ms",
    "alerts.lease_ms",
    "alerts.poll_interval_ms",
    "alerts.tick_interval_ms",
    "alerts.send_timeout_secs",
    "alerts.allow_private_targets",
    "billing.enabled",
    "billing.currency",
    "billing.meter_interval_secs",
    "billing.over_quota_sample_percent",
    "billing.core_rule_families",
    "billing.stripe_api_base",
    "billing.stripe_secret_key",
    "billing.stripe_webhook_secret",
    "billing.stripe_webhook_secret_previous",
    "billing.stripe_webhook_tolerance_secs",
    "billing.free.name",
    "billing.free.sessions_per_month",
    "billing.free.retention_days",
    "billing.free.price",
    "billing.free.trial_days",
    "billing.free.all_rules",
    "billing.free.channels",
    "billing.free.order_risk_writeback",
    "billing.free.evaluate_api",
    "billing.free.exports",
    "billing.free.stripe_price",
    "billing.pro.name",
    "billing.pro.sessions_per_month",
    "billing.pro.retention_days",
    "billing.pro.price",
    "billing.pro.trial_days",
    "billing.pro.all_rules",
    "billing.pro.channels",
    "billing.pro.order_risk_writeback",
    "billing.pro.evaluate_api",
    "billing.pro.exports",
    "billing.pro.stripe_price",
    "billing.business.name",
    "billing.business.sessions_per_month",
    "billing.business.retention_days",
    "billing.business.price",
    "billing.business.trial_days",
    "billing.business.all_rules",
    "billing.business.channels",
    "billing.business.order_risk_writeback",
    "billing.business.evaluate_api",
    "billing.business.exports",
    "billing.business.stripe_price",
    "panel.dist_dir",
    "panel.app_bridge_url",
    "panel.live_max_secs",
    "rate_limit.enabled",
    "rate_limit.site_per_sec",
    "rate_limit.site_burst",
    "rate_limit.network_per_sec",
    "rate_limit.network_burst",
    "rate_limit.max_keys",
    "rate_limit.exempt",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address the HTTP server binds to.
    pub listen: SocketAddr,
    /// Public base URL of this server, used in snippets (defaults to `http://{listen}`).
    pub public_url: Option<url::Url>,
    /// Database URL; `None` means SQLite at `{data_dir}/ghosttrack.db`.
    pub database_url: Option<DatabaseUrl>,
    /// Directory for the embedded database and other local state.
    pub data_dir: PathBuf,
    /// MaxMind GeoIP2/GeoLite2 City database (`.mmdb`).
    pub geoip_city: Option<PathBuf>,
    /// MaxMind GeoLite2 ASN database (`.mmdb`).
    pub geoip_asn: Option<PathBuf>,
    /// MaxMind GeoIP2 Anonymous-IP database (`.mmdb`): Tor, VPN, hosting and proxy flags.
    pub geoip_anonymous: Option<PathBuf>,
    /// Peers allowed to set `X-Forwarded-For` (CIDR list; a comma-separated string in env).
    #[serde(deserialize_with = "list_or_csv")]
    pub trusted_proxies: Vec<IpNet>,
    /// Create a demo site for `localhost` on first start and print its snippet.
    pub demo_site: bool,
    /// Shopify app client id (API key). With the secret it enables the Shopify routes.
    #[serde(deserialize_with = "opt_string_or_number")]
    pub shopify_api_key: Option<String>,
    /// Shopify app client secret: signs webhooks, app-load queries, proxy requests, id tokens.
    pub shopify_api_secret: Option<Secret>,
    /// The previous client secret, still accepted for HMACs and id tokens during a rotation.
    pub shopify_api_secret_previous: Option<Secret>,
    /// Template of the base URL of every call to a shop; `{shop}` is the shop domain.
    pub shopify_api_base: String,
    /// Public HTTPS URL of the app (the `application_url` of `shopify.app.toml`).
    pub app_url: Option<url::Url>,
    /// Server secret (≥ 32 bytes) from which the token-encryption and cookie keys are derived.
    pub secret_key: Option<Secret>,
    /// The secret before the last change of `secret_key`: still opens what it sealed until
    /// `ghosttrack keys rotate` has re-wrapped everything under the new one (docs/PRIVACY.md).
    pub secret_key_previous: Option<Secret>,
    pub ingest: IngestSettings,
    pub log: LogSettings,
    pub detect: DetectSettings,
    pub privacy: PrivacySettings,
    pub alerts: AlertSettings,
    pub billing: crate::billing::settings::BillingSettings,
    pub panel: PanelSettings,
    pub rate_limit: RateLimitSettings,
}

/// Rate limits of the collect routes (`ingest::rate_limit`): a token bucket per site and per
/// client network (/24 or /48), per node. Over a limit: 429 + `Retry-After`, counted as a drop.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Apply the limits below (off: only the buffer's 503 protects ingest).
    pub enabled: bool,
    /// Collect requests per second one site may send, sustained; 0 = no site limit.
    pub site_per_sec: u32,
    /// Requests one site may send at once above the sustained rate.
    pub site_burst: u32,
    /// Collect requests per second from one client network (/24 IPv4, /48 IPv6); 0 = no limit.
    pub network_per_sec: u32,
    /// Requests one network may send at once.
    pub network_burst: u32,
    /// Bucket slots per limit (memory bound, about 100 bytes each); more keys share slots.
    pub max_keys: usize,
    /// Client networks never limited. Loopback by default: behind a local proxy that is not in
    /// `trusted_proxies` every client looks like loopback, and one bucket for all would be wrong.
    #[serde(deserialize_with = "list_or_csv")]
    pub exempt: Vec<IpNet>,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            site_per_sec: 1_000,
            site_burst: 5_000,
            network_per_sec: 50,
            network_burst: 200,
            max_keys: 100_000,
            exempt: vec!["127.0.0.0/8".parse().expect("static net"), "::1/128".parse().expect("static net")],
        }
    }
}

/// How long raw events are kept (see `privacy::retention` and DESIGN §5). Sessions, visitors and
/// threats are not raw events and are kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacySettings {
    /// Raw events of strict and balanced sites are deleted after this many days.
    pub retention_days: u32,
    /// Raw events of forensic sites (which keep everything) are deleted sooner.
    pub forensic_retention_days: u32,
    /// Balanced sites: pointer paths of sessions no verdict flagged are deleted after this many hours.
    pub unflagged_pointer_path_hours: u32,
    /// Balanced sites: pointer paths of flagged sessions are kept this many days.
    pub flagged_pointer_path_days: u32,
    /// How often the retention job runs.
    pub sweep_interval_secs: u64,
    /// How long a node keeps using a tenant's active event data key (and the "encryption off"
    /// answer) before re-reading it: a change from another node or the CLI is seen within this.
    pub data_key_cache_secs: u64,
}

impl Default for PrivacySettings {
    fn default() -> Self {
        Self {
            retention_days: 90,
            forensic_retention_days: 30,
            unflagged_pointer_path_hours: 24,
            flagged_pointer_path_days: 7,
            sweep_interval_secs: 3600,
            data_key_cache_secs: 30,
        }
    }
}

/// Alert delivery (the tenant's alert policy and channels live in the database, not here).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertSettings {
    /// Run the alert worker (delivery, digests, traffic checks) on this node.
    pub enabled: bool,
    /// SMTP server for email alerts; unset = email channels fail with a clear error.
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    /// `starttls` (upgrade on port 587), `tls` (implicit TLS, port 465) or `none` (local relays only).
    pub smtp_tls: SmtpTls,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<Secret>,
    /// Extra PEM root certificate trusted for the SMTP server (a private CA or self-signed relay).
    pub smtp_ca_file: Option<PathBuf>,
    /// `From` of alert emails.
    pub email_from: String,
    /// Attempts before a delivery moves to the dead-letter list.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt with jitter, up to `retry_max_ms`.
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    /// How long a claimed delivery is hidden from other workers (longer than `send_timeout_secs`).
    pub lease_ms: u64,
    /// How often the worker looks for due deliveries.
    pub poll_interval_ms: u64,
    /// How often quiet-hour roll-ups, digests and traffic checks are evaluated.
    pub tick_interval_ms: u64,
    /// Timeout of one SMTP or HTTP delivery.
    pub send_timeout_secs: u64,
    /// Accept webhook/Slack/Discord URLs on loopback or private addresses (self-hosted installs,
    /// tests). Off by default: tenants must not aim the server at its own network.
    pub allow_private_targets: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    Starttls,
    Tls,
    None,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            smtp_host: None,
            smtp_port: 587,
            smtp_tls: SmtpTls::Starttls,
            smtp_username: None,
            smtp_password: None,
            smtp_ca_file: None,
            email_from: "GhostTrack <alerts@localhost>".into(),
            max_attempts: 8,
            retry_base_ms: 5_000,
            retry_max_ms: 3_600_000,
            lease_ms: 120_000,
            poll_interval_ms: 1_000,
            tick_interval_ms: 60_000,
            send_timeout_secs: 30,
            allow_private_targets: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PanelSettings {
    /// The built admin panel (`cargo xtask dist` writes it), served under `/app`.
    pub dist_dir: PathBuf,
    /// The App Bridge script loaded first in the embedded panel's `<head>`.
    pub app_bridge_url: String,
    /// The live threat feed (server-sent events) ends after this many seconds; the panel
    /// reconnects from the last id it saw.
    pub live_max_secs: u64,
}

impl PanelSettings {
    /// The live feed's maximum lifetime (at least one second).
    pub fn live_max_lifetime(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.live_max_secs.max(1))
    }
}

impl Default for PanelSettings {
    fn default() -> Self {
        Self {
            dist_dir: PathBuf::from("web/dist"),
            app_bridge_url: "https://cdn.shopify.com/shopifycloud/app-bridge.js".into(),
            live_max_secs: 600,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectSettings {
    /// Feed ingested events to the detection engine and record verdict changes as threats.
    pub enabled: bool,
    /// Rule files that replace (same id) or extend the rules embedded in the binary.
    pub rules_dir: Option<PathBuf>,
    /// Most (tenant, rule, key) state slots kept in memory; the oldest go first beyond it.
    pub max_state_keys: usize,
    /// Redis holding detection state shared by several nodes; unset = in-process state.
    pub redis_url: Option<String>,
    /// Prefix of the detection keys in Redis (nodes of one deployment share it).
    pub redis_prefix: String,
    /// Tenant policies loaded at start-up: one `<site key>.toml` per site (see docs/DETECTION.md).
    pub policies_dir: Option<PathBuf>,
    /// Tor exit addresses, one IP per line (`# comments`; the `ExitAddress` lines of Tor's
    /// exit-addresses format are read too); listed IPs carry the Tor exit flag (`ip/tor`).
    pub tor_exit_list: Option<PathBuf>,
    /// How often the Tor exit list's modification time is checked; a changed file is reloaded.
    pub tor_exit_list_refresh_secs: u64,
    /// How often carts, checkouts and orders past their grace period are judged untracked or not.
    pub untracked_judge_interval_secs: u64,
}

impl Default for DetectSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            rules_dir: None,
            max_state_keys: 1_000_000,
            redis_url: None,
            redis_prefix: "gt:detect".into(),
            policies_dir: None,
            tor_exit_list: None,
            tor_exit_list_refresh_secs: 300,
            untracked_judge_interval_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSettings {
    /// Largest accepted `/collect` body; larger ones get 413.
    pub max_body_bytes: usize,
    /// Most events accepted in one batch.
    pub max_events_per_batch: usize,
    /// Batches whose client clock differs from ours by more than this are dropped (`clock_skew`).
    pub max_clock_skew_secs: u64,
    /// Events older than this relative to their batch's send time are dropped (`event_too_old`).
    pub max_event_age_secs: u64,
    /// Events waiting for the writer before `/collect` answers 503 (bounds memory).
    pub buffer_capacity_events: usize,
    /// Most events committed in one transaction.
    pub commit_max_events: usize,
    /// Concurrent writer tasks; 0 = automatic (1 on SQLite; on PostgreSQL one per two cores, 1 to 4).
    pub writers: usize,
    /// Idle time after which a visitor's next event starts a new session.
    pub session_idle_secs: u64,
    /// `Retry-After` sent with 503 when the buffer is full.
    pub retry_after_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `pretty` for people, `json` for log shippers.
    pub format: LogFormat,
    /// tracing-subscriber filter; `RUST_LOG` overrides it.
    pub filter: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().expect("static address"),
            public_url: None,
            database_url: None,
            data_dir: PathBuf::from("./ghosttrack-data"),
            geoip_city: None,
            geoip_asn: None,
            geoip_anonymous: None,
            trusted_proxies: Vec::new(),
            demo_site: true,
            shopify_api_key: None,
            shopify_api_secret: None,
            shopify_api_secret_previous: None,
            shopify_api_base: DEFAULT_SHOPIFY_API_BASE.to_owned(),
            app_url: None,
            secret_key: None,
            secret_key_previous: None,
            ingest: IngestSettings::default(),
            log: LogSettings::default(),
            detect: DetectSettings::default(),
            privacy: PrivacySettings::default(),
            alerts: AlertSettings::default(),
            billing: Default::default(),
            panel: PanelSettings::default(),
            rate_limit: RateLimitSettings::default(),
        }
    }
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            max_events_per_batch: 50,
            max_clock_skew_secs: 600,
            max_event_age_secs: 3600,
            buffer_capacity_events: 100_000,
            commit_max_events: 10_000,
            writers: 0,
            session_idle_secs: 30 * 60,
            retry_after_secs: 1,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self { format: LogFormat::Pretty, filter: "info,sqlx=warn,sea_orm=warn".into() }
    }
}

/// Default `shopify_api_base`: the shop's own HTTPS origin.
pub const DEFAULT_SHOPIFY_API_BASE: &str = "https://{shop}";

/// A secret setting (API secret, server key). `Debug` and `Serialize` never show it.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(SecretString::from(value.into()))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = string_or_number(d)?;
        if raw.is_empty() {
            return Err(serde::de::Error::custom("must not be empty"));
        }
        Ok(Secret::new(raw))
    }
}

/// Env values that look like numbers are typed as numbers (see `env_value`); an API key or
/// secret made only of digits must still read as a string.
fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(StringOrNumber::deserialize(d)?.into_string())
}

fn opt_string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<StringOrNumber>::deserialize(d)?.map(StringOrNumber::into_string))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrNumber {
    Str(String),
    Unsigned(u64),
    Signed(i64),
}

impl StringOrNumber {
    fn into_string(self) -> String {
        match self {
            StringOrNumber::Str(s) => s,
            StringOrNumber::Unsigned(n) => n.to_string(),
            StringOrNumber::Signed(n) => n.to_string(),
        }
    }
}

/// A database URL. Its `Debug`/`Display`/`Serialize` hide the password.
#[derive(Clone)]
pub struct DatabaseUrl(SecretString);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(SecretString::from(url.into()))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn is_sqlite(&self) -> bool {
        self.expose().starts_with("sqlite:")
    }

    pub fn is_postgres(&self) -> bool {
        let url = self.expose();
        url.starts_with("postgres://") || url.starts_with("postgresql://")
    }

    /// The URL with any password replaced by `***`, safe for logs.
    pub fn redacted(&self) -> String {
        match url::Url::parse(self.expose()) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("***"));
                url.to_string()
            }
            Ok(url) => url.to_string(),
            Err(_) => "<unparseable database url>".into(),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        let url = DatabaseUrl::new(raw);
        if !url.is_sqlite() && !url.is_postgres() {
            return Err(serde::de::Error::custom(
                "must start with sqlite:// (e.g. sqlite://./ghosttrack-data/ghosttrack.db?mode=rwc) or postgres://",
            ));
        }
        Ok(url)
    }
}

/// Accepts a TOML/JSON list or a comma-separated string (what an env var can hold).
fn list_or_csv<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<String>),
        Csv(String),
    }
    let items: Vec<String> = match Raw::deserialize(d)? {
        Raw::List(items) => items,
        Raw::Csv(s) => s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect(),
    };
    items.iter().map(|s| parse_net(s).map_err(serde::de::Error::custom)).collect()
}

/// A CIDR, or a bare address meaning a single host.
fn parse_net(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{s}` is not an IP address or CIDR (e.g. 10.0.0.0/8 or 127.0.0.1)"))
}

/// Start-up configuration errors, each phrased so the operator knows what to change.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("configuration file {path} does not exist (set GHOSTTRACK_CONFIG or --config to an existing TOML file)")]
    MissingFile { path: PathBuf },
    #[error(
        "invalid configuration: {0}\n  hint: run `ghosttrack print-config` to see every key, its default and its meaning"
    )]
    Invalid(Box<figment::Error>),
}

impl Settings {
    /// Loads settings from defaults, an optional TOML file and the process environment.
    pub fn load(file: Option<&Path>) -> Result<Loaded, SettingsError> {
        Self::load_from(file, std::env::vars())
    }

    /// Like [`Settings::load`] with an explicit environment (tests use this).
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Loaded, SettingsError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(SettingsError::MissingFile { path: path.to_owned() });
            }
            figment = figment.merge(Toml::file(path));
        }
        let env = split_env(env);
        for (key, value) in env.known_pairs {
            figment = figment.merge(Serialized::global(&key, env_value(&value)));
        }
        let settings: Settings = figment.extract().map_err(|e| SettingsError::Invalid(Box::new(e)))?;
        Ok(Loaded { settings, unknown_env: env.unknown_names })
    }

    /// The effective database URL.
    pub fn database_url(&self) -> DatabaseUrl {
        self.database_url
            .clone()
            .unwrap_or_else(|| DatabaseUrl::new(format!("sqlite://{}/ghosttrack.db?mode=rwc", self.data_dir.display())))
    }

    /// Base URL used when printing snippets.
    pub fn public_url(&self) -> url::Url {
        self.public_url
            .clone()
            .unwrap_or_else(|| url::Url::parse(&format!("http://{}", self.listen)).expect("socket address forms a URL"))
    }
}

/// Settings plus what loading noticed; the caller logs the warnings once tracing is up.
#[derive(Debug)]
pub struct Loaded {
    pub settings: Settings,
    pub unknown_env: Vec<String>,
}

struct EnvSplit {
    /// `(dotted.key, raw value)` for every variable naming a setting.
    known_pairs: Vec<(String, String)>,
    /// Names of `GHOSTTRACK_*` variables that match no setting (likely typos).
    unknown_names: Vec<String>,
}

fn split_env(env: impl IntoIterator<Item = (String, String)>) -> EnvSplit {
    let mut split = EnvSplit { known_pairs: Vec::new(), unknown_names: Vec::new() };
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else { continue };
        if NON_SETTING_VARS.contains(&rest) {
            continue;
        }
        let key = rest.to_ascii_lowercase().replace("__", ".");
        if KNOWN_KEYS.contains(&key.as_str()) {
            split.known_pairs.push((key, value));
        } else {
            split.unknown_names.push(name);
        }
    }
    split.unknown_names.sort();
    split
}

/// Types an env value the way figment's `Env` provider does (`8080` a number, `true` a
/// boolean), keeping it a string otherwise.
fn env_value(raw: &str) -> figment::value::Value {
    raw.parse().unwrap_or_else(|_| figment::value::Value::from(raw.to_string()))
}

/// The annotated default configuration printed by `ghosttrack print-config`.
pub const ANNOTATED_DEFAULTS: &str = concat!(
    r#"# GhostTrack configuration.
# Precedence: built-in defaults < this file (--config or GHOSTTRACK_CONFIG) < GHOSTTRACK_* env vars.
# Every key has an env var: upper-case, prefixed GHOSTTRACK_, `__` for nesting,
# e.g. ingest.max_body_bytes -> GHOSTTRACK_INGEST__MAX_BODY_BYTES.

# Address to listen on (GHOSTTRACK_LISTEN).
listen = "127.0.0.1:8080"

# Public base URL used in printed snippets (GHOSTTRACK_PUBLIC_URL). Default: http://{listen}
# public_url = "https://stats.example.com"

# Database (GHOSTTRACK_DATABASE_URL). Default: SQLite in data_dir, created and migrated on start.
# database_url = "postgres://ghosttrack:secret@127.0.0.1:5432/ghosttrack"

# Directory for the embedded SQLite database (GHOSTTRACK_DATA_DIR).
data_dir = "./ghosttrack-data"

# MaxMind databases (.mmdb); leave unset to skip that enrichment.
# geoip_city = "/var/lib/GeoIP/GeoLite2-City.mmdb"            # GHOSTTRACK_GEOIP_CITY
# geoip_asn = "/var/lib/GeoIP/GeoLite2-ASN.mmdb"              # GHOSTTRACK_GEOIP_ASN
# geoip_anonymous = "/var/lib/GeoIP/GeoIP2-Anonymous-IP.mmdb" # GHOSTTRACK_GEOIP_ANONYMOUS

# Reverse proxies whose X-Forwarded-For is trusted (GHOSTTRACK_TRUSTED_PROXIES="10.0.0.0/8,127.0.0.1").
trusted_proxies = []

# Create a demo site for localhost on first start and print its snippet (GHOSTTRACK_DEMO_SITE).
demo_site = true

# Shopify app credentials (Partner Dashboard → Client credentials). Without both, the Shopify
# routes (embedded app, webhooks, app proxy) answer 503 and everything else works.
# shopify_api_key = "a61950a2cbd5f32876b0b55587ec7a27"   # GHOSTTRACK_SHOPIFY_API_KEY
# shopify_api_secret = "…"                               # GHOSTTRACK_SHOPIFY_API_SECRET
# Previous client secret, accepted for HMACs and id tokens while a rotation settles.
# shopify_api_secret_previous = "…"                      # GHOSTTRACK_SHOPIFY_API_SECRET_PREVIOUS

# Base URL of every call to a shop; {shop} is replaced by the shop domain (GHOSTTRACK_SHOPIFY_API_BASE).
# Tests point it at the fake Shopify, e.g. "http://127.0.0.1:4000/{shop}".
shopify_api_base = "https://{shop}"

# Public HTTPS URL of the app, the application_url of shopify.app.toml (GHOSTTRACK_APP_URL).
# app_url = "https://ghosttrack.example.com"

# Server secret, at least 32 bytes, from which the keys that encrypt shop tokens at rest and sign
# cookies are derived (GHOSTTRACK_SECRET_KEY). Required for Shopify installs. `openssl rand -hex 32`.
# secret_key = "…"
# The secret before a change of secret_key, kept until `ghosttrack keys rotate` has re-wrapped
# the data keys and shop tokens it sealed (GHOSTTRACK_SECRET_KEY_PREVIOUS).
# secret_key_previous = "…"

[ingest]
# Largest /collect body in bytes; larger requests get 413.
max_body_bytes = 65536
# Most events in one batch; more is a 400.
max_events_per_batch = 50
# Batches from a client clock further than this from ours are dropped (reason clock_skew).
max_clock_skew_secs = 600
# Events older than this, relative to their batch, are dropped (reason event_too_old).
max_event_age_secs = 3600
# Events waiting to be committed before /collect answers 503 + Retry-After.
buffer_capacity_events = 100000
# Most events per database transaction (group commit).
commit_max_events = 10000
# Concurrent writers; 0 = automatic (1 on SQLite; on PostgreSQL one per two cores, 1 to 4).
writers = 0
# Inactivity that ends a session.
session_idle_secs = 1800
# Retry-After value on 503.
retry_after_secs = 1

[log]
# "pretty" or "json".
format = "pretty"
# tracing filter; RUST_LOG overrides it.
filter = "info,sqlx=warn,sea_orm=warn"

[detect]
# Run the detection engine on ingested events and record verdict changes as threats.
enabled = true
# Rule files replacing (same id) or extending the embedded rules; check them with `ghosttrack rules check DIR`.
# rules_dir = "/etc/ghosttrack/rules"
# Most detection state slots (tenant, rule, key) in memory; about 100-300 bytes each.
max_state_keys = 1000000
# Redis shared by several nodes for detection state; unset = in-process (single node).
# redis_url = "redis://127.0.0.1:6379/"
# Prefix of the detection keys in Redis.
redis_prefix = "gt:detect"
# Tenant policies (bands, rule overrides, allowlists, shadow mode): one <site key>.toml per site.
# policies_dir = "/etc/ghosttrack/policies"
# Tor exit list (https://check.torproject.org/torbulkexitlist or exit-addresses format), refreshed by a
# cron job; listed IPs carry the Tor exit flag. Unset = MaxMind's Anonymous-IP flag only.
# tor_exit_list = "/var/lib/ghosttrack/torbulkexitlist"
# Seconds between checks of the Tor exit list's modification time (a changed file is reloaded).
tor_exit_list_refresh_secs = 300
# Seconds between rounds of the untracked-cart judge (carts no tracked session produced).
untracked_judge_interval_secs = 30

[privacy]
# Raw events of strict and balanced sites are deleted after this many days (sessions and threats stay).
retention_days = 90
# Raw events of forensic sites (which keep everything) are deleted after this many days.
forensic_retention_days = 30
# Balanced sites: pointer paths of sessions no verdict flagged are deleted after this many hours.
unflagged_pointer_path_hours = 24
# Balanced sites: pointer paths of flagged sessions are kept this many days.
flagged_pointer_path_days = 7
# How often the retention job runs (seconds).
sweep_interval_secs = 3600
# Seconds a node keeps a site's active event data key before re-reading it (a change of the
# encryption setting or a key rotation from another node or the CLI shows after this).
data_key_cache_secs = 30

[alerts]
# Run the alert worker (deliveries, digests, traffic checks) on this node. Several nodes may run it.
enabled = true
# SMTP server for email alerts; without it email channels fail (and retry) with a clear error.
# smtp_host = "smtp.example.com"
smtp_port = 587
# "starttls" (port 587), "tls" (implicit TLS, port 465) or "none" (a local relay only).
smtp_tls = "starttls"
# smtp_username = "alerts@example.com"
# smtp_password = "…"
# Extra PEM root certificate for a private or self-signed SMTP server.
# smtp_ca_file = "/etc/ghosttrack/smtp-ca.pem"
# From header of alert emails.
email_from = "GhostTrack <alerts@localhost>"
# Attempts before a delivery moves to the dead-letter list.
max_attempts = 8
# First retry delay (ms); doubles per attempt with jitter, capped at retry_max_ms.
retry_base_ms = 5000
retry_max_ms = 3600000
# How long a claimed delivery is hidden from other workers (ms); must exceed the send timeout.
lease_ms = 120000
# How often the worker looks for due deliveries (ms).
poll_interval_ms = 1000
# How often quiet-hour roll-ups, daily digests and traffic checks run (ms).
tick_interval_ms = 60000
# Timeout of one SMTP or HTTP delivery (s).
send_timeout_secs = 30
# Accept webhook URLs on loopback or private addresses (self-hosted installs; off for multi-tenant servers).
allow_private_targets = false

[panel]
# The built admin panel (`cargo xtask dist` writes it), served under /app; relative to the working directory.
dist_dir = "web/dist"
# App Bridge, loaded first in the embedded panel's <head> (Shopify requires its CDN copy in production).
app_bridge_url = "https://cdn.shopify.com/shopifycloud/app-bridge.js"
# The live threat feed (server-sent events) ends after this many seconds; the panel reconnects.
live_max_secs = 600

[rate_limit]
# Rate limits of /collect, /collect.gif and the app-proxy collect routes, per node. Over a limit the
# answer is 429 + Retry-After (the pixel still answers its GIF), counted as a drop on /metrics.
enabled = true
# Requests per second one site may send, sustained (0 = no per-site limit), and at once above it.
site_per_sec = 1000
site_burst = 5000
# Requests per second from one client network (/24 IPv4, /48 IPv6; 0 = no limit), and at once above it.
network_per_sec = 50
network_burst = 200
# Bucket slots per limit (memory bound, about 100 bytes each); beyond it, keys share slots.
max_keys = 100000
# Client networks never limited (GHOSTTRACK_RATE_LIMIT__EXEMPT="127.0.0.0/8,::1").
exempt = ["127.0.0.0/8", "::1/128"]
"#,
    crate::billing_annotated_defaults!()
);

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn annotated_defaults_parse_to_the_built_in_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ghosttrack.toml");
        std::fs::write(&path, ANNOTATED_DEFAULTS).unwrap();
        let from_file = Settings::load_from(Some(&path), Vec::new()).unwrap().settings;
        assert_eq!(serde_json::to_value(&from_file).unwrap(), serde_json::to_value(Settings::default()).unwrap());
    }

    #[test]
    fn every_key_in_the_annotated_defaults_is_known_and_every_known_key_is_documented() {
        let documented: Vec<String> = documented_keys(ANNOTATED_DEFAULTS);
        for key in &documented {
            assert!(KNOWN_KEYS.contains(&key.as_str()), "{key} documented but not in KNOWN_KEYS");
        }
        for key in KNOWN_KEYS {
            assert!(documented.iter().any(|d| d == key), "{key} missing from ANNOTATED_DEFAULTS");
        }
    }

    /// Keys of `key = value` lines, including commented-out examples, with their table prefix.
    fn documented_keys(toml: &str) -> Vec<String> {
        let mut table = String::new();
        let mut keys = Vec::new();
        for line in toml.lines() {
            let line = line.trim();
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                table = format!("{name}.");
                continue;
            }
            let candidate = line.trim_start_matches("# ");
            if let Some((key, _)) = candidate.split_once(" = ")
                && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            {
                keys.push(format!("{table}{key}"));
            }
        }
        keys
    }

    #[test]
    fn env_overrides_file_and_nested_keys_use_double_underscore() {
        let loaded = Settings::load_from(
            None,
            env(&[
                ("GHOSTTRACK_LISTEN", "0.0.0.0:9999"),
                ("GHOSTTRACK_INGEST__MAX_BODY_BYTES", "1024"),
                ("GHOSTTRACK_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1"),
                ("HOME", "/root"),
            ]),
        )
        .unwrap();
        assert_eq!(loaded.settings.listen.port(), 9999);
        assert_eq!(loaded.settings.ingest.max_body_bytes, 1024);
        assert_eq!(loaded.settings.trusted_proxies.len(), 2);
        assert!(loaded.unknown_env.is_empty());
    }

    #[test]
    fn unknown_ghosttrack_variables_are_reported_not_fatal() {
        let loaded = Settings::load_from(
            None,
            env(&[("GHOSTTRACK_LISTNE", "x"), ("GHOSTTRACK_TEST_DATABASE_URL", "postgres://x")]),
        )
        .unwrap();
        assert_eq!(loaded.unknown_env, vec!["GHOSTTRACK_LISTNE".to_string()]);
    }

    #[test]
    fn invalid_value_names_the_key() {
        let err = Settings::load_from(None, env(&[("GHOSTTRACK_LISTEN", "not-an-address")])).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("listen"), "{message}");
        assert!(message.contains("print-config"), "{message}");
    }

    #[test]
    fn shopify_settings_come_from_env_and_secrets_stay_hidden() {
        let loaded = Settings::load_from(
            None,
            env(&[
                ("GHOSTTRACK_SHOPIFY_API_KEY", "1234567890"),
                ("GHOSTTRACK_SHOPIFY_API_SECRET", "hush-hush"),
                ("GHOSTTRACK_SHOPIFY_API_SECRET_PREVIOUS", "old-hush"),
                ("GHOSTTRACK_SHOPIFY_API_BASE", "http://127.0.0.1:4000/{shop}"),
                ("GHOSTTRACK_APP_URL", "https://app.example.com"),
                ("GHOSTTRACK_SECRET_KEY", "0123456789abcdef0123456789abcdef"),
            ]),
        )
        .unwrap();
        assert!(loaded.unknown_env.is_empty(), "{:?}", loaded.unknown_env);
        let s = loaded.settings;
        assert_eq!(s.shopify_api_key.as_deref(), Some("1234567890"));
        assert_eq!(s.shopify_api_secret.as_ref().unwrap().expose(), "hush-hush");
        assert_eq!(s.shopify_api_secret_previous.as_ref().unwrap().expose(), "old-hush");
        assert_eq!(s.shopify_api_base, "http://127.0.0.1:4000/{shop}");
        assert_eq!(s.app_url.as_ref().unwrap().as_str(), "https://app.example.com/");
        let printed = format!("{s:?}");
        assert!(!printed.contains("hush-hush") && !printed.contains("0123456789abcdef"), "{printed}");
        let serialized = serde_json::to_string(&s).unwrap();
        assert!(!serialized.contains("hush-hush"), "{serialized}");
    }

    #[test]
    fn database_url_debug_hides_the_password() {
        let url = DatabaseUrl::new("postgres://gt:hunter2@db:5432/gt");
        assert!(!format!("{url:?}").contains("hunter2"));
        assert!(url.is_postgres());
    }

    #[test]
    fn default_database_is_sqlite_in_the_data_dir() {
        let url = Settings::default().database_url();
        assert_eq!(url.expose(), "sqlite://./ghosttrack-data/ghosttrack.db?mode=rwc");
    }
}
