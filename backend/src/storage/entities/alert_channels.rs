use sea_orm::entity::prelude::*;

use crate::domain::{AlertChannelId, SiteId, UnixMillis};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "alert_channels")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: AlertChannelId,
    pub site_id: SiteId,
    /// `email`, `slack`, `discord` or `webhook`.
    pub kind: String,
    pub name: String,
    /// Redacted destination, safe to show and log.
    pub display: String,
    pub key_id: String,
    /// The sealed destination (`alerts::channels::Destination` as JSON).
    pub sealed: String,
    pub enabled: bool,
    pub created_at: UnixMillis,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
