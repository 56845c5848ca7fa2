//! Invitations to join a site: created by an owner (tenant-scoped), accepted by token (the
//! token is the credential that yields the tenant). Acceptance marks the invitation used and
//! creates the user in one transaction, so a link works exactly once.

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait,
};

use super::accounts::{self, User, UserWriteError};
use super::entities::invitations;
use super::{StorageError, TenantScope};
use crate::accounts::{Email, InvitationId, Role, UserId};
use crate::domain::UnixMillis;

/// An invitation as its creator sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Invitation {
    pub id: InvitationId,
    pub email: Email,
    pub role: Role,
    pub expires_at: UnixMillis,
}

pub struct NewInvitation<'a> {
    pub email: &'a Email,
    pub role: Role,
    pub token_hash: &'a str,
    pub invited_by: UserId,
    pub expires_at: UnixMillis,
}

pub async fn insert(
    db: &DatabaseConnection,
    scope: TenantScope,
    new: NewInvitation<'_>,
    now: UnixMillis,
) -> Result<Invitation, StorageError> {
    let model = invitations::ActiveModel {
        site_id: Set(scope.site_id()),
        email: Set(new.email.clone()),
        role: Set(new.role.as_str().to_owned()),
        token_hash: Set(new.token_hash.to_owned()),
        invited_by: Set(Some(new.invited_by)),
        created_at: Set(now),
        expires_at: Set(new.expires_at),
        accepted_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(Invitation { id: model.id, email: model.email, role: new.role, expires_at: model.expires_at })
}

#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// Unknown, already used or expired: one answer for all three.
    #[error("the invitation is invalid, used or expired")]
    Invalid,
    #[error(transparent)]
    User(#[from] UserWriteError),
}

impl From<StorageError> for AcceptError {
    fn from(e: StorageError) -> Self {
        AcceptError::User(UserWriteError::Storage(e))
    }
}

/// Uses the invitation with this token hash and creates its user with `password_hash`.
pub async fn accept(
    db: &DatabaseConnection,
    token_hash: &str,
    password_hash: &str,
    now: UnixMillis,
) -> Result<User, AcceptError> {
    let txn = db.begin().await.map_err(StorageError::from)?;
    let invitation = invitations::Entity::find()
        .filter(invitations::Column::TokenHash.eq(token_hash))
        .filter(invitations::Column::AcceptedAt.is_null())
        .filter(invitations::Column::ExpiresAt.gt(now))
        .one(&txn)
        .await
        .map_err(StorageError::from)?
        .ok_or(AcceptError::Invalid)?;
    // Conditional on still being unused: of two concurrent accepts only one updates a row.
    let used = invitations::Entity::update_many()
        .col_expr(invitations::Column::AcceptedAt, Expr::value(now.0))
        .filter(invitations::Column::Id.eq(invitation.id).and(invitations::Column::AcceptedAt.is_null()))
        .exec(&txn)
        .await
        .map_err(StorageError::from)?;
    if used.rows_affected != 1 {
        return Err(AcceptError::Invalid);
    }
    let scope = TenantScope::verified(invitation.site_id);
    let role = Role::parse(&invitation.role).unwrap_or(Role::Viewer);
    let user = accounts::insert_user(&txn, scope, &invitation.email, password_hash, role, now).await?;
    txn.commit().await.map_err(StorageError::from)?;
    Ok(user)
}
