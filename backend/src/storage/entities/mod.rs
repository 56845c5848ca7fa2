//! sea-orm entities mirroring `migrations/`. Timestamps are `UnixMillis` (BIGINT ms, UTC).

pub mod account_sessions;
pub mod daily_salts;
pub mod drop_counters;
pub mod events;
pub mod invitations;
pub mod login_attempts;
pub mod sessions;
pub mod shopify_audit_log;
pub mod shopify_carts;
pub mod shopify_orders;
pub mod shopify_payment_attempts;
pub mod shops;
pub mod sites;
pub mod threats;
pub mod users;
pub mod visitors;
pub mod webhook_inbox;
