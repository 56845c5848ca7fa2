//! Standalone accounts: the people who log in to a site's panel (not Shopify merchants, who
//! arrive with an App Bridge id token). A user belongs to one site; the email is stored
//! normalised (trimmed, lowercase) and unique per site. `password_hash` is an argon2id PHC
//! string; `role` is `owner`, `analyst` or `viewer`.

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
                    .table(Users::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Users::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(big_integer(Users::SiteId))
                    .col(string_len(Users::Email, 254))
                    .col(string_len(Users::PasswordHash, 255))
                    .col(string_len(Users::Role, 16))
                    .col(big_integer(Users::CreatedAt))
                    .col(big_integer(Users::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Users::Table, Users::SiteId)
                            .to(Sites::Table, Sites::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_users_site_email")
                    .table(Users::Table)
                    .col(Users::SiteId)
                    .col(Users::Email)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Login looks a user up by email alone (the site follows from the user).
        manager
            .create_index(Index::create().name("idx_users_email").table(Users::Table).col(Users::Email).to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Users::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum Users {
    Table,
    Id,
    SiteId,
    Email,
    PasswordHash,
    Role,
    CreatedAt,
    UpdatedAt,
}
