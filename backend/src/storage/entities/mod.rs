//! sea-orm entities mirroring `migrations/`. Timestamps are `UnixMillis` (BIGINT ms, UTC).

pub mod daily_salts;
pub mod drop_counters;
pub mod events;
pub mod sessions;
pub mod sites;
pub mod threats;
pub mod visitors;
