use sea_orm::entity::prelude::*;

use crate::domain::{SessionId, SiteId, UnixMillis, VisitorId};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: SessionId,
    pub site_id: SiteId,
    pub visitor_id: VisitorId,
    pub started_at: UnixMillis,
    pub last_seen_at: UnixMillis,
    pub pageviews: i32,
    pub events: i32,
    pub entry_path: String,
    pub exit_path: String,
    pub referrer_host: Option<String>,
    pub ip_prefix: Option<String>,
    pub country: Option<String>,
    pub region: Option<String>,
    pub city: Option<String>,
    pub asn: Option<i64>,
    pub as_org: Option<String>,
    pub net_flags: i32,
    pub browser: String,
    pub browser_version: Option<String>,
    pub os: String,
    pub device: String,
    pub bot_family: Option<String>,
    pub automated: bool,
    pub consent: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
