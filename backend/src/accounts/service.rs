//! The account operations the API and the CLI call: log in and out, who am I, invite and
//! accept, list, remove and re-role users. Each checks the principal's role itself, so no
//! handler can forget to.

use std::net::IpAddr;

use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait};

use super::password::{self, HashError, Password, PasswordPolicyError};
use super::rate_limit::{self, LimitKey};
use super::token::SecretToken;
use super::{AccountPrincipal, Action, Email, INVITATION_VALID_MS, InvitationId, Role, SESSION_ABSOLUTE_MS, UserId};
use crate::domain::{SiteId, UnixMillis};
use crate::storage::accounts::{self as store, User, UserWriteError};
use crate::storage::entities::sites;
use crate::storage::invitations::{self, AcceptError, NewInvitation};
use crate::storage::{StorageError, TenantScope, login_attempts};

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// One answer for an unknown email and a wrong password.
    #[error("the email or password is wrong")]
    InvalidCredentials,
    #[error("too many failed logins; try again in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("`{0}` is not an email address")]
    InvalidEmail(String),
    #[error(transparent)]
    WeakPassword(#[from] PasswordPolicyError),
    #[error("your role may not do this")]
    Forbidden,
    #[error("no such user")]
    NotFound,
    #[error("no site with domain {0} (create it with `ghosttrack site add --domain {0}`)")]
    NoSuchSite(String),
    #[error("a user with this email already exists on this site")]
    EmailTaken,
    #[error("the site's last owner cannot be removed or demoted; make someone else owner first")]
    LastOwner,
    #[error("the invitation is invalid, already used or expired; ask an owner for a new one")]
    InvalidInvitation,
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<UserWriteError> for AccountError {
    fn from(e: UserWriteError) -> Self {
        match e {
            UserWriteError::EmailTaken => AccountError::EmailTaken,
            UserWriteError::NotFound => AccountError::NotFound,
            UserWriteError::LastOwner => AccountError::LastOwner,
            UserWriteError::Storage(e) => AccountError::Storage(e),
        }
    }
}

impl From<sea_orm::DbErr> for AccountError {
    fn from(e: sea_orm::DbErr) -> Self {
        AccountError::Storage(e.into())
    }
}

/// A user with their site's domain: what `/me` and login return.
#[derive(Clone, Debug)]
pub struct AccountView {
    pub user: User,
    pub site_domain: String,
}

/// A successful login: the account and the new session's secret (the cookie value).
#[derive(Debug)]
pub struct LoginOutcome {
    pub account: AccountView,
    pub session: SecretToken,
}

fn parse_email(raw: &str) -> Result<Email, AccountError> {
    Email::parse(raw).ok_or_else(|| AccountError::InvalidEmail(raw.chars().take(64).collect()))
}

fn require(principal: &AccountPrincipal, action: Action) -> Result<(), AccountError> {
    if principal.allows(action) { Ok(()) } else { Err(AccountError::Forbidden) }
}

async fn site_domain(db: &impl ConnectionTrait, site: SiteId) -> Result<String, AccountError> {
    Ok(sites::Entity::find_by_id(site).one(db).await?.map(|s| s.domain).unwrap_or_default())
}

/// Checks the rate limit, verifies the password and opens a session. `client_ip` is the
/// resolved client address (its /24 or /48 is limited as a whole).
pub async fn login(
    db: &DatabaseConnection,
    email: &str,
    password: Password,
    client_ip: IpAddr,
) -> Result<LoginOutcome, AccountError> {
    let now = UnixMillis::now();
    let since = UnixMillis(now.0 - rate_limit::WINDOW_MS);
    let email = Email::parse(email);
    let mut keys = vec![LimitKey::network(client_ip)];
    keys.extend(email.as_ref().map(LimitKey::email));
    let mut wait = None;
    for key in &keys {
        let recent = login_attempts::recent(db, &key.key, since, key.max_failures).await?;
        wait = wait.max(rate_limit::retry_after_secs(&recent, key.max_failures, now));
    }
    if let Some(retry_after_secs) = wait {
        return Err(AccountError::RateLimited { retry_after_secs });
    }

    let candidates = match &email {
        Some(email) => store::login_candidates(db, email).await?,
        None => Vec::new(),
    };
    let mut matched = None;
    if candidates.is_empty() {
        password::verify(password, None).await?;
    } else {
        for (user, hash) in candidates {
            if password::verify(password.clone(), Some(password::PasswordHashString(hash))).await? {
                matched = Some(user);
                break;
            }
        }
    }
    let Some(user) = matched else {
        let key_refs: Vec<&str> = keys.iter().map(|k| k.key.as_str()).collect();
        login_attempts::record_failure(db, &key_refs, now, since).await?;
        tracing::info!("login failed");
        return Err(AccountError::InvalidCredentials);
    };
    if let Some(email_key) = keys.get(1) {
        login_attempts::clear(db, &email_key.key).await?;
    }
    let session = SecretToken::generate();
    store::insert_session(db, &user, &session.hash().0, now, UnixMillis(now.0 + SESSION_ABSOLUTE_MS)).await?;
    tracing::info!(user.id = user.id.0, site.id = user.site_id.0, "login succeeded");
    let site_domain = site_domain(db, user.site_id).await?;
    Ok(LoginOutcome { account: AccountView { user, site_domain }, session })
}

/// Revokes the session behind this cookie value (after `authenticate_session` accepted it).
pub async fn logout(db: &DatabaseConnection, cookie_value: &str) -> Result<(), AccountError> {
    if let Some(token) = SecretToken::parse(cookie_value) {
        store::revoke_session(db, &token.hash().0, UnixMillis::now()).await?;
    }
    Ok(())
}

pub async fn me(db: &DatabaseConnection, principal: &AccountPrincipal) -> Result<AccountView, AccountError> {
    let user = store::find_user(db, principal.scope, principal.user_id).await?.ok_or(AccountError::NotFound)?;
    let site_domain = site_domain(db, user.site_id).await?;
    Ok(AccountView { user, site_domain })
}

pub async fn list_users(db: &DatabaseConnection, principal: &AccountPrincipal) -> Result<Vec<User>, AccountError> {
    require(principal, Action::ManageUsers)?;
    Ok(store::list_users(db, principal.scope).await?)
}

pub async fn remove_user(
    db: &DatabaseConnection,
    principal: &AccountPrincipal,
    id: UserId,
) -> Result<(), AccountError> {
    require(principal, Action::ManageUsers)?;
    store::remove_or_change_role(db, principal.scope, id, None, UnixMillis::now()).await?;
    tracing::info!(user.id = id.0, site.id = principal.scope.site_id().0, "user removed");
    Ok(())
}

pub async fn change_role(
    db: &DatabaseConnection,
    principal: &AccountPrincipal,
    id: UserId,
    role: Role,
) -> Result<User, AccountError> {
    require(principal, Action::ManageUsers)?;
    let user = store::remove_or_change_role(db, principal.scope, id, Some(role), UnixMillis::now()).await?;
    tracing::info!(user.id = id.0, role = %role, "user role changed");
    Ok(user)
}

/// An invitation and its secret token (shown once: put it in the link sent to the invitee).
#[derive(Debug)]
pub struct CreatedInvitation {
    pub id: InvitationId,
    pub email: Email,
    pub role: Role,
    pub expires_at: UnixMillis,
    pub token: SecretToken,
}

pub async fn invite(
    db: &DatabaseConnection,
    principal: &AccountPrincipal,
    email: &str,
    role: Role,
) -> Result<CreatedInvitation, AccountError> {
    require(principal, Action::ManageUsers)?;
    let email = parse_email(email)?;
    if store::list_users(db, principal.scope).await?.iter().any(|u| u.email == email) {
        return Err(AccountError::EmailTaken);
    }
    let token = SecretToken::generate();
    let now = UnixMillis::now();
    let new = NewInvitation {
        email: &email,
        role,
        token_hash: &token.hash().0,
        invited_by: principal.user_id,
        expires_at: UnixMillis(now.0 + INVITATION_VALID_MS),
    };
    let invitation = invitations::insert(db, principal.scope, new, now).await?;
    tracing::info!(invitation.id = invitation.id.0, role = %role, "invitation created");
    Ok(CreatedInvitation { id: invitation.id, email, role, expires_at: invitation.expires_at, token })
}

/// Uses an invitation: checks the new password, then creates the user (once).
pub async fn accept_invitation(
    db: &DatabaseConnection,
    token: &str,
    password: Password,
) -> Result<AccountView, AccountError> {
    password.check_policy()?;
    let token = SecretToken::parse(token).ok_or(AccountError::InvalidInvitation)?;
    let hash = password::hash(password).await?;
    let user = invitations::accept(db, &token.hash().0, &hash.0, UnixMillis::now()).await.map_err(|e| match e {
        AcceptError::Invalid => AccountError::InvalidInvitation,
        AcceptError::User(e) => e.into(),
    })?;
    tracing::info!(user.id = user.id.0, site.id = user.site_id.0, "invitation accepted");
    let site_domain = site_domain(db, user.site_id).await?;
    Ok(AccountView { user, site_domain })
}

/// `ghosttrack admin create`: a user on the site with this domain, created by the operator.
pub async fn create_user(
    db: &DatabaseConnection,
    site_domain: &str,
    email: &str,
    password: Password,
    role: Role,
) -> Result<User, AccountError> {
    let email = parse_email(email)?;
    password.check_policy()?;
    let site = crate::storage::sites::find_by_domain(db, site_domain)
        .await?
        .ok_or_else(|| AccountError::NoSuchSite(site_domain.to_owned()))?;
    let hash = password::hash(password).await?;
    // The operator's access to the server and its database is the credential here.
    let scope = TenantScope::verified(site.id);
    Ok(store::insert_user(db, scope, &email, &hash.0, role, UnixMillis::now()).await?)
}
