//! PostgreSQL only: events no longer reference `sites` with a foreign key.
//!
//! On PostgreSQL every inserted row's foreign-key check takes a `FOR KEY SHARE` lock on its
//! site's row. All writers insert events of the same few sites, so they share those row locks,
//! which PostgreSQL tracks as multixacts: measured, 500 events took 7 ms to insert with the key
//! and 1.8 ms without. Events are append-only and always written with a site id the ingest
//! gatekeeper has just resolved, so the key guarded nothing the code does not already guarantee;
//! a tenant purge deletes events explicitly, table by table, on both backends.
//!
//! SQLite keeps the key: its checks take no row locks and cost an index probe, and dropping a
//! key there means rebuilding the table.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::m20261121_000001_create_sites::Sites;
use crate::m20261121_000005_create_events::Events;

/// The name PostgreSQL gave the key created in `create_events` (`<table>_<column>_fkey`).
const FK: &str = "events_site_id_fkey";

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager.drop_foreign_key(ForeignKey::drop().name(FK).table(Events::Table).to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager
            .create_foreign_key(
                ForeignKey::create()
                    .name(FK)
                    .from(Events::Table, Events::SiteId)
                    .to(Sites::Table, Sites::Id)
                    .on_delete(ForeignKeyAction::Cascade)
                    .to_owned(),
            )
            .await
    }
}
