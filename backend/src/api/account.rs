//! `/api/account/*`: standalone login (cookie session + CSRF token), who am I, users, roles
//! and invitations. Handlers extract, call one `accounts` function and map the result; the
//! role checks live in `accounts`. Nothing here logs an email or an address.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, Tags};

use super::site_token::ApiError;
use crate::accounts::password::Password;
use crate::accounts::{
    self, AccountAuthError, AccountError, AccountPrincipal, AccountView, Role, SESSION_ABSOLUTE_MS, UserId, cookie,
};
use crate::startup::AppState;
use crate::storage::accounts::User;

#[derive(Tags)]
enum ApiTags {
    /// Standalone accounts: log in with email and password (cookie `gt_session`; unsafe methods
    /// also need `X-CSRF-Token`), users, roles and invitations.
    Account,
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
enum RoleParam {
    Owner,
    Analyst,
    Viewer,
}

impl From<RoleParam> for Role {
    fn from(r: RoleParam) -> Role {
        match r {
            RoleParam::Owner => Role::Owner,
            RoleParam::Analyst => Role::Analyst,
            RoleParam::Viewer => Role::Viewer,
        }
    }
}

impl From<Role> for RoleParam {
    fn from(r: Role) -> RoleParam {
        match r {
            Role::Owner => RoleParam::Owner,
            Role::Analyst => RoleParam::Analyst,
            Role::Viewer => RoleParam::Viewer,
        }
    }
}

#[derive(Object)]
struct LoginRequest {
    email: String,
    #[oai(write_only)]
    password: String,
}

#[derive(Object)]
struct AccountUser {
    email: String,
    role: RoleParam,
    /// The domain of the site this user belongs to.
    site_domain: String,
}

#[derive(Object)]
struct SessionBody {
    user: AccountUser,
    /// Send as `X-CSRF-Token` with every POST, PUT, PATCH and DELETE of this session.
    csrf_token: String,
}

#[derive(Object)]
struct UserItem {
    id: i64,
    email: String,
    role: RoleParam,
    created_at: DateTime<Utc>,
}

#[derive(Object)]
struct InviteRequest {
    email: String,
    role: RoleParam,
}

#[derive(Object)]
struct InvitationCreated {
    id: i64,
    email: String,
    role: RoleParam,
    expires_at: DateTime<Utc>,
    /// The single-use secret (shown once); the invitee sends it to `/api/account/invitations/accept`.
    token: String,
    /// The link to send to the invitee (the token is in the fragment, so it reaches no server log).
    accept_url: String,
    /// Whether an email with the link was queued to the invitee (delivered by the alert worker,
    /// with retries). When `false`, `email_note` says why and the inviter sends the link.
    email_sent: bool,
    /// Why no email was sent (absent when it was queued).
    email_note: Option<String>,
}

#[derive(Object)]
struct AcceptRequest {
    token: String,
    #[oai(write_only)]
    password: String,
}

#[derive(Object)]
struct RoleChange {
    role: RoleParam,
}

#[derive(ApiResponse)]
enum LoginResponse {
    /// Logged in; the session cookie is set.
    #[oai(status = 200)]
    Ok(Json<SessionBody>, #[oai(header = "Set-Cookie")] String, #[oai(header = "Cache-Control")] String),
    /// Wrong email or password (one answer for both).
    #[oai(status = 401)]
    Unauthorized(Json<ApiError>),
    /// Too many failed logins for this email or network; retry after `Retry-After` seconds.
    #[oai(status = 429)]
    TooManyRequests(Json<ApiError>, #[oai(header = "Retry-After")] u64),
    #[oai(status = 503)]
    Unavailable(Json<ApiError>),
}

#[derive(ApiResponse)]
enum LogoutResponse {
    /// The session is revoked and the cookie cleared.
    #[oai(status = 204)]
    Done(#[oai(header = "Set-Cookie")] String),
    #[oai(status = 401)]
    Unauthorized(Json<ApiError>),
    #[oai(status = 403)]
    Forbidden(Json<ApiError>),
    #[oai(status = 503)]
    Unavailable(Json<ApiError>),
}

#[derive(ApiResponse)]
enum MeResponse {
    #[oai(status = 200)]
    Ok(Json<SessionBody>, #[oai(header = "Cache-Control")] String),
    #[oai(status = 401)]
    Unauthorized(Json<ApiError>),
    #[oai(status = 503)]
    Unavailable(Json<ApiError>),
}

/// The failures every authenticated account endpoint shares.
#[derive(ApiResponse)]
enum UsersResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<UserItem>>),
    #[oai(status = 401)]
    Unauthorized(Json<ApiError>),
    /// A missing CSRF token, or a role that may not manage users (owners only).
    #[oai(status = 403)]
    Forbidden(Json<ApiError>),
    #[oai(status = 503)]
    Unavailable(Json<ApiError>),
}

#[derive(ApiResponse)]
enum UserChangeResponse {
    #[oai(status = 200)]
    Ok(Json<UserItem>),
    /// Removed.
    #[oai(status = 204)]
    Removed,
    #[oai(status = 401)]
    Unauthorized(Json<ApiError>),
    #[oai(status = 403)]
    Forbidden(Json<ApiError>),
    /// No such user on this site.
    #[oai(status = 404)]
    NotFound(Json<ApiError>),
    /// The site's last owner cannot be removed or demoted.
    #[oai(status = 409)]
    Conflict(Json<ApiError>),
    #[oai(status = 503)]
    Unavailable(Json<ApiError>),
}

#[derive(ApiResponse)]
enum InviteResponse {
    #[oai(status = 201)]
    Created(Json<InvitationCreated>),
    /// Not an email address.
    #[oai(status = 400)]
    BadRequest(Json<ApiError>),
    #[oai(status = 401)]
    Unauthorized(Json<ApiError>),
    #[oai(status = 403)]
    Forbidden(Json<ApiError>),
    /// A user with this email already exists on the site.
    #[oai(status = 409)]
    Conflict(Json<ApiError>),
    #[oai(status = 503)]
    Unavailable(Json<ApiError>),
}

#[derive(ApiResponse)]
enum AcceptResponse {
    /// The user exists; log in with the email and the new password.
    #[oai(status = 201)]
    Created(Json<AccountUser>),
    /// The token is unknown, already used or expired.
    #[oai(status = 400)]
    BadRequest(Json<ApiError>),
    /// A user with this email already exists on the site.
    #[oai(status = 409)]
    Conflict(Json<ApiError>),
    /// The password does not meet the policy (at least 12 characters).
    #[oai(status = 422)]
    WeakPassword(Json<ApiError>),
    #[oai(status = 503)]
    Unavailable(Json<ApiError>),
}

/// What an authenticated request failed with, in the shape each response enum needs.
enum Rejection {
    Unauthorized(Json<ApiError>),
    Forbidden(Json<ApiError>),
    Unavailable(Json<ApiError>),
}

fn unavailable() -> Json<ApiError> {
    ApiError::new("unavailable", "the database is unavailable; retry shortly")
}

fn reject_auth(e: AccountAuthError) -> Rejection {
    match e {
        AccountAuthError::NoSession => Rejection::Unauthorized(ApiError::new("not_logged_in", e.to_string())),
        AccountAuthError::CsrfRejected => Rejection::Forbidden(ApiError::new("csrf_token_invalid", e.to_string())),
        AccountAuthError::Unavailable(error) => {
            tracing::error!(error = %error, "session lookup failed");
            Rejection::Unavailable(unavailable())
        }
    }
}

/// The session cookie of the request, and the principal it authenticates.
async fn authenticate(state: &AppState, req: &Request) -> Result<(AccountPrincipal, String), Rejection> {
    let headers = req.headers().get_all("cookie").iter().filter_map(|v| v.to_str().ok());
    let Some(value) = cookie::from_headers(headers) else {
        return Err(reject_auth(AccountAuthError::NoSession));
    };
    let csrf = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok());
    let safe = req.method().is_safe();
    match accounts::authenticate_session(&state.db, value, csrf, safe).await {
        Ok(principal) => Ok((principal, value.to_owned())),
        Err(e) => Err(reject_auth(e)),
    }
}

fn client_ip(state: &AppState, req: &Request) -> IpAddr {
    let peer = req.remote_addr().as_socket_addr().map(|a| a.ip()).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let xff = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
    crate::ingest::client_ip::resolve(peer, xff, &state.settings.trusted_proxies)
}

fn account_user(view: &AccountView) -> AccountUser {
    AccountUser {
        email: view.user.email.as_str().to_owned(),
        role: view.user.role.into(),
        site_domain: view.site_domain.clone(),
    }
}

fn user_item(user: &User) -> UserItem {
    UserItem {
        id: user.id.0,
        email: user.email.as_str().to_owned(),
        role: user.role.into(),
        created_at: DateTime::from_timestamp_millis(user.created_at.0).unwrap_or_default(),
    }
}

fn csrf_for(cookie_value: &str) -> String {
    accounts::token::SecretToken::parse(cookie_value).map(|t| t.csrf_token()).unwrap_or_default()
}

/// Logs the error once and returns the client body for storage and hashing failures.
fn internal(e: &AccountError) -> Json<ApiError> {
    tracing::error!(error = %e, "account operation failed");
    unavailable()
}

const NO_STORE: &str = "no-store";

pub struct AccountApi;

#[OpenApi(prefix_path = "/account", tag = "ApiTags::Account")]
impl AccountApi {
    /// Log in with email and password. Sets the `gt_session` cookie (HttpOnly, SameSite=Strict,
    /// Secure) and returns the CSRF token for unsafe requests.
    #[oai(path = "/login", method = "post", operation_id = "create_account_session")]
    async fn login(&self, Data(state): Data<&Arc<AppState>>, req: &Request, body: Json<LoginRequest>) -> LoginResponse {
        let ip = client_ip(state, req);
        let body = body.0;
        match accounts::login(&state.db, &body.email, Password::new(body.password), ip).await {
            Ok(outcome) => {
                let csrf_token = outcome.session.csrf_token();
                let set_cookie = cookie::issue(outcome.session.expose(), SESSION_ABSOLUTE_MS / 1000);
                let user = account_user(&outcome.account);
                LoginResponse::Ok(Json(SessionBody { user, csrf_token }), set_cookie, NO_STORE.into())
            }
            Err(AccountError::InvalidCredentials) => {
                LoginResponse::Unauthorized(ApiError::new("invalid_credentials", "the email or password is wrong"))
            }
            Err(e @ AccountError::RateLimited { retry_after_secs }) => {
                LoginResponse::TooManyRequests(ApiError::new("too_many_attempts", e.to_string()), retry_after_secs)
            }
            Err(e) => LoginResponse::Unavailable(internal(&e)),
        }
    }

    /// Log out: revokes the session server-side and clears the cookie.
    #[oai(path = "/logout", method = "post", operation_id = "delete_account_session")]
    async fn logout(&self, Data(state): Data<&Arc<AppState>>, req: &Request) -> LogoutResponse {
        let cookie_value = match authenticate(state, req).await {
            Ok((_, value)) => value,
            Err(Rejection::Unauthorized(b)) => return LogoutResponse::Unauthorized(b),
            Err(Rejection::Forbidden(b)) => return LogoutResponse::Forbidden(b),
            Err(Rejection::Unavailable(b)) => return LogoutResponse::Unavailable(b),
        };
        match accounts::logout(&state.db, &cookie_value).await {
            Ok(()) => LogoutResponse::Done(cookie::clear()),
            Err(e) => LogoutResponse::Unavailable(internal(&e)),
        }
    }

    /// The logged-in user and the session's CSRF token (call after a page reload).
    #[oai(path = "/me", method = "get", operation_id = "get_account_session")]
    async fn me(&self, Data(state): Data<&Arc<AppState>>, req: &Request) -> MeResponse {
        let (principal, value) = match authenticate(state, req).await {
            Ok(found) => found,
            Err(Rejection::Unauthorized(b) | Rejection::Forbidden(b)) => return MeResponse::Unauthorized(b),
            Err(Rejection::Unavailable(b)) => return MeResponse::Unavailable(b),
        };
        match accounts::me(&state.db, &principal).await {
            Ok(view) => MeResponse::Ok(
                Json(SessionBody { user: account_user(&view), csrf_token: csrf_for(&value) }),
                NO_STORE.into(),
            ),
            Err(AccountError::NotFound) => {
                MeResponse::Unauthorized(ApiError::new("not_logged_in", "the user no longer exists"))
            }
            Err(e) => MeResponse::Unavailable(internal(&e)),
        }
    }

    /// The site's users (owners only).
    #[oai(path = "/users", method = "get", operation_id = "list_account_users")]
    async fn list_users(&self, Data(state): Data<&Arc<AppState>>, req: &Request) -> UsersResponse {
        let principal = match authenticate(state, req).await {
            Ok((p, _)) => p,
            Err(Rejection::Unauthorized(b)) => return UsersResponse::Unauthorized(b),
            Err(Rejection::Forbidden(b)) => return UsersResponse::Forbidden(b),
            Err(Rejection::Unavailable(b)) => return UsersResponse::Unavailable(b),
        };
        match accounts::list_users(&state.db, &principal).await {
            Ok(users) => UsersResponse::Ok(Json(users.iter().map(user_item).collect())),
            Err(AccountError::Forbidden) => UsersResponse::Forbidden(forbidden()),
            Err(e) => UsersResponse::Unavailable(internal(&e)),
        }
    }

    /// Change a user's role (owners only; the last owner cannot be demoted).
    #[oai(path = "/users/:id", method = "patch", operation_id = "update_account_user")]
    async fn change_role(
        &self,
        Data(state): Data<&Arc<AppState>>,
        req: &Request,
        id: Path<i64>,
        body: Json<RoleChange>,
    ) -> UserChangeResponse {
        let principal = match authenticate(state, req).await {
            Ok((p, _)) => p,
            Err(r) => return user_change_rejection(r),
        };
        user_change(accounts::change_role(&state.db, &principal, UserId(id.0), body.0.role.into()).await.map(Some))
    }

    /// Remove a user (owners only; the last owner cannot be removed). Their sessions end.
    #[oai(path = "/users/:id", method = "delete", operation_id = "delete_account_user")]
    async fn remove_user(&self, Data(state): Data<&Arc<AppState>>, req: &Request, id: Path<i64>) -> UserChangeResponse {
        let principal = match authenticate(state, req).await {
            Ok((p, _)) => p,
            Err(r) => return user_change_rejection(r),
        };
        user_change(accounts::remove_user(&state.db, &principal, UserId(id.0)).await.map(|()| None))
    }

    /// Invite someone by email with a role (owners only). Returns a single-use link valid for 7 days.
    #[oai(path = "/invitations", method = "post", operation_id = "create_account_invitation")]
    async fn invite(
        &self,
        Data(state): Data<&Arc<AppState>>,
        req: &Request,
        body: Json<InviteRequest>,
    ) -> InviteResponse {
        let principal = match authenticate(state, req).await {
            Ok((p, _)) => p,
            Err(Rejection::Unauthorized(b)) => return InviteResponse::Unauthorized(b),
            Err(Rejection::Forbidden(b)) => return InviteResponse::Forbidden(b),
            Err(Rejection::Unavailable(b)) => return InviteResponse::Unavailable(b),
        };
        match accounts::invite(&state.db, &principal, &body.0.email, body.0.role.into()).await {
            Ok(inv) => {
                let base = state.settings.public_url();
                let accept_url = format!("{base}app/accept-invitation#token={}", inv.token.expose());
                let role: RoleParam = inv.role.into();
                let status = crate::alerts::invitation::enqueue(
                    &state.db,
                    &state.settings,
                    principal.scope,
                    inv.id.0,
                    crate::alerts::invitation::InvitationEmail {
                        to: inv.email.as_str().to_owned(),
                        site: String::new(),
                        role: inv.role.as_str().to_owned(),
                        accept_url: accept_url.clone(),
                        expires_at: inv.expires_at.0,
                    },
                )
                .await;
                let (email_sent, email_note) = match status {
                    Ok(crate::alerts::invitation::EmailStatus::Queued) => {
                        state.alerts_notify.notify_one();
                        (true, None)
                    }
                    Ok(crate::alerts::invitation::EmailStatus::NotSent(why)) => (false, Some(why.to_owned())),
                    Err(error) => {
                        tracing::warn!(invitation.id = inv.id.0, error = %error, "could not queue the invitation email");
                        (false, Some("the email could not be queued: send the link to the invitee yourself".to_owned()))
                    }
                };
                InviteResponse::Created(Json(InvitationCreated {
                    id: inv.id.0,
                    email: inv.email.as_str().to_owned(),
                    role,
                    expires_at: DateTime::from_timestamp_millis(inv.expires_at.0).unwrap_or_default(),
                    token: inv.token.expose().to_owned(),
                    accept_url,
                    email_sent,
                    email_note,
                }))
            }
            Err(e @ AccountError::InvalidEmail(_)) => {
                InviteResponse::BadRequest(ApiError::new("invalid_email", e.to_string()))
            }
            Err(AccountError::Forbidden) => InviteResponse::Forbidden(forbidden()),
            Err(e @ AccountError::EmailTaken) => InviteResponse::Conflict(ApiError::new("email_taken", e.to_string())),
            Err(e) => InviteResponse::Unavailable(internal(&e)),
        }
    }

    /// Accept an invitation: set a password and create the user. Works once, within 7 days.
    #[oai(path = "/invitations/accept", method = "post", operation_id = "accept_account_invitation")]
    async fn accept(&self, Data(state): Data<&Arc<AppState>>, body: Json<AcceptRequest>) -> AcceptResponse {
        let body = body.0;
        match accounts::accept_invitation(&state.db, &body.token, Password::new(body.password)).await {
            Ok(view) => AcceptResponse::Created(Json(account_user(&view))),
            Err(e @ AccountError::InvalidInvitation) => {
                AcceptResponse::BadRequest(ApiError::new("invitation_invalid", e.to_string()))
            }
            Err(e @ AccountError::WeakPassword(_)) => {
                AcceptResponse::WeakPassword(ApiError::new("weak_password", e.to_string()))
            }
            Err(e @ AccountError::EmailTaken) => AcceptResponse::Conflict(ApiError::new("email_taken", e.to_string())),
            Err(e) => AcceptResponse::Unavailable(internal(&e)),
        }
    }
}

fn forbidden() -> Json<ApiError> {
    ApiError::new("forbidden", "your role may not do this (owners manage users)")
}

fn user_change_rejection(r: Rejection) -> UserChangeResponse {
    match r {
        Rejection::Unauthorized(b) => UserChangeResponse::Unauthorized(b),
        Rejection::Forbidden(b) => UserChangeResponse::Forbidden(b),
        Rejection::Unavailable(b) => UserChangeResponse::Unavailable(b),
    }
}

fn user_change(result: Result<Option<User>, AccountError>) -> UserChangeResponse {
    match result {
        Ok(Some(user)) => UserChangeResponse::Ok(Json(user_item(&user))),
        Ok(None) => UserChangeResponse::Removed,
        Err(AccountError::Forbidden) => UserChangeResponse::Forbidden(forbidden()),
        Err(e @ AccountError::NotFound) => UserChangeResponse::NotFound(ApiError::new("user_not_found", e.to_string())),
        Err(e @ AccountError::LastOwner) => UserChangeResponse::Conflict(ApiError::new("last_owner", e.to_string())),
        Err(e) => UserChangeResponse::Unavailable(internal(&e)),
    }
}
