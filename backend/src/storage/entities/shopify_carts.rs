use sea_orm::entity::prelude::*;

use crate::domain::{SiteId, UnixMillis};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "shopify_carts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub site_id: SiteId,
    /// `cart`, `checkout` or `order` (an order whose tokens no tracked session carried).
    #[sea_orm(primary_key, auto_increment = false)]
    pub kind: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub token: String,
    pub cart_token: Option<String>,
    pub tracked: bool,
    pub first_seen_at: UnixMillis,
    pub last_seen_at: UnixMillis,
    /// When the untracked-cart judge decided this row (`shopify::untracked`); `None` = not yet.
    pub judged_at: Option<UnixMillis>,
    /// The buyer's network of an order (`browser_ip` as /24 or /48).
    pub ip_prefix: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
