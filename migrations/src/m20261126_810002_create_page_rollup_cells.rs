//! Per-page map rollups for the panel's page map: one row per (site, grain, hour, path, kind,
//! cell). `kind` `c` is a click-grid cell (`cell` = row × 24 + column of the 24 × 48 grid in
//! `storage::panel_maps`; `n` clicks, `sum_width`/`sum_height` the page sizes they reported,
//! for the mean page size); `kind` `s` is a scroll-depth band (`cell` 0–10: the deepest 10 %
//! band a session reached on the page in that bucket; `n` sessions). `grain` as in
//! `page_rollups`. The grid's size is baked into these rows: changing it needs a rebuild
//! (`DELETE FROM stats_rollup_state WHERE id = 2`). Encrypted tenants' payloads are opened by
//! the rollup job, so these counts are as coarse as the panel's map and never hold a single
//! click.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PageRollupCells::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(PageRollupCells::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(big_integer(PageRollupCells::SiteId))
                    .col(string_len(PageRollupCells::Grain, 1))
                    .col(big_integer(PageRollupCells::Hour))
                    .col(string_len(PageRollupCells::Path, 512))
                    .col(string_len(PageRollupCells::Kind, 1))
                    .col(integer(PageRollupCells::Cell))
                    .col(big_integer(PageRollupCells::N))
                    .col(big_integer(PageRollupCells::SumWidth))
                    .col(big_integer(PageRollupCells::SumHeight))
                    .to_owned(),
            )
            .await?;
        // Covering: one page's map reads (site, grain, path, hour range) only.
        manager
            .create_index(
                Index::create()
                    .name("idx_page_rollup_cells_site_grain_path_hour")
                    .table(PageRollupCells::Table)
                    .col(PageRollupCells::SiteId)
                    .col(PageRollupCells::Grain)
                    .col(PageRollupCells::Path)
                    .col(PageRollupCells::Hour)
                    .col(PageRollupCells::Kind)
                    .col(PageRollupCells::Cell)
                    .col(PageRollupCells::N)
                    .col(PageRollupCells::SumWidth)
                    .col(PageRollupCells::SumHeight)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_page_rollup_cells_hour")
                    .table(PageRollupCells::Table)
                    .col(PageRollupCells::Hour)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(PageRollupCells::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum PageRollupCells {
    Table,
    Id,
    SiteId,
    Grain,
    Hour,
    Path,
    Kind,
    Cell,
    N,
    SumWidth,
    SumHeight,
}
