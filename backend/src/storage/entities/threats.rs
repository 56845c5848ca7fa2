use sea_orm::entity::prelude::*;

use crate::domain::{SiteId, UnixMillis};

/// One verdict change of a detection subject (see `migrations/…_create_threats`).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "threats")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub site_id: SiteId,
    /// `session:ID`, `client:KEY`, `ip:PREFIX`, `checkout:TOKEN`, …
    pub subject: String,
    /// `ALLOW`, `CHALLENGE` or `BLOCK`.
    pub decision: String,
    pub score: i16,
    /// JSON array of `{rule, sentence, shadow?}`.
    pub reasons: String,
    /// JSON array of the counters behind the reasons.
    pub evidence: String,
    pub ttl_secs: i64,
    /// Event time of the change.
    pub at: UnixMillis,
    pub created_at: UnixMillis,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
