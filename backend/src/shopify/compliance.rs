//! The mandatory compliance actions (spec shopify-auth §3.6): export, customer redaction and
//! shop redaction, each audit-logged with ids and counts only.

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use super::shop_domain::ShopDomain;
use crate::storage::entities::shopify_audit_log;
use crate::storage::{StorageError, shopify_orders, shops};

/// Audit action under which `customers/data_request` exports are stored.
pub const EXPORT_ACTION: &str = "customer_data_export";

/// Deletes every order of the customer (by customer id or listed order ids) and any stored
/// export about them. Returns the number of orders deleted.
pub async fn redact_customer(
    db: &DatabaseConnection,
    shop: &ShopDomain,
    customer_id: Option<u64>,
    order_ids: &[u64],
) -> Result<u64, StorageError> {
    let mut deleted = 0;
    if let Some(found) = shops::find(db, shop).await? {
        deleted = shopify_orders::redact_customer(db, found.scope(), customer_id, order_ids).await?;
    }
    let mut exports_deleted = 0;
    if let Some(id) = customer_id {
        let res = shopify_audit_log::Entity::delete_many()
            .filter(shopify_audit_log::Column::ShopDomain.eq(shop.as_str()))
            .filter(shopify_audit_log::Column::Action.eq(EXPORT_ACTION))
            .filter(shopify_audit_log::Column::Detail.starts_with(format!(r#"{{"customer_id":"{id}","#)))
            .exec(db)
            .await?;
        exports_deleted = res.rows_affected;
    }
    let detail = serde_json::json!({
        "orders_deleted": deleted,
        "exports_deleted": exports_deleted,
        "orders_listed": order_ids.len(),
    });
    shops::audit(db, shop, "customers/redact", &detail).await?;
    Ok(deleted)
}

/// Purges the tenant (sessions, events, orders, the site and shop rows). Idempotent: a second
/// delivery finds nothing and logs zero rows. Returns the number of rows deleted.
pub async fn redact_shop(db: &DatabaseConnection, shop: &ShopDomain) -> Result<u64, StorageError> {
    let Some(found) = shops::find(db, shop).await? else {
        shops::audit(db, shop, "shop/redact", &serde_json::json!({ "rows_deleted": 0, "known": false })).await?;
        return Ok(0);
    };
    let counts = shopify_orders::purge_tenant(db, found.scope()).await?;
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    let per_table: serde_json::Map<String, serde_json::Value> =
        counts.into_iter().map(|(t, n)| (t.to_owned(), n.into())).collect();
    shops::audit(db, shop, "shop/redact", &serde_json::json!({ "rows_deleted": total, "tables": per_table })).await?;
    Ok(total)
}
