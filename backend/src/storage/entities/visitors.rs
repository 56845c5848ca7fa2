use sea_orm::entity::prelude::*;

use crate::domain::{SiteId, UnixMillis, VisitorId};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "visitors")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub site_id: SiteId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub visitor_id: VisitorId,
    pub first_seen_at: UnixMillis,
    pub last_seen_at: UnixMillis,
    pub sessions: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
