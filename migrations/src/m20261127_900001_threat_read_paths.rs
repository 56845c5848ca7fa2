//! Read paths for the panel's threat numbers, none of which changes what the writers store.
//!
//! - `idx_threats_site_expires` on `(site_id, at + ttl_secs * 1000)`: the Overview's open
//!   threats are the subjects whose newest verdict is still in force, so the candidates are the
//!   verdicts that have not expired yet, a few minutes' worth, instead of a week of rows.
//! - `idx_threats_site_card_at`, a partial index of the verdicts whose reasons name a card-testing
//!   rule ([`CARD_VERDICT_PREDICATE`]): the Overview's failed-payment bursts count them over the
//!   range without reading every verdict's reasons. A query uses it only when its `WHERE` holds
//!   this exact predicate as a literal (SQLite and PostgreSQL both match the text, not a bound
//!   parameter).
//! - `ANALYZE threats`, so the planner weighs the new indexes against the old ones.
//! - The stats rollups gain flagged sessions per country (Geography), so their family is rebuilt
//!   from scratch by the rollup job (`DELETE FROM stats_rollup_state WHERE id = 1`); until it has
//!   caught up, the readers use raw rows.

use sea_orm_migration::prelude::*;

/// The verdicts that name a card-testing rule, as the panel's query writes it.
pub const CARD_VERDICT_PREDICATE: &str = r#""reasons" LIKE '%"rule":"card/%'"#;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(
            r#"CREATE INDEX IF NOT EXISTS "idx_threats_site_expires" ON "threats" ("site_id", ("at" + "ttl_secs" * 1000))"#,
        )
        .await?;
        db.execute_unprepared(&format!(
            r#"CREATE INDEX IF NOT EXISTS "idx_threats_site_card_at" ON "threats" ("site_id", "at") WHERE {CARD_VERDICT_PREDICATE}"#
        ))
        .await?;
        // Statistics for the new indexes alongside the old ones: SQLite's planner, seeing
        // statistics for some of a table's indexes and none for a new one, takes the new one as
        // selective and picked the expiry index for "newest verdicts of a site" (a sort of every
        // verdict instead of a walk of `idx_threats_site_at`). One pass over one table.
        db.execute_unprepared(r#"ANALYZE "threats""#).await?;
        db.execute_unprepared(r#"DELETE FROM "stats_rollup_state" WHERE "id" = 1"#).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(r#"DROP INDEX IF EXISTS "idx_threats_site_card_at""#).await?;
        db.execute_unprepared(r#"DROP INDEX IF EXISTS "idx_threats_site_expires""#).await?;
        Ok(())
    }
}
