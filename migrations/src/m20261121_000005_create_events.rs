//! Raw events. Hot fields are typed columns; everything type-specific (coordinates, probes,
//! pointer paths) is a JSON object in `props`. The (site, ts) index serves every per-tenant
//! time-range query; (site, session) serves session timelines.

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
                    .table(Events::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Events::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(big_integer(Events::SiteId))
                    .col(big_integer(Events::SessionId))
                    .col(big_integer(Events::VisitorId))
                    .col(big_integer(Events::Ts))
                    .col(big_integer(Events::ReceivedAt))
                    .col(string_len(Events::Kind, 8))
                    .col(string_len(Events::Path, 512))
                    .col(text_null(Events::Props))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Events::Table, Events::SiteId)
                            .to(Sites::Table, Sites::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_events_site_ts")
                    .table(Events::Table)
                    .col(Events::SiteId)
                    .col(Events::Ts)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_events_site_session")
                    .table(Events::Table)
                    .col(Events::SiteId)
                    .col(Events::SessionId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Events::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum Events {
    Table,
    Id,
    SiteId,
    SessionId,
    VisitorId,
    Ts,
    ReceivedAt,
    Kind,
    Path,
    Props,
}
