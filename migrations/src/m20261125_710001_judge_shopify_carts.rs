//! Untracked carts are judged late: a cart, checkout or order that no tracked session produced is
//! only called untracked after a grace period (the tracker's batch may arrive after Shopify's
//! webhook). `judged_at` marks rows the judge has decided (so one node judges each row once);
//! `ip_prefix` is the buyer's network of an order (`browser_ip` truncated, the only form kept),
//! so untracked orders can be counted per network.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261122_200005_create_shopify_carts::ShopifyCarts;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        manager
            .alter_table(
                Table::alter().table(ShopifyCarts::Table).add_column(big_integer_null(Judge::JudgedAt)).to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter().table(ShopifyCarts::Table).add_column(string_len_null(Judge::IpPrefix, 64)).to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(ShopifyCarts::Table).drop_column(Judge::IpPrefix).to_owned()).await?;
        manager.alter_table(Table::alter().table(ShopifyCarts::Table).drop_column(Judge::JudgedAt).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Judge {
    JudgedAt,
    IpPrefix,
}
