//! The webhook inbox: verified deliveries persisted before the 200, claimed by workers.
//! Claims take a lease (`next_attempt_at` moves into the future) in one `UPDATE … RETURNING`;
//! on PostgreSQL its inner select uses `FOR UPDATE SKIP LOCKED`, so concurrent workers on
//! several nodes never claim the same row. SQLite has one writer at a time.

use sea_orm::sea_query::{OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, Statement,
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

/// Claims up to `limit` due rows for `lease_ms`, counting the attempt. One `UPDATE …
/// RETURNING` statement: on SQLite it takes the write lock at once (a read-then-write
/// transaction would fail with SQLITE_BUSY_SNAPSHOT under concurrent inserts); on PostgreSQL the
/// inner select skips rows another worker has locked.
pub async fn claim_due(
    db: &DatabaseConnection,
    now: UnixMillis,
    lease_ms: i64,
    limit: u64,
) -> Result<Vec<InboxRow>, StorageError> {
    use webhook_inbox::Column as C;
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            r#"UPDATE "webhook_inbox" SET "next_attempt_at" = $1, "attempts" = "attempts" + 1
               WHERE "id" IN (SELECT "id" FROM "webhook_inbox" WHERE "status" = 'pending' AND "next_attempt_at" <= $2
                              ORDER BY "id" LIMIT $3 FOR UPDATE SKIP LOCKED)
               RETURNING "id""#
        }
        _ => {
            r#"UPDATE "webhook_inbox" SET "next_attempt_at" = ?, "attempts" = "attempts" + 1
               WHERE "id" IN (SELECT "id" FROM "webhook_inbox" WHERE "status" = 'pending' AND "next_attempt_at" <= ?
                              ORDER BY "id" LIMIT ?)
               RETURNING "id""#
        }
    };
    let values: [sea_orm::Value; 3] = [(now.0 + lease_ms).into(), now.0.into(), (limit as i64).into()];
    let rows = db.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.try_get_by_index::<i64>(0)).collect::<Result<_, _>>()?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(webhook_inbox::Entity::find().filter(C::Id.is_in(ids)).order_by_asc(C::Id).all(db).await?)
}

/// Marks rows processed and drops their bodies: payloads can carry protected customer data,
/// and once processed only the webhook id (for dedupe) and the outcome are needed. One
/// statement for a whole claimed batch.
pub async fn mark_done(db: &impl ConnectionTrait, ids: &[i64]) -> Result<(), StorageError> {
    use webhook_inbox::Column as C;
    if ids.is_empty() {
        return Ok(());
    }
    webhook_inbox::Entity::update_many()
        .col_expr(C::Body, sea_orm::sea_query::Expr::value(""))
        .col_expr(C::Status, sea_orm::sea_query::Expr::value("done"))
        .col_expr(C::ProcessedAt, sea_orm::sea_query::Expr::value(UnixMillis::now().0))
        .col_expr(C::LastError, sea_orm::sea_query::Expr::value(Option::<String>::None))
        .filter(C::Id.is_in(ids.iter().copied()))
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
