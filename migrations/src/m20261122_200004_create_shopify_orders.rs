//! Orders reported by Shopify webhooks (`orders/create`, `orders/paid`), kept at protected
//! customer data level 1: ids, tokens, money and statuses — no name, email, phone, address or
//! raw IP. Shopify ids are u64 and can exceed i64/2^53, so they are stored as decimal strings;
//! money stays the decimal string Shopify sends; unknown enum values are kept verbatim.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ShopifyOrders::Table)
                    .if_not_exists()
                    .col(big_integer(ShopifyOrders::SiteId))
                    .col(string_len(ShopifyOrders::OrderId, 32))
                    .col(string_len_null(ShopifyOrders::CustomerId, 32))
                    .col(string_len_null(ShopifyOrders::CheckoutToken, 255))
                    .col(string_len_null(ShopifyOrders::CartToken, 255))
                    .col(string_len_null(ShopifyOrders::TotalPrice, 32))
                    .col(string_len_null(ShopifyOrders::Currency, 8))
                    .col(string_len_null(ShopifyOrders::FinancialStatus, 64))
                    .col(boolean(ShopifyOrders::Paid).default(false))
                    .col(string_len_null(ShopifyOrders::ShopifyUpdatedAt, 64))
                    .col(big_integer(ShopifyOrders::ReceivedAt))
                    .primary_key(Index::create().col(ShopifyOrders::SiteId).col(ShopifyOrders::OrderId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_shopify_orders_customer")
                    .table(ShopifyOrders::Table)
                    .col(ShopifyOrders::SiteId)
                    .col(ShopifyOrders::CustomerId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ShopifyOrders::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum ShopifyOrders {
    Table,
    SiteId,
    OrderId,
    CustomerId,
    CheckoutToken,
    CartToken,
    TotalPrice,
    Currency,
    FinancialStatus,
    Paid,
    ShopifyUpdatedAt,
    ReceivedAt,
}
