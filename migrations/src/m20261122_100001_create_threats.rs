//! Threat records: every change of a subject's detection verdict (decision, score, reasons and
//! evidence as JSON), per tenant. `at` is the event time of the change (what replays reproduce),
//! `created_at` when this node recorded it. (site, at) serves the recent feed and the stats
//! window; (site, subject, at) serves "the verdict of session N".

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
                    .table(Threats::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Threats::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(big_integer(Threats::SiteId))
                    .col(string_len(Threats::Subject, 160))
                    .col(string_len(Threats::Decision, 16))
                    .col(small_integer(Threats::Score))
                    .col(text(Threats::Reasons))
                    .col(text(Threats::Evidence))
                    .col(big_integer(Threats::TtlSecs))
                    .col(big_integer(Threats::At))
                    .col(big_integer(Threats::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Threats::Table, Threats::SiteId)
                            .to(Sites::Table, Sites::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_threats_site_at")
                    .table(Threats::Table)
                    .col(Threats::SiteId)
                    .col(Threats::At)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_threats_site_subject_at")
                    .table(Threats::Table)
                    .col(Threats::SiteId)
                    .col(Threats::Subject)
                    .col(Threats::At)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Threats::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum Threats {
    Table,
    Id,
    SiteId,
    Subject,
    Decision,
    Score,
    Reasons,
    Evidence,
    TtlSecs,
    At,
    CreatedAt,
}
