//! Where a tenant's alerts go: email, Slack, Discord or a signed webhook. The destination
//! (address, webhook URL, signing secret) is sealed with the server key (`sealed`, AES-GCM, key
//! id in `key_id`); `display` is a redacted form safe to show and log.

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
                    .table(AlertChannels::Table)
                    .if_not_exists()
                    .col(big_pk_auto(AlertChannels::Id))
                    .col(big_integer(AlertChannels::SiteId))
                    .col(string_len(AlertChannels::Kind, 16))
                    .col(string_len(AlertChannels::Name, 100))
                    .col(string_len(AlertChannels::Display, 255))
                    .col(string_len(AlertChannels::KeyId, 64))
                    .col(text(AlertChannels::Sealed))
                    .col(boolean(AlertChannels::Enabled).default(true))
                    .col(big_integer(AlertChannels::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(AlertChannels::Table, AlertChannels::SiteId)
                            .to(Sites::Table, Sites::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_alert_channels_site")
                    .table(AlertChannels::Table)
                    .col(AlertChannels::SiteId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(AlertChannels::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum AlertChannels {
    Table,
    Id,
    SiteId,
    Kind,
    Name,
    Display,
    KeyId,
    Sealed,
    Enabled,
    CreatedAt,
}
