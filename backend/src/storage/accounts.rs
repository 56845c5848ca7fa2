//! Standalone users and their login sessions. User functions take the tenant scope first;
//! the two lookups that establish a tenant (users by email at login, sessions by token hash)
//! are the exceptions, and say so.

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr, TransactionTrait,
};

use super::entities::{account_sessions, users};
use super::{StorageError, TenantScope};
use crate::accounts::{AccountSessionId, Email, Role, UserId};
use crate::domain::{SiteId, UnixMillis};

/// Most users one email may have across sites that a login tries (each costs an argon2 check).
pub const MAX_LOGIN_CANDIDATES: u64 = 5;

/// A user as the rest of the app sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub id: UserId,
    pub site_id: SiteId,
    pub email: Email,
    pub role: Role,
    pub created_at: UnixMillis,
}

impl User {
    fn from_model(m: users::Model) -> User {
        // An unknown stored role can only come from a manual edit: read it as least privilege.
        let role = Role::parse(&m.role).unwrap_or(Role::Viewer);
        User { id: m.id, site_id: m.site_id, email: m.email, role, created_at: m.created_at }
    }
}

/// Why a user change was refused.
#[derive(Debug, thiserror::Error)]
pub enum UserWriteError {
    #[error("a user with this email already exists on this site")]
    EmailTaken,
    #[error("no such user")]
    NotFound,
    #[error("the site's last owner cannot be removed or demoted")]
    LastOwner,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<DbErr> for UserWriteError {
    fn from(e: DbErr) -> Self {
        if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) {
            UserWriteError::EmailTaken
        } else {
            UserWriteError::Storage(StorageError::from(e))
        }
    }
}

pub async fn insert_user(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    email: &Email,
    password_hash: &str,
    role: Role,
    now: UnixMillis,
) -> Result<User, UserWriteError> {
    let model = users::ActiveModel {
        site_id: Set(scope.site_id()),
        email: Set(email.clone()),
        password_hash: Set(password_hash.to_owned()),
        role: Set(role.as_str().to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(User::from_model(model))
}

/// Login: every user with this email (on any site) with the stored password hash. Not
/// tenant-scoped: this lookup is what finds the tenant, once the password verifies.
pub async fn login_candidates(db: &impl ConnectionTrait, email: &Email) -> Result<Vec<(User, String)>, StorageError> {
    Ok(users::Entity::find()
        .filter(users::Column::Email.eq(email.clone()))
        .order_by_asc(users::Column::Id)
        .limit(MAX_LOGIN_CANDIDATES)
        .all(db)
        .await?
        .into_iter()
        .map(|m| {
            let hash = m.password_hash.clone();
            (User::from_model(m), hash)
        })
        .collect())
}

pub async fn find_user(
    db: &impl ConnectionTrait,
    scope: TenantScope,
    id: UserId,
) -> Result<Option<User>, StorageError> {
    Ok(users::Entity::find_by_id(id)
        .filter(users::Column::SiteId.eq(scope.site_id()))
        .one(db)
        .await?
        .map(User::from_model))
}

pub async fn list_users(db: &impl ConnectionTrait, scope: TenantScope) -> Result<Vec<User>, StorageError> {
    Ok(users::Entity::find()
        .filter(users::Column::SiteId.eq(scope.site_id()))
        .order_by_asc(users::Column::Email)
        .all(db)
        .await?
        .into_iter()
        .map(User::from_model)
        .collect())
}

/// Removes a user (their sessions go with them, by foreign key) or changes their role, in a
/// transaction that holds the site's owner rows, so two owners demoting each other at once
/// cannot leave a site without an owner.
pub async fn remove_or_change_role(
    db: &DatabaseConnection,
    scope: TenantScope,
    id: UserId,
    new_role: Option<Role>,
    now: UnixMillis,
) -> Result<User, UserWriteError> {
    let txn = db.begin().await.map_err(StorageError::from)?;
    let owners = users::Entity::find()
        .filter(users::Column::SiteId.eq(scope.site_id()))
        .filter(users::Column::Role.eq(Role::Owner.as_str()))
        .lock_exclusive()
        .all(&txn)
        .await
        .map_err(StorageError::from)?;
    let user = find_user(&txn, scope, id).await?.ok_or(UserWriteError::NotFound)?;
    let stays_owner = new_role == Some(Role::Owner);
    if user.role == Role::Owner && !stays_owner && owners.len() <= 1 {
        return Err(UserWriteError::LastOwner);
    }
    let filter = users::Column::Id.eq(id).and(users::Column::SiteId.eq(scope.site_id()));
    let result = match new_role {
        None => users::Entity::delete_many().filter(filter).exec(&txn).await.map_err(StorageError::from)?.rows_affected,
        Some(role) => {
            users::Entity::update_many()
                .col_expr(users::Column::Role, Expr::value(role.as_str()))
                .col_expr(users::Column::UpdatedAt, Expr::value(now.0))
                .filter(filter)
                .exec(&txn)
                .await
                .map_err(StorageError::from)?
                .rows_affected
        }
    };
    if result == 0 {
        return Err(UserWriteError::NotFound);
    }
    txn.commit().await.map_err(StorageError::from)?;
    Ok(User { role: new_role.unwrap_or(user.role), ..user })
}

pub async fn count_users(db: &impl ConnectionTrait, scope: TenantScope) -> Result<u64, StorageError> {
    Ok(users::Entity::find().filter(users::Column::SiteId.eq(scope.site_id())).count(db).await?)
}

/// A live session and its user.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveSession {
    pub id: AccountSessionId,
    pub user: User,
    pub last_seen_at: UnixMillis,
}

pub async fn insert_session(
    db: &impl ConnectionTrait,
    user: &User,
    token_hash: &str,
    now: UnixMillis,
    expires_at: UnixMillis,
) -> Result<AccountSessionId, StorageError> {
    let model = account_sessions::ActiveModel {
        token_hash: Set(token_hash.to_owned()),
        user_id: Set(user.id),
        site_id: Set(user.site_id),
        created_at: Set(now),
        last_seen_at: Set(now),
        expires_at: Set(expires_at),
        revoked_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(model.id)
}

/// The session whose cookie hashes to `token_hash`, if it is not revoked, not past its
/// absolute expiry and was seen since `idle_since`. Not tenant-scoped: a verified session
/// is what yields the tenant.
pub async fn find_live_session(
    db: &impl ConnectionTrait,
    token_hash: &str,
    now: UnixMillis,
    idle_since: UnixMillis,
) -> Result<Option<LiveSession>, StorageError> {
    let Some(session) = account_sessions::Entity::find()
        .filter(account_sessions::Column::TokenHash.eq(token_hash))
        .filter(account_sessions::Column::RevokedAt.is_null())
        .filter(account_sessions::Column::ExpiresAt.gt(now))
        .filter(account_sessions::Column::LastSeenAt.gt(idle_since))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let user = users::Entity::find_by_id(session.user_id)
        .filter(users::Column::SiteId.eq(session.site_id))
        .one(db)
        .await?
        .map(User::from_model);
    Ok(user.map(|user| LiveSession { id: session.id, user, last_seen_at: session.last_seen_at }))
}

pub async fn touch_session(
    db: &impl ConnectionTrait,
    id: AccountSessionId,
    now: UnixMillis,
) -> Result<(), StorageError> {
    account_sessions::Entity::update_many()
        .col_expr(account_sessions::Column::LastSeenAt, Expr::value(now.0))
        .filter(account_sessions::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Revokes the session with this token hash; true when a live one was revoked.
pub async fn revoke_session(
    db: &impl ConnectionTrait,
    token_hash: &str,
    now: UnixMillis,
) -> Result<bool, StorageError> {
    let result = account_sessions::Entity::update_many()
        .col_expr(account_sessions::Column::RevokedAt, Expr::value(now.0))
        .filter(account_sessions::Column::TokenHash.eq(token_hash))
        .filter(account_sessions::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}

/// Deletes sessions that ended before `before` (expired or revoked); housekeeping.
pub async fn delete_ended_sessions(db: &impl ConnectionTrait, before: UnixMillis) -> Result<u64, StorageError> {
    let result = account_sessions::Entity::delete_many()
        .filter(account_sessions::Column::ExpiresAt.lt(before).or(account_sessions::Column::RevokedAt.lt(before)))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}
