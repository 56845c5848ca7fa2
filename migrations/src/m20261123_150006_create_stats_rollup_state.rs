//! The rollup watermark: every hour before `rolled_until` (ms, hour-aligned) is in
//! `stats_rollups`. One row (`id` 1); nodes advance it with compare-and-set, so two nodes
//! never roll up the same hours twice.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(StatsRollupState::Table)
                    .if_not_exists()
                    .col(integer(StatsRollupState::Id).primary_key())
                    .col(big_integer(StatsRollupState::RolledUntil))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(StatsRollupState::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum StatsRollupState {
    Table,
    Id,
    RolledUntil,
}
