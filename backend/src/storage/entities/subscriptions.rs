use sea_orm::entity::prelude::*;

use crate::domain::{SiteId, UnixMillis};

/// The current subscription of a tenant (see `migrations/…_create_subscriptions`).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "subscriptions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub site_id: SiteId,
    /// `shopify` or `stripe`.
    pub provider: String,
    /// `gid://shopify/AppSubscription/…` or `sub_…`.
    pub external_id: Option<String>,
    /// Stripe customer (`cus_…`), for the customer portal.
    pub customer_id: Option<String>,
    /// `free`, `pro` or `business`.
    pub plan: String,
    /// The provider's status, verbatim (`ACTIVE`, `FROZEN`, `active`, `past_due`, …).
    pub status: String,
    pub test: bool,
    pub trial_ends_at: Option<UnixMillis>,
    pub current_period_end: Option<UnixMillis>,
    /// The provider's time of this state: updates older than it are ignored.
    pub provider_updated_at: UnixMillis,
    pub updated_at: UnixMillis,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
