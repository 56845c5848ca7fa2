//! The HTTP layer: one route table, thin handlers. Each handler extracts its input, calls one
//! domain function and maps the result to a response; no business logic lives here.

mod account;
mod alerts;
mod billing;
mod billing_hooks;
mod collect;
mod detect;
mod pages;
mod panel;
mod security_headers;
mod shopify;
mod shopify_session;
mod site_token;
mod stats;
mod system;

use std::sync::Arc;
use std::time::Instant;

use poem::middleware::{Compression, Cors};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get, post};
use poem_openapi::OpenApiService;

use crate::startup::AppState;
use crate::telemetry::metrics::{Route as RouteLabel, RouteStatus};

/// Webhook subscriptions of `shopify.app.toml` (relative to `application_url`).
pub const WEBHOOKS_PATH: &str = "/webhooks/shopify";
/// The `compliance_topics` subscription of `shopify.app.toml`.
pub const COMPLIANCE_WEBHOOKS_PATH: &str = "/webhooks/compliance";

/// `application_url` of `shopify.app.toml`: the embedded app home.
pub const APP_HOME_PATH: &str = "/app";
/// The app proxy `url` of `shopify.app.toml`; storefront `/apps/ghosttrack/*` arrives here.
pub const APP_PROXY_PATH: &str = "/proxy";
/// Starts the authorization-code grant: `GET /auth?shop=…`.
pub const AUTH_BEGIN_PATH: &str = "/auth";
/// `[auth] redirect_urls` of `shopify.app.toml` (authorization-code grant callback).
pub const AUTH_CALLBACK_PATH: &str = "/auth/callback";

/// Every route of the server. Used by `main` and by every test (through `startup`).
pub fn routes(state: Arc<AppState>) -> impl Endpoint {
    let security = security_headers::SecurityHeaders::from_settings(&state.settings);
    let api = OpenApiService::new(
        (
            stats::StatsApi,
            shopify_session::ShopifyApi,
            alerts::AlertsApi,
            billing::BillingApi,
            account::AccountApi,
            panel::PanelApi,
            (panel::maps::PanelMapsApi, panel::privacy::PanelPrivacyApi),
            (panel::alerts::PanelAlertsApi, panel::billing::PanelBillingApi, panel::rule_settings::PanelRuleSettingsApi),
        ),
        "GhostTrack API",
        env!("CARGO_PKG_VERSION"),
    )
        .description("Statistics of the sites this server collects for. Authenticate with a site's API token: `Authorization: Bearer gtk_…`. Endpoints of the embedded Shopify panel (tag Shopify) take the App Bridge id token instead: `Authorization: Bearer <id token>` (security scheme ShopifySessionToken).")
        .server("/api");
    let spec = api.spec_endpoint();
    let docs = api.swagger_ui();
    let detect_api = OpenApiService::new(detect::DetectApi, "GhostTrack detection API", env!("CARGO_PKG_VERSION"))
        .description("Detection verdicts (GhostLine-compatible). Authenticate with a site's API token: `Authorization: Bearer gtk_…`.")
        .server("/v1");
    let detect_spec = detect_api.spec_endpoint();

    // CORS on the collect routes only. Attached per route: a `nest("/", …)` of them would also
    // capture `/` and hide the index page.
    let cors = || Cors::new().allow_credentials(false).expose_header("retry-after").max_age(86_400);

    Route::new()
        .at("/collect", post(collect::collect).with(cors()))
        .at("/collect.gif", get(collect::pixel).with(cors()))
        .at(format!("{APP_PROXY_PATH}/collect"), post(collect::proxy_collect).with(cors()))
        .at(format!("{APP_PROXY_PATH}/collect.gif"), get(collect::proxy_pixel).with(cors()))
        .at("/t.js", get(pages::tracker).with(Compression::new()))
        .at("/", get(pages::index))
        .at("/demo", get(pages::demo))
        .at(WEBHOOKS_PATH, post(shopify::webhook))
        .at(COMPLIANCE_WEBHOOKS_PATH, post(shopify::webhook))
        .at(APP_HOME_PATH, get(shopify::app_home))
        .at(format!("{APP_HOME_PATH}/assets/:name"), get(panel::assets::asset))
        .at(format!("{APP_HOME_PATH}/*path"), get(shopify::app_home))
        // Streams: outside the `/api` compression, which would hold events back.
        .at("/api/panel/threats/live", get(panel::live::live))
        .at(crate::shopify::embedded::BOUNCE_PATH, get(shopify::bounce))
        .at(AUTH_BEGIN_PATH, get(shopify::auth_begin))
        .at(AUTH_CALLBACK_PATH, get(shopify::auth_callback))
        .at(billing_hooks::SHOPIFY_RETURN_PATH, get(billing_hooks::shopify_return))
        .at(billing_hooks::STRIPE_WEBHOOK_PATH, post(billing_hooks::stripe_webhook))
        .at("/health", get(system::health))
        .at("/ready", get(system::ready))
        .at("/metrics", get(system::metrics))
        .at("/api/openapi.json", spec)
        .nest("/api/docs", docs)
        .nest("/api", api.with(Compression::new()))
        .at("/v1/openapi.json", detect_spec)
        .nest("/v1", detect_api.around(detect::limit_body))
        .data(state.clone())
        .around(move |ep, req| {
            let state = state.clone();
            async move { observe(ep, req, &state).await }
        })
        .around(move |ep, req| async move { security.call(&ep, req).await })
}

/// Counts and times every request by route (a fixed label set, never the raw path).
async fn observe<E: Endpoint>(ep: Arc<E>, req: Request, state: &AppState) -> poem::Result<Response> {
    let route = route_label(req.uri().path());
    let started = Instant::now();
    let result = ep.call(req).await;
    let response = match result {
        Ok(resp) => resp.into_response(),
        Err(err) => err.into_response(),
    };
    let metrics = &state.metrics;
    metrics.http_duration.get_or_create(&RouteLabel { route }).observe(started.elapsed().as_secs_f64());
    metrics.http_requests.get_or_create(&RouteStatus { route, status: response.status().as_u16() }).inc();
    Ok(response)
}

fn route_label(path: &str) -> &'static str {
    match path {
        "/collect" => "/collect",
        "/collect.gif" => "/collect.gif",
        "/proxy/collect" => "/proxy/collect",
        "/proxy/collect.gif" => "/proxy/collect.gif",
        "/t.js" => "/t.js",
        "/health" => "/health",
        "/ready" => "/ready",
        "/metrics" => "/metrics",
        "/" => "/",
        "/demo" => "/demo",
        WEBHOOKS_PATH => WEBHOOKS_PATH,
        APP_HOME_PATH => APP_HOME_PATH,
        AUTH_BEGIN_PATH => AUTH_BEGIN_PATH,
        AUTH_CALLBACK_PATH => AUTH_CALLBACK_PATH,
        "/auth/session-token" => "/auth/session-token",
        "/api/shopify/session" => "/api/shopify/session",
        "/api/panel/threats/live" => "/api/panel/threats/live",
        p if p.starts_with("/api/panel/") => "/api/panel",
        p if p.starts_with("/app/assets/") => "/app/assets",
        p if p.starts_with("/app/") => APP_HOME_PATH,
        COMPLIANCE_WEBHOOKS_PATH => COMPLIANCE_WEBHOOKS_PATH,
        billing_hooks::SHOPIFY_RETURN_PATH => billing_hooks::SHOPIFY_RETURN_PATH,
        billing_hooks::STRIPE_WEBHOOK_PATH => billing_hooks::STRIPE_WEBHOOK_PATH,
        p if p.starts_with("/api/billing") => "/api/billing",
        p if p.starts_with("/api/v1/stats") => "/api/v1/stats",
        p if p.starts_with("/api/v1/alerts") => "/api/v1/alerts",
        p if p.starts_with("/api/account/") => "/api/account",
        "/v1/evaluate" => "/v1/evaluate",
        "/v1/recent" => "/v1/recent",
        "/v1/stats" => "/v1/stats",
        "/v1/verdict" => "/v1/verdict",
        p if p.starts_with("/v1/") => "/v1/other",
        p if p.starts_with("/api/") => "/api/other",
        _ => "other",
    }
}
