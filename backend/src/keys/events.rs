//! Event payload encryption: each tenant that turned it on has random 256-bit data keys, stored
//! wrapped by the master key (`storage::data_keys`). While the tenant has an active key, the
//! ingest pipeline stores `events.props` as an envelope
//!
//! ```text
//! gtenc:v1:<data key id>:<base64(nonce ‖ ciphertext ‖ tag)>[|ct=<blind index>][|ck=<blind index>]
//! ```
//!
//! sealed with associated data naming the tenant and the key, so a ciphertext copied into
//! another tenant's rows does not open. The optional suffix is a keyed hash (HMAC-SHA256 with a
//! key derived from the data key, 128 bits) of the cart or checkout token the event carried, so
//! the order join can still find the session with a substring match in SQL without the token
//! being readable. Plain props (tenants without encryption, rows from before it was turned on)
//! are JSON objects and pass through every reader unchanged.
//!
//! Unwrapped keys are cached in memory (bounded): the hot path does one AES-GCM seal per event
//! and no database read; a tenant's active key is re-read at most every [`ACTIVE_KEY_TTL`].

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use moka::sync::Cache;
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};

use super::aead::{AeadKey, KEY_LEN};
use super::master::MasterKeys;
use crate::domain::SiteId;
use crate::shopify::signing::{derive_key, sign_with_key};
use crate::shopify::token_cipher::{CipherError, Sealed};
use crate::storage::data_keys::{self, DataKeyRow, NewDataKey};
use crate::storage::entities::events;
use crate::storage::shopify_orders::JoinNeedles;
use crate::storage::{StorageError, TenantScope};

/// Prefix of every encrypted payload (plain payloads are JSON objects, starting with `{`).
pub const ENVELOPE_PREFIX: &str = "gtenc:";
const VERSION: &str = "v1";
/// How long a node keeps using the active key it read (and the "encryption off" answer) by
/// default: a rotation or a change of the setting from another node or the CLI is seen within
/// this time (`privacy.data_key_cache_secs`).
pub const ACTIVE_KEY_TTL: Duration = Duration::from_secs(30);
/// Tenants whose unwrapped keys are cached.
const MAX_CACHED_KEYS: u64 = 100_000;
/// Hex digits kept of a blind index (128 bits).
const BLIND_INDEX_HEX: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("event payload encryption needs GHOSTTRACK_SECRET_KEY (generate one with `openssl rand -hex 32`)")]
    NoSecretKey,
    #[error(
        "data key `{key_id}` is wrapped by master key `{master_key_id}`, which is neither GHOSTTRACK_SECRET_KEY nor GHOSTTRACK_SECRET_KEY_PREVIOUS"
    )]
    UnknownMasterKey { key_id: String, master_key_id: String },
    #[error("an encrypted event payload names data key `{0}`, which this tenant does not have")]
    UnknownDataKey(String),
    #[error("an encrypted event payload cannot be decrypted (corrupt, or copied from another tenant)")]
    Corrupt,
    #[error("an encrypted event payload is malformed (expected gtenc:v1:<key id>:<base64>)")]
    Malformed,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// One unwrapped data key of one tenant.
pub struct DataKey {
    site: SiteId,
    key_id: String,
    aead: AeadKey,
    index_key: [u8; KEY_LEN],
    prefix: String,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey(site={}, key_id={})", self.site.0, self.key_id)
    }
}

impl DataKey {
    pub fn new(site: SiteId, key_id: &str, raw: &[u8; KEY_LEN]) -> Self {
        DataKey {
            site,
            key_id: key_id.to_owned(),
            aead: AeadKey::new(raw),
            index_key: derive_key(raw, "event-blind-index/v1"),
            prefix: format!("{ENVELOPE_PREFIX}{VERSION}:{key_id}:"),
        }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// `gtenc:v1:<key id>:` — what every envelope sealed with this key starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn aad(&self) -> String {
        format!("ghosttrack/events.props/{VERSION}/site:{}/{}", self.site.0, self.key_id)
    }

    /// The envelope of `plain`, with a blind index of each `(name, value)` join token.
    pub fn seal(&self, plain: &str, join: &[(&str, &str)]) -> String {
        let raw = self.aead.seal(self.aad().as_bytes(), plain.as_bytes());
        let mut out = self.prefix.clone();
        base64::engine::general_purpose::STANDARD.encode_string(raw, &mut out);
        for (name, value) in join {
            out.push_str(&self.needle(name, value));
        }
        out
    }

    /// [`seal`](Self::seal) with the blind index of the cart or checkout token the props carry.
    pub fn seal_with_join_tokens(&self, plain: &str) -> String {
        let tokens = join_tokens(plain);
        let join: Vec<(&str, &str)> = tokens.iter().map(|(n, v)| (*n, v.as_str())).collect();
        self.seal(plain, &join)
    }

    /// The plain props of an envelope sealed with this key.
    pub fn open(&self, envelope: &str) -> Result<String, KeyError> {
        let body = envelope.strip_prefix(self.prefix.as_str()).ok_or(KeyError::Malformed)?;
        let b64 = body.split('|').next().unwrap_or_default();
        let raw = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|_| KeyError::Corrupt)?;
        let plain = self.aead.open(self.aad().as_bytes(), &raw).map_err(|_| KeyError::Corrupt)?;
        String::from_utf8(plain).map_err(|_| KeyError::Corrupt)
    }

    /// The suffix an envelope carrying join token `name = value` ends with (or contains).
    pub fn needle(&self, name: &str, value: &str) -> String {
        let mac = sign_with_key(&self.index_key, format!("{name}={value}").as_bytes());
        format!("|{name}={}", &mac[..BLIND_INDEX_HEX])
    }
}

/// The cart (`ct`, add-to-cart) and checkout (`ck`, checkout pixel events) tokens of plain
/// props: what the order join looks events up by. Only props that mention one are parsed.
pub fn join_tokens(plain: &str) -> Vec<(&'static str, String)> {
    if !plain.contains(r#""ct""#) && !plain.contains(r#""ck""#) {
        return Vec::new();
    }
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(plain) else {
        return Vec::new();
    };
    ["ct", "ck"]
        .into_iter()
        .filter_map(|name| map.get(name).and_then(|v| v.as_str()).map(|v| (name, v.to_owned())))
        .collect()
}

/// The data key id an envelope names; `None` for plain props.
pub fn envelope_key_id(props: &str) -> Option<Result<&str, KeyError>> {
    let rest = props.strip_prefix(ENVELOPE_PREFIX)?;
    Some(match rest.split_once(':') {
        Some((VERSION, rest)) => match rest.split_once(':') {
            Some((key_id, _)) if !key_id.is_empty() => Ok(key_id),
            _ => Err(KeyError::Malformed),
        },
        _ => Err(KeyError::Malformed),
    })
}

/// A new random key id (public: it is written into every envelope).
fn new_key_id() -> String {
    let raw = AeadKey::generate();
    format!("dk-{}", hex::encode(&raw[..6]))
}

/// The wrapping context of a data key: bound to its tenant and id.
fn wrap_context(site: SiteId, key_id: &str) -> String {
    format!("site:{}/event-data-key/{key_id}", site.0)
}

/// Every node's view of the tenants' data keys.
pub struct EventKeys {
    master: Option<MasterKeys>,
    /// Tenant → its active key (`None`: encryption off), for [`ACTIVE_KEY_TTL`].
    active: Cache<SiteId, Option<Arc<DataKey>>>,
    /// (tenant, key id) → key, for reading.
    by_id: Cache<(SiteId, String), Arc<DataKey>>,
}

impl std::fmt::Debug for EventKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EventKeys(master={})", self.master.as_ref().map_or("none", |m| m.current().key_id()))
    }
}

impl EventKeys {
    pub fn new(master: Option<MasterKeys>) -> Self {
        EventKeys {
            master,
            active: Cache::builder().max_capacity(MAX_CACHED_KEYS).time_to_live(ACTIVE_KEY_TTL).build(),
            by_id: Cache::builder().max_capacity(MAX_CACHED_KEYS).build(),
        }
    }

    /// Re-read each tenant's active key after `ttl` instead of [`ACTIVE_KEY_TTL`]
    /// (`privacy.data_key_cache_secs`).
    pub fn with_active_ttl(mut self, ttl: Duration) -> Self {
        self.active = Cache::builder().max_capacity(MAX_CACHED_KEYS).time_to_live(ttl).build();
        self
    }

    pub fn master(&self) -> Option<&MasterKeys> {
        self.master.as_ref()
    }

    fn master_or_err(&self) -> Result<&MasterKeys, KeyError> {
        self.master.as_ref().ok_or(KeyError::NoSecretKey)
    }

    /// The raw key of a stored row.
    pub fn unwrap_row(&self, row: &DataKeyRow) -> Result<[u8; KEY_LEN], KeyError> {
        let master = self.master_or_err()?;
        let sealed = Sealed { key_id: row.master_key_id.clone(), ciphertext: row.wrapped_key.clone() };
        let hex_key = master.open(&wrap_context(row.site_id, &row.key_id), &sealed).map_err(|e| match e {
            CipherError::UnknownKey(m) => KeyError::UnknownMasterKey { key_id: row.key_id.clone(), master_key_id: m },
            _ => KeyError::Corrupt,
        })?;
        let mut raw = [0u8; KEY_LEN];
        hex::decode_to_slice(hex_key, &mut raw).map_err(|_| KeyError::Corrupt)?;
        Ok(raw)
    }

    /// `row`'s key wrapped under the current master key: `(wrapped, master key id)`.
    pub fn wrap(&self, site: SiteId, key_id: &str, raw: &[u8; KEY_LEN]) -> Result<Sealed, KeyError> {
        Ok(self.master_or_err()?.current().seal(&wrap_context(site, key_id), &hex::encode(raw)))
    }

    fn load(&self, row: &DataKeyRow) -> Result<Arc<DataKey>, KeyError> {
        let key = Arc::new(DataKey::new(row.site_id, &row.key_id, &self.unwrap_row(row)?));
        self.by_id.insert((row.site_id, row.key_id.clone()), key.clone());
        Ok(key)
    }

    /// The key new events of the tenant are sealed with, `None` when encryption is off. Cached:
    /// one database read per tenant per [`ACTIVE_KEY_TTL`].
    pub async fn sealer(
        &self,
        db: &impl ConnectionTrait,
        scope: TenantScope,
    ) -> Result<Option<Arc<DataKey>>, KeyError> {
        if let Some(cached) = self.active.get(&scope.site_id()) {
            return Ok(cached);
        }
        let key = match data_keys::active(db, scope).await? {
            Some(row) => Some(self.load(&row)?),
            None => None,
        };
        self.active.insert(scope.site_id(), key.clone());
        Ok(key)
    }

    /// A key of the tenant by id (any key, retired or not).
    pub async fn key(
        &self,
        db: &impl ConnectionTrait,
        scope: TenantScope,
        key_id: &str,
    ) -> Result<Arc<DataKey>, KeyError> {
        if let Some(key) = self.by_id.get(&(scope.site_id(), key_id.to_owned())) {
            return Ok(key);
        }
        let row = data_keys::find(db, scope, key_id).await?.ok_or_else(|| KeyError::UnknownDataKey(key_id.into()))?;
        self.load(&row)
    }

    /// Plain props from stored props: envelopes are opened, plain JSON passes through.
    pub async fn open(&self, db: &impl ConnectionTrait, scope: TenantScope, props: &str) -> Result<String, KeyError> {
        match envelope_key_id(props) {
            None => Ok(props.to_owned()),
            Some(key_id) => self.key(db, scope, key_id?).await?.open(props),
        }
    }

    /// Opens the props of rows read from `events` in place.
    pub async fn open_events(
        &self,
        db: &impl ConnectionTrait,
        scope: TenantScope,
        rows: &mut [events::Model],
    ) -> Result<(), KeyError> {
        for row in rows {
            if let Some(p) = row.props.as_deref().filter(|p| p.starts_with(ENVELOPE_PREFIX)) {
                row.props = Some(self.open(db, scope, p).await?);
            }
        }
        Ok(())
    }

    /// Substrings a stored `props` holding a join token contains, for the cart token (`ct`) and
    /// the checkout token (`ck`): the plain JSON member, and its blind index under each of the
    /// tenant's keys. The tenant's keys are listed once for both.
    pub async fn join_needles(
        &self,
        db: &impl ConnectionTrait,
        scope: TenantScope,
        cart: Option<&str>,
        checkout: Option<&str>,
    ) -> Result<(JoinNeedles, JoinNeedles), KeyError> {
        let tokens = [("ct", cart), ("ck", checkout)];
        let mut needles = tokens.map(|(name, value)| value.map(|v| JoinNeedles::plain(name, v)).unwrap_or_default());
        let rows = if cart.is_some() || checkout.is_some() { data_keys::of_site(db, scope).await? } else { vec![] };
        for row in rows {
            let key = self.key(db, scope, &row.key_id).await?;
            for ((name, value), found) in tokens.iter().zip(needles.iter_mut()) {
                if let Some(value) = value {
                    found.0.push(key.needle(name, value));
                }
            }
        }
        let [cart, checkout] = needles;
        Ok((cart, checkout))
    }

    /// Turns encryption on for the tenant (a new data key), or returns its active key.
    pub async fn enable(&self, db: &DatabaseConnection, scope: TenantScope) -> Result<DataKeyRow, KeyError> {
        let txn = db.begin().await.map_err(StorageError::from)?;
        let row = match data_keys::active(&txn, scope).await? {
            Some(row) => row,
            None => self.insert_new(&txn, scope).await?,
        };
        txn.commit().await.map_err(StorageError::from)?;
        self.active.invalidate(&scope.site_id());
        Ok(row)
    }

    /// A new data key for the tenant's new events; the old ones stay for reading. `None` when
    /// encryption is off for the tenant (nothing to rotate).
    pub async fn rotate(&self, db: &DatabaseConnection, scope: TenantScope) -> Result<Option<DataKeyRow>, KeyError> {
        let txn = db.begin().await.map_err(StorageError::from)?;
        let rotated = if data_keys::retire_active(&txn, scope).await? > 0 {
            Some(self.insert_new(&txn, scope).await?)
        } else {
            None
        };
        txn.commit().await.map_err(StorageError::from)?;
        self.active.invalidate(&scope.site_id());
        Ok(rotated)
    }

    /// Turns encryption off: new events are stored plain; existing envelopes stay readable.
    pub async fn disable(&self, db: &impl ConnectionTrait, scope: TenantScope) -> Result<bool, KeyError> {
        let retired = data_keys::retire_active(db, scope).await? > 0;
        self.active.invalidate(&scope.site_id());
        Ok(retired)
    }

    async fn insert_new(&self, db: &impl ConnectionTrait, scope: TenantScope) -> Result<DataKeyRow, KeyError> {
        let key_id = new_key_id();
        let sealed = self.wrap(scope.site_id(), &key_id, &AeadKey::generate())?;
        let row = data_keys::insert(
            db,
            scope,
            NewDataKey { key_id: &key_id, wrapped_key: &sealed.ciphertext, master_key_id: &sealed.key_id },
        )
        .await?;
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(site: i64, id: &str) -> DataKey {
        DataKey::new(SiteId(site), id, &[7u8; KEY_LEN])
    }

    #[test]
    fn an_envelope_round_trips_and_does_not_contain_the_plaintext() {
        let k = key(1, "dk-a");
        let env = k.seal(r#"{"ct":"cart-secret","x":1}"#, &[("ct", "cart-secret")]);
        assert!(env.starts_with("gtenc:v1:dk-a:"), "{env}");
        assert!(!env.contains("cart-secret"));
        assert!(env.ends_with(&k.needle("ct", "cart-secret")));
        assert_eq!(k.open(&env).unwrap(), r#"{"ct":"cart-secret","x":1}"#);
        assert_ne!(k.seal("{}", &[]), k.seal("{}", &[]), "a fresh nonce every time");
    }

    #[test]
    fn join_tokens_are_read_from_the_cart_and_checkout_members_only() {
        assert_eq!(join_tokens(r#"{"ct":"c1","src":"x"}"#), vec![("ct", "c1".to_owned())]);
        assert_eq!(join_tokens(r#"{"ck":"k1","at":"PAYMENT_ERROR"}"#), vec![("ck", "k1".to_owned())]);
        assert!(join_tokens(r#"{"ti":"say \"ct\" here"}"#).is_empty());
        assert!(join_tokens(r#"{"x":1}"#).is_empty());
    }

    #[test]
    fn an_envelope_copied_to_another_tenant_does_not_open() {
        let env = key(1, "dk-a").seal(r#"{"x":1}"#, &[]);
        // Same raw key and id under another tenant: the associated data differs.
        assert!(matches!(key(2, "dk-a").open(&env), Err(KeyError::Corrupt)));
    }

    #[test]
    fn a_tampered_envelope_is_refused_with_a_clear_error() {
        let k = key(1, "dk-a");
        let env = k.seal(r#"{"x":1}"#, &[]);
        let i = k.prefix().len() + 20;
        let mut tampered = env.clone();
        tampered.replace_range(i..i + 1, if &env[i..i + 1] == "A" { "B" } else { "A" });
        assert!(matches!(k.open(&tampered), Err(KeyError::Corrupt)));
        assert!(matches!(k.open("gtenc:v1:dk-a:!!!"), Err(KeyError::Corrupt)));
        assert!(matches!(k.open("gtenc:v1:dk-b:AAAA"), Err(KeyError::Malformed)));
    }

    #[test]
    fn envelopes_name_their_key_and_plain_props_are_not_envelopes() {
        assert_eq!(envelope_key_id("gtenc:v1:dk-1:QUJD|ct=ab").unwrap().unwrap(), "dk-1");
        assert!(envelope_key_id(r#"{"x":1}"#).is_none());
        assert!(matches!(envelope_key_id("gtenc:v2:dk-1:QUJD"), Some(Err(KeyError::Malformed))));
        assert!(matches!(envelope_key_id("gtenc:v1:"), Some(Err(KeyError::Malformed))));
    }

    #[test]
    fn blind_indexes_differ_per_key_and_per_value() {
        let (a, b) = (key(1, "dk-a"), DataKey::new(SiteId(1), "dk-b", &[8u8; KEY_LEN]));
        assert_eq!(a.needle("ct", "t1"), a.needle("ct", "t1"));
        assert_ne!(a.needle("ct", "t1"), a.needle("ct", "t2"));
        assert_ne!(a.needle("ct", "t1"), a.needle("ck", "t1"));
        assert_ne!(a.needle("ct", "t1"), b.needle("ct", "t1"));
    }

    #[test]
    fn wrapped_keys_need_the_master_key_that_wrapped_them() {
        let old = EventKeys::new(Some(MasterKeys::new("0123456789abcdef0123456789abcdef", None).unwrap()));
        let raw = AeadKey::generate();
        let sealed = old.wrap(SiteId(1), "dk-a", &raw).unwrap();
        let row = DataKeyRow {
            id: 1,
            site_id: SiteId(1),
            key_id: "dk-a".into(),
            wrapped_key: sealed.ciphertext.clone(),
            master_key_id: sealed.key_id.clone(),
            created_at: crate::domain::UnixMillis(0),
            retired_at: None,
        };
        assert_eq!(old.unwrap_row(&row).unwrap(), raw);
        let new = EventKeys::new(Some(MasterKeys::new("another-secret-key-of-32-bytes-or-more", None).unwrap()));
        assert!(matches!(new.unwrap_row(&row), Err(KeyError::UnknownMasterKey { .. })));
        assert!(matches!(EventKeys::new(None).unwrap_row(&row), Err(KeyError::NoSecretKey)));
        let moved = DataKeyRow { site_id: SiteId(2), ..row };
        assert!(matches!(old.unwrap_row(&moved), Err(KeyError::Corrupt)));
    }
}
