use sea_orm::entity::prelude::*;

use crate::accounts::{AccountSessionId, UserId};
use crate::domain::{SiteId, UnixMillis};

/// A login session; the cookie's secret is not here, only its SHA-256.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "account_sessions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: AccountSessionId,
    #[sea_orm(unique)]
    pub token_hash: String,
    pub user_id: UserId,
    pub site_id: SiteId,
    pub created_at: UnixMillis,
    pub last_seen_at: UnixMillis,
    pub expires_at: UnixMillis,
    pub revoked_at: Option<UnixMillis>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
