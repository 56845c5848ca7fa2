//! The alert outbox: one row per (alert, channel), written in the transaction that records the
//! threats causing it. Workers claim due rows with a lease (`next_attempt_at` moves into the
//! future, `claim_token` names the holder); `status` is `pending`, `delivered` or `dead`
//! (retries exhausted or a permanent error; the panel lists these). `idempotency_key` is unique
//! and sent to the channel (`Idempotency-Key`, `Message-ID`).

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000001_create_sites::Sites;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AlertOutbox::Table)
                    .if_not_exists()
                    .col(big_pk_auto(AlertOutbox::Id))
                    .col(big_integer(AlertOutbox::SiteId))
                    .col(big_integer(AlertOutbox::ChannelId))
                    .col(string_len(AlertOutbox::AlertId, 64))
                    .col(string_len(AlertOutbox::Kind, 32))
                    .col(text(AlertOutbox::Payload))
                    .col(string_len_uniq(AlertOutbox::IdempotencyKey, 128))
                    .col(string_len(AlertOutbox::Status, 16))
                    .col(integer(AlertOutbox::Attempts).default(0))
                    .col(big_integer(AlertOutbox::NextAttemptAt))
                    .col(string_len_null(AlertOutbox::ClaimToken, 64))
                    .col(text_null(AlertOutbox::LastError))
                    .col(big_integer(AlertOutbox::CreatedAt))
                    .col(big_integer_null(AlertOutbox::DeliveredAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(AlertOutbox::Table, AlertOutbox::SiteId)
                            .to(Sites::Table, Sites::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_alert_outbox_due")
                    .table(AlertOutbox::Table)
                    .col(AlertOutbox::Status)
                    .col(AlertOutbox::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_alert_outbox_site")
                    .table(AlertOutbox::Table)
                    .col(AlertOutbox::SiteId)
                    .col(AlertOutbox::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(AlertOutbox::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum AlertOutbox {
    Table,
    Id,
    SiteId,
    ChannelId,
    AlertId,
    Kind,
    Payload,
    IdempotencyKey,
    Status,
    Attempts,
    NextAttemptAt,
    ClaimToken,
    LastError,
    CreatedAt,
    DeliveredAt,
}
