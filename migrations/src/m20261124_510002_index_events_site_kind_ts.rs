//! An index for the panel's Pages maps: clicks (`cl`) and scroll depths (`sc`) of one site in a
//! time range, with the path in the index so the page list is read from the index alone and a
//! page's rows are found without reading the other kinds (`idx_events_site_ts` would scan every
//! event of the range, most of them page views and pointer paths).

use sea_orm_migration::prelude::*;

use crate::m20261121_000005_create_events::Events;

const NAME: &str = "idx_events_site_kind_ts_path";

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(NAME)
                    .table(Events::Table)
                    .col(Events::SiteId)
                    .col(Events::Kind)
                    .col(Events::Ts)
                    .col(Events::Path)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name(NAME).table(Events::Table).to_owned()).await
    }
}
