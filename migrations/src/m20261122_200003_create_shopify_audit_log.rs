//! Audit log of Shopify lifecycle and compliance actions (install, uninstall, data request,
//! redactions). Rows name the shop and the action, and carry ids and counts only — never the
//! customer's email, phone or name.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ShopifyAuditLog::Table)
                    .if_not_exists()
                    .col(big_pk_auto(ShopifyAuditLog::Id))
                    .col(string_len(ShopifyAuditLog::ShopDomain, 255))
                    .col(string_len(ShopifyAuditLog::Action, 64))
                    .col(text(ShopifyAuditLog::Detail))
                    .col(big_integer(ShopifyAuditLog::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ShopifyAuditLog::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum ShopifyAuditLog {
    Table,
    Id,
    ShopDomain,
    Action,
    Detail,
    CreatedAt,
}
