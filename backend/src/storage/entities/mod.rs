//! sea-orm entities mirroring `migrations/`. Timestamps are `UnixMillis` (BIGINT ms, UTC).

pub mod account_sessions;
pub mod alert_channels;
pub mod alert_outbox;
pub mod alert_policies;
pub mod billing_notices;
pub mod daily_salts;
pub mod drop_counters;
pub mod events;
pub mod invitations;
pub mod login_attempts;
pub mod panel_audit_log;
pub mod rule_settings;
pub mod sessions;
pub mod shopify_audit_log;
pub mod shopify_carts;
pub mod shopify_orders;
pub mod shopify_payment_attempts;
pub mod shopify_setup;
pub mod shops;
pub mod sites;
pub mod subscriptions;
pub mod threats;
pub mod usage_counters;
pub mod users;
pub mod visitors;
pub mod webhook_inbox;
