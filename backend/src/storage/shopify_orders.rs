//! Orders from Shopify webhooks, per tenant, plus the compliance operations over them
//! (export, redact) and the purge of a whole tenant (`shop/redact`).

use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Statement, TransactionTrait,
};

use super::entities::{shopify_orders, shops, sites};
use super::{StorageError, TenantScope};
use crate::domain::UnixMillis;

pub type OrderRow = shopify_orders::Model;

/// Order fields from one webhook; `None` means "not in this payload".
#[derive(Debug, Clone, Default)]
pub struct OrderUpdate {
    pub order_id: u64,
    pub customer_id: Option<u64>,
    pub checkout_token: Option<String>,
    pub cart_token: Option<String>,
    pub total_price: Option<String>,
    pub currency: Option<String>,
    pub financial_status: Option<String>,
    pub paid: bool,
    pub updated_at: Option<String>,
    /// The tracked session the order came from ([`tracked_session`]).
    pub session_id: Option<i64>,
    /// The buyer's network, already truncated (`ingest::client_ip::truncate`).
    pub ip_prefix: Option<String>,
}

/// Inserts or merges an order. Deliveries arrive out of order: known fields are never erased
/// by a payload that lacks them, `paid` never goes back to false, and the financial status is
/// taken from the payload with the later `updated_at`.
pub async fn upsert(db: &impl ConnectionTrait, scope: TenantScope, o: &OrderUpdate) -> Result<(), StorageError> {
    use shopify_orders::Column as C;
    let keep = |col: &str| Expr::cust(format!(r#"COALESCE(excluded."{col}", "shopify_orders"."{col}")"#));
    let insert = Query::insert()
        .into_table(shopify_orders::Entity)
        .columns([
            C::SiteId,
            C::OrderId,
            C::CustomerId,
            C::CheckoutToken,
            C::CartToken,
            C::TotalPrice,
            C::Currency,
            C::FinancialStatus,
            C::Paid,
            C::ShopifyUpdatedAt,
            C::ReceivedAt,
            C::SessionId,
            C::IpPrefix,
        ])
        .values_panic([
            scope.site_id().0.into(),
            o.order_id.to_string().into(),
            o.customer_id.map(|c| c.to_string()).into(),
            o.checkout_token.clone().into(),
            o.cart_token.clone().into(),
            o.total_price.clone().into(),
            o.currency.clone().into(),
            o.financial_status.clone().into(),
            o.paid.into(),
            o.updated_at.clone().into(),
            UnixMillis::now().0.into(),
            o.session_id.into(),
            o.ip_prefix.clone().into(),
        ])
        .on_conflict(
            OnConflict::columns([C::SiteId, C::OrderId])
                .value(C::CustomerId, keep("customer_id"))
                .value(C::CheckoutToken, keep("checkout_token"))
                .value(C::CartToken, keep("cart_token"))
                .value(C::TotalPrice, keep("total_price"))
                .value(C::Currency, keep("currency"))
                .value(C::SessionId, keep("session_id"))
                .value(C::IpPrefix, keep("ip_prefix"))
                .value(
                    C::FinancialStatus,
                    Expr::cust(
                        r#"CASE WHEN "shopify_orders"."shopify_updated_at" IS NULL OR excluded."shopify_updated_at" >= "shopify_orders"."shopify_updated_at" THEN COALESCE(excluded."financial_status", "shopify_orders"."financial_status") ELSE "shopify_orders"."financial_status" END"#,
                    ),
                )
                .value(C::Paid, Expr::cust(r#"(excluded."paid" OR "shopify_orders"."paid")"#))
                .value(
                    C::ShopifyUpdatedAt,
                    Expr::cust(
                        r#"CASE WHEN "shopify_orders"."shopify_updated_at" IS NULL OR excluded."shopify_updated_at" >= "shopify_orders"."shopify_updated_at" THEN excluded."shopify_updated_at" ELSE "shopify_orders"."shopify_updated_at" END"#,
                    ),
                )
                .to_owned(),
        )
        .to_owned();
    db.execute(&insert).await?;
    Ok(())
}

/// One stored order of the tenant.
pub async fn find_order(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    order_id: u64,
) -> Result<Option<shopify_orders::Model>, StorageError> {
    Ok(shopify_orders::Entity::find()
        .filter(shopify_orders::Column::SiteId.eq(scope.site_id()))
        .filter(shopify_orders::Column::OrderId.eq(order_id.to_string()))
        .one(db)
        .await?)
}

/// The tracked session that produced a cart or checkout: the latest session whose add-to-cart
/// carried the cart token (the tracker's `ct`) or whose checkout pixel events carried the
/// checkout token (`ck`), among events since `since` (event time, ms). A token is looked for
/// by its needles ([`JoinNeedles`]): the plain JSON member, and for tenants that encrypt
/// payloads its blind index under each of their data keys (`keys::events`).
pub async fn tracked_session(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    cart: &JoinNeedles,
    checkout: &JoinNeedles,
    since: UnixMillis,
) -> Result<Option<i64>, StorageError> {
    let backend = db.get_database_backend();
    for (kinds, needles) in [("'ac'", &cart.0), ("'co','pi','al','cc'", &checkout.0)] {
        if needles.is_empty() {
            continue;
        }
        let (sql, values) = match backend {
            sea_orm::DbBackend::Postgres => {
                let any = (0..needles.len()).map(|i| format!(r#"strpos("props", ${}) > 0"#, i + 3)).collect::<Vec<_>>();
                (
                    format!(
                        r#"SELECT "session_id" FROM "events" WHERE "site_id" = $1 AND "ts" >= $2 AND "kind" IN ({kinds}) AND ({}) ORDER BY "ts" DESC LIMIT 1"#,
                        any.join(" OR ")
                    ),
                    needles,
                )
            }
            _ => {
                let any = vec![r#"instr("props", ?) > 0"#; needles.len()];
                (
                    format!(
                        r#"SELECT "session_id" FROM "events" WHERE "site_id" = ? AND "ts" >= ? AND "kind" IN ({kinds}) AND ({}) ORDER BY "ts" DESC LIMIT 1"#,
                        any.join(" OR ")
                    ),
                    needles,
                )
            }
        };
        let mut params: Vec<sea_orm::Value> = vec![scope.site_id().0.into(), since.0.into()];
        params.extend(values.iter().map(|n| n.clone().into()));
        if let Some(row) = db.query_one_raw(Statement::from_sql_and_values(backend, sql, params)).await? {
            return Ok(Some(row.try_get_by_index::<i64>(0)?));
        }
    }
    Ok(None)
}

/// The substrings a stored `props` carrying one join token contains (none: no token).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinNeedles(pub Vec<String>);

impl JoinNeedles {
    /// The plain JSON member `"name":"value"` only (tenants that never encrypted).
    pub fn plain(name: &str, value: &str) -> Self {
        let json = serde_json::json!({ name: value }).to_string();
        JoinNeedles(vec![json.trim_start_matches('{').trim_end_matches('}').to_owned()])
    }
}

fn customer_filter(customer_id: Option<u64>, order_ids: &[u64]) -> sea_orm::Condition {
    let mut any = sea_orm::Condition::any();
    if let Some(c) = customer_id {
        any = any.add(shopify_orders::Column::CustomerId.eq(c.to_string()));
    }
    if !order_ids.is_empty() {
        any = any.add(shopify_orders::Column::OrderId.is_in(order_ids.iter().map(u64::to_string)));
    }
    any
}

/// Everything held about one customer of one shop (`customers/data_request`).
pub async fn customer_orders(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    customer_id: Option<u64>,
    order_ids: &[u64],
) -> Result<Vec<OrderRow>, StorageError> {
    if customer_id.is_none() && order_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(shopify_orders::Entity::find()
        .filter(shopify_orders::Column::SiteId.eq(scope.site_id()))
        .filter(customer_filter(customer_id, order_ids))
        .order_by_asc(shopify_orders::Column::OrderId)
        .all(db)
        .await?)
}

/// Deletes everything held about one customer of one shop (`customers/redact`): their orders
/// (by customer id or listed order id) and the payment attempts of those orders.
pub async fn redact_customer(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    customer_id: Option<u64>,
    order_ids: &[u64],
) -> Result<u64, StorageError> {
    if customer_id.is_none() && order_ids.is_empty() {
        return Ok(0);
    }
    let found = customer_orders(db, scope, customer_id, order_ids).await?;
    // The untracked-cart judge's rows of these orders (`kind = 'order'`, keyed by checkout
    // token or `order-<id>`) go with them.
    let mut judged: Vec<String> = found.iter().filter_map(|o| o.checkout_token.clone()).collect();
    judged.extend(found.iter().map(|o| format!("order-{}", o.order_id)));
    judged.extend(order_ids.iter().map(|id| format!("order-{id}")));
    {
        use super::entities::shopify_carts::Column as K;
        super::entities::shopify_carts::Entity::delete_many()
            .filter(K::SiteId.eq(scope.site_id()))
            .filter(K::Kind.eq("order"))
            .filter(K::Token.is_in(judged))
            .exec(db)
            .await?;
    }
    let mut orders: Vec<String> = found.into_iter().map(|o| o.order_id).collect();
    orders.extend(order_ids.iter().map(u64::to_string));
    if !orders.is_empty() {
        use super::entities::shopify_payment_attempts::Column as P;
        super::entities::shopify_payment_attempts::Entity::delete_many()
            .filter(P::SiteId.eq(scope.site_id()))
            .filter(P::OrderId.is_in(orders))
            .exec(db)
            .await?;
    }
    let res = shopify_orders::Entity::delete_many()
        .filter(shopify_orders::Column::SiteId.eq(scope.site_id()))
        .filter(customer_filter(customer_id, order_ids))
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}

/// Tables holding rows keyed by `site_id` that a tenant purge empties. New tenant tables must
/// be added here (the shop/redact test counts rows in every table of the schema).
const TENANT_TABLES: &[&str] = &[
    "events",
    "sessions",
    "visitors",
    "drop_counters",
    "threats",
    "shopify_orders",
    "shopify_carts",
    "shopify_payment_attempts",
    "shopify_setup",
    "account_sessions",
    "invitations",
    "users",
    "stats_rollups",
    "page_rollups",
    "page_rollup_cells",
    "event_data_keys",
];

/// Deletes a tenant and everything it owns (`shop/redact`), in one transaction. Returns the
/// number of rows deleted per table.
pub async fn purge_tenant(
    db: &DatabaseConnection,
    scope: TenantScope,
) -> Result<Vec<(&'static str, u64)>, StorageError> {
    let txn = db.begin().await?;
    let backend = txn.get_database_backend();
    let mut counts = Vec::new();
    for table in TENANT_TABLES {
        let sql = match backend {
            sea_orm::DbBackend::Postgres => format!(r#"DELETE FROM "{table}" WHERE "site_id" = $1"#),
            _ => format!(r#"DELETE FROM "{table}" WHERE "site_id" = ?"#),
        };
        let res = txn.execute_raw(Statement::from_sql_and_values(backend, sql, [scope.site_id().0.into()])).await?;
        counts.push((*table, res.rows_affected()));
    }
    shops::Entity::delete_many().filter(shops::Column::SiteId.eq(scope.site_id())).exec(&txn).await?;
    sites::Entity::delete_by_id(scope.site_id()).exec(&txn).await?;
    txn.commit().await?;
    Ok(counts)
}

/// A cart or checkout seen in a webhook.
#[derive(Debug, Clone)]
pub struct CartSeen {
    /// `cart`, `checkout` or `order`.
    pub kind: &'static str,
    /// The cart's token, the checkout's token, or an order's checkout token (else its id).
    pub token: String,
    /// For a checkout or an order, the cart it came from.
    pub cart_token: Option<String>,
    /// For an order, the buyer's network (already truncated).
    pub ip_prefix: Option<String>,
}

/// Whether any add-to-cart event of the tenant carried the cart token (the tracker sends it
/// as `ct` in the event's props): [`tracked_session`] over all time.
pub async fn cart_was_tracked(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    cart: &JoinNeedles,
) -> Result<bool, StorageError> {
    Ok(tracked_session(db, scope, cart, &JoinNeedles::default(), UnixMillis(i64::MIN)).await?.is_some())
}

/// Records a cart or checkout; `tracked` only ever goes from false to true (the tracker's event
/// and the webhook arrive in any order).
pub async fn record_cart(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    cart: &CartSeen,
    tracked: bool,
) -> Result<(), StorageError> {
    use super::entities::shopify_carts::Column as C;
    let now = UnixMillis::now().0;
    let insert = Query::insert()
        .into_table(super::entities::shopify_carts::Entity)
        .columns([C::SiteId, C::Kind, C::Token, C::CartToken, C::Tracked, C::FirstSeenAt, C::LastSeenAt, C::IpPrefix])
        .values_panic([
            scope.site_id().0.into(),
            cart.kind.into(),
            cart.token.clone().into(),
            cart.cart_token.clone().into(),
            tracked.into(),
            now.into(),
            now.into(),
            cart.ip_prefix.clone().into(),
        ])
        .on_conflict(
            OnConflict::columns([C::SiteId, C::Kind, C::Token])
                .value(C::Tracked, Expr::cust(r#"(excluded."tracked" OR "shopify_carts"."tracked")"#))
                .value(C::CartToken, Expr::cust(r#"COALESCE(excluded."cart_token", "shopify_carts"."cart_token")"#))
                .value(C::IpPrefix, Expr::cust(r#"COALESCE(excluded."ip_prefix", "shopify_carts"."ip_prefix")"#))
                .value(C::LastSeenAt, Expr::cust(r#"excluded."last_seen_at""#))
                .to_owned(),
        )
        .to_owned();
    db.execute(&insert).await?;
    Ok(())
}

/// Carts, checkouts and orders of every tenant that no tracked session had produced when they
/// were recorded, first seen at or before `before`, and not judged yet (oldest first). For the
/// untracked-cart judge (`shopify::untracked`), an internal job over all tenants.
pub async fn untracked_due(
    db: &impl ConnectionTrait,
    before: UnixMillis,
    limit: u64,
) -> Result<Vec<super::entities::shopify_carts::Model>, StorageError> {
    use sea_orm::QuerySelect;

    use super::entities::shopify_carts::{Column as C, Entity};
    Ok(Entity::find()
        .filter(C::Tracked.eq(false))
        .filter(C::JudgedAt.is_null())
        .filter(C::FirstSeenAt.lte(before.0))
        .order_by_asc(C::FirstSeenAt)
        .limit(limit)
        .all(db)
        .await?)
}

/// Claims one row for judging: sets `judged_at` (and `tracked` when the judge found a tracked
/// session after all) if no node judged it yet. `true` when this call claimed it.
pub async fn mark_judged(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    kind: &str,
    token: &str,
    tracked: bool,
    now: UnixMillis,
) -> Result<bool, StorageError> {
    use super::entities::shopify_carts::{Column as C, Entity};
    let mut update = Entity::update_many().col_expr(C::JudgedAt, Expr::value(now.0));
    if tracked {
        update = update.col_expr(C::Tracked, Expr::value(true));
    }
    let result = update
        .filter(C::SiteId.eq(scope.site_id().0))
        .filter(C::Kind.eq(kind))
        .filter(C::Token.eq(token))
        .filter(C::JudgedAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// A payment attempt from `order_transactions/create`.
#[derive(Debug, Clone, Default)]
pub struct PaymentAttempt {
    pub transaction_id: u64,
    pub order_id: Option<u64>,
    pub kind: Option<String>,
    pub gateway: Option<String>,
    pub status: String,
    pub error_code: Option<String>,
    pub card_bin: Option<String>,
    pub avs_result_code: Option<String>,
    pub cvv_result_code: Option<String>,
    pub amount: Option<String>,
    pub currency: Option<String>,
    pub test: bool,
}

/// Records a payment attempt; a later delivery for the same transaction (a status update)
/// replaces its status and codes.
pub async fn record_payment_attempt(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    p: &PaymentAttempt,
) -> Result<(), StorageError> {
    use super::entities::shopify_payment_attempts::Column as C;
    let insert = Query::insert()
        .into_table(super::entities::shopify_payment_attempts::Entity)
        .columns([
            C::SiteId,
            C::TransactionId,
            C::OrderId,
            C::Kind,
            C::Gateway,
            C::Status,
            C::ErrorCode,
            C::CardBin,
            C::AvsResultCode,
            C::CvvResultCode,
            C::Amount,
            C::Currency,
            C::Test,
            C::ReceivedAt,
        ])
        .values_panic([
            scope.site_id().0.into(),
            p.transaction_id.to_string().into(),
            p.order_id.map(|o| o.to_string()).into(),
            p.kind.clone().into(),
            p.gateway.clone().into(),
            p.status.clone().into(),
            p.error_code.clone().into(),
            p.card_bin.clone().into(),
            p.avs_result_code.clone().into(),
            p.cvv_result_code.clone().into(),
            p.amount.clone().into(),
            p.currency.clone().into(),
            p.test.into(),
            UnixMillis::now().0.into(),
        ])
        .on_conflict(
            OnConflict::columns([C::SiteId, C::TransactionId])
                .update_columns([C::Status, C::ErrorCode, C::AvsResultCode, C::CvvResultCode, C::ReceivedAt])
                .to_owned(),
        )
        .to_owned();
    db.execute(&insert).await?;
    Ok(())
}
