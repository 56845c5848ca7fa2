//! Detection: each tenant's rule settings from the panel's Rules page (enable, shadow,
//! threshold and window per rule id), one JSON map per site. The running engine applies them
//! at start-up and when they change (every node re-reads rows newer than its last read).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RuleSettings::Table)
                    .if_not_exists()
                    .col(big_integer(RuleSettings::SiteId).primary_key())
                    .col(text(RuleSettings::Rules))
                    .col(big_integer(RuleSettings::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_rule_settings_updated")
                    .table(RuleSettings::Table)
                    .col(RuleSettings::UpdatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(RuleSettings::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum RuleSettings {
    Table,
    SiteId,
    Rules,
    UpdatedAt,
}
