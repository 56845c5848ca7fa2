//! What the post-install job found and did for a shop (one row per tenant): the web pixel it
//! created or updated, whether the theme app embed is on, the shop's plan. The Setup page reads
//! it; the job rewrites it on every run, so a failed step is retried and its error is visible.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ShopifySetup::Table)
                    .if_not_exists()
                    .col(big_integer(ShopifySetup::SiteId).primary_key())
                    .col(string_len_null(ShopifySetup::PixelId, 255))
                    .col(string_len(ShopifySetup::PixelState, 16))
                    .col(string_len(ShopifySetup::EmbedState, 16))
                    .col(string_len_null(ShopifySetup::PlanName, 64))
                    .col(boolean_null(ShopifySetup::DevelopmentStore))
                    .col(text_null(ShopifySetup::LastError))
                    .col(integer(ShopifySetup::Runs).default(0))
                    .col(big_integer(ShopifySetup::CheckedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ShopifySetup::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum ShopifySetup {
    Table,
    SiteId,
    PixelId,
    PixelState,
    EmbedState,
    PlanName,
    DevelopmentStore,
    LastError,
    Runs,
    CheckedAt,
}
