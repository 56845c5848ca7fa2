//! `/api/panel/alerts*`: the Alerts page with the panel's sign-in (App Bridge bearer or the
//! standalone cookie + CSRF). Same service as `/api/v1/alerts` (site token): the policy, channels
//! (the plan's entitlements decide which kinds), test alerts, deliveries and dead-letter retries.
//! Viewers read; owners and analysts change (`Action::ManageAlerts`).

use std::sync::Arc;

use ghosttrack_wire::{
    AlertChannelItem, AlertDeliveryItem, AlertPolicyBody, AlertQueued, AlertsPage, ChannelKindItem,
    CreatedAlertChannel, FieldError, NewAlertChannel, QuietHoursBody,
};
use poem::Request;
use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;

use super::auth::authenticate;
use super::responses::{body, manage_response};
use crate::accounts::Action;
use crate::alerts::policy::{AlertPolicy, FAMILIES, PolicyError, QuietHours};
use crate::alerts::service::{self, AlertsError};
use crate::api::alerts::{ChannelRefusal, ChannelRequest, add_channel, channel_feature, delivery_title};
use crate::domain::AlertChannelId;
use crate::startup::AppState;
use crate::storage::alerts::{ChannelRow, DeliveryRow};

/// Deliveries and dead letters the page lists.
const PAGE_ROWS: u64 = 50;
const CHANNEL_KINDS: [&str; 4] = ["email", "slack", "discord", "webhook"];

manage_response!(AlertsPageResponse {
    /// Boxed: the page is far larger than the error variants (the schema is `AlertsPage`'s).
    #[oai(status = 200)]
    Ok(Json<Box<AlertsPage>>),
});
manage_response!(PolicyResponse {
    #[oai(status = 200)]
    Ok(Json<AlertPolicyBody>),
    /// A field is out of range or unknown; `field` names it.
    #[oai(status = 422)]
    Invalid(Json<FieldError>),
});
manage_response!(CreateChannelResponse {
    #[oai(status = 201)]
    Created(Json<CreatedAlertChannel>),
    /// The plan does not include this channel kind.
    #[oai(status = 402)]
    NotInPlan(Json<ghosttrack_wire::PanelError>),
    /// The server has no `secret_key` to encrypt destinations with.
    #[oai(status = 409)]
    Conflict(Json<ghosttrack_wire::PanelError>),
    #[oai(status = 422)]
    Invalid(Json<FieldError>),
});
manage_response!(DeleteResponse {
    #[oai(status = 204)]
    Deleted,
    #[oai(status = 404)]
    NotFound(Json<ghosttrack_wire::PanelError>),
});
manage_response!(QueuedResponse {
    #[oai(status = 202)]
    Queued(Json<AlertQueued>),
    #[oai(status = 404)]
    NotFound(Json<ghosttrack_wire::PanelError>),
    /// The channel is disabled, or the delivery is not dead.
    #[oai(status = 409)]
    Conflict(Json<ghosttrack_wire::PanelError>),
});

fn field_error(e: &PolicyError) -> Json<FieldError> {
    Json(FieldError { error: "invalid".into(), field: e.field.clone(), message: format!("{}: {}", e.field, e.message) })
}

fn failed(e: &AlertsError) {
    crate::api::alerts::unavailable(e);
}

pub fn policy_body(p: AlertPolicy) -> AlertPolicyBody {
    AlertPolicyBody {
        decisions: p.decisions,
        families: p.families,
        card_testing: p.card_testing,
        burst_subjects: p.burst_subjects,
        burst_window_minutes: p.burst_window_minutes,
        traffic: p.traffic,
        traffic_spike_ratio: p.traffic_spike_ratio,
        traffic_drop_ratio: p.traffic_drop_ratio,
        traffic_min_baseline: p.traffic_min_baseline,
        cooldown_minutes: p.cooldown_minutes,
        time_zone: p.time_zone,
        quiet_hours: p.quiet_hours.map(|q| QuietHoursBody { from: q.from, to: q.to }),
        digest: p.digest,
        digest_hour: p.digest_hour,
    }
}

pub fn policy_of(b: AlertPolicyBody) -> AlertPolicy {
    AlertPolicy {
        decisions: b.decisions,
        families: b.families,
        card_testing: b.card_testing,
        burst_subjects: b.burst_subjects,
        burst_window_minutes: b.burst_window_minutes,
        traffic: b.traffic,
        traffic_spike_ratio: b.traffic_spike_ratio,
        traffic_drop_ratio: b.traffic_drop_ratio,
        traffic_min_baseline: b.traffic_min_baseline,
        cooldown_minutes: b.cooldown_minutes,
        time_zone: b.time_zone,
        quiet_hours: b.quiet_hours.map(|q| QuietHours { from: q.from, to: q.to }),
        digest: b.digest,
        digest_hour: b.digest_hour,
    }
}

fn channel_item(r: ChannelRow) -> AlertChannelItem {
    AlertChannelItem {
        id: r.id.0,
        kind: r.kind,
        name: r.name,
        display: r.display,
        enabled: r.enabled,
        created_at: r.created_at.0,
    }
}

fn delivery_item(r: DeliveryRow, channels: &[ChannelRow]) -> AlertDeliveryItem {
    let channel = channels.iter().find(|c| c.id == r.channel_id);
    AlertDeliveryItem {
        title: delivery_title(&r),
        id: r.id,
        channel_id: r.channel_id.0,
        channel_name: channel.map(|c| c.name.clone()).unwrap_or_default(),
        channel_kind: channel.map(|c| c.kind.clone()).unwrap_or_default(),
        alert_kind: r.kind,
        status: r.status,
        attempts: r.attempts,
        last_error: r.last_error,
        created_at: r.created_at.0,
        next_attempt_at: r.next_attempt_at.0,
        delivered_at: r.delivered_at.map(|t| t.0),
    }
}

pub struct PanelAlertsApi;

#[OpenApi(prefix_path = "/panel/alerts", tag = "super::ApiTags::Panel")]
impl PanelAlertsApi {
    /// The Alerts page: policy, channels (with the kinds the plan includes), recent deliveries
    /// and dead letters, and whether the user may change them.
    #[oai(path = "/", method = "get", operation_id = "get_panel_alerts")]
    async fn page(&self, req: &Request, Data(state): Data<&Arc<AppState>>) -> AlertsPageResponse {
        let u = match authenticate(state, req).await {
            Ok(u) => u,
            Err(e) => return e.into(),
        };
        let result = async {
            let policy = service::policy(&state.db, u.scope).await?;
            let channels = service::channels(&state.db, u.scope).await?;
            let deliveries = service::deliveries(&state.db, u.scope, None, PAGE_ROWS).await?;
            let dead = service::deliveries(&state.db, u.scope, Some(crate::storage::alerts::DEAD), PAGE_ROWS).await?;
            Ok::<_, AlertsError>((policy, channels, deliveries, dead))
        }
        .await;
        let (policy, channels, deliveries, dead) = match result {
            Ok(r) => r,
            Err(e) => {
                failed(&e);
                return AlertsPageResponse::unavailable();
            }
        };
        let plan = match crate::billing::entitlements(&state.db, &state.settings.billing, u.scope).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "entitlements lookup failed");
                return AlertsPageResponse::unavailable();
            }
        };
        let channel_kinds = CHANNEL_KINDS
            .into_iter()
            .map(|kind| ChannelKindItem {
                kind: kind.into(),
                allowed: channel_feature(kind).is_some_and(|f| plan.allows(f)),
            })
            .collect();
        AlertsPageResponse::Ok(Json(Box::new(AlertsPage {
            policy: policy_body(policy),
            families: FAMILIES.iter().map(|f| f.to_string()).collect(),
            deliveries: deliveries.into_iter().map(|d| delivery_item(d, &channels)).collect(),
            dead: dead.into_iter().map(|d| delivery_item(d, &channels)).collect(),
            channels: channels.into_iter().map(channel_item).collect(),
            channel_kinds,
            can_edit: u.allows(Action::ManageAlerts),
        })))
    }

    /// Replaces the alert policy. Every threshold is range-checked; a 422 names the field.
    #[oai(path = "/policy", method = "put", operation_id = "put_panel_alert_policy")]
    async fn put_policy(
        &self,
        req: &Request,
        Data(state): Data<&Arc<AppState>>,
        policy: Json<AlertPolicyBody>,
    ) -> PolicyResponse {
        let u = match authenticate(state, req).await {
            Ok(u) => u,
            Err(e) => return e.into(),
        };
        if !u.allows(Action::ManageAlerts) {
            return PolicyResponse::forbidden("change alerts (owners and analysts do)");
        }
        match service::put_policy(&state.db, u.scope, policy_of(policy.0)).await {
            Ok(p) => PolicyResponse::Ok(Json(policy_body(p))),
            Err(AlertsError::Invalid(e)) => PolicyResponse::Invalid(field_error(&e)),
            Err(e) => {
                failed(&e);
                PolicyResponse::unavailable()
            }
        }
    }

    /// Adds a channel (its kind must be in the plan). Webhook channels return their signing
    /// secret once.
    #[oai(path = "/channels", method = "post", operation_id = "create_panel_alert_channel")]
    async fn create_channel(
        &self,
        req: &Request,
        Data(state): Data<&Arc<AppState>>,
        channel: Json<NewAlertChannel>,
    ) -> CreateChannelResponse {
        let u = match authenticate(state, req).await {
            Ok(u) => u,
            Err(e) => return e.into(),
        };
        if !u.allows(Action::ManageAlerts) {
            return CreateChannelResponse::forbidden("change alerts (owners and analysts do)");
        }
        let c = channel.0;
        let request = ChannelRequest { kind: c.kind, name: c.name, to: c.to, url: c.url };
        match add_channel(state, u.scope, request).await {
            Ok((row, signing_secret)) => {
                CreateChannelResponse::Created(Json(CreatedAlertChannel { channel: channel_item(row), signing_secret }))
            }
            Err(ChannelRefusal::NotInPlan(m)) => CreateChannelResponse::NotInPlan(body("not_in_plan", &m)),
            Err(ChannelRefusal::Invalid(e)) => CreateChannelResponse::Invalid(field_error(&e)),
            Err(ChannelRefusal::NoSecretKey(m)) => CreateChannelResponse::Conflict(body("no_secret_key", &m)),
            Err(ChannelRefusal::Unavailable) => CreateChannelResponse::unavailable(),
        }
    }

    /// Removes a channel.
    #[oai(path = "/channels/:id", method = "delete", operation_id = "delete_panel_alert_channel")]
    async fn delete_channel(&self, req: &Request, Data(state): Data<&Arc<AppState>>, id: Path<i64>) -> DeleteResponse {
        let u = match authenticate(state, req).await {
            Ok(u) => u,
            Err(e) => return e.into(),
        };
        if !u.allows(Action::ManageAlerts) {
            return DeleteResponse::forbidden("change alerts (owners and analysts do)");
        }
        match service::delete_channel(&state.db, u.scope, AlertChannelId(id.0)).await {
            Ok(()) => DeleteResponse::Deleted,
            Err(AlertsError::NotFound) => DeleteResponse::NotFound(body("not_found", "no such channel for this site")),
            Err(e) => {
                failed(&e);
                DeleteResponse::unavailable()
            }
        }
    }

    /// Queues a test alert to one channel; it shows in the deliveries like any alert.
    #[oai(path = "/channels/:id/test", method = "post", operation_id = "send_panel_test_alert")]
    async fn send_test(&self, req: &Request, Data(state): Data<&Arc<AppState>>, id: Path<i64>) -> QueuedResponse {
        let u = match authenticate(state, req).await {
            Ok(u) => u,
            Err(e) => return e.into(),
        };
        if !u.allows(Action::ManageAlerts) {
            return QueuedResponse::forbidden("send test alerts (owners and analysts do)");
        }
        match service::send_test(&state.db, u.scope, AlertChannelId(id.0)).await {
            Ok(alert_id) => {
                state.alerts_notify.notify_one();
                QueuedResponse::Queued(Json(AlertQueued { alert_id }))
            }
            Err(AlertsError::NotFound) => QueuedResponse::NotFound(body("not_found", "no such channel for this site")),
            Err(AlertsError::Conflict(m)) => QueuedResponse::Conflict(body("channel_disabled", &m)),
            Err(e) => {
                failed(&e);
                QueuedResponse::unavailable()
            }
        }
    }

    /// Puts a dead letter back in the queue with a fresh attempt budget.
    #[oai(path = "/deliveries/:id/retry", method = "post", operation_id = "retry_panel_alert_delivery")]
    async fn retry(&self, req: &Request, Data(state): Data<&Arc<AppState>>, id: Path<i64>) -> QueuedResponse {
        let u = match authenticate(state, req).await {
            Ok(u) => u,
            Err(e) => return e.into(),
        };
        if !u.allows(Action::ManageAlerts) {
            return QueuedResponse::forbidden("retry deliveries (owners and analysts do)");
        }
        match service::retry(&state.db, u.scope, id.0).await {
            Ok(()) => {
                state.alerts_notify.notify_one();
                QueuedResponse::Queued(Json(AlertQueued { alert_id: String::new() }))
            }
            Err(AlertsError::NotFound) => QueuedResponse::NotFound(body("not_found", "no such delivery for this site")),
            Err(AlertsError::Conflict(m)) => QueuedResponse::Conflict(body("not_dead", &m)),
            Err(e) => {
                failed(&e);
                QueuedResponse::unavailable()
            }
        }
    }
}
