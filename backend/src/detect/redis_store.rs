//! Detection state in Redis, shared by several nodes. Updates are optimistic transactions, so
//! two nodes updating one key never lose a count. A batch of events (one ingest batch, see
//! `Engine::observe_batch`) is one transaction: WATCH and MGET of every slot it will probably
//! touch in one round trip, the engine runs on those copies (a slot not read yet costs one more
//! WATCH/GET), then MULTI/SET…/EXEC of the changed slots in one round trip; if another node
//! changed a watched slot, EXEC writes nothing and the engine runs the batch again. Outside a
//! batch each update is its own transaction (WATCH, GET, closure, MULTI/SET/EXEC, retry). Slots are
//! postcard (compact binary serde) behind a format byte, see [`encode`]; Redis expires them a
//! little after their event-time expiry. Calls are blocking (the engine is synchronous by design), so every connection has
//! short connect and I/O timeouts: an unreachable Redis costs an event at most [`IO_TIMEOUT`]
//! before the engine falls back to local state (`detect::failover`).

use std::time::Duration;

use redis::Commands;
use rustc_hash::{FxHashMap, FxHashSet};

use super::state::{KeyState, MemoryStore, Slot, StateKey, StateStore};

/// First byte of every slot in Redis. Bump it whenever a type inside [`Slot`] changes shape:
/// postcard is not self-describing, so a slot written by another version must be recognised as
/// such (and read as empty, as an expired slot would be) instead of misread. Slots written as
/// JSON by earlier versions start with `{` and are likewise read as empty.
pub const SLOT_FORMAT: u8 = 1;

/// A slot as stored: [`SLOT_FORMAT`], then the postcard encoding. About a third of the JSON's
/// size and several times cheaper to write and read, which is most of a batch's CPU here.
pub fn encode(slot: &Slot) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_extend(slot, vec![SLOT_FORMAT])
}

/// The slot stored in `raw`, or `None` when it is of another format or does not decode (the
/// engine then starts the key afresh, as after expiry).
pub fn decode(raw: &[u8]) -> Option<Slot> {
    match raw.split_first() {
        Some((&SLOT_FORMAT, body)) => postcard::from_bytes(body).ok(),
        _ => None,
    }
}

/// Redis-backed [`StateStore`].
pub struct RedisStore {
    conn: redis::Connection,
    prefix: String,
    /// Updates that failed on Redis (the event was judged with an empty slot).
    pub errors: u64,
    /// Batches that another node's write made run again.
    pub conflicts: u64,
    batch: Option<Batch>,
}

/// A batch in progress: the watched slots as read, and what the batch made of them.
#[derive(Default)]
struct Batch {
    slots: FxHashMap<StateKey, Staged>,
    /// The first Redis error of the batch; the batch fails at commit.
    error: Option<redis::RedisError>,
}

struct Staged {
    /// `None`: absent in Redis and not created by the batch.
    slot: Option<Slot>,
    dirty: bool,
    /// Latest event time the batch updated the slot at (its Redis expiry counts from it).
    ts: i64,
}

/// How a batch ended.
#[derive(Debug)]
pub enum Commit {
    Done,
    /// Another node wrote a watched slot: nothing was written; run the batch again.
    Conflict,
    /// Redis failed: nothing was written.
    Failed(redis::RedisError),
}

/// Extra lifetime Redis gives a slot beyond its event-time expiry (clock skew between nodes).
const EXPIRY_MARGIN_MS: i64 = 60_000;
/// Conflicting transactions are retried this often (with a short random back-off, so two nodes
/// hammering one key do not starve each other) before giving up on the update.
const MAX_RETRIES: u64 = 100;
/// Longest wait for a TCP connection to Redis.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
/// Longest wait for one Redis reply; beyond it Redis counts as unreachable.
pub const IO_TIMEOUT: Duration = Duration::from_millis(500);

impl RedisStore {
    /// Connects to `url` (e.g. `redis://127.0.0.1:6379/`); keys are `{prefix}:{site}:{rule}:{key}`.
    pub fn connect(url: &str, prefix: &str) -> redis::RedisResult<Self> {
        let client = redis::Client::open(url)?;
        let mut conn = client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
        conn.set_read_timeout(Some(IO_TIMEOUT))?;
        conn.set_write_timeout(Some(IO_TIMEOUT))?;
        let _: String = redis::cmd("PING").query(&mut conn)?;
        Ok(RedisStore { conn, prefix: prefix.to_owned(), errors: 0, conflicts: 0, batch: None })
    }

    /// Starts a batch (see the module docs): WATCH and MGET `keys` in one round trip.
    pub fn begin(&mut self, keys: &[StateKey]) {
        let mut seen = FxHashSet::default();
        let unique: Vec<StateKey> = keys.iter().copied().filter(|k| seen.insert(*k)).collect();
        let mut batch = Batch::default();
        if let Err(error) = self.read_into(&mut batch, &unique) {
            batch.error = Some(error);
        }
        self.batch = Some(batch);
    }

    fn read_into(&mut self, batch: &mut Batch, keys: &[StateKey]) -> redis::RedisResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = keys.iter().map(|k| self.name(k)).collect();
        let (values,): (Vec<Option<Vec<u8>>>,) =
            redis::pipe().cmd("WATCH").arg(&names).ignore().cmd("MGET").arg(&names).query(&mut self.conn)?;
        for (key, raw) in keys.iter().zip(values) {
            let slot = raw.as_deref().and_then(decode);
            batch.slots.insert(*key, Staged { slot, dirty: false, ts: i64::MIN });
        }
        Ok(())
    }

    /// An update inside a batch: on the batch's copy of the slot, read first if not read yet.
    fn batch_update<R>(&mut self, mut batch: Batch, key: StateKey, ts: i64, f: &mut impl FnMut(&mut Slot) -> R) -> R {
        if batch.error.is_none()
            && !batch.slots.contains_key(&key)
            && let Err(error) = self.read_into(&mut batch, &[key])
        {
            batch.error = Some(error);
        }
        let staged = batch.slots.entry(key).or_insert(Staged { slot: None, dirty: false, ts });
        let slot = staged.slot.get_or_insert(Slot { expires_at: ts, cooldown_until: i64::MIN, state: KeyState::Empty });
        let result = f(slot);
        staged.dirty = true;
        staged.ts = staged.ts.max(ts);
        self.batch = Some(batch);
        result
    }

    /// Ends the batch: MULTI, SET of every changed slot, EXEC, in one round trip.
    pub fn commit(&mut self) -> Commit {
        let Some(batch) = self.batch.take() else { return Commit::Done };
        let outcome = self.write(batch);
        if !matches!(outcome, Commit::Done) {
            let _ = redis::cmd("UNWATCH").exec(&mut self.conn);
        }
        if matches!(outcome, Commit::Conflict) {
            self.conflicts += 1;
        }
        outcome
    }

    fn write(&mut self, batch: Batch) -> Commit {
        if let Some(error) = batch.error {
            return Commit::Failed(error);
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        let mut writes = 0;
        for (key, staged) in &batch.slots {
            let (true, Some(slot)) = (staged.dirty, &staged.slot) else { continue };
            let body = match encode(slot) {
                Ok(body) => body,
                Err(e) => {
                    return Commit::Failed(redis::RedisError::from((
                        redis::ErrorKind::Client,
                        "cannot serialise a slot",
                        e.to_string(),
                    )));
                }
            };
            let ttl_ms = (slot.expires_at - staged.ts).max(0) + EXPIRY_MARGIN_MS;
            pipe.cmd("SET").arg(self.name(key)).arg(body).arg("PX").arg(ttl_ms).ignore();
            writes += 1;
        }
        if writes == 0 {
            // Nothing changed; EXEC of an empty MULTI would still check the watches, but there
            // is nothing to protect. UNWATCH is sent by `commit`.
            let _ = redis::cmd("UNWATCH").exec(&mut self.conn);
            return Commit::Done;
        }
        match pipe.query::<Option<()>>(&mut self.conn) {
            Ok(Some(())) => Commit::Done,
            Ok(None) => Commit::Conflict,
            Err(error) => Commit::Failed(error),
        }
    }

    /// Whether a batch is open.
    pub fn in_batch(&self) -> bool {
        self.batch.is_some()
    }

    fn name(&self, key: &StateKey) -> String {
        format!("{}:{}:{}:{:x}", self.prefix, key.site, key.rule, key.key)
    }

    /// [`StateStore::update`] that reports Redis errors instead of absorbing them.
    pub fn try_update<R>(
        &mut self,
        key: &StateKey,
        ts: i64,
        f: &mut impl FnMut(&mut Slot) -> R,
    ) -> redis::RedisResult<R> {
        let name = self.name(key);
        let result = self.try_update_named(&name, ts, f);
        if result.is_err() {
            let _ = redis::cmd("UNWATCH").exec(&mut self.conn);
        }
        result
    }

    fn try_update_named<R>(
        &mut self,
        name: &str,
        ts: i64,
        f: &mut impl FnMut(&mut Slot) -> R,
    ) -> redis::RedisResult<R> {
        for attempt in 0..MAX_RETRIES {
            if attempt > 0 {
                let micros = rand::random_range(10..100) * attempt.min(20);
                std::thread::sleep(std::time::Duration::from_micros(micros));
            }
            redis::cmd("WATCH").arg(name).exec(&mut self.conn)?;
            let raw: Option<Vec<u8>> = self.conn.get(name)?;
            let mut slot = raw.as_deref().and_then(decode).unwrap_or(Slot {
                expires_at: ts,
                cooldown_until: i64::MIN,
                state: KeyState::Empty,
            });
            let result = f(&mut slot);
            let body = encode(&slot).map_err(|e| {
                redis::RedisError::from((redis::ErrorKind::Client, "cannot serialise a slot", e.to_string()))
            })?;
            let ttl_ms = (slot.expires_at - ts).max(0) + EXPIRY_MARGIN_MS;
            let committed: Option<()> = redis::pipe()
                .atomic()
                .cmd("SET")
                .arg(name)
                .arg(body)
                .arg("PX")
                .arg(ttl_ms)
                .ignore()
                .query(&mut self.conn)?;
            if committed.is_some() {
                return Ok(result);
            }
        }
        Err(redis::RedisError::from((redis::ErrorKind::Client, "too many conflicting updates")))
    }
}

impl StateStore for RedisStore {
    fn update<R>(&mut self, key: StateKey, ts: i64, mut f: impl FnMut(&mut Slot) -> R) -> R {
        if let Some(batch) = self.batch.take() {
            return self.batch_update(batch, key, ts, &mut f);
        }
        match self.try_update(&key, ts, &mut f) {
            Ok(r) => r,
            Err(error) => {
                // Judge the event on an empty slot rather than stall ingest; count the failure.
                self.errors += 1;
                tracing::warn!(error = %error, "detection state update failed on Redis");
                f(&mut Slot { expires_at: ts, cooldown_until: i64::MIN, state: KeyState::Empty })
            }
        }
    }

    fn contains(&self, key: &StateKey) -> bool {
        // `contains` is only an optimisation (skip verdict bookkeeping of subjects without
        // state). A batch knows the slots it read; outside one, asking Redis needs `&mut`, so a
        // shared store answers yes.
        match self.batch.as_ref().and_then(|b| b.slots.get(key)) {
            Some(staged) => staged.slot.is_some(),
            None => true,
        }
    }

    fn batches(&self) -> bool {
        true
    }

    fn begin_batch(&mut self, keys: &[StateKey]) {
        self.begin(keys);
    }

    fn commit_batch(&mut self) -> bool {
        match self.commit() {
            Commit::Done => true,
            Commit::Conflict => false,
            Commit::Failed(error) => {
                // Judged on what the batch read; its state changes are lost. Counted.
                self.errors += 1;
                tracing::warn!(error = %error, "detection state batch failed on Redis");
                true
            }
        }
    }

    fn evict_expired(&mut self, _now: i64) -> usize {
        // Redis expires keys itself (PX on every write).
        0
    }

    fn len(&self) -> usize {
        0
    }
}

/// The store a server runs with: in-process, or Redis (with a local fallback) when
/// `detect.redis_url` is set.
pub enum AnyStore {
    Memory(MemoryStore),
    Redis(Box<super::failover::FailoverStore>),
}

impl StateStore for AnyStore {
    fn update<R>(&mut self, key: StateKey, ts: i64, f: impl FnMut(&mut Slot) -> R) -> R {
        match self {
            AnyStore::Memory(s) => s.update(key, ts, f),
            AnyStore::Redis(s) => s.update(key, ts, f),
        }
    }

    fn contains(&self, key: &StateKey) -> bool {
        match self {
            AnyStore::Memory(s) => s.contains(key),
            AnyStore::Redis(s) => s.contains(key),
        }
    }

    fn evict_expired(&mut self, now: i64) -> usize {
        match self {
            AnyStore::Memory(s) => s.evict_expired(now),
            AnyStore::Redis(s) => s.evict_expired(now),
        }
    }

    fn len(&self) -> usize {
        match self {
            AnyStore::Memory(s) => s.len(),
            AnyStore::Redis(s) => s.len(),
        }
    }

    fn batches(&self) -> bool {
        match self {
            AnyStore::Memory(s) => s.batches(),
            AnyStore::Redis(s) => s.batches(),
        }
    }

    fn begin_batch(&mut self, keys: &[StateKey]) {
        match self {
            AnyStore::Memory(s) => s.begin_batch(keys),
            AnyStore::Redis(s) => s.begin_batch(keys),
        }
    }

    fn commit_batch(&mut self) -> bool {
        match self {
            AnyStore::Memory(s) => s.commit_batch(),
            AnyStore::Redis(s) => s.commit_batch(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_round_trip_through_the_stored_format_and_other_formats_read_as_empty() {
        use crate::detect::features::SessionFeatures;
        use crate::detect::state::{Buckets, RatioState, SequenceState};
        use std::collections::VecDeque;
        let states = [
            KeyState::Empty,
            KeyState::Times(VecDeque::from([1, 2, 3])),
            KeyState::Values(vec![(7, 1_000), (u64::MAX, -5)]),
            KeyState::Sequence(Box::new(SequenceState { pending: vec![(9, 10)], cycles: VecDeque::from([11]) })),
            KeyState::Ratio(Box::new(RatioState {
                short: Buckets { bucket_ms: 60_000, buckets: VecDeque::from([(0, 1, 2)]) },
                long: None,
            })),
            KeyState::Features(Box::new(SessionFeatures { pageviews: 3, clicks: 2, ..Default::default() })),
        ];
        for state in states {
            let slot = Slot { expires_at: 1_700_000_000_000, cooldown_until: i64::MIN, state };
            let raw = encode(&slot).expect("encodes");
            assert_eq!(raw[0], SLOT_FORMAT);
            let json = serde_json::to_vec(&slot).expect("json");
            assert!(raw.len() < json.len(), "{} bytes against {} as JSON", raw.len(), json.len());
            let back = decode(&raw).expect("decodes");
            assert_eq!(format!("{back:?}"), format!("{slot:?}"));
            // A slot an earlier version wrote as JSON, one of an unknown format, a truncated one.
            assert!(decode(&json).is_none());
            let mut other = raw.clone();
            other[0] = SLOT_FORMAT.wrapping_add(1);
            assert!(decode(&other).is_none());
            assert!(decode(&[]).is_none());
        }
        let truncated =
            encode(&Slot { expires_at: 5, cooldown_until: 6, state: KeyState::Values(vec![(1, 2), (3, 4)]) })
                .expect("encodes");
        assert!(decode(&truncated[..truncated.len() - 1]).is_none());
    }

    /// Runs only when `GHOSTTRACK_TEST_REDIS_URL` is set (e.g. redis://127.0.0.1:6379/).
    fn store(prefix: &str) -> Option<RedisStore> {
        let url = std::env::var("GHOSTTRACK_TEST_REDIS_URL").ok()?;
        Some(RedisStore::connect(&url, prefix).expect("redis reachable"))
    }

    #[test]
    fn two_stores_on_one_redis_share_counts_without_losing_updates() {
        let prefix = format!("gt-test-{}", rand::random::<u64>());
        let Some(mut reader) = store(&prefix) else {
            eprintln!("GHOSTTRACK_TEST_REDIS_URL not set: Redis store test not run");
            return;
        };
        let key = StateKey { site: 1, rule: 3, key: 42 };
        // Two "nodes" increment one counter concurrently; optimistic transactions lose nothing.
        let nodes: Vec<_> = (0..2)
            .map(|_| {
                let mut node = store(&prefix).unwrap();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        node.update(key, 0, |slot| {
                            slot.expires_at = 10_000;
                            slot.cooldown_until = slot.cooldown_until.max(0) + 1;
                        });
                    }
                    node.errors
                })
            })
            .collect();
        for node in nodes {
            assert_eq!(node.join().unwrap(), 0);
        }
        assert_eq!(reader.update(key, 0, |slot| slot.cooldown_until), 100);
    }

    #[test]
    fn batches_of_two_stores_commit_atomically_and_lose_no_update() {
        let prefix = format!("gt-test-{}", rand::random::<u64>());
        let Some(mut reader) = store(&prefix) else {
            eprintln!("GHOSTTRACK_TEST_REDIS_URL not set: Redis store test not run");
            return;
        };
        let prefetched = StateKey { site: 1, rule: 3, key: 1 };
        let on_demand = StateKey { site: 1, rule: 3, key: 2 };
        let bump = |slot: &mut Slot| {
            slot.expires_at = 10_000;
            slot.cooldown_until = slot.cooldown_until.max(0) + 1;
        };
        let nodes: Vec<_> = (0..2)
            .map(|_| {
                let mut node = store(&prefix).unwrap();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        // One batch touches a key it announced and one it did not.
                        loop {
                            node.begin_batch(&[prefetched]);
                            node.update(prefetched, 0, bump);
                            node.update(on_demand, 0, bump);
                            if node.commit_batch() {
                                break;
                            }
                        }
                    }
                    node.errors
                })
            })
            .collect();
        for node in nodes {
            assert_eq!(node.join().unwrap(), 0);
        }
        assert_eq!(reader.update(prefetched, 0, |slot| slot.cooldown_until), 100);
        assert_eq!(reader.update(on_demand, 0, |slot| slot.cooldown_until), 100);
    }

    #[test]
    fn an_engine_on_redis_in_batches_fires_what_it_fires_in_memory() {
        use crate::detect::event::{Body, DetectEvent};
        use crate::detect::{Engine, RuleSet};
        use crate::domain::SiteId;
        use std::sync::Arc;

        let prefix = format!("gt-test-{}", rand::random::<u64>());
        let Some(redis) = store(&prefix) else {
            eprintln!("GHOSTTRACK_TEST_REDIS_URL not set: Redis store test not run");
            return;
        };
        let event = |i: i64, body: Body, ua: &str| DetectEvent {
            ts: 1_800_000_000_000 + i * 1_000,
            session: Some(1 + i % 3),
            visitor: None,
            client_key: None,
            ip_prefix: Some("10.0.0.0/24".parse().unwrap()),
            device: None,
            asn: None,
            country: None,
            net_flags: 0,
            user_agent: Some(ua.into()),
            cart_token: None,
            checkout_token: None,
            body,
        };
        let events: Vec<DetectEvent> = (0..30)
            .map(|i| match i % 3 {
                0 => event(i, Body::AlertDisplayed { alert_type: "PAYMENT_ERROR".into() }, "Mozilla/5.0"),
                1 => event(i, Body::Pageview { path: format!("/p{i}"), product: None }, "curl/8.5.0"),
                _ => event(i, Body::AddToCart { variant: "v".into(), quantity: 1, rejected: false }, "Mozilla/5.0"),
            })
            .collect();
        let rules = Arc::new(RuleSet::embedded().unwrap());
        let signals = |observed: Vec<crate::detect::Observation>| -> Vec<(String, String, u32)> {
            observed.into_iter().flat_map(|o| o.signals).map(|s| (s.rule.to_string(), s.key, s.count)).collect()
        };
        let mut memory = Engine::in_memory(rules.clone(), 10_000);
        let expected = signals(events.iter().map(|e| memory.observe(SiteId(1), e)).collect());
        let mut shared = Engine::with_store(rules, redis);
        let got = signals(events.chunks(7).flat_map(|chunk| shared.observe_batch(SiteId(1), chunk)).collect());
        assert!(expected.iter().any(|s| s.0 == "card/ct1-ip-failures"), "{expected:?}");
        assert_eq!(got, expected);
        assert_eq!(shared.store().errors, 0);
    }
}
