//! Shopify shops. A shop is a tenant: each row owns one `sites` row (kind `shopify`) so the
//! collect, stats and detection paths work per shop unchanged. Tokens are stored encrypted
//! (AES-256-GCM) with the id of the key that sealed them; `token_version` increases on every
//! token write so concurrent refreshes can be detected (compare-and-set).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Shops::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Shops::Id))
                    .col(big_integer_uniq(Shops::SiteId))
                    .col(string_len_uniq(Shops::Domain, 255))
                    .col(string_len(Shops::Status, 16))
                    .col(text_null(Shops::Scope))
                    .col(string_len_null(Shops::TokenKeyId, 32))
                    .col(text_null(Shops::AccessToken))
                    .col(big_integer_null(Shops::AccessExpiresAt))
                    .col(text_null(Shops::RefreshToken))
                    .col(big_integer_null(Shops::RefreshExpiresAt))
                    .col(big_integer(Shops::TokenVersion).default(0))
                    .col(big_integer(Shops::InstalledAt))
                    .col(big_integer_null(Shops::UninstalledAt))
                    .col(big_integer(Shops::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_shops_site")
                            .from(Shops::Table, Shops::SiteId)
                            .to(Sites::Table, Sites::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Shops::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum Shops {
    Table,
    Id,
    SiteId,
    Domain,
    Status,
    Scope,
    TokenKeyId,
    AccessToken,
    AccessExpiresAt,
    RefreshToken,
    RefreshExpiresAt,
    TokenVersion,
    InstalledAt,
    UninstalledAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Sites {
    Table,
    Id,
}
