use sea_orm::entity::prelude::*;

use crate::domain::{SiteId, UnixMillis};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "shopify_setup")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub site_id: SiteId,
    pub pixel_id: Option<String>,
    /// `created`, `updated` or `failed`.
    pub pixel_state: String,
    /// `enabled`, `disabled`, `missing`, `no_main_theme` or `unknown` (the check failed).
    pub embed_state: String,
    pub plan_name: Option<String>,
    pub development_store: Option<bool>,
    pub last_error: Option<String>,
    pub runs: i32,
    pub checked_at: UnixMillis,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
