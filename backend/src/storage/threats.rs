//! Threat records: verdict changes of detection subjects, per tenant. Reads take the tenant
//! scope first; writes come from the detection recorder, which knows the site of each verdict.

use sea_orm::sea_query::{Expr, ExprTrait, Order, Query};
use sea_orm::{
    ActiveValue::NotSet, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::TenantScope;
use super::entities::threats;
use crate::domain::{SiteId, UnixMillis};

/// A verdict change to record.
#[derive(Clone, Debug, PartialEq)]
pub struct NewThreat {
    pub site_id: SiteId,
    pub subject: String,
    pub decision: &'static str,
    pub score: u8,
    pub reasons_json: String,
    pub evidence_json: String,
    pub ttl_secs: u64,
    pub at: UnixMillis,
}

/// Inserts verdict changes in one statement.
pub async fn insert(db: &impl ConnectionTrait, rows: &[NewThreat], now: UnixMillis) -> Result<(), DbErr> {
    if rows.is_empty() {
        return Ok(());
    }
    let models = rows.iter().map(|t| threats::ActiveModel {
        id: NotSet,
        site_id: Set(t.site_id),
        subject: Set(t.subject.chars().take(160).collect()),
        decision: Set(t.decision.to_owned()),
        score: Set(i16::from(t.score)),
        reasons: Set(t.reasons_json.clone()),
        evidence: Set(t.evidence_json.clone()),
        ttl_secs: Set(i64::try_from(t.ttl_secs).unwrap_or(i64::MAX)),
        at: Set(t.at),
        created_at: Set(now),
    });
    threats::Entity::insert_many(models).exec_without_returning(db).await?;
    Ok(())
}

/// The newest verdict changes, optionally of one decision.
pub async fn recent(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    limit: u64,
    decision: Option<&str>,
) -> Result<Vec<threats::Model>, DbErr> {
    let mut query = threats::Entity::find().filter(threats::Column::SiteId.eq(scope.site_id()));
    if let Some(d) = decision {
        query = query.filter(threats::Column::Decision.eq(d));
    }
    query.order_by_desc(threats::Column::At).order_by_desc(threats::Column::Id).limit(limit).all(db).await
}

/// One page of verdict changes at `[from, to)` in id order after `after_id` (keyset paging, for
/// exports).
pub async fn page_between(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    from: UnixMillis,
    to: UnixMillis,
    after_id: i64,
    limit: u64,
) -> Result<Vec<threats::Model>, DbErr> {
    threats::Entity::find()
        .filter(threats::Column::SiteId.eq(scope.site_id()))
        .filter(threats::Column::At.gte(from))
        .filter(threats::Column::At.lt(to))
        .filter(threats::Column::Id.gt(after_id))
        .order_by_asc(threats::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// The latest verdict change of one subject (e.g. `session:42`).
pub async fn latest_for_subject(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    subject: &str,
) -> Result<Option<threats::Model>, DbErr> {
    threats::Entity::find()
        .filter(threats::Column::SiteId.eq(scope.site_id()))
        .filter(threats::Column::Subject.eq(subject))
        .order_by_desc(threats::Column::At)
        .order_by_desc(threats::Column::Id)
        .one(db)
        .await
}

/// Verdict changes per decision since `from` (event time).
pub async fn count_by_decision(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    from: UnixMillis,
) -> Result<Vec<(String, i64)>, DbErr> {
    use threats::Column as C;
    let mut q = Query::select();
    q.column(C::Decision)
        .expr(Expr::col(C::Id).count())
        .from(threats::Entity)
        .and_where(Expr::col(C::SiteId).eq(scope.site_id().0))
        .and_where(Expr::col(C::At).gte(from.0))
        .group_by_col(C::Decision)
        .order_by(C::Decision, Order::Asc);
    let rows = db.query_all(&q).await?;
    rows.iter().map(|r| Ok((r.try_get_by_index::<String>(0)?, r.try_get_by_index::<i64>(1)?))).collect()
}

/// The reasons JSON of changes since `from`, newest first (at most `limit`), for rule counts.
pub async fn reasons_since(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    from: UnixMillis,
    limit: u64,
) -> Result<Vec<String>, DbErr> {
    let rows = threats::Entity::find()
        .select_only()
        .column(threats::Column::Reasons)
        .filter(threats::Column::SiteId.eq(scope.site_id()))
        .filter(threats::Column::At.gte(from))
        .order_by_desc(threats::Column::At)
        .limit(limit)
        .into_tuple::<String>()
        .all(db)
        .await?;
    Ok(rows)
}
