//! Server-side login sessions of standalone users. The cookie holds a random 256-bit id; only
//! its SHA-256 (`token_hash`, hex) is stored, so a database leak yields no usable cookie.
//! A session ends at `expires_at` (absolute), after `idle` inactivity past `last_seen_at`, or
//! when `revoked_at` is set (logout, user removed).

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000001_create_sites::Sites;
use crate::m20261123_150001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AccountSessions::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(AccountSessions::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(string_len_uniq(AccountSessions::TokenHash, 64))
                    .col(big_integer(AccountSessions::UserId))
                    .col(big_integer(AccountSessions::SiteId))
                    .col(big_integer(AccountSessions::CreatedAt))
                    .col(big_integer(AccountSessions::LastSeenAt))
                    .col(big_integer(AccountSessions::ExpiresAt))
                    .col(big_integer_null(AccountSessions::RevokedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(AccountSessions::Table, AccountSessions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(AccountSessions::Table, AccountSessions::SiteId)
                            .to(Sites::Table, Sites::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_account_sessions_user")
                    .table(AccountSessions::Table)
                    .col(AccountSessions::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(AccountSessions::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum AccountSessions {
    Table,
    Id,
    TokenHash,
    UserId,
    SiteId,
    CreatedAt,
    LastSeenAt,
    ExpiresAt,
    RevokedAt,
}
