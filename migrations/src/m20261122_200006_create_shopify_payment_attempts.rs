//! Payment attempts from `order_transactions/create` (Shopify sends it for transactions with a
//! status of success, failure or error): the card-testing signal. Card BIN, AVS and CVV result
//! codes, gateway, error code, amount — never the card holder's name or the masked number.
//! Ids are u64 as decimal strings; statuses and codes are kept verbatim.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ShopifyPaymentAttempts::Table)
                    .if_not_exists()
                    .col(big_integer(ShopifyPaymentAttempts::SiteId))
                    .col(string_len(ShopifyPaymentAttempts::TransactionId, 32))
                    .col(string_len_null(ShopifyPaymentAttempts::OrderId, 32))
                    .col(string_len_null(ShopifyPaymentAttempts::Kind, 32))
                    .col(string_len_null(ShopifyPaymentAttempts::Gateway, 64))
                    .col(string_len(ShopifyPaymentAttempts::Status, 32))
                    .col(string_len_null(ShopifyPaymentAttempts::ErrorCode, 64))
                    .col(string_len_null(ShopifyPaymentAttempts::CardBin, 16))
                    .col(string_len_null(ShopifyPaymentAttempts::AvsResultCode, 8))
                    .col(string_len_null(ShopifyPaymentAttempts::CvvResultCode, 8))
                    .col(string_len_null(ShopifyPaymentAttempts::Amount, 32))
                    .col(string_len_null(ShopifyPaymentAttempts::Currency, 8))
                    .col(boolean(ShopifyPaymentAttempts::Test).default(false))
                    .col(big_integer(ShopifyPaymentAttempts::ReceivedAt))
                    .primary_key(
                        Index::create().col(ShopifyPaymentAttempts::SiteId).col(ShopifyPaymentAttempts::TransactionId),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ShopifyPaymentAttempts::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum ShopifyPaymentAttempts {
    Table,
    SiteId,
    TransactionId,
    OrderId,
    Kind,
    Gateway,
    Status,
    ErrorCode,
    CardBin,
    AvsResultCode,
    CvvResultCode,
    Amount,
    Currency,
    Test,
    ReceivedAt,
}
