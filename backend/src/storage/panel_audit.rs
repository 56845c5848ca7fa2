//! The panel's audit log (`panel_audit_log`): who changed a tenant's privacy mode, exported or
//! deleted a visitor. `detail` holds ids and counts only.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::entities::panel_audit_log;
use super::{StorageError, TenantScope};
use crate::domain::UnixMillis;

/// Appends a record of `actor` doing `action` to the tenant.
pub async fn record(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    actor: &str,
    action: &str,
    detail: &serde_json::Value,
) -> Result<(), StorageError> {
    panel_audit_log::ActiveModel {
        site_id: Set(scope.site_id()),
        actor: Set(actor.chars().take(64).collect()),
        action: Set(action.to_owned()),
        detail: Set(detail.to_string()),
        created_at: Set(UnixMillis::now()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// The tenant's newest records, newest first.
pub async fn recent(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    limit: u64,
) -> Result<Vec<panel_audit_log::Model>, StorageError> {
    Ok(panel_audit_log::Entity::find()
        .filter(panel_audit_log::Column::SiteId.eq(scope.site_id()))
        .order_by_desc(panel_audit_log::Column::CreatedAt)
        .order_by_desc(panel_audit_log::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}
