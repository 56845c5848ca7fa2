use sea_orm::entity::prelude::*;

use crate::domain::UnixMillis;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "shopify_audit_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub shop_domain: String,
    pub action: String,
    /// JSON with ids and counts only.
    pub detail: String,
    pub created_at: UnixMillis,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
