//! Billing: the current subscription of each tenant (one row per site). `provider` is `shopify`
//! or `stripe`; `plan` and `status` are what the provider last said, and `provider_updated_at`
//! (the provider's own event time, ms) orders updates, so an older webhook delivered late never
//! overwrites a newer state. A tenant without a row is on the free plan.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Subscriptions::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Subscriptions::Id))
                    .col(big_integer_uniq(Subscriptions::SiteId))
                    .col(string_len(Subscriptions::Provider, 16))
                    .col(string_len_null(Subscriptions::ExternalId, 255))
                    .col(string_len_null(Subscriptions::CustomerId, 255))
                    .col(string_len(Subscriptions::Plan, 32))
                    .col(string_len(Subscriptions::Status, 32))
                    .col(boolean(Subscriptions::Test).default(false))
                    .col(big_integer_null(Subscriptions::TrialEndsAt))
                    .col(big_integer_null(Subscriptions::CurrentPeriodEnd))
                    .col(big_integer(Subscriptions::ProviderUpdatedAt))
                    .col(big_integer(Subscriptions::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Subscriptions::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum Subscriptions {
    Table,
    Id,
    SiteId,
    Provider,
    ExternalId,
    CustomerId,
    Plan,
    Status,
    Test,
    TrialEndsAt,
    CurrentPeriodEnd,
    ProviderUpdatedAt,
    UpdatedAt,
}
