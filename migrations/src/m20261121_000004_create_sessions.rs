//! Sessions: a visitor's activity until 30 minutes of idleness. Per-session enrichment (geo,
//! network, user agent) lives here rather than on every event, which keeps event rows narrow.

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
                    .table(Sessions::Table)
                    .if_not_exists()
                    // Random 63-bit id assigned by the ingest node that saw the first event.
                    .col(big_integer(Sessions::Id).primary_key())
                    .col(big_integer(Sessions::SiteId))
                    .col(big_integer(Sessions::VisitorId))
                    .col(big_integer(Sessions::StartedAt))
                    .col(big_integer(Sessions::LastSeenAt))
                    .col(integer(Sessions::Pageviews).default(0))
                    .col(integer(Sessions::Events).default(0))
                    .col(string_len(Sessions::EntryPath, 512))
                    .col(string_len(Sessions::ExitPath, 512))
                    .col(string_len_null(Sessions::ReferrerHost, 255))
                    .col(string_len_null(Sessions::IpPrefix, 64))
                    .col(string_len_null(Sessions::Country, 2))
                    .col(string_len_null(Sessions::Region, 64))
                    .col(string_len_null(Sessions::City, 128))
                    .col(big_integer_null(Sessions::Asn))
                    .col(string_len_null(Sessions::AsOrg, 255))
                    // Bit set of network flags: 1 Tor exit, 2 VPN, 4 hosting, 8 public proxy, 16 residential proxy.
                    .col(integer(Sessions::NetFlags).default(0))
                    .col(string_len(Sessions::Browser, 64))
                    .col(string_len_null(Sessions::BrowserVersion, 32))
                    .col(string_len(Sessions::Os, 64))
                    .col(string_len(Sessions::Device, 16))
                    .col(string_len_null(Sessions::BotFamily, 64))
                    .col(boolean(Sessions::Automated).default(false))
                    .col(boolean(Sessions::Consent).default(true))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Sessions::Table, Sessions::SiteId)
                            .to(Sites::Table, Sites::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sessions_site_started")
                    .table(Sessions::Table)
                    .col(Sessions::SiteId)
                    .col(Sessions::StartedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sessions_site_last_seen")
                    .table(Sessions::Table)
                    .col(Sessions::SiteId)
                    .col(Sessions::LastSeenAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Sessions::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum Sessions {
    Table,
    Id,
    SiteId,
    VisitorId,
    StartedAt,
    LastSeenAt,
    Pageviews,
    Events,
    EntryPath,
    ExitPath,
    ReferrerHost,
    IpPrefix,
    Country,
    Region,
    City,
    Asn,
    AsOrg,
    NetFlags,
    Browser,
    BrowserVersion,
    Os,
    Device,
    BotFamily,
    Automated,
    Consent,
}
