//! What the admin panel reads, per tenant: the overview numbers, threats after a cursor,
//! filtered sessions with their latest verdict, and one session with its events and verdicts.
//! Every query starts from `site_id = scope` (and a time range where there is one).

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::TenantScope;
use super::entities::{events, sessions, shopify_payment_attempts, threats};
use super::stats::{self, Bucket, BucketRow, Range, Summary};
use crate::domain::{SessionId, UnixMillis};

/// Most verdict rows read to find the sessions a decision or rule filter matches.
const VERDICT_SCAN_LIMIT: u64 = 20_000;
/// Most events of one session returned to the panel.
pub const SESSION_EVENTS_LIMIT: u64 = 2_000;

pub struct OverviewRows {
    pub summary: Summary,
    pub series: Vec<BucketRow>,
    pub open_threats: i64,
    pub card_bursts: i64,
    pub failed_payments: i64,
}

/// Key numbers over `range` and its series; open threats are judged at `now`.
pub async fn overview(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    range: Range,
    bucket: Bucket,
    now: UnixMillis,
) -> Result<OverviewRows, DbErr> {
    let summary = stats::summary(db, scope, range).await?;
    let series = stats::timeseries(db, scope, range, bucket).await?;
    let open_threats = count(db, OPEN_SUBJECTS_SQL, vec![scope.site_id().0.into(), now.0.into()]).await?;
    let card_bursts =
        count(db, &card_bursts_sql(), vec![scope.site_id().0.into(), range.from.0.into(), range.to.0.into()]).await?;
    use shopify_payment_attempts::Column as P;
    let mut q = Query::select();
    q.expr(Expr::col(P::TransactionId).count())
        .from(shopify_payment_attempts::Entity)
        .and_where(Expr::col(P::SiteId).eq(scope.site_id().0))
        .and_where(Expr::col(P::ReceivedAt).gte(range.from.0))
        .and_where(Expr::col(P::ReceivedAt).lt(range.to.0))
        .and_where(Expr::col(P::Status).is_in(["failure", "error"]));
    let failed_payments = match db.query_one(&q).await? {
        Some(row) => row.try_get_by_index::<i64>(0)?,
        None => 0,
    };
    Ok(OverviewRows { summary, series, open_threats, card_bursts, failed_payments })
}

/// Subjects whose newest verdict is CHALLENGE or BLOCK and has not expired at `now` (site, now).
/// The candidates come from `idx_threats_site_expires` (verdicts still in force, whatever their
/// age); each is kept only when no newer verdict of its subject exists (`idx_threats_site_subject_at`),
/// so a subject counts once, and not at all when a later ALLOW replaced its verdict.
pub const OPEN_SUBJECTS_SQL: &str = r#"SELECT COUNT(*) FROM "threats" t
    WHERE t."site_id" = ? AND t."at" + t."ttl_secs" * 1000 > ? AND t."decision" <> 'ALLOW'
      AND NOT EXISTS (SELECT 1 FROM "threats" n
        WHERE n."site_id" = t."site_id" AND n."subject" = t."subject"
          AND (n."at" > t."at" OR (n."at" = t."at" AND n."id" > t."id")))"#;

/// Verdict changes in `[from, to)` that name a card-testing rule (site, from, to), through the
/// partial index `idx_threats_site_card_at`: the predicate must be the index's, as a literal.
pub fn card_bursts_sql() -> String {
    format!(
        r#"SELECT COUNT(*) FROM "threats" WHERE "site_id" = ? AND "at" >= ? AND "at" < ? AND {}"#,
        migration::CARD_VERDICT_PREDICATE
    )
}

async fn count(db: &impl ConnectionTrait, sql: &str, values: Vec<sea_orm::Value>) -> Result<i64, DbErr> {
    match db.query_one_raw(super::rollups::stmt(db, sql, values)).await? {
        Some(row) => row.try_get_by_index::<i64>(0),
        None => Ok(0),
    }
}

/// Verdict changes with an id above `after`, oldest first (the live feed's cursor).
pub async fn threats_after(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    after: i64,
    limit: u64,
) -> Result<Vec<threats::Model>, DbErr> {
    threats::Entity::find()
        .filter(threats::Column::SiteId.eq(scope.site_id()))
        .filter(threats::Column::Id.gt(after))
        .order_by_asc(threats::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// The newest verdict changes, newest first.
pub async fn recent_threats(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    limit: u64,
) -> Result<Vec<threats::Model>, DbErr> {
    super::threats::recent(db, scope, limit, None).await
}

/// The Sessions filters, already validated.
#[derive(Clone, Debug, Default)]
pub struct SessionFilter {
    pub range: Option<Range>,
    pub decision: Option<String>,
    pub rule: Option<String>,
    pub country: Option<String>,
    pub device: Option<String>,
    pub limit: u64,
}

/// Sessions started in the range matching the filters, newest first, each with its latest
/// verdict. With a decision or rule filter the candidates come from the verdicts.
pub async fn sessions(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    filter: &SessionFilter,
) -> Result<Vec<(sessions::Model, Option<threats::Model>)>, DbErr> {
    let mut query = sessions::Entity::find().filter(sessions::Column::SiteId.eq(scope.site_id()));
    if let Some(country) = &filter.country {
        query = query.filter(sessions::Column::Country.eq(country.as_str()));
    }
    if let Some(device) = &filter.device {
        query = query.filter(sessions::Column::Device.eq(device.as_str()));
    }
    if filter.decision.is_some() || filter.rule.is_some() {
        return sessions_by_verdict(db, scope, filter, query).await;
    }
    if let Some(range) = filter.range {
        query =
            query.filter(sessions::Column::StartedAt.gte(range.from)).filter(sessions::Column::StartedAt.lt(range.to));
    }
    let found = query.order_by_desc(sessions::Column::StartedAt).limit(filter.limit).all(db).await?;
    let subjects: Vec<String> = found.iter().map(|s| format!("session:{}", s.id.0)).collect();
    let mut latest: HashMap<String, threats::Model> = HashMap::new();
    if !subjects.is_empty() {
        let rows = threats::Entity::find()
            .filter(threats::Column::SiteId.eq(scope.site_id()))
            .filter(threats::Column::Subject.is_in(subjects))
            .order_by_desc(threats::Column::At)
            .order_by_desc(threats::Column::Id)
            .all(db)
            .await?;
        for t in rows {
            latest.entry(t.subject.clone()).or_insert(t);
        }
    }
    Ok(found
        .into_iter()
        .map(|s| {
            let verdict = latest.remove(&format!("session:{}", s.id.0));
            (s, verdict)
        })
        .collect())
}

/// Verdicts read per page by [`sessions_by_verdict`].
const VERDICT_PAGE: u64 = 2_000;
/// Sessions looked up by primary key per statement in [`sessions_by_verdict`]: the list's limit,
/// but at least this many (fewer lookups when most matches fall outside the other filters) …
const SESSION_LOOKUP_MIN: u64 = 50;
/// … and at most this many (the size of one `IN` list, also for the verdicts read in full).
const SESSION_LOOKUP_MAX: u64 = 500;

/// Sessions whose latest verdict (among those in the range, naming the rule when one is asked
/// for) has the asked decision, newest first. The verdicts are read newest first, a page of their
/// keys at a time, and the sessions they name are looked up by primary key a few at a time (the
/// range is checked on the rows: with it in the lookup, PostgreSQL's generic plan for the
/// prepared statement scanned the range instead of the keys). A verdict comes after the start of
/// its session, so once `limit` found sessions started at or after the verdict reached, no
/// session behind an unread verdict can be newer than them: the scan stops there (or after
/// [`VERDICT_SCAN_LIMIT`] verdicts). Only the verdicts shown are read in full (reasons and
/// evidence are the large columns).
async fn sessions_by_verdict(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    filter: &SessionFilter,
    sessions_query: sea_orm::Select<sessions::Entity>,
) -> Result<Vec<(sessions::Model, Option<threats::Model>)>, DbErr> {
    let mut verdicts = threats::Entity::find()
        .select_only()
        .columns([threats::Column::Id, threats::Column::Subject, threats::Column::Decision, threats::Column::At])
        .filter(threats::Column::SiteId.eq(scope.site_id()))
        .filter(threats::Column::Subject.like("session:%"));
    if let Some(range) = filter.range {
        verdicts = verdicts.filter(threats::Column::At.gte(range.from));
    }
    if let Some(rule) = &filter.rule {
        verdicts = verdicts.filter(threats::Column::Reasons.like(format!("%\"rule\":\"{}\"%", like_escape(rule))));
    }
    let in_range = |s: &sessions::Model| filter.range.is_none_or(|r| s.started_at >= r.from && s.started_at < r.to);
    let lookup_size = filter.limit.clamp(SESSION_LOOKUP_MIN, SESSION_LOOKUP_MAX) as usize;
    // Session id → its latest verdict's id (a session is judged by its first verdict read).
    let mut seen: HashMap<i64, Option<i64>> = HashMap::new();
    let mut found: Vec<sessions::Model> = Vec::new();
    let mut cursor: Option<(UnixMillis, i64)> = None;
    let mut scanned = 0;
    'pages: while scanned < VERDICT_SCAN_LIMIT {
        let mut page = verdicts.clone();
        if let Some((at, id)) = cursor {
            page = page.filter(
                Condition::any()
                    .add(threats::Column::At.lt(at))
                    .add(Condition::all().add(threats::Column::At.eq(at)).add(threats::Column::Id.lt(id))),
            );
        }
        let rows: Vec<(i64, String, String, UnixMillis)> = page
            .order_by_desc(threats::Column::At)
            .order_by_desc(threats::Column::Id)
            .limit(std::cmp::min(VERDICT_PAGE, VERDICT_SCAN_LIMIT - scanned))
            .into_tuple()
            .all(db)
            .await?;
        scanned += rows.len() as u64;
        let Some(&(last_id, _, _, last_at)) = rows.last() else { break };
        let mut pending = Vec::new();
        for (i, (id, subject, decision, at)) in rows.iter().enumerate() {
            if let Some(session) = session_of(subject)
                && !seen.contains_key(&session)
            {
                let wanted = filter.decision.as_ref().is_none_or(|d| d == decision);
                seen.insert(session, wanted.then_some(*id));
                if wanted {
                    pending.push(SessionId(session));
                }
            }
            if pending.len() >= lookup_size || (i + 1 == rows.len() && !pending.is_empty()) {
                let q = sessions_query.clone().filter(sessions::Column::Id.is_in(std::mem::take(&mut pending)));
                found.extend(q.all(db).await?.into_iter().filter(|s| in_range(s)));
                if found.iter().filter(|s| s.started_at >= *at).count() as u64 >= filter.limit {
                    break 'pages;
                }
            }
        }
        if (rows.len() as u64) < VERDICT_PAGE {
            break;
        }
        cursor = Some((last_at, last_id));
    }
    found.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.0.cmp(&a.id.0)));
    found.truncate(filter.limit as usize);
    let shown: Vec<i64> = found.iter().filter_map(|s| seen.get(&s.id.0).copied().flatten()).collect();
    let mut full: HashMap<i64, threats::Model> = HashMap::new();
    for chunk in shown.chunks(SESSION_LOOKUP_MAX as usize) {
        let q = threats::Entity::find().filter(threats::Column::SiteId.eq(scope.site_id()));
        for t in q.filter(threats::Column::Id.is_in(chunk.to_vec())).all(db).await? {
            full.insert(t.id, t);
        }
    }
    Ok(found
        .into_iter()
        .map(|s| {
            let verdict = seen.get(&s.id.0).copied().flatten().and_then(|id| full.remove(&id));
            (s, verdict)
        })
        .collect())
}

/// One session of the tenant with its events (oldest first) and its verdicts (newest first).
pub async fn session_detail(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    id: SessionId,
) -> Result<Option<(sessions::Model, Vec<events::Model>, Vec<threats::Model>)>, DbErr> {
    let Some(session) = sessions::Entity::find()
        .filter(sessions::Column::SiteId.eq(scope.site_id()))
        .filter(sessions::Column::Id.eq(id))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let events = events::Entity::find()
        .filter(events::Column::SiteId.eq(scope.site_id()))
        .filter(events::Column::SessionId.eq(id))
        .order_by_asc(events::Column::Ts)
        .order_by_asc(events::Column::Id)
        .limit(SESSION_EVENTS_LIMIT)
        .all(db)
        .await?;
    let verdicts = threats::Entity::find()
        .filter(threats::Column::SiteId.eq(scope.site_id()))
        .filter(threats::Column::Subject.eq(format!("session:{}", id.0)))
        .order_by_desc(threats::Column::At)
        .order_by_desc(threats::Column::Id)
        .all(db)
        .await?;
    Ok(Some((session, events, verdicts)))
}

/// Events the site received since `from` (is the tracker reporting?).
pub async fn events_since(db: &impl ConnectionTrait, scope: TenantScope, from: UnixMillis) -> Result<i64, DbErr> {
    Ok(events::Entity::find()
        .filter(events::Column::SiteId.eq(scope.site_id()))
        .filter(events::Column::Ts.gte(from))
        .count(db)
        .await? as i64)
}

/// The session id of a `session:ID` subject.
pub fn session_of(subject: &str) -> Option<i64> {
    subject.strip_prefix("session:")?.parse().ok()
}

/// Keeps the characters rule ids are made of; `%` and `_` (LIKE wildcards) and quotes go.
fn like_escape(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '.')).collect()
}
