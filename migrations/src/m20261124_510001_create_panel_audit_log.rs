//! Audit log of what panel users did to a tenant's data and settings (privacy mode changes,
//! visitor exports and deletions). Rows name the site, the actor (`user:<id>` or
//! `shopify-user:<id>`), the action and ids and counts only — never a name, an email or an IP.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PanelAuditLog::Table)
                    .if_not_exists()
                    .col(big_pk_auto(PanelAuditLog::Id))
                    .col(big_integer(PanelAuditLog::SiteId))
                    .col(string_len(PanelAuditLog::Actor, 64))
                    .col(string_len(PanelAuditLog::Action, 64))
                    .col(text(PanelAuditLog::Detail))
                    .col(big_integer(PanelAuditLog::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_panel_audit_log_site_created")
                    .table(PanelAuditLog::Table)
                    .col(PanelAuditLog::SiteId)
                    .col(PanelAuditLog::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(PanelAuditLog::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum PanelAuditLog {
    Table,
    Id,
    SiteId,
    Actor,
    Action,
    Detail,
    CreatedAt,
}
