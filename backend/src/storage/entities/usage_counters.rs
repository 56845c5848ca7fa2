use sea_orm::entity::prelude::*;

use crate::domain::{SiteId, UnixMillis};

/// Sessions per tenant and calendar month (see `migrations/…_create_usage_counters`).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_counters")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub site_id: SiteId,
    /// `YYYYMM` (UTC).
    #[sea_orm(primary_key, auto_increment = false)]
    pub month: i32,
    pub sessions: i64,
    pub updated_at: UnixMillis,
    /// First meter run that found the tenant over quota this month (kept once set).
    pub over_since: Option<UnixMillis>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
