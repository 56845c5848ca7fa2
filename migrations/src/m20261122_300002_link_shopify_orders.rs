//! Orders learn where they came from: the tracked session whose add-to-cart or checkout carried
//! the order's cart or checkout token, and the buyer's network truncated to /24 or /48 (the only
//! form of `browser_ip` GhostTrack keeps). Detection keys the order's payment attempts on them;
//! the panel joins orders to sessions with them.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261122_200004_create_shopify_orders::ShopifyOrders;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        manager
            .alter_table(
                Table::alter().table(ShopifyOrders::Table).add_column(big_integer_null(Link::SessionId)).to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter().table(ShopifyOrders::Table).add_column(string_len_null(Link::IpPrefix, 64)).to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(ShopifyOrders::Table).drop_column(Link::IpPrefix).to_owned()).await?;
        manager.alter_table(Table::alter().table(ShopifyOrders::Table).drop_column(Link::SessionId).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Link {
    SessionId,
    IpPrefix,
}
