//! Event payload encryption at rest: each tenant's data keys, stored only wrapped (AES-256-GCM)
//! by the master key derived from `GHOSTTRACK_SECRET_KEY`. A tenant encrypts new events while it
//! has a key that is not retired; retired keys stay for reading older rows.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EventDataKeys::Table)
                    .if_not_exists()
                    .col(big_integer(EventDataKeys::Id).auto_increment().primary_key())
                    .col(big_integer(EventDataKeys::SiteId))
                    .col(string_len(EventDataKeys::KeyId, 32))
                    .col(text(EventDataKeys::WrappedKey))
                    .col(string_len(EventDataKeys::MasterKeyId, 32))
                    .col(big_integer(EventDataKeys::CreatedAt))
                    .col(big_integer_null(EventDataKeys::RetiredAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_event_data_keys_site_key")
                    .table(EventDataKeys::Table)
                    .col(EventDataKeys::SiteId)
                    .col(EventDataKeys::KeyId)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(EventDataKeys::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum EventDataKeys {
    Table,
    Id,
    SiteId,
    KeyId,
    WrappedKey,
    MasterKeyId,
    CreatedAt,
    RetiredAt,
}
