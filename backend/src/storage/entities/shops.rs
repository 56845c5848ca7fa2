use sea_orm::entity::prelude::*;

use crate::domain::{SiteId, UnixMillis};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "shops")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub site_id: SiteId,
    #[sea_orm(unique)]
    pub domain: String,
    /// `active` or `uninstalled`.
    pub status: String,
    pub scope: Option<String>,
    pub token_key_id: Option<String>,
    /// Sealed (see `shopify::token_cipher`), never the plain token.
    pub access_token: Option<String>,
    pub access_expires_at: Option<UnixMillis>,
    pub refresh_token: Option<String>,
    pub refresh_expires_at: Option<UnixMillis>,
    pub token_version: i64,
    pub installed_at: UnixMillis,
    pub uninstalled_at: Option<UnixMillis>,
    pub updated_at: UnixMillis,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
