//! Privacy operations on stored data: a site's privacy mode, everything held about one visitor
//! (export and deletion), and the retention deletes. Every function takes the tenant scope first.

use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Statement, TransactionTrait,
};
use serde::Serialize;

use super::entities::{events, sessions, sites, threats, visitors};
use super::{StorageError, TenantScope};
use crate::domain::{PrivacyMode, SessionId, UnixMillis, VisitorId};

/// Sets the site's privacy mode; `false` when the site does not exist.
pub async fn set_mode(db: &impl ConnectionTrait, scope: TenantScope, mode: PrivacyMode) -> Result<bool, StorageError> {
    let res = sites::Entity::update_many()
        .col_expr(sites::Column::PrivacyMode, Expr::value(mode.as_str()))
        .filter(sites::Column::Id.eq(scope.site_id()))
        .exec(db)
        .await?;
    Ok(res.rows_affected > 0)
}

/// Every site with its mode (the retention job's work list).
pub async fn site_modes(db: &impl ConnectionTrait) -> Result<Vec<(TenantScope, PrivacyMode)>, StorageError> {
    Ok(sites::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|m| (TenantScope::verified(m.id), PrivacyMode::parse(&m.privacy_mode).unwrap_or_default()))
        .collect())
}

/// One event as exported.
#[derive(Debug, Serialize, PartialEq)]
pub struct ExportedEvent {
    pub session_id: i64,
    pub ts: i64,
    pub kind: String,
    pub path: String,
    pub props: Option<serde_json::Value>,
}

/// One session as exported (the truncated network, never a full IP).
#[derive(Debug, Serialize, PartialEq)]
pub struct ExportedSession {
    pub session_id: i64,
    pub started_at: i64,
    pub last_seen_at: i64,
    pub entry_path: String,
    pub ip_prefix: Option<String>,
    pub country: Option<String>,
    pub browser: String,
    pub os: String,
    pub device: String,
    pub automated: bool,
}

/// One verdict about the visitor's sessions.
#[derive(Debug, Serialize, PartialEq)]
pub struct ExportedThreat {
    pub subject: String,
    pub decision: String,
    pub score: i16,
    pub reasons: serde_json::Value,
    pub at: i64,
}

/// Everything GhostTrack holds about one visitor id.
#[derive(Debug, Serialize, PartialEq)]
pub struct VisitorExport {
    pub visitor_id: i64,
    pub first_seen_at: Option<i64>,
    pub last_seen_at: Option<i64>,
    pub sessions: Vec<ExportedSession>,
    pub events: Vec<ExportedEvent>,
    pub threats: Vec<ExportedThreat>,
}

impl VisitorExport {
    pub fn is_empty(&self) -> bool {
        self.first_seen_at.is_none() && self.sessions.is_empty() && self.events.is_empty()
    }
}

fn session_subjects(ids: &[SessionId]) -> Vec<String> {
    ids.iter().map(|s| format!("session:{}", s.0)).collect()
}

async fn visitor_sessions(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    visitor: VisitorId,
) -> Result<Vec<sessions::Model>, StorageError> {
    Ok(sessions::Entity::find()
        .filter(sessions::Column::SiteId.eq(scope.site_id()))
        .filter(sessions::Column::VisitorId.eq(visitor))
        .order_by_asc(sessions::Column::StartedAt)
        .all(db)
        .await?)
}

/// The visitor's row, sessions, events and the verdicts about those sessions.
pub async fn export_visitor(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    visitor: VisitorId,
) -> Result<VisitorExport, StorageError> {
    let row = visitors::Entity::find()
        .filter(visitors::Column::SiteId.eq(scope.site_id()))
        .filter(visitors::Column::VisitorId.eq(visitor))
        .one(db)
        .await?;
    let sessions = visitor_sessions(db, scope, visitor).await?;
    let events = events::Entity::find()
        .filter(events::Column::SiteId.eq(scope.site_id()))
        .filter(events::Column::VisitorId.eq(visitor))
        .order_by_asc(events::Column::Ts)
        .all(db)
        .await?;
    let ids: Vec<SessionId> = sessions.iter().map(|s| s.id).collect();
    let threats = if ids.is_empty() {
        Vec::new()
    } else {
        threats::Entity::find()
            .filter(threats::Column::SiteId.eq(scope.site_id()))
            .filter(threats::Column::Subject.is_in(session_subjects(&ids)))
            .order_by_asc(threats::Column::At)
            .all(db)
            .await?
    };
    Ok(VisitorExport {
        visitor_id: visitor.0,
        first_seen_at: row.as_ref().map(|r| r.first_seen_at.0),
        last_seen_at: row.as_ref().map(|r| r.last_seen_at.0),
        sessions: sessions
            .into_iter()
            .map(|s| ExportedSession {
                session_id: s.id.0,
                started_at: s.started_at.0,
                last_seen_at: s.last_seen_at.0,
                entry_path: s.entry_path,
                ip_prefix: s.ip_prefix,
                country: s.country,
                browser: s.browser,
                os: s.os,
                device: s.device,
                automated: s.automated,
            })
            .collect(),
        events: events
            .into_iter()
            .map(|e| ExportedEvent {
                session_id: e.session_id.0,
                ts: e.ts.0,
                kind: e.kind,
                path: e.path,
                // An encrypted payload stays a string here; `privacy::export_visitor` opens it.
                props: e.props.map(|p| serde_json::from_str(&p).unwrap_or(serde_json::Value::String(p))),
            })
            .collect(),
        threats: threats
            .into_iter()
            .map(|t| ExportedThreat {
                subject: t.subject,
                decision: t.decision,
                score: t.score,
                reasons: serde_json::from_str(&t.reasons).unwrap_or(serde_json::Value::Null),
                at: t.at.0,
            })
            .collect(),
    })
}

/// The visitor of one of the tenant's sessions (the panel deletes "the visitor of this session").
pub async fn visitor_of_session(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    session: SessionId,
) -> Result<Option<VisitorId>, StorageError> {
    Ok(sessions::Entity::find()
        .filter(sessions::Column::SiteId.eq(scope.site_id()))
        .filter(sessions::Column::Id.eq(session))
        .one(db)
        .await?
        .map(|s| s.visitor_id))
}

/// Rows deleted by [`delete_visitor`].
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub struct Deleted {
    pub events: u64,
    pub sessions: u64,
    pub visitors: u64,
    pub threats: u64,
}

/// Deletes everything [`export_visitor`] returns, in one transaction.
pub async fn delete_visitor(
    db: &DatabaseConnection,
    scope: TenantScope,
    visitor: VisitorId,
) -> Result<Deleted, StorageError> {
    let txn = db.begin().await?;
    let ids: Vec<SessionId> = visitor_sessions(&txn, scope, visitor).await?.into_iter().map(|s| s.id).collect();
    let threats = if ids.is_empty() {
        0
    } else {
        threats::Entity::delete_many()
            .filter(threats::Column::SiteId.eq(scope.site_id()))
            .filter(threats::Column::Subject.is_in(session_subjects(&ids)))
            .exec(&txn)
            .await?
            .rows_affected
    };
    let events = events::Entity::delete_many()
        .filter(events::Column::SiteId.eq(scope.site_id()))
        .filter(events::Column::VisitorId.eq(visitor))
        .exec(&txn)
        .await?
        .rows_affected;
    let sessions = sessions::Entity::delete_many()
        .filter(sessions::Column::SiteId.eq(scope.site_id()))
        .filter(sessions::Column::VisitorId.eq(visitor))
        .exec(&txn)
        .await?
        .rows_affected;
    let visitors = visitors::Entity::delete_many()
        .filter(visitors::Column::SiteId.eq(scope.site_id()))
        .filter(visitors::Column::VisitorId.eq(visitor))
        .exec(&txn)
        .await?
        .rows_affected;
    txn.commit().await?;
    Ok(Deleted { events, sessions, visitors, threats })
}

/// Deletes at most `limit` events of the tenant older than `before` (all kinds, or only `kind`).
/// Bounded so a large backlog is removed in short transactions; returns how many went.
pub async fn delete_events_before(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    before: UnixMillis,
    kind: Option<&str>,
    limit: u64,
) -> Result<u64, StorageError> {
    let mut select = Query::select();
    select
        .column(events::Column::Id)
        .from(events::Entity)
        .and_where(Expr::col(events::Column::SiteId).eq(scope.site_id().0))
        .and_where(Expr::col(events::Column::Ts).lt(before.0))
        .limit(limit);
    if let Some(kind) = kind {
        select.and_where(Expr::col(events::Column::Kind).eq(kind));
    }
    let delete = Query::delete()
        .from_table(events::Entity)
        .and_where(Expr::col(events::Column::Id).in_subquery(select.to_owned()))
        .to_owned();
    Ok(db.execute(&delete).await?.rows_affected())
}

/// Deletes at most `limit` events of `kind` older than `before` whose session no verdict flagged
/// (no threat row names `session:<id>` with a decision other than ALLOW).
pub async fn delete_unflagged_before(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    before: UnixMillis,
    kind: &str,
    limit: u64,
) -> Result<u64, StorageError> {
    let backend = db.get_database_backend();
    let subject = match backend {
        sea_orm::DbBackend::Postgres => r#"'session:' || e."session_id"::text"#,
        _ => r#"'session:' || e."session_id""#,
    };
    let p = |i: usize| if backend == sea_orm::DbBackend::Postgres { format!("${i}") } else { "?".to_owned() };
    let sql = format!(
        r#"DELETE FROM "events" WHERE "id" IN (SELECT e."id" FROM "events" e WHERE e."site_id" = {s1} AND e."ts" < {s2}
           AND e."kind" = {s3} AND NOT EXISTS (SELECT 1 FROM "threats" t WHERE t."site_id" = e."site_id"
           AND t."subject" = {subject} AND t."decision" <> 'ALLOW') LIMIT {limit})"#,
        s1 = p(1),
        s2 = p(2),
        s3 = p(3),
    );
    let values = [scope.site_id().0.into(), before.0.into(), kind.into()];
    Ok(db.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?.rows_affected())
}
