//! Standalone accounts: the people who log in to a self-hosted or non-Shopify site's panel.
//! Users belong to one site and have a role (`role`); passwords are argon2id (`password`);
//! logins create server-side sessions whose cookie holds a random secret (`token`,
//! `cookie`) with a CSRF token bound to it; failed logins are rate-limited through the
//! database (`rate_limit`); owners invite others by single-use links (`service`).
//!
//! `authenticate_session` is the one way a cookie becomes a tenant: the panel's extractor and
//! the account API both call it.

pub mod admin_cli;
pub mod cookie;
pub mod password;
pub mod rate_limit;
pub mod role;
mod service;
pub mod token;
mod types;

use sea_orm::ConnectionTrait;

pub use role::{Action, Role};
pub use service::{
    AccountError, AccountView, CreatedInvitation, LoginOutcome, accept_invitation, change_role, create_user, invite,
    list_users, login, logout, me, remove_user,
};
pub use types::{AccountSessionId, Email, InvitationId, UserId};

use crate::domain::UnixMillis;
use crate::storage::{StorageError, TenantScope, accounts as store};
use token::SecretToken;

/// A session ends after this long without a request (8 hours: a working day).
pub const SESSION_IDLE_MS: i64 = 8 * 3_600_000;
/// A session ends this long after login, however active (7 days).
pub const SESSION_ABSOLUTE_MS: i64 = 7 * 86_400_000;
/// `last_seen_at` is written at most this often per session (not on every request).
const SESSION_TOUCH_MS: i64 = 60_000;
/// An invitation link works for this long (7 days).
pub const INVITATION_VALID_MS: i64 = 7 * 86_400_000;

/// Who a verified session belongs to: the tenant scope, the user and their role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountPrincipal {
    pub scope: TenantScope,
    pub user_id: UserId,
    pub role: Role,
    pub session_id: AccountSessionId,
}

impl AccountPrincipal {
    pub fn allows(&self, action: Action) -> bool {
        self.role.allows(action)
    }
}

/// Why a cookie did not authenticate a request.
#[derive(Debug, thiserror::Error)]
pub enum AccountAuthError {
    /// 401: no cookie, or not a live session (unknown, expired, idle, revoked, user removed).
    #[error("not logged in, or the session has ended; log in again")]
    NoSession,
    /// 403: an unsafe method without the session's `X-CSRF-Token`.
    #[error("missing or wrong X-CSRF-Token header (use the csrf_token from login or /api/account/me)")]
    CsrfRejected,
    /// 503: the session lookup failed.
    #[error("the session store is unavailable")]
    Unavailable(#[source] StorageError),
}

/// Verifies a session cookie (and, for unsafe methods, the CSRF header) and returns who it
/// belongs to. `method_is_safe`: GET, HEAD or OPTIONS, which change nothing and so need no
/// CSRF token.
pub async fn authenticate_session(
    db: &impl ConnectionTrait,
    cookie_value: &str,
    csrf_header: Option<&str>,
    method_is_safe: bool,
) -> Result<AccountPrincipal, AccountAuthError> {
    let token = SecretToken::parse(cookie_value).ok_or(AccountAuthError::NoSession)?;
    let now = UnixMillis::now();
    let session = store::find_live_session(db, &token.hash().0, now, UnixMillis(now.0 - SESSION_IDLE_MS))
        .await
        .map_err(AccountAuthError::Unavailable)?
        .ok_or(AccountAuthError::NoSession)?;
    if !method_is_safe && !csrf_header.is_some_and(|h| token.csrf_matches(h.trim())) {
        return Err(AccountAuthError::CsrfRejected);
    }
    if now.0 - session.last_seen_at.0 >= SESSION_TOUCH_MS {
        // Losing a touch only shortens the idle window; the request still succeeds.
        if let Err(error) = store::touch_session(db, session.id, now).await {
            tracing::warn!(error = %error, "could not record session activity");
        }
    }
    Ok(AccountPrincipal {
        scope: TenantScope::verified(session.user.site_id),
        user_id: session.user.id,
        role: session.user.role,
        session_id: session.id,
    })
}
