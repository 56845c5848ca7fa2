//! Shared detection state that survives Redis going away. While Redis answers, every update goes
//! to it (nodes share windows). When a call fails because Redis is unreachable, the store
//! switches to in-process state at once — ingest never waits on a dead Redis for more than one
//! timeout — says so once in the log and on `/metrics`, and tries to reconnect every
//! [`RECONNECT_EVERY`]; once Redis answers again, updates go back to it and the local state is
//! dropped. During the fallback each node judges with what it saw itself: a burst split across
//! nodes can go unnoticed, a burst on one node is still caught.

use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use redis::RedisError;

use super::redis_store::{Commit, RedisStore};
use super::state::{KeyState, MemoryStore, Slot, StateKey, StateStore};

/// How often a node on local state tries Redis again.
pub const RECONNECT_EVERY: Duration = Duration::from_secs(2);

/// What the store reports about itself on `/metrics` (clones share the values).
#[derive(Clone, Debug, Default)]
pub struct StateHealth {
    /// 1 while detection runs on in-process state because Redis is unreachable, else 0.
    pub local_fallback: Gauge,
    /// Switches from Redis to in-process state since start.
    pub fallbacks: Counter,
}

/// Redis-backed [`StateStore`] with an in-process fallback.
pub struct FailoverStore {
    url: String,
    prefix: String,
    redis: Option<RedisStore>,
    local: MemoryStore,
    max_local_slots: usize,
    next_attempt: Instant,
    health: StateHealth,
}

/// Whether `error` means Redis cannot be reached (as opposed to one update that failed).
fn unreachable(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_unrecoverable_error()
}

impl FailoverStore {
    /// A malformed `url` is an error (configuration); an unreachable Redis starts the store on
    /// local state, reported like any later outage.
    pub fn open(url: &str, prefix: &str, max_local_slots: usize, health: StateHealth) -> redis::RedisResult<Self> {
        redis::Client::open(url)?;
        let mut store = FailoverStore {
            url: url.to_owned(),
            prefix: prefix.to_owned(),
            redis: None,
            local: MemoryStore::new(max_local_slots),
            max_local_slots,
            next_attempt: Instant::now(),
            health,
        };
        match RedisStore::connect(url, prefix) {
            Ok(redis) => store.redis = Some(redis),
            Err(error) => store.fall_back(&error),
        }
        Ok(store)
    }

    /// Whether updates currently go to Redis.
    pub fn is_shared(&self) -> bool {
        self.redis.is_some()
    }

    fn fall_back(&mut self, error: &RedisError) {
        self.redis = None;
        self.local = MemoryStore::new(self.max_local_slots);
        self.next_attempt = Instant::now() + RECONNECT_EVERY;
        self.health.local_fallback.set(1);
        self.health.fallbacks.inc();
        tracing::error!(
            error = %error,
            retry_secs = RECONNECT_EVERY.as_secs(),
            "Redis unreachable: detection falls back to in-process state (not shared with other nodes)"
        );
    }

    /// Tries Redis again when the fallback is on and a retry is due. Quiet on failure: the
    /// outage was reported when it began.
    fn reconnect_if_due(&mut self) {
        if self.redis.is_some() || Instant::now() < self.next_attempt {
            return;
        }
        match RedisStore::connect(&self.url, &self.prefix) {
            Ok(redis) => {
                self.redis = Some(redis);
                self.local = MemoryStore::new(self.max_local_slots);
                self.health.local_fallback.set(0);
                tracing::info!("Redis reachable again: detection state is shared again");
            }
            Err(_) => self.next_attempt = Instant::now() + RECONNECT_EVERY,
        }
    }
}

impl StateStore for FailoverStore {
    fn update<R>(&mut self, key: StateKey, ts: i64, mut f: impl FnMut(&mut Slot) -> R) -> R {
        if let Some(redis) = self.redis.as_mut().filter(|r| r.in_batch()) {
            // Errors surface at commit.
            return redis.update(key, ts, f);
        }
        self.reconnect_if_due();
        let Some(redis) = self.redis.as_mut() else {
            return self.local.update(key, ts, f);
        };
        match redis.try_update(&key, ts, &mut f) {
            Ok(r) => r,
            Err(error) if unreachable(&error) => {
                self.fall_back(&error);
                self.local.update(key, ts, f)
            }
            Err(error) => {
                // One update lost a race too often: judge this event on an empty slot.
                redis.errors += 1;
                tracing::warn!(error = %error, "detection state update failed on Redis");
                f(&mut Slot { expires_at: ts, cooldown_until: i64::MIN, state: KeyState::Empty })
            }
        }
    }

    fn contains(&self, key: &StateKey) -> bool {
        match &self.redis {
            Some(redis) => redis.contains(key),
            None => self.local.contains(key),
        }
    }

    fn evict_expired(&mut self, now: i64) -> usize {
        self.local.evict_expired(now)
    }

    fn len(&self) -> usize {
        self.local.len()
    }

    fn batches(&self) -> bool {
        self.redis.is_some()
    }

    fn begin_batch(&mut self, keys: &[StateKey]) {
        self.reconnect_if_due();
        if let Some(redis) = self.redis.as_mut() {
            redis.begin(keys);
        }
    }

    fn commit_batch(&mut self) -> bool {
        let Some(redis) = self.redis.as_mut() else { return true };
        match redis.commit() {
            Commit::Done => true,
            Commit::Conflict => false,
            Commit::Failed(error) if unreachable(&error) => {
                // Run the batch again, on local state.
                self.fall_back(&error);
                false
            }
            Commit::Failed(error) => {
                redis.errors += 1;
                tracing::warn!(error = %error, "detection state batch failed on Redis");
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(store: &mut FailoverStore, key: StateKey) -> i64 {
        store.update(key, 0, |slot| {
            slot.expires_at = 10_000;
            slot.cooldown_until = slot.cooldown_until.max(0) + 1;
            slot.cooldown_until
        })
    }

    #[test]
    fn an_unreachable_redis_at_start_means_local_state_reported_on_the_metrics() {
        // Port 1 on loopback: nothing listens, the connection is refused at once.
        let health = StateHealth::default();
        let mut store = FailoverStore::open("redis://127.0.0.1:1/", "gt-test", 100, health.clone()).unwrap();
        assert!(!store.is_shared());
        assert_eq!((health.local_fallback.get(), health.fallbacks.get()), (1, 1));
        let key = StateKey { site: 1, rule: 1, key: 1 };
        assert_eq!(count(&mut store, key), 1);
        assert_eq!(count(&mut store, key), 2, "local state keeps counting during the outage");
        assert_eq!(health.fallbacks.get(), 1, "one outage is reported once");
    }

    #[test]
    fn a_malformed_url_is_a_configuration_error() {
        assert!(FailoverStore::open("http://not-redis/", "gt", 100, StateHealth::default()).is_err());
    }
}
