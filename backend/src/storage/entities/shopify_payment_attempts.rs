use sea_orm::entity::prelude::*;

use crate::domain::{SiteId, UnixMillis};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "shopify_payment_attempts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub site_id: SiteId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub transaction_id: String,
    pub order_id: Option<String>,
    pub kind: Option<String>,
    pub gateway: Option<String>,
    /// `success`, `failure`, `error` (kept verbatim, including future values).
    pub status: String,
    pub error_code: Option<String>,
    pub card_bin: Option<String>,
    pub avs_result_code: Option<String>,
    pub cvv_result_code: Option<String>,
    pub amount: Option<String>,
    pub currency: Option<String>,
    pub test: bool,
    pub received_at: UnixMillis,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
