use sea_orm::entity::prelude::*;

use crate::domain::{SiteId, UnixMillis};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "panel_audit_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub site_id: SiteId,
    /// `user:<id>` or `shopify-user:<id>`: ids only.
    pub actor: String,
    pub action: String,
    /// JSON with ids and counts only.
    pub detail: String,
    pub created_at: UnixMillis,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
