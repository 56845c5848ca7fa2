//! Drops `idx_sessions_site_last_seen`: no query reads sessions by `(site_id, last_seen_at)`,
//! while every event moved its session's entry in it. `last_seen_at` is the column the ingest
//! writer changes most, so without an index on it (nor on any other column the writer
//! updates) PostgreSQL can update a session in place (a HOT update: no new index entries), and
//! SQLite rewrites one table row instead of a row plus two index entries. On PostgreSQL the
//! table also leaves a fifth of each page free (`fillfactor = 80`) so those updates find room
//! on the row's own page. Re-opening sessions after a restart reads them per site by
//! `started_at` instead (`storage::events::open_sessions_since`).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::m20261121_000004_create_sessions::Sessions;

const NAME: &str = "idx_sessions_site_last_seen";

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name(NAME).table(Sessions::Table).to_owned()).await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            manager.get_connection().execute_unprepared(r#"ALTER TABLE "sessions" SET (fillfactor = 80)"#).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            manager.get_connection().execute_unprepared(r#"ALTER TABLE "sessions" RESET (fillfactor)"#).await?;
        }
        manager
            .create_index(
                Index::create()
                    .name(NAME)
                    .table(Sessions::Table)
                    .col(Sessions::SiteId)
                    .col(Sessions::LastSeenAt)
                    .to_owned(),
            )
            .await
    }
}
