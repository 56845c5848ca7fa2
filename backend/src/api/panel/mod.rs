//! `/api/panel/*`: what the admin panel reads (tag Panel). Every handler authenticates
//! (`auth::authenticate`: the tenant comes only from the verified credential), calls one
//! storage function and maps the result to its response enum. The live threat feed is a plain
//! poem handler (`live.rs`) because it streams, and is kept out of the compression middleware.

pub mod alerts;
pub mod assets;
pub mod auth;
pub mod billing;
pub mod live;
mod responses;
pub mod rule_settings;

use std::sync::Arc;

use ghosttrack_wire::{
    Overview, PanelError as ApiError, RuleItem, RuleList, SeriesPoint, SessionDetail, SessionList, SetupStatus,
    ThreatList,
};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, OpenApi, Tags};

use crate::domain::{SessionId, UnixMillis};
use crate::panel::present;
use crate::startup::AppState;
use crate::storage::panel::{self as store, SessionFilter};
use crate::storage::stats::{Bucket, Range};
use auth::{PanelAuthError, PanelUser, authenticate};

/// Most rows of one list.
const MAX_LIMIT: u32 = 500;
const DEFAULT_LIMIT: u32 = 100;

#[derive(Tags)]
enum ApiTags {
    /// The admin panel (Shopify embedded: App Bridge id token; standalone: session cookie).
    Panel,
}

/// A time window ending now.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RangeParam {
    #[default]
    #[oai(rename = "24h")]
    Day,
    #[oai(rename = "7d")]
    Week,
    #[oai(rename = "30d")]
    Month,
}

impl RangeParam {
    fn name(self) -> &'static str {
        match self {
            RangeParam::Day => "24h",
            RangeParam::Week => "7d",
            RangeParam::Month => "30d",
        }
    }

    /// The range ending at the end of the current bucket, and its bucket.
    fn window(self, now: UnixMillis) -> (Range, Bucket) {
        let (days, bucket) = match self {
            RangeParam::Day => (1, Bucket::Hour),
            RangeParam::Week => (7, Bucket::Hour),
            RangeParam::Month => (30, Bucket::Day),
        };
        let width = bucket.millis();
        let to = (now.0.div_euclid(width) + 1) * width;
        (Range { from: UnixMillis(to - days * UnixMillis::DAY), to: UnixMillis(to) }, bucket)
    }
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "UPPERCASE")]
pub enum DecisionParam {
    Allow,
    Challenge,
    Block,
}

/// A response enum per endpoint: 200, the auth failures (401 carries the App Bridge retry
/// header when a fresh token may help), 400/404 where they apply, 503.
macro_rules! panel_response {
    ($name:ident, $ok:ty) => {
        #[derive(ApiResponse)]
        pub enum $name {
            #[oai(status = 200)]
            Ok(Json<$ok>),
            /// A filter or parameter is invalid.
            #[oai(status = 400)]
            BadRequest(Json<ApiError>),
            /// Not signed in, or the session token is invalid or expired (then
            /// `X-Shopify-Retry-Invalid-Session-Request: 1` asks App Bridge to retry once with a fresh token).
            #[oai(status = 401)]
            Unauthorized(Json<ApiError>, #[oai(header = "X-Shopify-Retry-Invalid-Session-Request")] Option<String>),
            /// No such item for this tenant.
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
                    other => {
                        let retry = other.retry_header();
                        $name::Unauthorized(other.body(), retry)
                    }
                }
            }
        }

        impl $name {
            // Every endpoint but `rules` reads storage.
            #[allow(dead_code)]
            fn storage(error: impl std::fmt::Display) -> Self {
                tracing::error!(error = %error, "panel query failed");
                $name::Unavailable(error_body("unavailable", "the database is unavailable; retry shortly"))
            }
        }
    };
}

panel_response!(OverviewResponse, Overview);
panel_response!(ThreatsResponse, ThreatList);
panel_response!(SessionsResponse, SessionList);
panel_response!(SessionResponse, Box<SessionDetail>);
panel_response!(SetupResponse, SetupStatus);
panel_response!(RulesResponse, RuleList);

fn error_body(code: &str, message: &str) -> Json<ApiError> {
    Json(ApiError { error: code.into(), message: message.into() })
}

async fn user(state: &AppState, req: &Request) -> Result<PanelUser, PanelAuthError> {
    authenticate(state, req).await
}

pub struct PanelApi;

#[OpenApi(prefix_path = "/panel", tag = "ApiTags::Panel")]
impl PanelApi {
    /// Key numbers and the visitors-vs-bots series over a range ending now.
    #[oai(path = "/overview", method = "get", operation_id = "get_panel_overview")]
    async fn overview(
        &self,
        req: &Request,
        Data(state): Data<&Arc<AppState>>,
        /// `24h` (hourly buckets, the default), `7d` (hourly) or `30d` (daily).
        range: Query<Option<RangeParam>>,
    ) -> OverviewResponse {
        let u = match user(state, req).await {
            Ok(u) => u,
            Err(e) => return e.into(),
        };
        let range_param = range.0.unwrap_or_default();
        let now = UnixMillis::now();
        let (range, bucket) = range_param.window(now);
        match store::overview(&state.db, u.scope, range, bucket, now).await {
            Ok(rows) => {
                let share = if rows.summary.sessions == 0 {
                    0.0
                } else {
                    rows.summary.automated_sessions as f64 / rows.summary.sessions as f64
                };
                OverviewResponse::Ok(Json(Overview {
                    range: range_param.name().into(),
                    from: range.from.0,
                    to: range.to.0,
                    bucket_ms: bucket.millis(),
                    visitors: rows.summary.visitors,
                    sessions: rows.summary.sessions,
                    automated_share: share,
                    open_threats: rows.open_threats,
                    failed_payment_bursts: rows.card_bursts,
                    failed_payments: rows.failed_payments,
                    series: rows
                        .series
                        .into_iter()
                        .map(|p| SeriesPoint {
                            start: p.start.0,
                            visitors: p.visitors,
                            sessions: p.sessions,
                            automated_sessions: p.automated_sessions,
                        })
                        .collect(),
                }))
            }
            Err(e) => OverviewResponse::storage(e),
        }
    }

    /// The newest verdict changes, newest first (Live threats; new ones stream from
    /// `/api/panel/threats/live`).
    #[oai(path = "/threats", method = "get", operation_id = "list_panel_threats")]
    async fn threats(
        &self,
        req: &Request,
        Data(state): Data<&Arc<AppState>>,
        /// At most this many (default 100, at most 500).
        limit: Query<Option<u32>>,
    ) -> ThreatsResponse {
        let u = match user(state, req).await {
            Ok(u) => u,
            Err(e) => return e.into(),
        };
        let limit = limit.0.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
        match store::recent_threats(&state.db, u.scope, u64::from(limit)).await {
            Ok(rows) => ThreatsResponse::Ok(Json(ThreatList { threats: rows.iter().map(present::threat).collect() })),
            Err(e) => ThreatsResponse::storage(e),
        }
    }

    /// Sessions started in the range, newest first, filtered; each with its latest verdict.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/sessions", method = "get", operation_id = "list_panel_sessions")]
    async fn sessions(
        &self,
        req: &Request,
        Data(state): Data<&Arc<AppState>>,
        /// Latest verdict of the session.
        decision: Query<Option<DecisionParam>>,
        /// A rule id among the session's verdict reasons, e.g. `ua/automation-library`.
        rule: Query<Option<String>>,
        /// ISO 3166-1 alpha-2 country code.
        country: Query<Option<String>>,
        /// `desktop`, `mobile`, `tablet`, `bot` or `unknown`.
        device: Query<Option<String>>,
        /// Sessions started in this window ending now (default `24h`).
        range: Query<Option<RangeParam>>,
        /// At most this many (default 100, at most 500).
        limit: Query<Option<u32>>,
    ) -> SessionsResponse {
        let u = match user(state, req).await {
            Ok(u) => u,
            Err(e) => return e.into(),
        };
        let country = country.0.map(|c| c.trim().to_ascii_uppercase()).filter(|c| !c.is_empty());
        if country.as_ref().is_some_and(|c| c.len() != 2 || !c.bytes().all(|b| b.is_ascii_alphabetic())) {
            return SessionsResponse::BadRequest(error_body(
                "invalid_country",
                "`country` must be a two-letter ISO code such as DE",
            ));
        }
        let device = device.0.map(|d| d.trim().to_ascii_lowercase()).filter(|d| !d.is_empty());
        if device.as_deref().is_some_and(|d| !["desktop", "mobile", "tablet", "bot", "unknown"].contains(&d)) {
            return SessionsResponse::BadRequest(error_body(
                "invalid_device",
                "`device` must be desktop, mobile, tablet, bot or unknown",
            ));
        }
        let rule = rule.0.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
        if rule
            .as_deref()
            .is_some_and(|r| r.len() > 100 || !r.bytes().all(|b| b.is_ascii_alphanumeric() || b"/-.".contains(&b)))
        {
            return SessionsResponse::BadRequest(error_body(
                "invalid_rule",
                "`rule` must be a rule id such as ua/automation-library",
            ));
        }
        let decision = decision.0.map(|d| match d {
            DecisionParam::Allow => "ALLOW".to_owned(),
            DecisionParam::Challenge => "CHALLENGE".to_owned(),
            DecisionParam::Block => "BLOCK".to_owned(),
        });
        let (range, _) = range.0.unwrap_or_default().window(UnixMillis::now());
        let filter = SessionFilter {
            range: Some(range),
            decision,
            rule,
            country,
            device,
            limit: u64::from(limit.0.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)),
        };
        match store::sessions(&state.db, u.scope, &filter).await {
            Ok(rows) => SessionsResponse::Ok(Json(SessionList {
                sessions: rows.iter().map(|(s, t)| present::session(s, t.as_ref())).collect(),
            })),
            Err(e) => SessionsResponse::storage(e),
        }
    }

    /// One session: its event timeline, the pointer path and clicks for the replay, and the
    /// signals of its latest verdict with evidence and explainers.
    #[oai(path = "/sessions/:id", method = "get", operation_id = "get_panel_session")]
    async fn session(&self, req: &Request, Data(state): Data<&Arc<AppState>>, id: Path<i64>) -> SessionResponse {
        let u = match user(state, req).await {
            Ok(u) => u,
            Err(e) => return e.into(),
        };
        match store::session_detail(&state.db, u.scope, SessionId(id.0)).await {
            Ok(Some((session, mut events, verdicts))) => {
                if let Err(e) = state.event_keys.open_events(&state.db, u.scope, &mut events).await {
                    return SessionResponse::storage(e);
                }
                let (pointer, clicks, page_width, page_height) = present::replay(&events);
                SessionResponse::Ok(Json(Box::new(SessionDetail {
                    session: present::session(&session, verdicts.first()),
                    timeline: present::timeline(&events),
                    pointer,
                    clicks,
                    page_width,
                    page_height,
                    signals: present::signals(verdicts.first()),
                })))
            }
            Ok(None) => SessionResponse::NotFound(error_body("session_not_found", "no such session on this site")),
            Err(e) => SessionResponse::storage(e),
        }
    }

    /// The detection rules this server runs, with their explainers (read-only).
    #[oai(path = "/rules", method = "get", operation_id = "list_panel_rules")]
    async fn rules(&self, req: &Request, Data(state): Data<&Arc<AppState>>) -> RulesResponse {
        if let Err(e) = user(state, req).await {
            return e.into();
        }
        let rules = state.detector.as_ref().map(|d| d.rule_summaries()).unwrap_or_default();
        RulesResponse::Ok(Json(RuleList {
            rules: rules
                .into_iter()
                .map(|(id, description, behavior, attack, weight)| RuleItem {
                    explainer: present::explainer(&id),
                    id,
                    description,
                    behavior,
                    attack,
                    weight,
                })
                .collect(),
        }))
    }

    /// Is the tracker installed and reporting: the app embed, the activation deep link, the pixel.
    #[oai(path = "/setup", method = "get", operation_id = "get_panel_setup")]
    async fn setup(&self, req: &Request, Data(state): Data<&Arc<AppState>>) -> SetupResponse {
        let u = match user(state, req).await {
            Ok(u) => u,
            Err(e) => return e.into(),
        };
        let since = UnixMillis(UnixMillis::now().0 - UnixMillis::DAY);
        let events = match store::events_since(&state.db, u.scope, since).await {
            Ok(n) => n,
            Err(e) => return SetupResponse::storage(e),
        };
        let mut status = SetupStatus {
            kind: "standalone".into(),
            domain: u.site.domain.clone(),
            site_key: u.site.key.to_string(),
            app_embed: "not_applicable".into(),
            activation_url: None,
            pixel: "not_applicable".into(),
            events_last_24h: events,
        };
        if let (Some(shop), Some(shopify)) = (&u.shop, state.shopify.as_ref()) {
            status.kind = "shopify".into();
            status.activation_url = Some(format!(
                "https://{shop}/admin/themes/current/editor?context=apps&activateAppId={}/ghosttrack-embed",
                shopify.config.api_key
            ));
            // Shopify is asked live; a failure is shown as "unknown", never as an error page.
            status.app_embed = match shopify.theme_embed_status(shop).await {
                Ok(s) => s.as_str().into(),
                Err(error) => {
                    tracing::warn!(shop = %shop, error = %error, "could not read the theme embed status");
                    "unknown".into()
                }
            };
            status.pixel = match shopify.web_pixel(shop).await {
                Ok(Some(_)) => "connected".into(),
                Ok(None) => "missing".into(),
                Err(error) => {
                    tracing::warn!(shop = %shop, error = %error, "could not read the web pixel");
                    "unknown".into()
                }
            };
        }
        SetupResponse::Ok(Json(status))
    }
}

// After `panel_response!`, which they use.
pub mod maps;
pub mod privacy;
