//! Detection: events in, explainable verdicts out.
//!
//! - `event`: what the engine observes, from every source (tracker, pixel, webhooks, logs).
//! - `rules`: rules as data (`backend/rules/**.toml` + `.md`), compiled and validated at load.
//! - `engine`: the pure, synchronous core `observe(site, event)`, driven by event time only.
//! - `keys`, `filter`: state keys and subjects of an event; rule filters.
//! - `state`: state keyed by (tenant, rule, key) behind `StateStore`; `MemoryStore` by default.
//! - `redis_store`: `RedisStore`, the shared backend for several nodes, and `AnyStore`.
//! - `failover`: `FailoverStore`, Redis with an in-process fallback while Redis is unreachable.
//! - `features`: per-session behaviour features (interaction, pointer, dwell).
//! - `score`: signals → score → ALLOW / CHALLENGE / BLOCK, and the per-tenant `Policy`.
//! - `replay`: JSONL events → verdict changes (the `replay` and `explain` commands).
//! - `service`: the shared engine in the server, the ingest hook, the threat recorder.
//! - `bus`: `ThreatBus`, live-feed wake-ups after recorded verdicts, across nodes through Redis pub/sub.
//! - `guard`: `DetectGuard`, a poem middleware enforcing BLOCK with 429 + `Retry-After`.
//! - `accesslog`: combined/nginx access-log lines → request events (`ingest-log`).
//! - `mix`: the synthetic event mix of the bench and the state budget test.
//!
//! docs/DETECTION.md explains the rules, the scoring and the file formats.

pub mod accesslog;
pub mod bus;
pub mod commands;
pub mod crawlers;
pub mod engine;
pub mod event;
pub mod failover;
pub mod features;
mod filter;
pub mod guard;
mod keys;
pub mod mix;
pub mod redis_store;
pub mod replay;
pub mod rules;
pub mod score;
pub mod service;
pub mod settings;
pub mod state;

pub use engine::{Engine, Observation, subject_of};
pub use event::{Body, DetectEvent};
pub use rules::{RuleError, RuleId, RuleSet};
pub use score::{Decision, Policy, Signal, Verdict};
pub use state::{MemoryStore, StateStore};

#[cfg(test)]
mod tests;
