//! Detection state keyed by (tenant, rule, key), behind a small trait so that a shared backend
//! (Redis) can replace the in-process map. Memory is bounded: every slot carries the event time
//! after which it means nothing (`expires_at`), idle slots are swept in event time, and when the
//! map is still over its cap the slots closest to expiry go first.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::features::SessionFeatures;
use super::score::VerdictState;

/// Which state: one tenant, one rule (or a reserved index), one key value (hashed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StateKey {
    pub site: i64,
    pub rule: u16,
    pub key: u64,
}

/// Reserved rule indexes for state that is not a rule's.
pub const FEATURES_SLOT: u16 = u16::MAX;
pub const VERDICT_SLOT: u16 = u16::MAX - 1;

/// One key's state and its bookkeeping (serialisable for shared backends).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Slot {
    /// Event time after which the slot can be dropped.
    pub expires_at: i64,
    /// The rule stays silent for this key until then (after firing).
    pub cooldown_until: i64,
    pub state: KeyState,
}

/// Per-condition state. Each keeps at most `threshold` entries, so a key's memory is bounded by
/// its rule's threshold, not by traffic.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub enum KeyState {
    #[default]
    Empty,
    /// Timestamps of the most recent matching events (sliding-window threshold).
    Times(VecDeque<i64>),
    /// Most recently seen distinct values (hashed) with their last time.
    Values(Vec<(u64, i64)>),
    /// Open `first` events and completed cycles. Boxed, like every variant larger than a
    /// `VecDeque`: the map stores each slot inline, so the largest variant sets the size of
    /// every entry (the JSON of a boxed variant is the same as of a struct variant).
    Sequence(Box<SequenceState>),
    Ratio(Box<RatioState>),
    Features(Box<SessionFeatures>),
    Verdict(Box<VerdictState>),
}

/// Open `first` events (value, time) and the times completed cycles ended.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SequenceState {
    pub pending: Vec<(u64, i64)>,
    pub cycles: VecDeque<i64>,
}

/// Bucketed numerator/denominator counts for a short window and an optional baseline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RatioState {
    pub short: Buckets,
    pub long: Option<Buckets>,
}

/// Counts in fixed time buckets: a sliding window at bucket resolution.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Buckets {
    pub bucket_ms: i64,
    /// (bucket start, numerator, denominator), oldest first.
    pub buckets: VecDeque<(i64, u32, u32)>,
}

impl Buckets {
    pub fn new(window_ms: i64, buckets: i64) -> Self {
        Buckets { bucket_ms: (window_ms / buckets).max(1), buckets: VecDeque::new() }
    }

    /// Adds one event and returns (numerator, denominator) over the `window_ms` ending at `ts`.
    pub fn add(&mut self, ts: i64, numerator: bool, window_ms: i64) -> (u32, u32) {
        let start = ts - ts.rem_euclid(self.bucket_ms);
        match self.buckets.back_mut() {
            Some(last) if last.0 == start => {
                last.1 += u32::from(numerator);
                last.2 += 1;
            }
            _ => self.buckets.push_back((start, u32::from(numerator), 1)),
        }
        let oldest = ts - window_ms;
        while self.buckets.front().is_some_and(|b| b.0 + self.bucket_ms <= oldest) {
            self.buckets.pop_front();
        }
        self.buckets.iter().fold((0, 0), |(n, d), b| (n + b.1, d + b.2))
    }
}

/// Where detection state lives. `update` must be atomic per key: a shared backend runs the
/// closure inside a compare-and-set (Redis WATCH/MULTI), so the closure may run more than once
/// and must derive its result from the slot alone.
pub trait StateStore {
    /// Runs `f` on the slot of `key`, creating an empty one (expiring at `ts`) if absent.
    fn update<R>(&mut self, key: StateKey, ts: i64, f: impl FnMut(&mut Slot) -> R) -> R;
    /// Whether a slot exists for `key` (without creating one).
    fn contains(&self, key: &StateKey) -> bool;
    /// Drops slots whose `expires_at` is before `now` (event time). Returns how many.
    fn evict_expired(&mut self, now: i64) -> usize;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Whether the store stages batches ([`begin_batch`](Self::begin_batch)) and wants the keys a
    /// batch will probably touch; the engine skips computing them otherwise.
    fn batches(&self) -> bool {
        false
    }
    /// Starts a batch: the updates until [`commit_batch`](Self::commit_batch) form one atomic
    /// unit. `keys` are the slots it will probably touch (a shared store reads them in one round
    /// trip); others are read when first touched. In-process stores apply updates at once.
    fn begin_batch(&mut self, _keys: &[StateKey]) {}
    /// Ends the batch. `false`: another node changed a slot the batch read, nothing was written,
    /// and the caller must run the whole batch again (its results are void).
    fn commit_batch(&mut self) -> bool {
        true
    }
}

/// The default, single-node store: a hash map with a size cap.
pub struct MemoryStore {
    slots: FxHashMap<StateKey, Slot>,
    max_slots: usize,
    /// Latest event time seen, for sweeps.
    now: i64,
    updates_since_sweep: u32,
}

/// Updates between two sweeps of expired slots.
const SWEEP_EVERY: u32 = 1 << 16;

impl MemoryStore {
    pub fn new(max_slots: usize) -> Self {
        MemoryStore { slots: FxHashMap::default(), max_slots: max_slots.max(16), now: i64::MIN, updates_since_sweep: 0 }
    }

    pub fn get(&self, key: &StateKey) -> Option<&Slot> {
        self.slots.get(key)
    }

    /// Approximate bytes held: map entries plus each state's heap (for the memory budget).
    pub fn approx_bytes(&self) -> usize {
        let entry = std::mem::size_of::<(StateKey, Slot)>() + 1;
        self.slots.capacity() * entry + self.slots.values().map(|s| heap_bytes(&s.state)).sum::<usize>()
    }

    /// Per kind of state: (slots, heap bytes), for finding where the memory goes.
    pub fn heap_by_kind(&self) -> std::collections::BTreeMap<&'static str, (usize, usize)> {
        let mut out = std::collections::BTreeMap::new();
        for slot in self.slots.values() {
            let kind = match &slot.state {
                KeyState::Empty => "empty",
                KeyState::Times(_) => "times",
                KeyState::Values(_) => "values",
                KeyState::Sequence(_) => "sequence",
                KeyState::Ratio(_) => "ratio",
                KeyState::Features(_) => "features",
                KeyState::Verdict(_) => "verdict",
            };
            let e: &mut (usize, usize) = out.entry(kind).or_default();
            e.0 += 1;
            e.1 += heap_bytes(&slot.state);
        }
        out
    }

    /// Sweeps expired slots; if still over the cap, drops those expiring soonest down to 90 %.
    fn sweep(&mut self) {
        self.updates_since_sweep = 0;
        let now = self.now;
        self.evict_expired(now);
        if self.slots.len() >= self.max_slots {
            let target = self.max_slots * 9 / 10;
            let mut expiries: Vec<i64> = self.slots.values().map(|s| s.expires_at).collect();
            let cut = expiries.len() - target;
            expiries.select_nth_unstable(cut);
            let limit = expiries[cut];
            self.slots.retain(|_, s| s.expires_at > limit);
        }
    }
}

/// Heap bytes of one state (the slot itself is counted with the map entry).
fn heap_bytes(s: &KeyState) -> usize {
    match s {
        KeyState::Empty => 0,
        KeyState::Times(t) => t.capacity() * 8,
        KeyState::Values(v) => v.capacity() * 16,
        KeyState::Sequence(q) => {
            std::mem::size_of::<SequenceState>() + q.pending.capacity() * 16 + q.cycles.capacity() * 8
        }
        KeyState::Ratio(r) => {
            std::mem::size_of::<RatioState>()
                + (r.short.buckets.capacity() + r.long.as_ref().map_or(0, |l| l.buckets.capacity())) * 16
        }
        KeyState::Features(_) => std::mem::size_of::<SessionFeatures>(),
        KeyState::Verdict(v) => {
            std::mem::size_of::<VerdictState>()
                    + v.active.capacity() * std::mem::size_of::<super::score::Signal>()
                    + v.active
                        .iter()
                        .map(|s| s.behavior.len() + s.key.len() + s.reason.len() + s.sample.len())
                        .sum::<usize>()
                    // The rule ids of the last verdict, to tell changes from repeats.
                    + v.last.as_ref().map_or(0, |(_, _, rules)| {
                        rules.capacity() * std::mem::size_of::<String>() + rules.iter().map(String::len).sum::<usize>()
                    })
        }
    }
}

impl StateStore for MemoryStore {
    fn update<R>(&mut self, key: StateKey, ts: i64, mut f: impl FnMut(&mut Slot) -> R) -> R {
        self.now = self.now.max(ts);
        self.updates_since_sweep += 1;
        if self.updates_since_sweep >= SWEEP_EVERY || self.slots.len() >= self.max_slots {
            self.sweep();
        }
        let slot = self.slots.entry(key).or_insert_with(|| Slot {
            expires_at: ts,
            cooldown_until: i64::MIN,
            state: KeyState::Empty,
        });
        f(slot)
    }

    fn contains(&self, key: &StateKey) -> bool {
        self.slots.contains_key(key)
    }

    fn evict_expired(&mut self, now: i64) -> usize {
        let before = self.slots.len();
        self.slots.retain(|_, s| s.expires_at >= now);
        before - self.slots.len()
    }

    fn len(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: u64) -> StateKey {
        StateKey { site: 1, rule: 0, key: k }
    }

    #[test]
    fn expired_slots_are_evicted_in_event_time() {
        let mut store = MemoryStore::new(100);
        store.update(key(1), 0, |s| s.expires_at = 1_000);
        store.update(key(2), 0, |s| s.expires_at = 5_000);
        assert_eq!(store.evict_expired(2_000), 1);
        assert!(store.get(&key(1)).is_none() && store.get(&key(2)).is_some());
    }

    #[test]
    fn the_store_never_holds_more_than_its_cap() {
        let mut store = MemoryStore::new(1_000);
        for k in 0..10_000u64 {
            // Nothing expires: only the cap bounds memory.
            store.update(key(k), k as i64, |s| s.expires_at = i64::MAX - 10_000 + k as i64);
            assert!(store.len() <= 1_000);
        }
        // The newest keys (latest expiry) survive.
        assert!(store.get(&key(9_999)).is_some());
        assert!(store.get(&key(0)).is_none());
    }

    #[test]
    fn buckets_count_a_sliding_window() {
        let mut b = Buckets::new(60_000, 12);
        assert_eq!(b.add(0, true, 60_000), (1, 1));
        assert_eq!(b.add(30_000, false, 60_000), (1, 2));
        // At 65 s the first bucket (0..5 s) has left the window.
        assert_eq!(b.add(65_000, false, 60_000), (0, 2));
    }
}
