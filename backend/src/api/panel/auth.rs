//! Who is using the panel. Inside Shopify admin: `Authorization: Bearer <App Bridge id token>`
//! → the token's shop (`dest`) → that shop's site, the tenant. The standalone login (session
//! cookie + `X-CSRF-Token`, `crate::accounts::authenticate_session`) is the other branch of
//! [`authenticate`]; nothing else in the panel API knows how a user signed in.

use poem::Request;
use poem::http::StatusCode;
use poem_openapi::payload::Json;

use ghosttrack_wire::PanelError as ApiError;

use crate::accounts::{Action, Role};
use crate::shopify::embedded::{self, BearerError, RETRY_HEADER};
use crate::shopify::shop_domain::ShopDomain;
use crate::startup::AppState;
use crate::storage::sites::Site;
use crate::storage::{TenantScope, shops};

/// A verified panel user: the tenant, the shop when signed in through Shopify, and the role.
/// Shopify decides who may open an embedded app (staff permissions), so an App Bridge user is
/// an owner of the shop's site; standalone users have the role of their account.
#[derive(Clone, Debug)]
pub struct PanelUser {
    pub scope: TenantScope,
    pub site: Site,
    pub shop: Option<ShopDomain>,
    /// Standalone: the user's role. Inside Shopify admin: `Owner`, because Shopify decides which
    /// staff may open the app at all (app permissions in the Shopify admin).
    pub role: Role,
    /// Who acted, for audit records: `user:<id>` (standalone) or `shopify-user:<id>` (the id
    /// token's `sub`; `shopify-user:unknown` without one). Ids only, never a name or an email.
    pub actor: String,
}

impl PanelUser {
    /// Whether the user's role may do `action`.
    pub fn allows(&self, action: Action) -> bool {
        self.role.allows(action)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PanelAuthError {
    #[error("sign in first: send the App Bridge session token as `Authorization: Bearer …`")]
    Missing,
    /// Invalid or expired token; `retry` asks App Bridge for a fresh one.
    #[error("{message}")]
    Invalid { message: String, retry: bool },
    #[error("GhostTrack is not installed on this shop; open it from the Shopify admin to install it")]
    NotInstalled,
    #[error("the sign-in could not be checked; retry shortly")]
    Unavailable,
    /// A cookie-authenticated unsafe request without the session's `X-CSRF-Token`.
    #[error("missing or wrong X-CSRF-Token header (use the csrf_token from login or /api/account/me)")]
    CsrfRejected,
}

impl PanelAuthError {
    pub fn status(&self) -> StatusCode {
        match self {
            PanelAuthError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            PanelAuthError::CsrfRejected => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            PanelAuthError::Missing => "missing_credentials",
            PanelAuthError::Invalid { .. } => "invalid_session_token",
            PanelAuthError::NotInstalled => "not_installed",
            PanelAuthError::Unavailable => "unavailable",
            PanelAuthError::CsrfRejected => "csrf_rejected",
        }
    }

    /// `X-Shopify-Retry-Invalid-Session-Request: 1` when a fresh token may succeed.
    pub fn retry_header(&self) -> Option<String> {
        matches!(self, PanelAuthError::Invalid { retry: true, .. }).then(|| "1".to_owned())
    }

    pub fn body(&self) -> Json<ApiError> {
        Json(ApiError { error: self.code().into(), message: self.to_string() })
    }

    /// The error as a plain poem response (for the routes outside poem-openapi).
    pub fn into_response(self) -> poem::Response {
        let mut resp = poem::Response::builder()
            .status(self.status())
            .content_type("application/json")
            .body(serde_json::json!({ "error": self.code(), "message": self.to_string() }).to_string());
        if let Some(v) = self.retry_header().and_then(|v| v.parse().ok()) {
            resp.headers_mut().insert(RETRY_HEADER, v);
        }
        resp
    }
}

/// The panel user of a request. The tenant comes only from the verified credential.
pub async fn authenticate(state: &AppState, req: &Request) -> Result<PanelUser, PanelAuthError> {
    let has_bearer =
        req.headers().get("authorization").and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("Bearer "));
    if has_bearer {
        return bearer(state, req).await;
    }
    let cookies = req.headers().get_all("cookie").iter().filter_map(|v| v.to_str().ok());
    match crate::accounts::cookie::from_headers(cookies) {
        Some(value) => session_cookie(state, req, value).await,
        None => Err(PanelAuthError::Missing),
    }
}

/// The standalone login: the `gt_session` cookie, and `X-CSRF-Token` on unsafe methods.
async fn session_cookie(state: &AppState, req: &Request, value: &str) -> Result<PanelUser, PanelAuthError> {
    use crate::accounts::AccountAuthError;
    let csrf = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok());
    let safe = req.method().is_safe();
    let principal = match crate::accounts::authenticate_session(&state.db, value, csrf, safe).await {
        Ok(p) => p,
        Err(AccountAuthError::NoSession) => {
            return Err(PanelAuthError::Invalid { message: AccountAuthError::NoSession.to_string(), retry: false });
        }
        Err(AccountAuthError::CsrfRejected) => return Err(PanelAuthError::CsrfRejected),
        Err(AccountAuthError::Unavailable(error)) => {
            tracing::error!(error = %error, "panel session lookup failed");
            return Err(PanelAuthError::Unavailable);
        }
    };
    match crate::storage::sites::find_by_id(&state.db, principal.scope.site_id()).await {
        Ok(Some(site)) => Ok(PanelUser {
            scope: principal.scope,
            site,
            shop: None,
            role: principal.role,
            actor: format!("user:{}", principal.user_id.0),
        }),
        Ok(None) => {
            Err(PanelAuthError::Invalid { message: "the session's site no longer exists".into(), retry: false })
        }
        Err(error) => {
            tracing::error!(error = %error, "panel site lookup failed");
            Err(PanelAuthError::Unavailable)
        }
    }
}

async fn bearer(state: &AppState, req: &Request) -> Result<PanelUser, PanelAuthError> {
    let Some(shopify) = state.shopify.as_ref() else {
        return Err(PanelAuthError::Invalid {
            message: "this server has no Shopify app credentials, so it cannot check Shopify session tokens".into(),
            retry: false,
        });
    };
    let verified = embedded::authenticate_bearer(&shopify.config, req.headers(), req.uri().query().unwrap_or(""))
        .map_err(|e| {
            let retry = e.retry();
            let message = match e {
                BearerError::ShopMismatch => "`shop` does not match the session token".to_owned(),
                other => format!("the session token is not valid ({other})"),
            };
            PanelAuthError::Invalid { message, retry }
        })?;
    let lookup = async {
        let shop = shops::find(&state.db, &verified.shop).await?;
        let site = shops::active_site(&state.db, &verified.shop).await?;
        Ok::<_, crate::storage::StorageError>((shop, site))
    };
    match lookup.await {
        Ok((Some(shop), Some(site))) if shop.active => Ok(PanelUser {
            scope: shop.scope(),
            site,
            shop: Some(verified.shop.clone()),
            role: Role::Owner,
            actor: match verified.user_id {
                Some(id) => format!("shopify-user:{id}"),
                None => "shopify-user:unknown".to_owned(),
            },
        }),
        Ok(_) => Err(PanelAuthError::NotInstalled),
        Err(error) => {
            tracing::error!(error = %error, "panel sign-in lookup failed");
            Err(PanelAuthError::Unavailable)
        }
    }
}
