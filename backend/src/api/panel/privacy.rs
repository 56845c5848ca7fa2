//! `/api/panel/privacy*`: the Privacy page. Reading is open to every panel user; changing the
//! mode and exporting or deleting a visitor need `Action::ManagePrivacy` (owners; inside Shopify
//! admin every user who can open the app) and, with the standalone cookie, the CSRF header
//! (`auth::authenticate` checks it on unsafe methods). Each of those actions is audit-logged
//! with ids and counts only (`storage::panel_audit`).

use std::sync::Arc;

use ghosttrack_wire::{
    AuditEntry, EncryptionChange, PanelError as ApiError, PrivacyModeChange, PrivacyView, RetentionView, VisitorDeleted,
};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use serde_json::json;

use super::auth::{PanelAuthError, PanelUser};
use super::{error_body, user};
use crate::accounts::Action;
use crate::domain::{PrivacyMode, SessionId, VisitorId};
use crate::privacy::retention_days;
use crate::startup::AppState;
use crate::storage::{StorageError, panel_audit, privacy as store};

/// Audit entries shown on the page.
const AUDIT_SHOWN: u64 = 20;

/// Like the other panel responses, plus 403 for a missing role or CSRF token.
macro_rules! privacy_response {
    ($name:ident, $ok:ty) => {
        #[derive(ApiResponse)]
        pub enum $name {
            #[oai(status = 200)]
            Ok(Json<$ok>),
            /// A parameter or the body is invalid.
            #[oai(status = 400)]
            BadRequest(Json<ApiError>),
            /// Not signed in, or the session token is invalid or expired (then
            /// `X-Shopify-Retry-Invalid-Session-Request: 1` asks App Bridge to retry once with a fresh token).
            #[oai(status = 401)]
            Unauthorized(Json<ApiError>, #[oai(header = "X-Shopify-Retry-Invalid-Session-Request")] Option<String>),
            /// Signed in without the owner role, or a cookie request without its `X-CSRF-Token`.
            #[oai(status = 403)]
            Forbidden(Json<ApiError>),
            /// No data about that visitor or session on this site.
            #[oai(status = 404)]
            NotFound(Json<ApiError>),
            /// Storage is unavailable; retry shortly.
            #[oai(status = 503)]
            Unavailable(Json<ApiError>),
        }

        impl From<PanelAuthError> for $name {
            fn from(e: PanelAuthError) -> Self {
                match e {
                    PanelAuthError::Unavailable => $name::Unavailable(e.body()),
                    PanelAuthError::CsrfRejected => $name::Forbidden(e.body()),
                    other => {
                        let retry = other.retry_header();
                        $name::Unauthorized(other.body(), retry)
                    }
                }
            }
        }

        impl $name {
            fn storage(error: impl std::fmt::Display) -> Self {
                tracing::error!(error = %error, "panel privacy query failed");
                $name::Unavailable(error_body("unavailable", "the database is unavailable; retry shortly"))
            }

            fn forbidden() -> Self {
                $name::Forbidden(error_body(
                    "owner_required",
                    "only an owner of this site can change privacy settings or export and delete visitor data",
                ))
            }
        }
    };
}

privacy_response!(PrivacyResponse, PrivacyView);
privacy_response!(ExportResponse, serde_json::Value);
privacy_response!(DeleteResponse, VisitorDeleted);

/// The page's view of the tenant at its current mode.
async fn view(state: &AppState, u: &PanelUser, mode: PrivacyMode) -> Result<PrivacyView, String> {
    let days = retention_days(mode, &state.settings.privacy);
    let (plan, plan_retention_days) = if state.settings.billing.enabled {
        let ent = crate::billing::entitlements(&state.db, &state.settings.billing, u.scope)
            .await
            .map_err(|e| e.to_string())?;
        (Some(ent.plan.as_str().to_owned()), Some(ent.retention_days()))
    } else {
        (None, None)
    };
    let audit = panel_audit::recent(&state.db, u.scope, AUDIT_SHOWN).await.map_err(|e| e.to_string())?;
    let encrypted_at_rest =
        crate::storage::data_keys::active(&state.db, u.scope).await.map_err(|e| e.to_string())?.is_some();
    Ok(PrivacyView {
        mode: mode.as_str().into(),
        retention: RetentionView {
            raw_event_days: days.raw_events,
            unflagged_pointer_path_hours: days.unflagged_pointer_path_hours,
            flagged_pointer_path_days: days.flagged_pointer_path_days,
            pointer_paths_stored: mode != PrivacyMode::Strict,
            plan_retention_days,
            plan,
        },
        can_manage: u.allows(Action::ManagePrivacy),
        audit: audit
            .into_iter()
            .map(|a| AuditEntry { at: a.created_at.0, actor: a.actor, action: a.action, detail: a.detail })
            .collect(),
        encrypted_at_rest,
        encryption_available: state.event_keys.master().is_some(),
    })
}

/// The visitor a request names: `visitor_id`, or the visitor of `session_id`.
enum Subject {
    Found(VisitorId),
    Invalid(&'static str),
    NoSession,
}

async fn subject(
    state: &AppState,
    u: &PanelUser,
    visitor_id: Option<i64>,
    session_id: Option<i64>,
) -> Result<Subject, StorageError> {
    match (visitor_id, session_id) {
        (Some(v), None) => Ok(Subject::Found(VisitorId(v))),
        (None, Some(s)) => Ok(match store::visitor_of_session(&state.db, u.scope, SessionId(s)).await? {
            Some(v) => Subject::Found(v),
            None => Subject::NoSession,
        }),
        _ => Ok(Subject::Invalid("give exactly one of `visitor_id` or `session_id`")),
    }
}

pub struct PanelPrivacyApi;

#[OpenApi(prefix_path = "/panel", tag = "super::ApiTags::Panel")]
impl PanelPrivacyApi {
    /// The site's privacy mode, the retention that applies, whether event payloads are encrypted
    /// at rest (and whether this server can encrypt), whether the user may change them, and the
    /// newest privacy actions.
    #[oai(path = "/privacy", method = "get", operation_id = "get_panel_privacy")]
    async fn privacy(&self, req: &Request, Data(state): Data<&Arc<AppState>>) -> PrivacyResponse {
        let u = match user(state, req).await {
            Ok(u) => u,
            Err(e) => return e.into(),
        };
        match view(state, &u, u.site.privacy).await {
            Ok(v) => PrivacyResponse::Ok(Json(v)),
            Err(e) => PrivacyResponse::storage(e),
        }
    }

    /// Sets the site's privacy mode (owners). The tracker and the retention job follow it.
    #[oai(path = "/privacy/mode", method = "put", operation_id = "set_panel_privacy_mode")]
    async fn set_mode(
        &self,
        req: &Request,
        Data(state): Data<&Arc<AppState>>,
        body: Json<PrivacyModeChange>,
    ) -> PrivacyResponse {
        let u = match user(state, req).await {
            Ok(u) => u,
            Err(e) => return e.into(),
        };
        if !u.allows(Action::ManagePrivacy) {
            return PrivacyResponse::forbidden();
        }
        let Some(mode) = PrivacyMode::parse(body.0.mode.trim()) else {
            return PrivacyResponse::BadRequest(error_body(
                "invalid_mode",
                "`mode` must be strict, balanced or forensic",
            ));
        };
        let changed = async {
            store::set_mode(&state.db, u.scope, mode).await?;
            let detail = json!({ "from": u.site.privacy.as_str(), "to": mode.as_str() });
            panel_audit::record(&state.db, u.scope, &u.actor, "privacy_mode", &detail).await
        };
        if let Err(e) = changed.await {
            return PrivacyResponse::storage(e);
        }
        tracing::info!(site = u.scope.site_id().0, mode = mode.as_str(), "privacy mode changed in the panel");
        match view(state, &u, mode).await {
            Ok(v) => PrivacyResponse::Ok(Json(v)),
            Err(e) => PrivacyResponse::storage(e),
        }
    }

    /// Turns encryption of the site's event payloads at rest on or off (owners). Off keeps what
    /// was encrypted readable. 400 when the server has no `GHOSTTRACK_SECRET_KEY`.
    #[oai(path = "/privacy/encryption", method = "put", operation_id = "set_panel_privacy_encryption")]
    async fn set_encryption(
        &self,
        req: &Request,
        Data(state): Data<&Arc<AppState>>,
        body: Json<EncryptionChange>,
    ) -> PrivacyResponse {
        let u = match user(state, req).await {
            Ok(u) => u,
            Err(e) => return e.into(),
        };
        if !u.allows(Action::ManagePrivacy) {
            return PrivacyResponse::forbidden();
        }
        if state.event_keys.master().is_none() {
            return PrivacyResponse::BadRequest(error_body(
                "no_secret_key",
                "this server has no GHOSTTRACK_SECRET_KEY, so it cannot encrypt event payloads",
            ));
        }
        let enabled = body.0.enabled;
        let changed = async {
            let key_id = if enabled {
                Some(state.event_keys.enable(&state.db, u.scope).await.map_err(|e| e.to_string())?.key_id)
            } else {
                state.event_keys.disable(&state.db, u.scope).await.map_err(|e| e.to_string())?;
                None
            };
            let detail = json!({ "enabled": enabled, "key_id": key_id });
            panel_audit::record(&state.db, u.scope, &u.actor, "payload_encryption", &detail)
                .await
                .map_err(|e| e.to_string())
        };
        if let Err(e) = changed.await {
            return PrivacyResponse::storage(e);
        }
        tracing::info!(site = u.scope.site_id().0, enabled, "event payload encryption changed in the panel");
        match view(state, &u, u.site.privacy).await {
            Ok(v) => PrivacyResponse::Ok(Json(v)),
            Err(e) => PrivacyResponse::storage(e),
        }
    }

    /// Everything stored about one visitor (owners): the visitor, its sessions (truncated network
    /// only), events and verdicts, as JSON. Name the visitor by id or by one of its sessions.
    #[oai(path = "/privacy/visitor", method = "get", operation_id = "export_panel_visitor")]
    async fn export(
        &self,
        req: &Request,
        Data(state): Data<&Arc<AppState>>,
        /// The daily visitor id.
        visitor_id: Query<Option<i64>>,
        /// A session of the visitor (e.g. from the session detail page).
        session_id: Query<Option<i64>>,
    ) -> ExportResponse {
        let u = match user(state, req).await {
            Ok(u) => u,
            Err(e) => return e.into(),
        };
        if !u.allows(Action::ManagePrivacy) {
            return ExportResponse::forbidden();
        }
        let visitor = match subject(state, &u, visitor_id.0, session_id.0).await {
            Ok(Subject::Found(v)) => v,
            Ok(Subject::Invalid(m)) => return ExportResponse::BadRequest(error_body("invalid_subject", m)),
            Ok(Subject::NoSession) => return ExportResponse::NotFound(no_session()),
            Err(e) => return ExportResponse::storage(e),
        };
        let export = match crate::privacy::export_visitor(&state.db, &state.event_keys, u.scope, visitor).await {
            Ok(x) if x.is_empty() => return ExportResponse::NotFound(no_visitor()),
            Ok(x) => x,
            Err(e) => return ExportResponse::storage(e),
        };
        let detail =
            json!({ "visitor_id": visitor.0, "sessions": export.sessions.len(), "events": export.events.len() });
        if let Err(e) = panel_audit::record(&state.db, u.scope, &u.actor, "visitor_export", &detail).await {
            return ExportResponse::storage(e);
        }
        match serde_json::to_value(&export) {
            Ok(v) => ExportResponse::Ok(Json(v)),
            Err(e) => ExportResponse::storage(e),
        }
    }

    /// Deletes everything stored about one visitor in one transaction (owners); audit-logged with
    /// the counts.
    #[oai(path = "/privacy/visitor", method = "delete", operation_id = "delete_panel_visitor")]
    async fn delete(
        &self,
        req: &Request,
        Data(state): Data<&Arc<AppState>>,
        /// The daily visitor id.
        visitor_id: Query<Option<i64>>,
        /// A session of the visitor (e.g. from the session detail page).
        session_id: Query<Option<i64>>,
    ) -> DeleteResponse {
        let u = match user(state, req).await {
            Ok(u) => u,
            Err(e) => return e.into(),
        };
        if !u.allows(Action::ManagePrivacy) {
            return DeleteResponse::forbidden();
        }
        let visitor = match subject(state, &u, visitor_id.0, session_id.0).await {
            Ok(Subject::Found(v)) => v,
            Ok(Subject::Invalid(m)) => return DeleteResponse::BadRequest(error_body("invalid_subject", m)),
            Ok(Subject::NoSession) => return DeleteResponse::NotFound(no_session()),
            Err(e) => return DeleteResponse::storage(e),
        };
        let deleted = match store::delete_visitor(&state.db, u.scope, visitor).await {
            Ok(d) if d == store::Deleted::default() => return DeleteResponse::NotFound(no_visitor()),
            Ok(d) => d,
            Err(e) => return DeleteResponse::storage(e),
        };
        let mut detail = serde_json::to_value(&deleted).unwrap_or_default();
        detail["visitor_id"] = visitor.0.into();
        if let Err(e) = panel_audit::record(&state.db, u.scope, &u.actor, "visitor_delete", &detail).await {
            return DeleteResponse::storage(e);
        }
        DeleteResponse::Ok(Json(VisitorDeleted {
            visitor_id: visitor.0,
            events: deleted.events,
            sessions: deleted.sessions,
            visitors: deleted.visitors,
            threats: deleted.threats,
        }))
    }
}

fn no_session() -> Json<ApiError> {
    error_body("session_not_found", "no such session on this site")
}

fn no_visitor() -> Json<ApiError> {
    error_body("visitor_not_found", "nothing is stored about that visitor on this site")
}
