//! Per-page rollups for the panel's Pages list: one row per (site, grain, hour, path) with the
//! clicks on the page and the sessions that reported a scroll depth on it in that bucket.
//! `grain` is `h` (`hour` is the hour's start) or `d` (a whole UTC day, the sum of its hourly
//! rows). A session that scrolled the page in two hours counts in both (see
//! `storage::panel_maps`). Built by the rollup job (`storage::rollups`, watermark row 2 of
//! `stats_rollup_state`), never by the writers.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PageRollups::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(PageRollups::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(big_integer(PageRollups::SiteId))
                    .col(string_len(PageRollups::Grain, 1))
                    .col(big_integer(PageRollups::Hour))
                    .col(string_len(PageRollups::Path, 512))
                    .col(big_integer(PageRollups::Clicks))
                    .col(big_integer(PageRollups::ScrollSessions))
                    .to_owned(),
            )
            .await?;
        // Covering: the Pages list reads (site, grain, hour range) and sums per path without
        // touching the table rows.
        manager
            .create_index(
                Index::create()
                    .name("idx_page_rollups_site_grain_hour")
                    .table(PageRollups::Table)
                    .col(PageRollups::SiteId)
                    .col(PageRollups::Grain)
                    .col(PageRollups::Hour)
                    .col(PageRollups::Path)
                    .col(PageRollups::Clicks)
                    .col(PageRollups::ScrollSessions)
                    .to_owned(),
            )
            .await?;
        // The job replaces whole hours across sites.
        manager
            .create_index(
                Index::create()
                    .name("idx_page_rollups_hour")
                    .table(PageRollups::Table)
                    .col(PageRollups::Hour)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(PageRollups::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum PageRollups {
    Table,
    Id,
    SiteId,
    Grain,
    Hour,
    Path,
    Clicks,
    ScrollSessions,
}
