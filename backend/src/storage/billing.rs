//! Billing tables: each tenant's current subscription, monthly session usage, and the
//! notifications owed to merchants. Writes of subscription state are ordered by the provider's
//! own timestamp inside one statement, so concurrent or late webhooks never regress a state.

use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    Statement,
};

use super::entities::{billing_notices, subscriptions, usage_counters};
use super::{StorageError, TenantScope};
use crate::domain::{SiteId, UnixMillis};

pub type SubscriptionRow = subscriptions::Model;
pub type NoticeRow = billing_notices::Model;

/// A subscription state reported by a provider (or read back from it).
#[derive(Clone, Debug, PartialEq)]
pub struct SubscriptionState {
    pub provider: &'static str,
    pub external_id: Option<String>,
    pub customer_id: Option<String>,
    pub plan: String,
    pub status: String,
    pub test: bool,
    pub trial_ends_at: Option<UnixMillis>,
    pub current_period_end: Option<UnixMillis>,
    /// The provider's time of this state.
    pub provider_updated_at: UnixMillis,
}

/// Which stored row an update may replace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replace {
    /// Any older state (a newly activated subscription replaces whatever was there).
    AnyOlder,
    /// Only an older state of the same subscription (a cancellation of a replaced, older
    /// subscription must not cancel its successor).
    SameSubscriptionOlder,
}

/// The tenant's current subscription row, if any.
pub async fn subscription(
    db: &impl ConnectionTrait,
    scope: TenantScope,
) -> Result<Option<SubscriptionRow>, StorageError> {
    Ok(subscriptions::Entity::find().filter(subscriptions::Column::SiteId.eq(scope.site_id())).one(db).await?)
}

/// Every subscription row (the quota meter needs each tenant's plan).
pub async fn all_subscriptions(db: &impl ConnectionTrait) -> Result<Vec<SubscriptionRow>, StorageError> {
    Ok(subscriptions::Entity::find().all(db).await?)
}

/// The tenant whose Stripe customer or subscription this is (Stripe events name no tenant
/// except through `client_reference_id` on the checkout session).
pub async fn site_of_external(
    db: &impl ConnectionTrait,
    provider: &str,
    external_id: Option<&str>,
    customer_id: Option<&str>,
) -> Result<Option<SiteId>, StorageError> {
    use subscriptions::Column as C;
    let mut cond = sea_orm::Condition::any();
    if let Some(id) = external_id {
        cond = cond.add(C::ExternalId.eq(id));
    }
    if let Some(id) = customer_id {
        cond = cond.add(C::CustomerId.eq(id));
    }
    if external_id.is_none() && customer_id.is_none() {
        return Ok(None);
    }
    let row = subscriptions::Entity::find().filter(C::Provider.eq(provider)).filter(cond).one(db).await?;
    Ok(row.map(|r| r.site_id))
}

/// Stores `state` for the tenant unless the stored state is newer (or, with
/// [`Replace::SameSubscriptionOlder`], belongs to another subscription). Returns whether it
/// was applied.
pub async fn apply(
    db: &impl ConnectionTrait,
    site: SiteId,
    state: &SubscriptionState,
    replace: Replace,
) -> Result<bool, StorageError> {
    use subscriptions::Column as C;
    let now = UnixMillis::now();
    let mut guard = String::from(r#""subscriptions"."provider_updated_at" <= "excluded"."provider_updated_at""#);
    if replace == Replace::SameSubscriptionOlder {
        guard.push_str(r#" AND "subscriptions"."external_id" = "excluded"."external_id""#);
    }
    let update = [
        C::Provider,
        C::ExternalId,
        C::CustomerId,
        C::Plan,
        C::Status,
        C::Test,
        C::TrialEndsAt,
        C::CurrentPeriodEnd,
        C::ProviderUpdatedAt,
        C::UpdatedAt,
    ];
    let insert = Query::insert()
        .into_table(subscriptions::Entity)
        .columns([
            C::SiteId,
            C::Provider,
            C::ExternalId,
            C::CustomerId,
            C::Plan,
            C::Status,
            C::Test,
            C::TrialEndsAt,
            C::CurrentPeriodEnd,
            C::ProviderUpdatedAt,
            C::UpdatedAt,
        ])
        .values_panic([
            site.0.into(),
            state.provider.into(),
            state.external_id.clone().into(),
            state.customer_id.clone().into(),
            state.plan.clone().into(),
            state.status.clone().into(),
            state.test.into(),
            state.trial_ends_at.map(|t| t.0).into(),
            state.current_period_end.map(|t| t.0).into(),
            state.provider_updated_at.0.into(),
            now.0.into(),
        ])
        .on_conflict(
            OnConflict::column(C::SiteId).update_columns(update).action_and_where(Expr::cust(guard)).to_owned(),
        )
        .to_owned();
    Ok(db.execute(&insert).await?.rows_affected() == 1)
}

/// Keeps the Stripe customer of a tenant when a checkout completes before any subscription
/// event names it.
pub async fn set_customer(db: &impl ConnectionTrait, site: SiteId, customer: &str) -> Result<(), StorageError> {
    subscriptions::Entity::update_many()
        .col_expr(subscriptions::Column::CustomerId, Expr::value(customer))
        .filter(subscriptions::Column::SiteId.eq(site))
        .exec(db)
        .await?;
    Ok(())
}

/// Sessions started in `[from, to)` per tenant, straight from the sessions table.
pub async fn sessions_by_site(
    db: &impl ConnectionTrait,
    from: UnixMillis,
    to: UnixMillis,
) -> Result<Vec<(SiteId, i64, UnixMillis)>, StorageError> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            r#"SELECT "site_id", COUNT(*), MAX("started_at") FROM "sessions" WHERE "started_at" >= $1 AND "started_at" < $2 GROUP BY "site_id""#
        }
        _ => {
            r#"SELECT "site_id", COUNT(*), MAX("started_at") FROM "sessions" WHERE "started_at" >= ? AND "started_at" < ? GROUP BY "site_id""#
        }
    };
    let rows = db.query_all_raw(Statement::from_sql_and_values(backend, sql, [from.0.into(), to.0.into()])).await?;
    rows.iter()
        .map(|r| {
            Ok((
                SiteId(r.try_get_by_index::<i64>(0)?),
                r.try_get_by_index::<i64>(1)?,
                UnixMillis(r.try_get_by_index::<i64>(2)?),
            ))
        })
        .collect::<Result<_, sea_orm::DbErr>>()
        .map_err(StorageError::from)
}

/// Sessions of one tenant started in `[from, to)`.
pub async fn sessions_of(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    from: UnixMillis,
    to: UnixMillis,
) -> Result<i64, StorageError> {
    use super::entities::sessions::Column as C;
    let n = super::entities::sessions::Entity::find()
        .filter(C::SiteId.eq(scope.site_id()))
        .filter(C::StartedAt.gte(from))
        .filter(C::StartedAt.lt(to))
        .count(db)
        .await?;
    Ok(n as i64)
}

/// Records the metered count of a tenant's month; `over` marks it over quota from `now` unless
/// an earlier run (any node) already did. Returns the month's `over_since`.
pub async fn set_usage(
    db: &impl ConnectionTrait,
    site: SiteId,
    month: i32,
    sessions: i64,
    over: bool,
    now: UnixMillis,
    over_at: UnixMillis,
) -> Result<Option<UnixMillis>, StorageError> {
    use usage_counters::Column as C;
    let over_since: Option<i64> = over.then_some(over_at.0);
    let insert = Query::insert()
        .into_table(usage_counters::Entity)
        .columns([C::SiteId, C::Month, C::Sessions, C::UpdatedAt, C::OverSince])
        .values_panic([site.0.into(), month.into(), sessions.into(), now.0.into(), over_since.into()])
        .on_conflict(
            OnConflict::columns([C::SiteId, C::Month])
                .update_columns([C::Sessions, C::UpdatedAt])
                .value(C::OverSince, Expr::cust(r#"COALESCE("usage_counters"."over_since", "excluded"."over_since")"#))
                .to_owned(),
        )
        .to_owned();
    db.execute(&insert).await?;
    if !over {
        return Ok(None);
    }
    let row = usage_counters::Entity::find().filter(C::SiteId.eq(site)).filter(C::Month.eq(month)).one(db).await?;
    Ok(row.and_then(|r| r.over_since))
}

/// The metered count of a tenant's month, if metered yet.
pub async fn usage(db: &impl ConnectionTrait, scope: TenantScope, month: i32) -> Result<Option<i64>, StorageError> {
    let row = usage_counters::Entity::find()
        .filter(usage_counters::Column::SiteId.eq(scope.site_id()))
        .filter(usage_counters::Column::Month.eq(month))
        .one(db)
        .await?;
    Ok(row.map(|r| r.sessions))
}

/// Records a notice unless one of the same kind exists for the tenant and month. Returns
/// whether it was new.
pub async fn notice_once(
    db: &impl ConnectionTrait,
    site: SiteId,
    month: i32,
    kind: &str,
    detail: &serde_json::Value,
    now: UnixMillis,
) -> Result<bool, StorageError> {
    use billing_notices::Column as C;
    let insert = Query::insert()
        .into_table(billing_notices::Entity)
        .columns([C::SiteId, C::Month, C::Kind, C::Detail, C::CreatedAt])
        .values_panic([site.0.into(), month.into(), kind.into(), detail.to_string().into(), now.0.into()])
        .on_conflict(OnConflict::columns([C::SiteId, C::Month, C::Kind]).do_nothing().to_owned())
        .to_owned();
    Ok(db.execute(&insert).await?.rows_affected() == 1)
}

/// Notices not sent yet, oldest first (what the alerts worker delivers).
pub async fn pending_notices(db: &impl ConnectionTrait, limit: u64) -> Result<Vec<NoticeRow>, StorageError> {
    Ok(billing_notices::Entity::find()
        .filter(billing_notices::Column::SentAt.is_null())
        .order_by_asc(billing_notices::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

/// Marks a pending notice sent; false when another node (or an earlier run) already did, so
/// the caller that gets true is the only one that sends it.
pub async fn claim_notice(db: &impl ConnectionTrait, id: i64, now: UnixMillis) -> Result<bool, StorageError> {
    let res = billing_notices::Entity::update_many()
        .col_expr(billing_notices::Column::SentAt, Expr::value(now.0))
        .filter(billing_notices::Column::Id.eq(id))
        .filter(billing_notices::Column::SentAt.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}
