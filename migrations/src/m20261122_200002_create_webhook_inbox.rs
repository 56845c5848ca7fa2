//! Shopify webhook inbox: every verified delivery is stored here before the 200, then a worker
//! processes it. `webhook_id` is unique: a duplicate delivery (Shopify retries, or two
//! receivers racing) inserts nothing. Failed rows are retried with backoff and finally parked
//! (`status = 'parked'`) with the error kept in `last_error`.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhookInbox::Table)
                    .if_not_exists()
                    .col(big_pk_auto(WebhookInbox::Id))
                    .col(string_len_uniq(WebhookInbox::WebhookId, 255))
                    .col(string_len(WebhookInbox::ShopDomain, 255))
                    .col(string_len(WebhookInbox::Topic, 128))
                    .col(string_len(WebhookInbox::ApiVersion, 32))
                    .col(string_len_null(WebhookInbox::TriggeredAt, 64))
                    .col(string_len_null(WebhookInbox::EventId, 255))
                    .col(text(WebhookInbox::Body))
                    .col(big_integer(WebhookInbox::ReceivedAt))
                    .col(string_len(WebhookInbox::Status, 16))
                    .col(integer(WebhookInbox::Attempts).default(0))
                    .col(big_integer(WebhookInbox::NextAttemptAt))
                    .col(text_null(WebhookInbox::LastError))
                    .col(big_integer_null(WebhookInbox::ProcessedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_inbox_due")
                    .table(WebhookInbox::Table)
                    .col(WebhookInbox::Status)
                    .col(WebhookInbox::NextAttemptAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(WebhookInbox::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum WebhookInbox {
    Table,
    Id,
    WebhookId,
    ShopDomain,
    Topic,
    ApiVersion,
    TriggeredAt,
    EventId,
    Body,
    ReceivedAt,
    Status,
    Attempts,
    NextAttemptAt,
    LastError,
    ProcessedAt,
}
