use sea_orm::entity::prelude::*;

use crate::domain::{SiteId, UnixMillis};

/// A notification owed to a merchant (see `migrations/…_create_billing_notices`).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "billing_notices")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub site_id: SiteId,
    /// `YYYYMM` (UTC).
    pub month: i32,
    /// `quota_exceeded`.
    pub kind: String,
    /// JSON: what the message says (usage, limit, plan).
    pub detail: String,
    pub created_at: UnixMillis,
    pub sent_at: Option<UnixMillis>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
