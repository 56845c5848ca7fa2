//! Per-site rollups of the dashboard aggregates, so a 30-day dashboard reads ~30 daily rows
//! per dimension value instead of millions of events. `grain` is `h` (`hour` is the hour's
//! start) or `d` (a whole UTC day, the sum of its 24 hourly rows; `hour` is the day's start).
//! One row per (site, grain, hour, dimension, value):
//! `dim` is `total` (all sessions), `pv` (all pageviews), `page` (pageviews per path) or a
//! session attribute (`referrer`, `country`, `browser`, `os`, `device`). Counters are sums;
//! `visitors` is the distinct visitors of that hour. Built off the ingest path by a
//! background job (`storage::rollups`), never by the writers.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(StatsRollups::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(StatsRollups::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(big_integer(StatsRollups::SiteId))
                    .col(string_len(StatsRollups::Grain, 1))
                    .col(big_integer(StatsRollups::Hour))
                    .col(string_len(StatsRollups::Dim, 16))
                    .col(string_len_null(StatsRollups::Value, 512))
                    .col(big_integer(StatsRollups::Visitors))
                    .col(big_integer(StatsRollups::Sessions))
                    .col(big_integer(StatsRollups::Pageviews))
                    .col(big_integer(StatsRollups::Bounces))
                    .col(big_integer(StatsRollups::DurationMs))
                    .col(big_integer(StatsRollups::Automated))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_stats_rollups_site_grain_dim_hour")
                    .table(StatsRollups::Table)
                    .col(StatsRollups::SiteId)
                    .col(StatsRollups::Grain)
                    .col(StatsRollups::Dim)
                    .col(StatsRollups::Hour)
                    // Covering: dashboard reads never touch the table rows.
                    .col(StatsRollups::Value)
                    .col(StatsRollups::Visitors)
                    .col(StatsRollups::Sessions)
                    .col(StatsRollups::Pageviews)
                    .col(StatsRollups::Bounces)
                    .col(StatsRollups::DurationMs)
                    .col(StatsRollups::Automated)
                    .to_owned(),
            )
            .await?;
        // The job replaces whole hours across sites.
        manager
            .create_index(
                Index::create()
                    .name("idx_stats_rollups_hour")
                    .table(StatsRollups::Table)
                    .col(StatsRollups::Hour)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(StatsRollups::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum StatsRollups {
    Table,
    Id,
    SiteId,
    Grain,
    Hour,
    Dim,
    Value,
    Visitors,
    Sessions,
    Pageviews,
    Bounces,
    DurationMs,
    Automated,
}
