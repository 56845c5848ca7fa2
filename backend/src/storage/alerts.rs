//! Alert policies and state, channels and the outbox. Reads and edits from the API take the
//! tenant scope first; the recorder and the worker act for the site a row belongs to.
//!
//! Concurrency: the recorder and the periodic alert job start their transaction with
//! [`lock_state`], an upsert of the tenant's row (a write: it takes SQLite's write lock at once
//! and locks the row on PostgreSQL), so two nodes never evaluate one tenant's state at the same
//! time. Outbox claims follow `webhook_inbox`: one `UPDATE … RETURNING`, `FOR UPDATE SKIP
//! LOCKED` on PostgreSQL, and a lease (`next_attempt_at` in the future) that expires if the
//! node dies.

use sea_orm::{
    ActiveValue::NotSet, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement,
};

use super::TenantScope;
use super::entities::{alert_channels, alert_outbox, alert_policies};
use crate::domain::{AlertChannelId, SiteId, UnixMillis};

pub type ChannelRow = alert_channels::Model;
pub type DeliveryRow = alert_outbox::Model;

pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const DEAD: &str = "dead";

/// The stored policy JSON of a tenant (`None` = default policy).
pub async fn policy(db: &impl ConnectionTrait, scope: TenantScope) -> Result<Option<String>, DbErr> {
    Ok(alert_policies::Entity::find_by_id(scope.site_id()).one(db).await?.and_then(|row| row.policy))
}

/// Stores a tenant's policy, keeping its state.
pub async fn save_policy(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    policy_json: &str,
    now: UnixMillis,
) -> Result<(), DbErr> {
    lock_state(db, scope.site_id(), now).await?;
    alert_policies::Entity::update(alert_policies::ActiveModel {
        site_id: Set(scope.site_id()),
        policy: Set(Some(policy_json.to_owned())),
        state: NotSet,
        updated_at: Set(now),
    })
    .exec(db)
    .await?;
    Ok(())
}

/// Creates or touches the tenant's row and returns (policy JSON, state JSON). Call first in a
/// transaction: it serialises alert evaluation per tenant across nodes.
pub async fn lock_state(
    db: &impl ConnectionTrait,
    site: SiteId,
    now: UnixMillis,
) -> Result<(Option<String>, String), DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            r#"INSERT INTO "alert_policies" ("site_id", "policy", "state", "updated_at") VALUES ($1, NULL, '{}', $2)
               ON CONFLICT ("site_id") DO UPDATE SET "updated_at" = EXCLUDED."updated_at"
               RETURNING "policy", "state""#
        }
        _ => {
            r#"INSERT INTO "alert_policies" ("site_id", "policy", "state", "updated_at") VALUES (?, NULL, '{}', ?)
               ON CONFLICT ("site_id") DO UPDATE SET "updated_at" = excluded."updated_at"
               RETURNING "policy", "state""#
        }
    };
    let row = db
        .query_one_raw(Statement::from_sql_and_values(backend, sql, [site.0.into(), now.0.into()]))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("alert_policies upsert returned no row".into()))?;
    Ok((row.try_get_by_index::<Option<String>>(0)?, row.try_get_by_index::<String>(1)?))
}

pub async fn save_state(
    db: &impl ConnectionTrait,
    site: SiteId,
    state_json: &str,
    now: UnixMillis,
) -> Result<(), DbErr> {
    alert_policies::Entity::update(alert_policies::ActiveModel {
        site_id: Set(site),
        policy: NotSet,
        state: Set(state_json.to_owned()),
        updated_at: Set(now),
    })
    .exec(db)
    .await?;
    Ok(())
}

/// (site, policy JSON, state JSON) of every tenant with an alert row, read without locking:
/// the periodic job decides from it which tenants need a (locked) step at all.
pub async fn all_states(db: &impl ConnectionTrait) -> Result<Vec<(SiteId, Option<String>, String)>, DbErr> {
    alert_policies::Entity::find()
        .select_only()
        .column(alert_policies::Column::SiteId)
        .column(alert_policies::Column::Policy)
        .column(alert_policies::Column::State)
        .order_by_asc(alert_policies::Column::SiteId)
        .into_tuple::<(SiteId, Option<String>, String)>()
        .all(db)
        .await
}

/// A channel to insert; `sealed` is the encrypted destination.
pub struct NewChannel<'a> {
    pub kind: &'a str,
    pub name: &'a str,
    pub display: &'a str,
    pub key_id: &'a str,
    pub sealed: &'a str,
}

pub async fn insert_channel(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    c: &NewChannel<'_>,
    now: UnixMillis,
) -> Result<ChannelRow, DbErr> {
    lock_state(db, scope.site_id(), now).await?;
    let model = alert_channels::ActiveModel {
        id: NotSet,
        site_id: Set(scope.site_id()),
        kind: Set(c.kind.to_owned()),
        name: Set(c.name.to_owned()),
        display: Set(c.display.to_owned()),
        key_id: Set(c.key_id.to_owned()),
        sealed: Set(c.sealed.to_owned()),
        enabled: Set(true),
        created_at: Set(now),
    };
    alert_channels::Entity::insert(model).exec_with_returning(db).await
}

/// Channels of every tenant whose destination was sealed with a key other than `key_id` (what a
/// change of `GHOSTTRACK_SECRET_KEY` leaves for `ghosttrack keys rotate`).
pub async fn channels_sealed_with_other_key(db: &impl ConnectionTrait, key_id: &str) -> Result<Vec<ChannelRow>, DbErr> {
    alert_channels::Entity::find()
        .filter(alert_channels::Column::KeyId.ne(key_id))
        .order_by_asc(alert_channels::Column::Id)
        .all(db)
        .await
}

/// Replaces a channel's sealed destination unless it changed since `row` was read.
pub async fn reseal_channel(
    db: &impl ConnectionTrait,
    row: &ChannelRow,
    key_id: &str,
    sealed: &str,
) -> Result<bool, DbErr> {
    let res = alert_channels::Entity::update_many()
        .col_expr(alert_channels::Column::KeyId, sea_orm::sea_query::Expr::value(key_id))
        .col_expr(alert_channels::Column::Sealed, sea_orm::sea_query::Expr::value(sealed))
        .filter(alert_channels::Column::Id.eq(row.id))
        .filter(alert_channels::Column::Sealed.eq(row.sealed.as_str()))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

pub async fn channels(db: &impl ConnectionTrait, scope: TenantScope) -> Result<Vec<ChannelRow>, DbErr> {
    alert_channels::Entity::find()
        .filter(alert_channels::Column::SiteId.eq(scope.site_id()))
        .order_by_asc(alert_channels::Column::Id)
        .all(db)
        .await
}

/// Enabled channels of a site (the recorder, writing outbox rows for that site's threats).
pub async fn enabled_channels(db: &impl ConnectionTrait, site: SiteId) -> Result<Vec<ChannelRow>, DbErr> {
    alert_channels::Entity::find()
        .filter(alert_channels::Column::SiteId.eq(site))
        .filter(alert_channels::Column::Enabled.eq(true))
        .order_by_asc(alert_channels::Column::Id)
        .all(db)
        .await
}

pub async fn channel(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    id: AlertChannelId,
) -> Result<Option<ChannelRow>, DbErr> {
    alert_channels::Entity::find_by_id(id).filter(alert_channels::Column::SiteId.eq(scope.site_id())).one(db).await
}

/// The channel of a claimed delivery (the worker acts for the row's own site).
pub async fn channel_of_delivery(db: &impl ConnectionTrait, row: &DeliveryRow) -> Result<Option<ChannelRow>, DbErr> {
    alert_channels::Entity::find_by_id(row.channel_id)
        .filter(alert_channels::Column::SiteId.eq(row.site_id))
        .one(db)
        .await
}

pub async fn delete_channel(db: &impl ConnectionTrait, scope: TenantScope, id: AlertChannelId) -> Result<bool, DbErr> {
    let result = alert_channels::Entity::delete_many()
        .filter(alert_channels::Column::SiteId.eq(scope.site_id()))
        .filter(alert_channels::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Turns a channel off (the unsubscribe link; the caller verified its token).
pub async fn disable_channel(db: &impl ConnectionTrait, id: AlertChannelId) -> Result<bool, DbErr> {
    let result = alert_channels::Entity::update_many()
        .col_expr(alert_channels::Column::Enabled, false.into())
        .filter(alert_channels::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// One (alert, channel) delivery to enqueue.
#[derive(Clone, Debug)]
pub struct NewDelivery {
    pub site_id: SiteId,
    pub channel_id: AlertChannelId,
    pub alert_id: String,
    pub kind: String,
    pub payload: String,
    pub idempotency_key: String,
}

pub async fn enqueue(db: &impl ConnectionTrait, rows: &[NewDelivery], now: UnixMillis) -> Result<(), DbErr> {
    if rows.is_empty() {
        return Ok(());
    }
    let models = rows.iter().map(|d| alert_outbox::ActiveModel {
        id: NotSet,
        site_id: Set(d.site_id),
        channel_id: Set(d.channel_id),
        alert_id: Set(d.alert_id.clone()),
        kind: Set(d.kind.clone()),
        payload: Set(d.payload.clone()),
        idempotency_key: Set(d.idempotency_key.clone()),
        status: Set(PENDING.into()),
        attempts: Set(0),
        next_attempt_at: Set(now),
        claim_token: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        delivered_at: Set(None),
    });
    alert_outbox::Entity::insert_many(models).exec_without_returning(db).await?;
    Ok(())
}

/// Claims up to `limit` due deliveries for `lease_ms` under `token`, counting the attempt.
pub async fn claim_due(
    db: &impl ConnectionTrait,
    now: UnixMillis,
    lease_ms: i64,
    limit: u64,
    token: &str,
) -> Result<Vec<DeliveryRow>, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            r#"UPDATE "alert_outbox" SET "next_attempt_at" = $1, "attempts" = "attempts" + 1, "claim_token" = $2
               WHERE "id" IN (SELECT "id" FROM "alert_outbox" WHERE "status" = 'pending' AND "next_attempt_at" <= $3
                              ORDER BY "next_attempt_at", "id" LIMIT $4 FOR UPDATE SKIP LOCKED)
               RETURNING "id""#
        }
        _ => {
            r#"UPDATE "alert_outbox" SET "next_attempt_at" = ?, "attempts" = "attempts" + 1, "claim_token" = ?
               WHERE "id" IN (SELECT "id" FROM "alert_outbox" WHERE "status" = 'pending' AND "next_attempt_at" <= ?
                              ORDER BY "next_attempt_at", "id" LIMIT ?)
               RETURNING "id""#
        }
    };
    let values: [sea_orm::Value; 4] = [(now.0 + lease_ms).into(), token.into(), now.0.into(), (limit as i64).into()];
    let rows = db.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.try_get_by_index::<i64>(0)).collect::<Result<_, _>>()?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    alert_outbox::Entity::find()
        .filter(alert_outbox::Column::Id.is_in(ids))
        .filter(alert_outbox::Column::ClaimToken.eq(token))
        .order_by_asc(alert_outbox::Column::Id)
        .all(db)
        .await
}

/// Marks a claimed delivery sent. False when the claim was lost (the lease expired and another
/// worker took the row).
pub async fn mark_delivered(db: &impl ConnectionTrait, id: i64, token: &str, now: UnixMillis) -> Result<bool, DbErr> {
    let result = alert_outbox::Entity::update_many()
        .col_expr(alert_outbox::Column::Status, DELIVERED.into())
        .col_expr(alert_outbox::Column::DeliveredAt, now.0.into())
        .col_expr(alert_outbox::Column::LastError, Option::<String>::None.into())
        .filter(alert_outbox::Column::Id.eq(id))
        .filter(alert_outbox::Column::ClaimToken.eq(token))
        .filter(alert_outbox::Column::Status.eq(PENDING))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Schedules a retry at `retry_at`, or moves the row to the dead letters when `None`.
pub async fn mark_failed(
    db: &impl ConnectionTrait,
    id: i64,
    token: &str,
    error: &str,
    retry_at: Option<UnixMillis>,
) -> Result<bool, DbErr> {
    let mut update = alert_outbox::Entity::update_many()
        .col_expr(alert_outbox::Column::LastError, error.chars().take(500).collect::<String>().into());
    update = match retry_at {
        Some(at) => update.col_expr(alert_outbox::Column::NextAttemptAt, at.0.into()),
        None => update.col_expr(alert_outbox::Column::Status, DEAD.into()),
    };
    let result = update
        .filter(alert_outbox::Column::Id.eq(id))
        .filter(alert_outbox::Column::ClaimToken.eq(token))
        .filter(alert_outbox::Column::Status.eq(PENDING))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Newest deliveries of a tenant, optionally of one status.
pub async fn deliveries(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    status: Option<&str>,
    limit: u64,
) -> Result<Vec<DeliveryRow>, DbErr> {
    let mut q = alert_outbox::Entity::find().filter(alert_outbox::Column::SiteId.eq(scope.site_id()));
    if let Some(s) = status {
        q = q.filter(alert_outbox::Column::Status.eq(s));
    }
    q.order_by_desc(alert_outbox::Column::Id).limit(limit).all(db).await
}

/// Outcome of [`retry_dead`].
#[derive(Debug, PartialEq, Eq)]
pub enum Retry {
    Queued,
    NotFound,
    NotDead,
}

/// Puts a dead letter back in the queue with a fresh attempt budget.
pub async fn retry_dead(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    id: i64,
    now: UnixMillis,
) -> Result<Retry, DbErr> {
    let Some(row) =
        alert_outbox::Entity::find_by_id(id).filter(alert_outbox::Column::SiteId.eq(scope.site_id())).one(db).await?
    else {
        return Ok(Retry::NotFound);
    };
    if row.status != DEAD {
        return Ok(Retry::NotDead);
    }
    alert_outbox::Entity::update_many()
        .col_expr(alert_outbox::Column::Status, PENDING.into())
        .col_expr(alert_outbox::Column::Attempts, 0.into())
        .col_expr(alert_outbox::Column::NextAttemptAt, now.0.into())
        .col_expr(alert_outbox::Column::ClaimToken, Option::<String>::None.into())
        .filter(alert_outbox::Column::Id.eq(id))
        .filter(alert_outbox::Column::Status.eq(DEAD))
        .exec(db)
        .await?;
    Ok(Retry::Queued)
}

/// Deletes delivered rows created before `before` (dead letters stay until retried or the site
/// is deleted). Returns how many went.
pub async fn prune_delivered(db: &impl ConnectionTrait, before: UnixMillis) -> Result<u64, DbErr> {
    let result = alert_outbox::Entity::delete_many()
        .filter(alert_outbox::Column::Status.eq(DELIVERED))
        .filter(alert_outbox::Column::CreatedAt.lt(before))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}
