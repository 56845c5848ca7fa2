use sea_orm::entity::prelude::*;

use crate::domain::{ApiTokenHash, SiteId, SiteKey, UnixMillis};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "sites")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: SiteId,
    #[sea_orm(unique)]
    pub public_key: SiteKey,
    pub domain: String,
    pub kind: String,
    #[sea_orm(unique)]
    pub api_token_hash: ApiTokenHash,
    pub privacy_mode: String,
    pub created_at: UnixMillis,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
