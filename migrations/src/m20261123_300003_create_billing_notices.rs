//! Billing: notifications owed to a merchant (today: `quota_exceeded`), at most one per tenant,
//! month and kind (the unique index makes the insert idempotent across nodes). The alerts
//! worker sends pending rows and sets `sent_at`.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(BillingNotices::Table)
                    .if_not_exists()
                    .col(big_pk_auto(BillingNotices::Id))
                    .col(big_integer(BillingNotices::SiteId))
                    .col(integer(BillingNotices::Month))
                    .col(string_len(BillingNotices::Kind, 32))
                    .col(text(BillingNotices::Detail))
                    .col(big_integer(BillingNotices::CreatedAt))
                    .col(big_integer_null(BillingNotices::SentAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_billing_notices_once")
                    .table(BillingNotices::Table)
                    .col(BillingNotices::SiteId)
                    .col(BillingNotices::Month)
                    .col(BillingNotices::Kind)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(BillingNotices::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum BillingNotices {
    Table,
    Id,
    SiteId,
    Month,
    Kind,
    Detail,
    CreatedAt,
    SentAt,
}
