use sea_orm::entity::prelude::*;

use crate::domain::{AlertChannelId, SiteId, UnixMillis};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "alert_outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub site_id: SiteId,
    pub channel_id: AlertChannelId,
    pub alert_id: String,
    pub kind: String,
    /// `alerts::Alert` as JSON.
    pub payload: String,
    #[sea_orm(unique)]
    pub idempotency_key: String,
    /// `pending`, `delivered` or `dead`.
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: UnixMillis,
    pub claim_token: Option<String>,
    pub last_error: Option<String>,
    pub created_at: UnixMillis,
    pub delivered_at: Option<UnixMillis>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
