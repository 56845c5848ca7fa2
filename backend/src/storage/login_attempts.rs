//! Failed logins per hashed key (`accounts::rate_limit`), shared by every node.

use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::StorageError;
use super::entities::login_attempts;
use crate::domain::UnixMillis;

/// The key's most recent failures after `since`, newest first, at most `limit`.
pub async fn recent(
    db: &impl ConnectionTrait,
    key: &str,
    since: UnixMillis,
    limit: usize,
) -> Result<Vec<UnixMillis>, StorageError> {
    Ok(login_attempts::Entity::find()
        .filter(login_attempts::Column::Key.eq(key))
        .filter(login_attempts::Column::At.gt(since))
        .order_by_desc(login_attempts::Column::At)
        .limit(limit as u64)
        .all(db)
        .await?
        .into_iter()
        .map(|m| m.at)
        .collect())
}

/// Records one failure against each key and forgets failures older than `forget_before`.
pub async fn record_failure(
    db: &impl ConnectionTrait,
    keys: &[&str],
    now: UnixMillis,
    forget_before: UnixMillis,
) -> Result<(), StorageError> {
    let rows = keys.iter().map(|key| login_attempts::ActiveModel {
        key: Set((*key).to_owned()),
        at: Set(now),
        ..Default::default()
    });
    login_attempts::Entity::insert_many(rows).exec(db).await?;
    login_attempts::Entity::delete_many().filter(login_attempts::Column::At.lt(forget_before)).exec(db).await?;
    Ok(())
}

/// Forgets the key's failures (after a successful login for an email).
pub async fn clear(db: &impl ConnectionTrait, key: &str) -> Result<(), StorageError> {
    login_attempts::Entity::delete_many().filter(login_attempts::Column::Key.eq(key)).exec(db).await?;
    Ok(())
}
