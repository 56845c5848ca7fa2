//! Billing: sessions recorded per tenant and calendar month (UTC), written by the quota meter
//! from the sessions table. `month` is `YYYYMM`.

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
}
