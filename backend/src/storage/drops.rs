//! Persisted drop counters: per site, UTC day and reason.

use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{ConnectionTrait, DbErr};

use super::entities::drop_counters;
use crate::domain::SiteId;

/// Adds `count` to each (site, day, reason) counter.
pub async fn add(db: &impl ConnectionTrait, increments: &[(SiteId, i32, &'static str, i64)]) -> Result<(), DbErr> {
    if increments.is_empty() {
        return Ok(());
    }
    use drop_counters::Column as C;
    let mut insert = Query::insert();
    insert.into_table(drop_counters::Entity).columns([C::SiteId, C::Day, C::Reason, C::Count]);
    for (site, day, reason, count) in increments {
        insert.values_panic([site.0.into(), (*day).into(), (*reason).into(), (*count).into()]);
    }
    insert.on_conflict(
        OnConflict::columns([C::SiteId, C::Day, C::Reason])
            .value(C::Count, Expr::cust(r#""drop_counters"."count" + excluded."count""#))
            .to_owned(),
    );
    db.execute(&insert).await?;
    Ok(())
}
