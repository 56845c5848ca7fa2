//! Tenants' wrapped data keys for event payload encryption (`keys::events`), and the row-level
//! statements of the re-encrypt pass. Every write is a compare-and-set on the value read, so a
//! rotation can run while the server writes and reads.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};

use super::entities::event_data_keys::{self, Column as C};
use super::{StorageError, TenantScope};
use crate::domain::UnixMillis;

pub type DataKeyRow = event_data_keys::Model;

/// A new wrapped key of the tenant.
pub struct NewDataKey<'a> {
    pub key_id: &'a str,
    pub wrapped_key: &'a str,
    pub master_key_id: &'a str,
}

/// Stores a new key; it takes over new writes once the previous active key is retired (the
/// caller does both in one transaction).
pub async fn insert(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    key: NewDataKey<'_>,
) -> Result<DataKeyRow, StorageError> {
    Ok(event_data_keys::ActiveModel {
        site_id: Set(scope.site_id()),
        key_id: Set(key.key_id.to_owned()),
        wrapped_key: Set(key.wrapped_key.to_owned()),
        master_key_id: Set(key.master_key_id.to_owned()),
        created_at: Set(UnixMillis::now()),
        retired_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?)
}

/// The key new events of the tenant are sealed with (`None`: encryption is off).
pub async fn active(db: &impl ConnectionTrait, scope: TenantScope) -> Result<Option<DataKeyRow>, StorageError> {
    Ok(event_data_keys::Entity::find()
        .filter(C::SiteId.eq(scope.site_id()))
        .filter(C::RetiredAt.is_null())
        .order_by_desc(C::Id)
        .one(db)
        .await?)
}

/// One key of the tenant by its public id (what an envelope names).
pub async fn find(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    key_id: &str,
) -> Result<Option<DataKeyRow>, StorageError> {
    Ok(event_data_keys::Entity::find()
        .filter(C::SiteId.eq(scope.site_id()))
        .filter(C::KeyId.eq(key_id))
        .one(db)
        .await?)
}

/// Every key of the tenant, oldest first.
pub async fn of_site(db: &impl ConnectionTrait, scope: TenantScope) -> Result<Vec<DataKeyRow>, StorageError> {
    Ok(event_data_keys::Entity::find().filter(C::SiteId.eq(scope.site_id())).order_by_asc(C::Id).all(db).await?)
}

/// Every key of every tenant (rotation and status; one row per tenant and rotation).
pub async fn all(db: &impl ConnectionTrait) -> Result<Vec<DataKeyRow>, StorageError> {
    Ok(event_data_keys::Entity::find().order_by_asc(C::Id).all(db).await?)
}

/// Retires the tenant's active key(s): new events are no longer sealed with them.
pub async fn retire_active(db: &impl ConnectionTrait, scope: TenantScope) -> Result<u64, StorageError> {
    let res = event_data_keys::Entity::update_many()
        .col_expr(C::RetiredAt, Expr::value(UnixMillis::now().0))
        .filter(C::SiteId.eq(scope.site_id()))
        .filter(C::RetiredAt.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}

/// Replaces a key's wrapping if nobody changed it since `row` was read.
pub async fn rewrap(
    db: &impl ConnectionTrait,
    row: &DataKeyRow,
    wrapped_key: &str,
    master_key_id: &str,
) -> Result<bool, StorageError> {
    let res = event_data_keys::Entity::update_many()
        .col_expr(C::WrappedKey, Expr::value(wrapped_key))
        .col_expr(C::MasterKeyId, Expr::value(master_key_id))
        .filter(C::Id.eq(row.id))
        .filter(C::WrappedKey.eq(row.wrapped_key.as_str()))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Tenants with at least one data key: their props may hold envelopes, so readers that look
/// inside props in SQL take the decrypting path for them.
pub async fn has_keys(db: &impl ConnectionTrait, scope: TenantScope) -> Result<bool, StorageError> {
    Ok(event_data_keys::Entity::find()
        .filter(C::SiteId.eq(scope.site_id()))
        .select_only()
        .column(C::Id)
        .into_tuple::<i64>()
        .one(db)
        .await?
        .is_some())
}

/// Up to `limit` events of the tenant with props not sealed under `current_prefix` (the
/// envelope prefix of the active key), after event id `after`, in id order: the next batch of
/// the re-encrypt pass. Resuming from the last id seen makes the pass restartable.
pub async fn events_to_reseal(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    current_prefix: &str,
    after: i64,
    limit: u64,
) -> Result<Vec<(i64, String)>, StorageError> {
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => format!(
            r#"SELECT "id", "props" FROM "events" WHERE "site_id" = $1 AND "id" > $2 AND "props" IS NOT NULL
               AND strpos("props", $3) <> 1 ORDER BY "id" LIMIT {limit}"#
        ),
        _ => format!(
            r#"SELECT "id", "props" FROM "events" WHERE "site_id" = ? AND "id" > ? AND "props" IS NOT NULL
               AND instr("props", ?) <> 1 ORDER BY "id" LIMIT {limit}"#
        ),
    };
    let values = [scope.site_id().0.into(), after.into(), current_prefix.into()];
    let rows = db.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    rows.iter()
        .map(|r| Ok((r.try_get_by_index::<i64>(0)?, r.try_get_by_index::<String>(1)?)))
        .collect::<Result<_, sea_orm::DbErr>>()
        .map_err(Into::into)
}

/// Writes a re-sealed payload unless the row changed (or went) since it was read.
pub async fn replace_props(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    id: i64,
    old: &str,
    new: &str,
) -> Result<bool, StorageError> {
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => {
            r#"UPDATE "events" SET "props" = $1 WHERE "site_id" = $2 AND "id" = $3 AND "props" = $4"#
        }
        _ => r#"UPDATE "events" SET "props" = ? WHERE "site_id" = ? AND "id" = ? AND "props" = ?"#,
    };
    let values = [new.into(), scope.site_id().0.into(), id.into(), old.into()];
    let res = db.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    Ok(res.rows_affected() == 1)
}
