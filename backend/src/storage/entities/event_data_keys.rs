use sea_orm::entity::prelude::*;

use crate::domain::{SiteId, UnixMillis};

/// A tenant's data key for event payloads, wrapped by the master key (`keys::master`).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "event_data_keys")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub site_id: SiteId,
    /// Public id written into every envelope sealed with this key (`dk-…`).
    pub key_id: String,
    /// base64(nonce ‖ AES-256-GCM(hex key) ‖ tag) under the master key `master_key_id`.
    pub wrapped_key: String,
    pub master_key_id: String,
    pub created_at: UnixMillis,
    /// Set when a newer key took over new writes (or encryption was turned off); still read.
    pub retired_at: Option<UnixMillis>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
