use sea_orm::entity::prelude::*;

use crate::domain::{SiteId, UnixMillis};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "alert_policies")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub site_id: SiteId,
    /// `alerts::AlertPolicy` as JSON; `None` = the default policy.
    pub policy: Option<String>,
    /// `alerts::AlertState` as JSON.
    pub state: String,
    pub updated_at: UnixMillis,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
