//! Daily salts for cookieless visitor ids: one random 32-byte salt per UTC day, shared by all
//! nodes through the database, deleted once older than 48 hours.

use rand::RngCore;
use sea_orm::sea_query::{OnConflict, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use super::StorageError;
use super::entities::daily_salts;
use crate::domain::UnixMillis;

pub const SALT_LEN: usize = 32;

/// Returns the salt of `day`, creating it if no node has yet. Concurrent creators race on the
/// primary key; the loser's insert is ignored and everyone reads the winner's salt.
pub async fn get_or_create(db: &impl ConnectionTrait, day: i32) -> Result<[u8; SALT_LEN], StorageError> {
    let mut fresh = [0u8; SALT_LEN];
    rand::rng().fill_bytes(&mut fresh);
    let insert = Query::insert()
        .into_table(daily_salts::Entity)
        .columns([daily_salts::Column::Day, daily_salts::Column::Salt, daily_salts::Column::CreatedAt])
        .values_panic([day.into(), fresh.to_vec().into(), UnixMillis::now().0.into()])
        .on_conflict(OnConflict::column(daily_salts::Column::Day).do_nothing().to_owned())
        .to_owned();
    // `do_nothing` makes a conflicting insert affect zero rows; on SQLite/PG it is not an error.
    db.execute(&insert).await?;
    let row = daily_salts::Entity::find_by_id(day)
        .one(db)
        .await?
        .ok_or_else(|| sea_orm::DbErr::RecordNotFound(format!("daily salt for day {day}")))?;
    let mut salt = [0u8; SALT_LEN];
    if row.salt.len() != SALT_LEN {
        return Err(sea_orm::DbErr::Custom(format!("daily salt for day {day} has the wrong length")).into());
    }
    salt.copy_from_slice(&row.salt);
    Ok(salt)
}

/// Deletes salts created before `cutoff`; returns how many were deleted.
pub async fn delete_created_before(db: &impl ConnectionTrait, cutoff: UnixMillis) -> Result<u64, StorageError> {
    let res = daily_salts::Entity::delete_many().filter(daily_salts::Column::CreatedAt.lt(cutoff)).exec(db).await?;
    Ok(res.rows_affected)
}
