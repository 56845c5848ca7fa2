//! The webhook inbox: verified deliveries persisted before the 200, claimed by workers.
//! Claims take a lease (`next_attempt_at` moves into the future) inside a transaction; on
//! PostgreSQL the select uses `FOR UPDATE SKIP LOCKED` so concurrent workers on several nodes
//! never claim the same row. SQLite has one writer at a time, so the transaction suffices.

use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};

use super::StorageError;
use super::entities::webhook_inbox;
use crate::domain::UnixMillis;

/// A verified delivery, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub webhook_id: String,
    pub shop_domain: String,
    pub topic: String,
    pub api_version: String,
    pub triggered_at: Option<String>,
    pub event_id: Option<String>,
    pub body: String,
}

pub type InboxRow = webhook_inbox::Model;

/// Stores a delivery unless its webhook id is already there. Returns whether it was new.
pub async fn insert_if_new(db: &impl ConnectionTrait, d: &Delivery) -> Result<bool, StorageError> {
    use webhook_inbox::Column as C;
    let now = UnixMillis::now();
    let insert = Query::insert()
        .into_table(webhook_inbox::Entity)
        .columns([
            C::WebhookId,
            C::ShopDomain,
            C::Topic,
            C::ApiVersion,
            C::TriggeredAt,
            C::EventId,
            C::Body,
            C::ReceivedAt,
            C::Status,
            C::Attempts,
            C::NextAttemptAt,
        ])
        .values_panic([
            d.webhook_id.clone().into(),
            d.shop_domain.clone().into(),
            d.topic.clone().into(),
            d.api_version.clone().into(),
            d.triggered_at.clone().into(),
            d.event_id.clone().into(),
            d.body.clone().into(),
            now.0.into(),
            "pending".into(),
            0i32.into(),
            now.0.into(),
        ])
        .on_conflict(OnConflict::column(C::WebhookId).do_nothing().to_owned())
        .to_owned();
    Ok(db.execute(&insert).await?.rows_affected() == 1)
}

/// Claims up to `limit` due rows for `lease_ms`, counting the attempt.
pub async fn claim_due(
    db: &DatabaseConnection,
    now: UnixMillis,
    lease_ms: i64,
    limit: u64,
) -> Result<Vec<InboxRow>, StorageError> {
    use webhook_inbox::Column as C;
    let txn = db.begin().await?;
    let mut select = webhook_inbox::Entity::find()
        .filter(C::Status.eq("pending"))
        .filter(C::NextAttemptAt.lte(now))
        .order_by_asc(C::Id)
        .limit(limit);
    if txn.get_database_backend() == DbBackend::Postgres {
        select = select.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let rows = select.all(&txn).await?;
    if !rows.is_empty() {
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        webhook_inbox::Entity::update_many()
            .col_expr(C::NextAttemptAt, Expr::value(now.0 + lease_ms))
            .col_expr(C::Attempts, Expr::col(C::Attempts).add(1))
            .filter(C::Id.is_in(ids))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(rows
        .into_iter()
        .map(|mut r| {
            r.attempts += 1;
            r
        })
        .collect())
}

/// Marks a row processed and drops its body: payloads can carry protected customer data, and
/// once processed only the webhook id (for dedupe) and the outcome are needed.
pub async fn mark_done(db: &impl ConnectionTrait, id: i64) -> Result<(), StorageError> {
    let now = UnixMillis::now();
    webhook_inbox::Entity::update(webhook_inbox::ActiveModel {
        id: Set(id),
        body: Set(String::new()),
        status: Set("done".into()),
        processed_at: Set(Some(now)),
        last_error: Set(None),
        ..Default::default()
    })
    .exec(db)
    .await?;
    Ok(())
}

/// Schedules a retry, or parks the row when `retry_at` is `None`; the error stays visible.
pub async fn mark_failed(
    db: &impl ConnectionTrait,
    id: i64,
    error: &str,
    retry_at: Option<UnixMillis>,
) -> Result<(), StorageError> {
    let mut row =
        webhook_inbox::ActiveModel { id: Set(id), last_error: Set(Some(error.to_owned())), ..Default::default() };
    match retry_at {
        Some(at) => row.next_attempt_at = Set(at),
        None => row.status = Set("parked".into()),
    }
    webhook_inbox::Entity::update(row).exec(db).await?;
    Ok(())
}

/// Inbox rows of a shop (tests, admin tooling).
pub async fn for_shop(db: &impl ConnectionTrait, shop_domain: &str) -> Result<Vec<InboxRow>, StorageError> {
    Ok(webhook_inbox::Entity::find()
        .filter(webhook_inbox::Column::ShopDomain.eq(shop_domain))
        .order_by_asc(webhook_inbox::Column::Id)
        .all(db)
        .await?)
}
