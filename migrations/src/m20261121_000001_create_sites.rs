//! Tenants. A site is one tracked property: a standalone website or (later) a Shopify shop.
//! The public key is embedded in pages; the API token is only ever stored as a SHA-256 hash.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Sites::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Sites::Id))
                    .col(string_len_uniq(Sites::PublicKey, 64))
                    .col(string_len(Sites::Domain, 255))
                    .col(string_len(Sites::Kind, 16))
                    .col(string_len_uniq(Sites::ApiTokenHash, 64))
                    .col(string_len(Sites::PrivacyMode, 16).default("balanced"))
                    .col(big_integer(Sites::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Sites::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum Sites {
    Table,
    Id,
    PublicKey,
    Domain,
    Kind,
    ApiTokenHash,
    PrivacyMode,
    CreatedAt,
}
