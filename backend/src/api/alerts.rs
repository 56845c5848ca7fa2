//! `/api/v1/alerts/*` (tag Alerts): the alert policy, channels, test alerts, deliveries and dead
//! letters of one site, for the panel's Alerts page. Authenticated with the site's API token;
//! the tenant comes only from the token (the `site` parameter must name the token's site).
//! The unsubscribe link of alert emails is the one route authenticated by its own HMAC token.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, Tags};

use super::site_token::{ApiError, AuthFailure, SiteToken, tenant};
use crate::alerts::policy::{AlertPolicy, PolicyError};
use crate::alerts::service::{self, AlertsError, ChannelInput};
use crate::billing::Feature;
use crate::domain::AlertChannelId;
use crate::shopify::token_cipher::TokenCipher;
use crate::startup::AppState;
use crate::storage::alerts::{ChannelRow, DeliveryRow};

/// Default and largest page of the deliveries list.
const DELIVERIES_DEFAULT_LIMIT: u64 = 50;
const DELIVERIES_MAX_LIMIT: u64 = 500;

#[derive(Tags)]
enum ApiTags {
    /// Alert policy, channels and deliveries.
    Alerts,
}

/// A 422 body: which field is wrong and why.
#[derive(Object)]
struct ValidationError {
    error: String,
    /// The field, e.g. `burst_window_minutes` or `quiet_hours.from`.
    field: String,
    message: String,
}

fn validation(e: &PolicyError) -> Json<ValidationError> {
    Json(ValidationError {
        error: "invalid".into(),
        field: e.field.clone(),
        message: format!("{}: {}", e.field, e.message),
    })
}

#[derive(Object)]
struct Channel {
    id: i64,
    /// `email`, `slack`, `discord` or `webhook`.
    kind: String,
    name: String,
    /// Redacted destination (addresses, or the URL's host).
    display: String,
    enabled: bool,
    created_at: chrono::DateTime<chrono::Utc>,
}

impl From<ChannelRow> for Channel {
    fn from(r: ChannelRow) -> Self {
        Channel {
            id: r.id.0,
            kind: r.kind,
            name: r.name,
            display: r.display,
            enabled: r.enabled,
            created_at: chrono::DateTime::from_timestamp_millis(r.created_at.0).unwrap_or_default(),
        }
    }
}

#[derive(Object)]
struct NewChannel {
    /// `email`, `slack`, `discord` or `webhook`.
    kind: String,
    name: String,
    /// Recipients (email channels).
    #[oai(default)]
    to: Vec<String>,
    /// Incoming-webhook URL (slack, discord, webhook); https.
    url: Option<String>,
}

#[derive(Object)]
struct CreatedChannel {
    channel: Channel,
    /// Webhook channels: the HMAC signing secret. Shown once; store it in the receiver.
    signing_secret: Option<String>,
}

#[derive(Object)]
struct Delivery {
    id: i64,
    channel_id: i64,
    alert_id: String,
    kind: String,
    /// `pending`, `delivered` or `dead`.
    status: String,
    attempts: i32,
    next_attempt_at: chrono::DateTime<chrono::Utc>,
    last_error: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
    delivered_at: Option<chrono::DateTime<chrono::Utc>>,
    title: String,
}

fn time(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl From<DeliveryRow> for Delivery {
    fn from(r: DeliveryRow) -> Self {
        let title = delivery_title(&r);
        Delivery {
            id: r.id,
            channel_id: r.channel_id.0,
            alert_id: r.alert_id,
            kind: r.kind,
            status: r.status,
            attempts: r.attempts,
            next_attempt_at: time(r.next_attempt_at.0),
            last_error: r.last_error,
            created_at: time(r.created_at.0),
            delivered_at: r.delivered_at.map(|t| time(t.0)),
            title,
        }
    }
}

#[derive(Object)]
struct Queued {
    alert_id: String,
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
enum StatusParam {
    Pending,
    Delivered,
    Dead,
}

macro_rules! responses {
    ($name:ident { $($extra:tt)* }) => {
        #[derive(ApiResponse)]
        enum $name {
            $($extra)*
            /// The token is missing or not a valid API token.
            #[oai(status = 401)]
            Unauthorized(Json<ApiError>),
            /// The site (or the named resource) does not exist for this token.
            #[oai(status = 404)]
            NotFound(Json<ApiError>),
            #[oai(status = 503)]
            Unavailable(Json<ApiError>),
        }

        impl From<AuthFailure> for $name {
            fn from(f: AuthFailure) -> Self {
                match f {
                    AuthFailure::Unauthorized => $name::Unauthorized(f.body()),
                    AuthFailure::NotFound => $name::NotFound(f.body()),
                    AuthFailure::Unavailable => $name::Unavailable(f.body()),
                }
            }
        }
    };
}

responses!(PolicyResponse {
    #[oai(status = 200)]
    Ok(Json<AlertPolicy>),
    /// A field is out of range or unknown; `field` names it.
    #[oai(status = 422)]
    Invalid(Json<ValidationError>),
});
responses!(ChannelsResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<Channel>>),
});
responses!(CreateChannelResponse {
    #[oai(status = 201)]
    Created(Json<CreatedChannel>),
    /// The tenant's plan does not include this channel kind (Free: email only).
    #[oai(status = 402)]
    NotInPlan(Json<ApiError>),
    /// The server has no `secret_key` to encrypt channel destinations with.
    #[oai(status = 409)]
    Conflict(Json<ApiError>),
    #[oai(status = 422)]
    Invalid(Json<ValidationError>),
});
responses!(DeleteResponse {
    #[oai(status = 204)]
    Deleted,
});
responses!(QueuedResponse {
    #[oai(status = 202)]
    Queued(Json<Queued>),
    /// The channel is disabled, or the delivery is not dead.
    #[oai(status = 409)]
    Conflict(Json<ApiError>),
});
responses!(DeliveriesResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<Delivery>>),
});

#[derive(ApiResponse)]
enum UnsubscribeResponse {
    #[oai(status = 200)]
    Ok(PlainText<String>),
    /// Unknown channel or wrong token.
    #[oai(status = 404)]
    NotFound(PlainText<String>),
    #[oai(status = 503)]
    Unavailable(PlainText<String>),
}

/// A new channel as a caller asks for it (this API and the panel's).
pub(super) struct ChannelRequest {
    pub kind: String,
    pub name: String,
    pub to: Vec<String>,
    pub url: Option<String>,
}

/// Why a new channel was refused.
pub(super) enum ChannelRefusal {
    /// 402: the plan does not include the kind.
    NotInPlan(String),
    /// 422: a field does not hold.
    Invalid(PolicyError),
    /// 409: no `secret_key` to seal destinations with.
    NoSecretKey(String),
    /// 503.
    Unavailable,
}

/// The entitlement feature of a channel kind (`None`: unknown kind, refused by validation).
pub(super) fn channel_feature(kind: &str) -> Option<Feature> {
    match kind {
        "email" => Some(Feature::EmailAlerts),
        "slack" => Some(Feature::SlackAlerts),
        "discord" => Some(Feature::DiscordAlerts),
        "webhook" => Some(Feature::WebhookAlerts),
        _ => None,
    }
}

/// Adds a channel after asking the tenant's entitlements whether its kind is in the plan.
pub(super) async fn add_channel(
    state: &AppState,
    scope: crate::storage::TenantScope,
    request: ChannelRequest,
) -> Result<(ChannelRow, Option<String>), ChannelRefusal> {
    if let Some(feature) = channel_feature(&request.kind) {
        match crate::billing::entitlements(&state.db, &state.settings.billing, scope).await {
            Ok(plan) if !plan.allows(feature) => {
                return Err(ChannelRefusal::NotInPlan(format!(
                    "{} channels are not part of this site's plan; upgrade to add one",
                    request.kind
                )));
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "entitlements lookup failed");
                return Err(ChannelRefusal::Unavailable);
            }
        }
    }
    let cipher = state.settings.secret_key.as_ref().and_then(|k| TokenCipher::new(k.expose()).ok());
    let input = ChannelInput {
        kind: request.kind,
        name: request.name,
        to: request.to,
        url: request.url,
        allow_private: state.settings.alerts.allow_private_targets,
    };
    match service::create_channel(&state.db, cipher.as_ref(), scope, input).await {
        Ok(created) => Ok(created),
        Err(AlertsError::Invalid(e)) => Err(ChannelRefusal::Invalid(e)),
        Err(e @ AlertsError::NoSecretKey) => Err(ChannelRefusal::NoSecretKey(e.to_string())),
        Err(e) => {
            unavailable(&e);
            Err(ChannelRefusal::Unavailable)
        }
    }
}

/// The alert's title stored in a delivery's payload.
pub(super) fn delivery_title(r: &DeliveryRow) -> String {
    if r.kind == crate::alerts::invitation::KIND {
        return "Invitation email".into();
    }
    serde_json::from_str::<crate::alerts::Alert>(&r.payload).map(|a| a.title).unwrap_or_default()
}

fn not_found(what: &str) -> Json<ApiError> {
    ApiError::new("not_found", format!("no such {what} for this site"))
}

pub(super) fn unavailable(e: &AlertsError) -> Json<ApiError> {
    tracing::error!(error = %e, "alerts API failed");
    ApiError::new("unavailable", "the database is unavailable; retry shortly")
}

pub struct AlertsApi;

#[OpenApi(prefix_path = "/v1/alerts", tag = "ApiTags::Alerts")]
impl AlertsApi {
    /// The site's alert policy (the default policy until one is stored).
    #[oai(path = "/policy", method = "get", operation_id = "get_alert_policy")]
    async fn get_policy(
        &self,
        Data(state): Data<&Arc<AppState>>,
        auth: SiteToken,
        site: Query<String>,
    ) -> PolicyResponse {
        let (scope, _) = match tenant(&state.db, &auth, &site.0).await {
            Ok(t) => t,
            Err(f) => return f.into(),
        };
        match service::policy(&state.db, scope).await {
            Ok(p) => PolicyResponse::Ok(Json(p)),
            Err(e) => PolicyResponse::Unavailable(unavailable(&e)),
        }
    }

    /// Replaces the site's alert policy. Every threshold is range-checked; a 422 names the field.
    #[oai(path = "/policy", method = "put", operation_id = "put_alert_policy")]
    async fn put_policy(
        &self,
        Data(state): Data<&Arc<AppState>>,
        auth: SiteToken,
        site: Query<String>,
        body: Json<AlertPolicy>,
    ) -> PolicyResponse {
        let (scope, _) = match tenant(&state.db, &auth, &site.0).await {
            Ok(t) => t,
            Err(f) => return f.into(),
        };
        match service::put_policy(&state.db, scope, body.0).await {
            Ok(p) => PolicyResponse::Ok(Json(p)),
            Err(AlertsError::Invalid(e)) => PolicyResponse::Invalid(validation(&e)),
            Err(e) => PolicyResponse::Unavailable(unavailable(&e)),
        }
    }

    /// The site's alert channels.
    #[oai(path = "/channels", method = "get", operation_id = "list_alert_channels")]
    async fn list_channels(
        &self,
        Data(state): Data<&Arc<AppState>>,
        auth: SiteToken,
        site: Query<String>,
    ) -> ChannelsResponse {
        let (scope, _) = match tenant(&state.db, &auth, &site.0).await {
            Ok(t) => t,
            Err(f) => return f.into(),
        };
        match service::channels(&state.db, scope).await {
            Ok(rows) => ChannelsResponse::Ok(Json(rows.into_iter().map(Channel::from).collect())),
            Err(e) => ChannelsResponse::Unavailable(unavailable(&e)),
        }
    }

    /// Adds a channel. Destinations are encrypted at rest; webhook channels get a signing secret,
    /// returned once.
    #[oai(path = "/channels", method = "post", operation_id = "create_alert_channel")]
    async fn create_channel(
        &self,
        Data(state): Data<&Arc<AppState>>,
        auth: SiteToken,
        site: Query<String>,
        body: Json<NewChannel>,
    ) -> CreateChannelResponse {
        let (scope, _) = match tenant(&state.db, &auth, &site.0).await {
            Ok(t) => t,
            Err(f) => return f.into(),
        };
        let input = ChannelRequest { kind: body.0.kind, name: body.0.name, to: body.0.to, url: body.0.url };
        match add_channel(state, scope, input).await {
            Ok((row, secret)) => {
                CreateChannelResponse::Created(Json(CreatedChannel { channel: row.into(), signing_secret: secret }))
            }
            Err(ChannelRefusal::NotInPlan(m)) => CreateChannelResponse::NotInPlan(ApiError::new("not_in_plan", m)),
            Err(ChannelRefusal::Invalid(e)) => CreateChannelResponse::Invalid(validation(&e)),
            Err(ChannelRefusal::NoSecretKey(m)) => CreateChannelResponse::Conflict(ApiError::new("no_secret_key", m)),
            Err(ChannelRefusal::Unavailable) => {
                CreateChannelResponse::Unavailable(ApiError::new("unavailable", "try again shortly"))
            }
        }
    }

    /// Deletes a channel; its pending deliveries move to the dead letters when they come due.
    #[oai(path = "/channels/:id", method = "delete", operation_id = "delete_alert_channel")]
    async fn delete_channel(
        &self,
        Data(state): Data<&Arc<AppState>>,
        auth: SiteToken,
        site: Query<String>,
        id: Path<i64>,
    ) -> DeleteResponse {
        let (scope, _) = match tenant(&state.db, &auth, &site.0).await {
            Ok(t) => t,
            Err(f) => return f.into(),
        };
        match service::delete_channel(&state.db, scope, AlertChannelId(id.0)).await {
            Ok(()) => DeleteResponse::Deleted,
            Err(AlertsError::NotFound) => DeleteResponse::NotFound(not_found("channel")),
            Err(e) => DeleteResponse::Unavailable(unavailable(&e)),
        }
    }

    /// Queues a test alert to one channel (delivered like any alert; see the deliveries list).
    #[oai(path = "/channels/:id/test", method = "post", operation_id = "send_test_alert")]
    async fn send_test(
        &self,
        Data(state): Data<&Arc<AppState>>,
        auth: SiteToken,
        site: Query<String>,
        id: Path<i64>,
    ) -> QueuedResponse {
        let (scope, _) = match tenant(&state.db, &auth, &site.0).await {
            Ok(t) => t,
            Err(f) => return f.into(),
        };
        match service::send_test(&state.db, scope, AlertChannelId(id.0)).await {
            Ok(alert_id) => {
                state.alerts_notify.notify_one();
                QueuedResponse::Queued(Json(Queued { alert_id }))
            }
            Err(AlertsError::NotFound) => QueuedResponse::NotFound(not_found("channel")),
            Err(AlertsError::Conflict(m)) => QueuedResponse::Conflict(ApiError::new("channel_disabled", m)),
            Err(e) => QueuedResponse::Unavailable(unavailable(&e)),
        }
    }

    /// Recent deliveries, newest first; `status=dead` lists the dead letters.
    #[oai(path = "/deliveries", method = "get", operation_id = "list_alert_deliveries")]
    async fn deliveries(
        &self,
        Data(state): Data<&Arc<AppState>>,
        auth: SiteToken,
        site: Query<String>,
        status: Query<Option<StatusParam>>,
        /// 1–500, default 50.
        limit: Query<Option<u64>>,
    ) -> DeliveriesResponse {
        let (scope, _) = match tenant(&state.db, &auth, &site.0).await {
            Ok(t) => t,
            Err(f) => return f.into(),
        };
        let status = status.0.map(|s| match s {
            StatusParam::Pending => "pending",
            StatusParam::Delivered => "delivered",
            StatusParam::Dead => "dead",
        });
        let limit = limit.0.unwrap_or(DELIVERIES_DEFAULT_LIMIT).clamp(1, DELIVERIES_MAX_LIMIT);
        match service::deliveries(&state.db, scope, status, limit).await {
            Ok(rows) => DeliveriesResponse::Ok(Json(rows.into_iter().map(Delivery::from).collect())),
            Err(e) => DeliveriesResponse::Unavailable(unavailable(&e)),
        }
    }

    /// Puts a dead letter back in the queue with a fresh attempt budget.
    #[oai(path = "/deliveries/:id/retry", method = "post", operation_id = "retry_alert_delivery")]
    async fn retry(
        &self,
        Data(state): Data<&Arc<AppState>>,
        auth: SiteToken,
        site: Query<String>,
        id: Path<i64>,
    ) -> QueuedResponse {
        let (scope, _) = match tenant(&state.db, &auth, &site.0).await {
            Ok(t) => t,
            Err(f) => return f.into(),
        };
        match service::retry(&state.db, scope, id.0).await {
            Ok(()) => {
                state.alerts_notify.notify_one();
                QueuedResponse::Queued(Json(Queued { alert_id: String::new() }))
            }
            Err(AlertsError::NotFound) => QueuedResponse::NotFound(not_found("delivery")),
            Err(AlertsError::Conflict(m)) => QueuedResponse::Conflict(ApiError::new("not_dead", m)),
            Err(e) => QueuedResponse::Unavailable(unavailable(&e)),
        }
    }

    /// The unsubscribe link of alert emails (GET from the body link, POST for one-click
    /// `List-Unsubscribe-Post`): disables that email channel.
    #[oai(path = "/unsubscribe", method = "get", operation_id = "unsubscribe_alert_email")]
    async fn unsubscribe_get(
        &self,
        Data(state): Data<&Arc<AppState>>,
        channel: Query<i64>,
        token: Query<String>,
    ) -> UnsubscribeResponse {
        unsubscribe(state, channel.0, &token.0).await
    }

    #[oai(path = "/unsubscribe", method = "post", operation_id = "unsubscribe_alert_email_one_click")]
    async fn unsubscribe_post(
        &self,
        Data(state): Data<&Arc<AppState>>,
        channel: Query<i64>,
        token: Query<String>,
    ) -> UnsubscribeResponse {
        unsubscribe(state, channel.0, &token.0).await
    }
}

async fn unsubscribe(state: &AppState, channel: i64, token: &str) -> UnsubscribeResponse {
    let secret = state.settings.secret_key.as_ref().map(|s| s.expose());
    match service::unsubscribe(&state.db, secret, AlertChannelId(channel), token).await {
        Ok(()) => UnsubscribeResponse::Ok(PlainText(
            "You are unsubscribed: this address gets no more GhostTrack alerts.".into(),
        )),
        Err(AlertsError::NotFound | AlertsError::NoSecretKey) => {
            UnsubscribeResponse::NotFound(PlainText("This unsubscribe link is not valid.".into()))
        }
        Err(e) => {
            tracing::error!(error = %e, "unsubscribe failed");
            UnsubscribeResponse::Unavailable(PlainText("Please retry in a minute.".into()))
        }
    }
}
