//! Each tenant's rule settings from the panel (one JSON map per site). The API writes through
//! the tenant scope; the detector's sync reads every site's row changed since its last read.

use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};

use super::TenantScope;
use super::entities::rule_settings::{self, Column, Entity};
use crate::domain::{SiteId, UnixMillis};

/// The tenant's stored rule settings JSON, if any.
pub async fn get(db: &impl ConnectionTrait, scope: TenantScope) -> Result<Option<String>, DbErr> {
    Ok(Entity::find_by_id(scope.site_id()).one(db).await?.map(|r| r.rules))
}

/// Stores the tenant's rule settings (replacing the previous ones).
pub async fn save(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    rules_json: &str,
    now: UnixMillis,
) -> Result<(), DbErr> {
    let row = rule_settings::ActiveModel {
        site_id: Set(scope.site_id()),
        rules: Set(rules_json.to_owned()),
        updated_at: Set(now),
    };
    Entity::insert(row)
        .on_conflict(OnConflict::column(Column::SiteId).update_columns([Column::Rules, Column::UpdatedAt]).to_owned())
        .exec(db)
        .await?;
    Ok(())
}

/// Every site's settings written at or after `since`, oldest first: `(site, JSON, updated_at)`.
pub async fn changed_since(
    db: &impl ConnectionTrait,
    since: UnixMillis,
) -> Result<Vec<(SiteId, String, UnixMillis)>, DbErr> {
    let rows = Entity::find().filter(Column::UpdatedAt.gte(since)).order_by_asc(Column::UpdatedAt).all(db).await?;
    Ok(rows.into_iter().map(|r| (r.site_id, r.rules, r.updated_at)).collect())
}
