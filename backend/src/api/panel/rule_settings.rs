//! `/api/panel/rules/settings`: the Rules page's editing (enable, shadow mode, threshold and
//! window per rule) for the signed-in tenant, applied by the running engine and stored
//! (`detect::settings`). Everyone reads; owners and analysts change (`Action::EditRules`).

use std::sync::Arc;

use ghosttrack_wire::{FieldError, PanelError, RuleChange, RuleSetting, RuleSettings};
use poem::Request;
use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::payload::Json;

use super::auth::authenticate;
use super::responses::{body, manage_response};
use crate::accounts::Action;
use crate::detect::settings::{self, Change, RuleView, SettingsError, THRESHOLD_BOUNDS, WINDOW_BOUNDS};
use crate::startup::AppState;

manage_response!(SettingsResponse {
    #[oai(status = 200)]
    Ok(Json<RuleSettings>),
});
manage_response!(ChangeResponse {
    /// Applied and stored: the rule as the tenant now runs it.
    #[oai(status = 200)]
    Ok(Json<RuleSetting>),
    /// The detection engine is off on this server (`detect.enabled = false`).
    #[oai(status = 409)]
    Conflict(Json<PanelError>),
    /// `field` names what does not hold (`rule`, `threshold`, `window_secs`).
    #[oai(status = 422)]
    Invalid(Json<FieldError>),
});

fn setting(v: RuleView) -> RuleSetting {
    RuleSetting {
        id: v.id,
        description: v.description,
        enabled: v.enabled,
        shadow: v.shadow,
        threshold: v.threshold,
        window_secs: v.window_secs,
        default_threshold: v.default_threshold,
        default_window_secs: v.default_window_secs,
        threshold_min: THRESHOLD_BOUNDS.0,
        threshold_max: THRESHOLD_BOUNDS.1,
        window_min: WINDOW_BOUNDS.0,
        window_max: WINDOW_BOUNDS.1,
    }
}

pub struct PanelRuleSettingsApi;

#[OpenApi(prefix_path = "/panel/rules/settings", tag = "super::ApiTags::Panel")]
impl PanelRuleSettingsApi {
    /// Every loaded rule as this tenant runs it, with the bounds of its threshold and window
    /// (empty without the detection engine).
    #[oai(path = "/", method = "get", operation_id = "get_panel_rule_settings")]
    async fn list(&self, req: &Request, Data(state): Data<&Arc<AppState>>) -> SettingsResponse {
        let u = match authenticate(state, req).await {
            Ok(u) => u,
            Err(e) => return e.into(),
        };
        let rules = match &state.detector {
            Some(d) => settings::views(d, u.scope.site_id()).into_iter().map(setting).collect(),
            None => Vec::new(),
        };
        SettingsResponse::Ok(Json(RuleSettings { rules, can_edit: u.allows(Action::EditRules) }))
    }

    /// Changes one rule for this tenant: enabled, shadow (runs, reported, not scored), and a
    /// threshold or window within the rule's bounds (left out: the rule's own).
    #[oai(path = "/", method = "put", operation_id = "put_panel_rule_setting")]
    async fn change(
        &self,
        req: &Request,
        Data(state): Data<&Arc<AppState>>,
        change: Json<RuleChange>,
    ) -> ChangeResponse {
        let u = match authenticate(state, req).await {
            Ok(u) => u,
            Err(e) => return e.into(),
        };
        if !u.allows(Action::EditRules) {
            return ChangeResponse::forbidden("change rules (owners and analysts do)");
        }
        let Some(detector) = &state.detector else {
            return ChangeResponse::Conflict(body("detection_off", "the detection engine is off on this server"));
        };
        let c = change.0;
        let change = Change {
            rule: c.rule,
            enabled: c.enabled,
            shadow: c.shadow,
            threshold: c.threshold,
            window_secs: c.window_secs,
        };
        match settings::change(detector, &state.db, u.scope, change).await {
            Ok(v) => ChangeResponse::Ok(Json(setting(v))),
            Err(SettingsError::Invalid { field, message }) => ChangeResponse::Invalid(Json(FieldError {
                error: "invalid".into(),
                message: format!("{field}: {message}"),
                field,
            })),
            Err(SettingsError::Storage(error)) => {
                tracing::error!(error = %error, "rule settings could not be stored");
                ChangeResponse::unavailable()
            }
        }
    }
}
