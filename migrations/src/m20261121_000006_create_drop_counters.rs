//! Dropped-input counters per site, reason and UTC day, so operators can see after a restart
//! what was rejected and why. Requests that never resolved to a site count under site 0.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DropCounters::Table)
                    .if_not_exists()
                    .col(big_integer(DropCounters::SiteId))
                    .col(integer(DropCounters::Day))
                    .col(string_len(DropCounters::Reason, 32))
                    .col(big_integer(DropCounters::Count).default(0))
                    .primary_key(
                        Index::create().col(DropCounters::SiteId).col(DropCounters::Day).col(DropCounters::Reason),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(DropCounters::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum DropCounters {
    Table,
    SiteId,
    Day,
    Reason,
    Count,
}
