use sea_orm::entity::prelude::*;

use crate::accounts::{Email, UserId};
use crate::domain::{SiteId, UnixMillis};

/// A standalone user of one site (see `migrations/…_create_users`).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: UserId,
    pub site_id: SiteId,
    pub email: Email,
    /// argon2id PHC string.
    pub password_hash: String,
    /// `owner`, `analyst` or `viewer`.
    pub role: String,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
