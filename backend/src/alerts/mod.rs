//! Alerts: a per-tenant policy decides which verdict changes (threat records) become messages;
//! the messages are written to an outbox in the transaction that records the threats, and a
//! worker delivers them to the tenant's channels (email, Slack, Discord, signed webhook) with
//! retries, backoff, idempotency keys and a dead-letter list. See docs/ALERTS.md.
//!
//! - `policy`: the tenant's policy and its validation.
//! - `engine`: the pure core (threats → alerts, cooldown, quiet hours, digest), in event time.
//! - `record`: the recorder's transaction (threat rows + outbox rows) and the periodic job.
//! - `worker`: claims and delivers outbox rows.
//! - `channels`: the wire formats of each channel.
//! - `service`: what the API calls (policy, channels, test alert, deliveries).
//! - `invitation`: the invitation email, queued in the same outbox (no channel, sealed payload).

pub mod channels;
pub mod engine;
pub mod invitation;
pub mod policy;
pub mod record;
pub mod redact;
pub mod service;
pub mod worker;

#[cfg(test)]
mod tests;

pub use engine::{Alert, AlertKind, AlertState};
pub use policy::AlertPolicy;
