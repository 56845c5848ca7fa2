//! Visitors as seen on one day: only the keyed hash, never the IP or user agent it came from.
//! Written when a visitor starts a session (not on every event), which keeps commits small.

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
                    .table(Visitors::Table)
                    .if_not_exists()
                    .col(big_integer(Visitors::SiteId))
                    .col(big_integer(Visitors::VisitorId))
                    .col(big_integer(Visitors::FirstSeenAt))
                    .col(big_integer(Visitors::LastSeenAt))
                    .col(integer(Visitors::Sessions).default(0))
                    .primary_key(Index::create().col(Visitors::SiteId).col(Visitors::VisitorId))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Visitors::Table, Visitors::SiteId)
                            .to(Sites::Table, Sites::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_visitors_site_first_seen")
                    .table(Visitors::Table)
                    .col(Visitors::SiteId)
                    .col(Visitors::FirstSeenAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Visitors::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum Visitors {
    Table,
    SiteId,
    VisitorId,
    FirstSeenAt,
    LastSeenAt,
    Sessions,
}
