use sea_orm::entity::prelude::*;

use crate::domain::UnixMillis;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_inbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub webhook_id: String,
    pub shop_domain: String,
    pub topic: String,
    pub api_version: String,
    pub triggered_at: Option<String>,
    pub event_id: Option<String>,
    pub body: String,
    pub received_at: UnixMillis,
    /// `pending`, `done` or `parked`.
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: UnixMillis,
    pub last_error: Option<String>,
    pub processed_at: Option<UnixMillis>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
