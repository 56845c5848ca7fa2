//! Alert policy and alert engine state per tenant (site): one row, so the recorder and the
//! periodic alert job serialise on it (they update the row first in their transaction). A
//! missing row means the default policy. Both columns are JSON text.

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
                    .table(AlertPolicies::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(AlertPolicies::SiteId).big_integer().not_null().primary_key())
                    .col(text_null(AlertPolicies::Policy))
                    .col(text(AlertPolicies::State))
                    .col(big_integer(AlertPolicies::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(AlertPolicies::Table, AlertPolicies::SiteId)
                            .to(Sites::Table, Sites::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(AlertPolicies::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum AlertPolicies {
    Table,
    SiteId,
    Policy,
    State,
    UpdatedAt,
}
