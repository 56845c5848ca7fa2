use sea_orm::entity::prelude::*;

use crate::domain::{SiteId, UnixMillis};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "shopify_orders")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub site_id: SiteId,
    /// Shopify's u64 order id as a decimal string.
    #[sea_orm(primary_key, auto_increment = false)]
    pub order_id: String,
    pub customer_id: Option<String>,
    pub checkout_token: Option<String>,
    pub cart_token: Option<String>,
    /// Decimal string as Shopify sends it (`"199.00"`).
    pub total_price: Option<String>,
    pub currency: Option<String>,
    /// Kept verbatim, including values this version does not know.
    pub financial_status: Option<String>,
    pub paid: bool,
    pub shopify_updated_at: Option<String>,
    pub received_at: UnixMillis,
    /// The tracked session the order came from, when its cart or checkout token was seen.
    pub session_id: Option<i64>,
    /// The buyer's network (`browser_ip` truncated to /24 or /48).
    pub ip_prefix: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
