//! GhostTrack's schema: one migration per step, written once with sea-query so the same
//! definitions produce SQLite and PostgreSQL DDL. Timestamps are `BIGINT` milliseconds since
//! the Unix epoch (UTC) on both backends: bucket arithmetic stays portable and index-friendly.

pub use sea_orm_migration::prelude::*;

mod m20261121_000001_create_sites;
mod m20261121_000002_create_daily_salts;
mod m20261121_000003_create_visitors;
mod m20261121_000004_create_sessions;
mod m20261121_000005_create_events;
mod m20261121_000006_create_drop_counters;
mod m20261121_000007_drop_events_site_fk_on_postgres;
mod m20261122_100001_create_threats;
mod m20261122_200001_create_shops;
mod m20261122_200002_create_webhook_inbox;
mod m20261122_200003_create_shopify_audit_log;
mod m20261122_200004_create_shopify_orders;
mod m20261122_200005_create_shopify_carts;
mod m20261122_200006_create_shopify_payment_attempts;
mod m20261122_300001_create_shopify_setup;
mod m20261122_300002_link_shopify_orders;
mod m20261123_150001_create_users;
mod m20261123_150002_create_account_sessions;
mod m20261123_150003_create_invitations;
mod m20261123_150004_create_login_attempts;
mod m20261123_150005_create_stats_rollups;
mod m20261123_150006_create_stats_rollup_state;
mod m20261123_200001_create_alert_policies;
mod m20261123_200002_create_alert_channels;
mod m20261123_200003_create_alert_outbox;
mod m20261123_300001_create_subscriptions;
mod m20261123_300002_create_usage_counters;
mod m20261123_300003_create_billing_notices;
mod m20261124_510001_create_panel_audit_log;
mod m20261124_510002_index_events_site_kind_ts;
mod m20261124_520001_create_rule_settings;
mod m20261124_600001_partition_events_by_day;
mod m20261125_700001_create_event_data_keys;
mod m20261125_710001_judge_shopify_carts;
mod m20261125_720001_drop_sessions_last_seen_index;
mod m20261126_810001_create_page_rollups;
mod m20261126_810002_create_page_rollup_cells;
mod m20261127_900001_threat_read_paths;

/// The day partitions of `events` on PostgreSQL, for the maintenance job (`storage::partitions`).
pub use m20261124_600001_partition_events_by_day::{create_partition_sql, partition_name};
pub use m20261127_900001_threat_read_paths::CARD_VERDICT_PREDICATE;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_create_sites::Migration),
            Box::new(m20261121_000002_create_daily_salts::Migration),
            Box::new(m20261121_000003_create_visitors::Migration),
            Box::new(m20261121_000004_create_sessions::Migration),
            Box::new(m20261121_000005_create_events::Migration),
            Box::new(m20261121_000006_create_drop_counters::Migration),
            Box::new(m20261121_000007_drop_events_site_fk_on_postgres::Migration),
            Box::new(m20261122_100001_create_threats::Migration),
            Box::new(m20261122_200001_create_shops::Migration),
            Box::new(m20261122_200002_create_webhook_inbox::Migration),
            Box::new(m20261122_200003_create_shopify_audit_log::Migration),
            Box::new(m20261122_200004_create_shopify_orders::Migration),
            Box::new(m20261122_200005_create_shopify_carts::Migration),
            Box::new(m20261122_200006_create_shopify_payment_attempts::Migration),
            Box::new(m20261122_300001_create_shopify_setup::Migration),
            Box::new(m20261122_300002_link_shopify_orders::Migration),
            Box::new(m20261123_200001_create_alert_policies::Migration),
            Box::new(m20261123_200002_create_alert_channels::Migration),
            Box::new(m20261123_200003_create_alert_outbox::Migration),
            Box::new(m20261123_300001_create_subscriptions::Migration),
            Box::new(m20261123_300002_create_usage_counters::Migration),
            Box::new(m20261123_300003_create_billing_notices::Migration),
            Box::new(m20261123_150001_create_users::Migration),
            Box::new(m20261123_150002_create_account_sessions::Migration),
            Box::new(m20261123_150003_create_invitations::Migration),
            Box::new(m20261123_150004_create_login_attempts::Migration),
            Box::new(m20261123_150005_create_stats_rollups::Migration),
            Box::new(m20261123_150006_create_stats_rollup_state::Migration),
            Box::new(m20261124_510001_create_panel_audit_log::Migration),
            Box::new(m20261124_510002_index_events_site_kind_ts::Migration),
            Box::new(m20261124_520001_create_rule_settings::Migration),
            Box::new(m20261124_600001_partition_events_by_day::Migration),
            Box::new(m20261125_700001_create_event_data_keys::Migration),
            Box::new(m20261125_710001_judge_shopify_carts::Migration),
            Box::new(m20261125_720001_drop_sessions_last_seen_index::Migration),
            Box::new(m20261126_810001_create_page_rollups::Migration),
            Box::new(m20261126_810002_create_page_rollup_cells::Migration),
            Box::new(m20261127_900001_threat_read_paths::Migration),
        ]
    }
}
