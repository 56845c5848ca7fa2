//! Carts and checkouts reported by Shopify webhooks (`carts/*`, `checkouts/*`), per tenant.
//! `tracked` says whether a session tracked by GhostTrack produced the cart (an add-to-cart event
//! carrying its token): a cart no tracked session produced — created by a script calling the
//! Ajax/Storefront API directly — is itself a signal. Tokens only; no customer data.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ShopifyCarts::Table)
                    .if_not_exists()
                    .col(big_integer(ShopifyCarts::SiteId))
                    .col(string_len(ShopifyCarts::Kind, 16))
                    .col(string_len(ShopifyCarts::Token, 255))
                    .col(string_len_null(ShopifyCarts::CartToken, 255))
                    .col(boolean(ShopifyCarts::Tracked).default(false))
                    .col(big_integer(ShopifyCarts::FirstSeenAt))
                    .col(big_integer(ShopifyCarts::LastSeenAt))
                    .primary_key(
                        Index::create().col(ShopifyCarts::SiteId).col(ShopifyCarts::Kind).col(ShopifyCarts::Token),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ShopifyCarts::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum ShopifyCarts {
    Table,
    SiteId,
    Kind,
    Token,
    CartToken,
    Tracked,
    FirstSeenAt,
    LastSeenAt,
}
