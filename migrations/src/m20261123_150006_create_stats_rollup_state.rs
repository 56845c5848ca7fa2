//! The rollup watermarks: every hour before `rolled_until` (ms, hour-aligned) is final in
//! `stats_rollups`; hours from there to `provisional_until` are rolled up provisionally (and
//! redone until final). One row (`id` 1); nodes advance `rolled_until` with compare-and-set and
//! take the row's lock first in every rollup transaction, so two nodes never write the same
//! hours at once.

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
                    .col(big_integer(StatsRollupState::ProvisionalUntil).default(0))
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
    ProvisionalUntil,
}
