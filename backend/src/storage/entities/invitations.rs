use sea_orm::entity::prelude::*;

use crate::accounts::{Email, InvitationId, UserId};
use crate::domain::{SiteId, UnixMillis};

/// An invitation to join a site with a role; single use, the token stored hashed.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "invitations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: InvitationId,
    pub site_id: SiteId,
    pub email: Email,
    pub role: String,
    #[sea_orm(unique)]
    pub token_hash: String,
    pub invited_by: Option<UserId>,
    pub created_at: UnixMillis,
    pub expires_at: UnixMillis,
    pub accepted_at: Option<UnixMillis>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
