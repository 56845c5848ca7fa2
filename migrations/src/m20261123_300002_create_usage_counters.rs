//! Billing: sessions recorded per tenant and calendar month (UTC), written by the quota meter
//! from the sessions table. `month` is `YYYYMM`. `over_since` is set once, by the first meter run
//! (on any node) that found the tenant over quota: every node samples sessions starting after it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UsageCounters::Table)
                    .if_not_exists()
                    .col(big_integer(UsageCounters::SiteId))
                    .col(integer(UsageCounters::Month))
                    .col(big_integer(UsageCounters::Sessions))
                    .col(big_integer(UsageCounters::UpdatedAt))
                    .col(big_integer_null(UsageCounters::OverSince))
                    .primary_key(Index::create().col(UsageCounters::SiteId).col(UsageCounters::Month))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(UsageCounters::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum UsageCounters {
    Table,
    SiteId,
    Month,
    Sessions,
    UpdatedAt,
    OverSince,
}
