//! One random salt per UTC day for cookieless visitor ids. Rows older than 48 h are deleted,
//! after which yesterday's visitor ids can no longer be recomputed from (IP, UA).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DailySalts::Table)
                    .if_not_exists()
                    // Days since the Unix epoch (UTC).
                    .col(integer(DailySalts::Day).primary_key())
                    .col(binary_len(DailySalts::Salt, 32))
                    .col(big_integer(DailySalts::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(DailySalts::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum DailySalts {
    Table,
    Day,
    Salt,
    CreatedAt,
}
