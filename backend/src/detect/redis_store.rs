//! Detection state in Redis, shared by several nodes. Each update is an optimistic transaction
//! (WATCH, GET, run the closure, MULTI/SET/EXEC, retry on conflict), so two nodes updating one
//! key never lose a count. Slots are JSON; Redis expires them a little after their event-time
//! expiry. Calls are blocking (the engine is synchronous by design), so every connection has
//! short connect and I/O timeouts: an unreachable Redis costs an event at most [`IO_TIMEOUT`]
//! before the engine falls back to local state (`detect::failover`).

use std::time::Duration;

use redis::Commands;

use super::state::{KeyState, MemoryStore, Slot, StateKey, StateStore};

/// Redis-backed [`StateStore`].
pub struct RedisStore {
    conn: redis::Connection,
    prefix: String,
    /// Updates that failed on Redis (the event was judged with an empty slot).
    pub errors: u64,
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
        Ok(RedisStore { conn, prefix: prefix.to_owned(), errors: 0 })
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
            let mut slot = raw.and_then(|b| serde_json::from_slice::<Slot>(&b).ok()).unwrap_or(Slot {
                expires_at: ts,
                cooldown_until: i64::MIN,
                state: KeyState::Empty,
            });
            let result = f(&mut slot);
            let body = serde_json::to_vec(&slot).map_err(|e| {
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

    fn contains(&self, _key: &StateKey) -> bool {
        // `contains` is only an optimisation (skip verdict bookkeeping of subjects without
        // state); asking Redis needs `&mut`, so a shared store always answers yes.
        true
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
