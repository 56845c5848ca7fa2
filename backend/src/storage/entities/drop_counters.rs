use sea_orm::entity::prelude::*;

use crate::domain::SiteId;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "drop_counters")]
pub struct Model {
    /// 0 when the request never resolved to a site.
    #[sea_orm(primary_key, auto_increment = false)]
    pub site_id: SiteId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: i32,
    #[sea_orm(primary_key, auto_increment = false)]
    pub reason: String,
    pub count: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
