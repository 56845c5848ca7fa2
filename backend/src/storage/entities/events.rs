use sea_orm::entity::prelude::*;

use crate::domain::{SessionId, SiteId, UnixMillis, VisitorId};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub site_id: SiteId,
    pub session_id: SessionId,
    pub visitor_id: VisitorId,
    pub ts: UnixMillis,
    pub received_at: UnixMillis,
    pub kind: String,
    pub path: String,
    /// Type-specific fields as a JSON object (see docs/COLLECT-PROTOCOL.md).
    pub props: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
