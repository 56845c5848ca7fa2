//! Failed logins, shared by every node (the login rate limit must hold behind a load
//! balancer). `key` is `email:<sha256>` or `net:<sha256 of the /24 or /48>`: hashed, so the
//! table holds neither emails nor addresses. Rows older than the window are deleted.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LoginAttempts::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(LoginAttempts::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(string_len(LoginAttempts::Key, 80))
                    .col(big_integer(LoginAttempts::At))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_login_attempts_key_at")
                    .table(LoginAttempts::Table)
                    .col(LoginAttempts::Key)
                    .col(LoginAttempts::At)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(LoginAttempts::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum LoginAttempts {
    Table,
    Id,
    Key,
    At,
}
