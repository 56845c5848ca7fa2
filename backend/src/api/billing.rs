//! Billing endpoints (tag Billing): the status the panel's Billing page and quota banner show,
//! starting a subscription (Shopify → `confirmationUrl`; Stripe → Checkout URL; the panel opens
//! either with `window.open(url, "_top")`), the Stripe customer portal, and cancelling (back to
//! Free). The tenant comes only from the credential: an App Bridge id token for Shopify shops,
//! a site API token (`gtk_…`) for standalone sites.
//!
//! The provider callbacks (Shopify's return URL, the Stripe webhook) are in `billing_hooks.rs`.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::auth::Bearer;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, SecurityScheme, Tags};

use super::site_token::ApiError;
use crate::billing::plans::{Feature, Plan};
use crate::billing::quota::{month_bounds, month_of};
use crate::billing::{self, BillingError, Entitlements};
use crate::domain::{ApiToken, UnixMillis};
use crate::shopify::embedded;
use crate::shopify::shop_domain::ShopDomain;
use crate::startup::AppState;
use crate::storage::sites::SiteKind;
use crate::storage::{self as store, TenantScope};

use super::billing_hooks::SHOPIFY_RETURN_PATH;

#[derive(Tags)]
enum ApiTags {
    /// Plans, entitlements, usage and subscriptions.
    Billing,
}

/// The App Bridge id token (Shopify shops) or a site API token `gtk_…` (standalone sites).
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "App Bridge id token, or gtk_… site token")]
struct BillingCredential(Bearer);

/// Who is asking, proven by the credential (a site token or id token here; the panel's sign-in
/// in `panel/billing.rs`).
pub(super) enum Tenant {
    Shop { shop: ShopDomain, scope: TenantScope },
    Site { scope: TenantScope, kind: SiteKind },
}

impl Tenant {
    pub(super) fn scope(&self) -> TenantScope {
        match self {
            Tenant::Shop { scope, .. } | Tenant::Site { scope, .. } => *scope,
        }
    }
}

#[derive(Object)]
struct EntitlementsView {
    /// Absent when plans are not enforced (unlimited).
    sessions_per_month: Option<u64>,
    retention_days: u32,
    /// Included features: all_rules, email_alerts, slack_alerts, discord_alerts, webhook_alerts,
    /// order_risk_writeback, evaluate_api, exports.
    features: Vec<String>,
}

#[derive(Object)]
struct QuotaView {
    /// Calendar month (UTC) the usage counts, `YYYY-MM`.
    month: String,
    /// Sessions recorded this month.
    used: u64,
    /// The plan's sessions per month; absent when plans are not enforced (unlimited).
    limit: Option<u64>,
    /// `used >= limit`: show the banner.
    over: bool,
    /// Whether new sessions are being sampled now (as of the last meter run).
    sampling: bool,
    /// Percent of new sessions kept while sampling.
    sample_percent: u8,
}

#[derive(Object)]
struct PlanView {
    /// `free`, `pro` or `business`.
    id: String,
    name: String,
    /// Price per 30 days, decimal string.
    price: String,
    currency: String,
    trial_days: u32,
    sessions_per_month: u64,
    retention_days: u32,
    features: Vec<String>,
    current: bool,
}

#[derive(Object)]
pub(super) struct BillingStatus {
    /// The plan in effect: `free`, `pro` or `business`.
    plan: String,
    /// Whether plans are enforced on this server (`billing.enabled`); when false everything is
    /// allowed and there is no quota.
    enforced: bool,
    /// `shopify` or `stripe` for a paid or past subscription.
    provider: Option<String>,
    /// The provider's status of the stored subscription (ACTIVE, FROZEN, active, past_due…).
    subscription_status: Option<String>,
    /// A test charge (development store).
    test: bool,
    trial_ends_at: Option<String>,
    current_period_end: Option<String>,
    entitlements: EntitlementsView,
    quota: QuotaView,
    plans: Vec<PlanView>,
    /// A Stripe customer is on file (the portal has something to show).
    #[oai(skip)]
    customer: bool,
}

impl BillingStatus {
    /// The panel's Billing page: the same status, plus how the tenant pays and what the user may do.
    pub(super) fn into_page(self, channel: &str, can_manage: bool) -> ghosttrack_wire::BillingPage {
        use ghosttrack_wire::{BillingPage, PlanItem, QuotaItem};
        BillingPage {
            plan: self.plan,
            enforced: self.enforced,
            channel: channel.into(),
            provider: self.provider,
            subscription_status: self.subscription_status,
            test: self.test,
            trial_ends_at: self.trial_ends_at,
            current_period_end: self.current_period_end,
            features: self.entitlements.features,
            quota: QuotaItem {
                month: self.quota.month,
                used: self.quota.used,
                limit: self.quota.limit,
                over: self.quota.over,
                sampling: self.quota.sampling,
                sample_percent: self.quota.sample_percent,
            },
            plans: self
                .plans
                .into_iter()
                .map(|p| PlanItem {
                    id: p.id,
                    name: p.name,
                    price: p.price,
                    currency: p.currency,
                    trial_days: p.trial_days,
                    sessions_per_month: p.sessions_per_month,
                    retention_days: p.retention_days,
                    features: p.features,
                    current: p.current,
                })
                .collect(),
            can_manage,
            portal: self.customer && channel == "stripe",
        }
    }
}

#[derive(Object)]
struct StartSubscription {
    /// `pro` or `business`.
    plan: String,
}

#[derive(Object)]
pub(super) struct RedirectTarget {
    /// `shopify` or `stripe`.
    pub(super) provider: String,
    /// Open in the top window: `window.open(url, "_top")` (never inside the admin iframe).
    pub(super) url: String,
}

#[derive(ApiResponse)]
enum StatusResponse {
    #[oai(status = 200)]
    Ok(Json<Box<BillingStatus>>),
    /// The credential is not valid.
    #[oai(status = 401)]
    Unauthorized(Json<ApiError>),
    /// Storage is down, or Shopify is not configured for an id token.
    #[oai(status = 503)]
    Unavailable(Json<ApiError>),
}

#[derive(ApiResponse)]
enum RedirectResponse {
    #[oai(status = 200)]
    Ok(Json<RedirectTarget>),
    #[oai(status = 401)]
    Unauthorized(Json<ApiError>),
    /// Already on that plan, nothing to manage, or the wrong provider for this tenant.
    #[oai(status = 409)]
    Conflict(Json<ApiError>),
    /// Unknown or free plan.
    #[oai(status = 422)]
    Invalid(Json<ApiError>),
    /// The provider refused or failed; the message says why.
    #[oai(status = 502)]
    BadGateway(Json<ApiError>),
    #[oai(status = 503)]
    Unavailable(Json<ApiError>),
}

#[derive(ApiResponse)]
enum CancelResponse {
    /// Cancelled; the new status (Free).
    #[oai(status = 200)]
    Ok(Json<Box<BillingStatus>>),
    #[oai(status = 401)]
    Unauthorized(Json<ApiError>),
    /// No paid subscription to cancel.
    #[oai(status = 409)]
    Conflict(Json<ApiError>),
    #[oai(status = 502)]
    BadGateway(Json<ApiError>),
    #[oai(status = 503)]
    Unavailable(Json<ApiError>),
}

/// A failure to resolve the tenant or run the billing call, before mapping to a response.
pub(super) enum Failure {
    Unauthorized(&'static str, String),
    Conflict(String),
    Invalid(String),
    BadGateway(String),
    Unavailable(&'static str, String),
}

impl From<BillingError> for Failure {
    fn from(e: BillingError) -> Self {
        match e {
            BillingError::Storage(error) => {
                tracing::error!(error = %error, "billing storage failed");
                Failure::Unavailable("storage_unavailable", "the database is unavailable; retry shortly".into())
            }
            BillingError::InvalidPlan(m) => Failure::Conflict(m),
            BillingError::NothingToDo(m) => Failure::Conflict(m),
            e @ (BillingError::Refused { .. } | BillingError::Provider { .. }) => {
                tracing::warn!(error = %e, "billing provider call failed");
                Failure::BadGateway(e.to_string())
            }
            e @ BillingError::NotConfigured(_) => Failure::Unavailable("billing_not_configured", e.to_string()),
        }
    }
}

macro_rules! respond {
    ($ty:ident, $failure:expr) => {
        match $failure {
            Failure::Unauthorized(code, m) => $ty::Unauthorized(ApiError::new(code, m)),
            Failure::Conflict(m) => $ty::Conflict(ApiError::new("conflict", m)),
            Failure::BadGateway(m) => $ty::BadGateway(ApiError::new("provider_error", m)),
            Failure::Unavailable(code, m) => $ty::Unavailable(ApiError::new(code, m)),
            Failure::Invalid(m) => $ty::Invalid(ApiError::new("invalid_plan", m)),
        }
    };
}

async fn tenant(state: &AppState, token: &str) -> Result<Tenant, Failure> {
    if token.starts_with("gtk_") {
        return match store::sites::authenticate_token(&state.db, &ApiToken::from_presented(token)).await {
            Ok(Some((scope, site))) => Ok(Tenant::Site { scope, kind: site.kind }),
            Ok(None) => Err(Failure::Unauthorized("invalid_token", "the API token is not valid".into())),
            Err(error) => Err(BillingError::from(error).into()),
        };
    }
    let Some(shopify) = state.shopify.as_ref() else {
        return Err(Failure::Unavailable(
            "shopify_not_configured",
            "this server has no Shopify app credentials".into(),
        ));
    };
    let verified = embedded::authenticate_id_token(&shopify.config, token, None)
        .map_err(|e| Failure::Unauthorized("invalid_session_token", e.to_string()))?;
    match store::shops::find(&state.db, &verified.shop).await {
        Ok(Some(found)) if found.active => Ok(Tenant::Shop { scope: found.scope(), shop: verified.shop }),
        Ok(_) => Err(Failure::Unauthorized("not_installed", "the shop has not installed the app".into())),
        Err(error) => Err(BillingError::from(error).into()),
    }
}

fn features(list: Vec<Feature>) -> Vec<String> {
    list.into_iter().map(|f| f.as_str().to_owned()).collect()
}

pub(super) async fn status(state: &AppState, scope: TenantScope) -> Result<BillingStatus, Failure> {
    let billing = &state.settings.billing;
    let ent: Entitlements = billing::entitlements(&state.db, billing, scope).await?;
    let now = UnixMillis::now();
    let month = month_of(now);
    let (from, to) = month_bounds(month);
    let used = store::billing::sessions_of(&state.db, scope, from, to).await.map_err(BillingError::from)?;
    let used = used.max(0) as u64;
    let plans = Plan::ALL
        .into_iter()
        .map(|p| {
            let s = p.settings(billing);
            let included = Feature::ALL.into_iter().filter(|f| f.included_in(s)).collect();
            PlanView {
                id: p.as_str().into(),
                name: s.name.clone(),
                price: s.price.clone(),
                currency: billing.currency.clone(),
                trial_days: s.trial_days,
                sessions_per_month: s.sessions_per_month,
                retention_days: s.retention_days,
                features: features(included),
                current: p == ent.plan,
            }
        })
        .collect();
    let sub = ent.subscription.as_ref();
    let limit = ent.enforced.then(|| ent.session_quota());
    Ok(BillingStatus {
        plan: ent.plan.as_str().into(),
        enforced: ent.enforced,
        provider: sub.map(|s| s.provider.clone()),
        subscription_status: sub.map(|s| s.status.clone()),
        test: sub.is_some_and(|s| s.test),
        trial_ends_at: ent.trial_ends_at().map(UnixMillis::to_rfc3339),
        current_period_end: sub.and_then(|s| s.current_period_end).map(UnixMillis::to_rfc3339),
        entitlements: EntitlementsView {
            sessions_per_month: limit,
            retention_days: ent.retention_days(),
            features: features(ent.features()),
        },
        quota: QuotaView {
            month: format!("{}-{:02}", month / 100, month % 100),
            used,
            limit,
            over: limit.is_some_and(|l| used >= l),
            sampling: state.quota.gate(scope.site_id()).is_some(),
            sample_percent: billing.over_quota_sample_percent,
        },
        plans,
        customer: sub.is_some_and(|s| s.provider == "stripe" && s.customer_id.is_some()),
    })
}

/// `{app_url}/billing/shopify/return?shop=…` (Shopify appends `charge_id`).
fn shopify_return_url(state: &AppState, shop: &ShopDomain) -> String {
    let base =
        state.shopify.as_ref().and_then(|s| s.config.app_url.clone()).unwrap_or_else(|| state.settings.public_url());
    format!("{}{SHOPIFY_RETURN_PATH}?shop={}", base.as_str().trim_end_matches('/'), shop.as_str())
}

async fn start(state: &AppState, token: &str, plan: &str) -> Result<RedirectTarget, Failure> {
    start_for(state, tenant(state, token).await?, plan).await
}

/// Starts a subscription of `tenant` to a paid plan: the provider page to open.
pub(super) async fn start_for(state: &AppState, tenant: Tenant, plan: &str) -> Result<RedirectTarget, Failure> {
    let plan = Plan::parse(plan)
        .filter(|p| p.is_paid())
        .ok_or_else(|| Failure::Invalid(format!("`{plan}` is not a paid plan (pro or business)")))?;
    let billing = &state.settings.billing;
    if !billing.enabled {
        return Err(Failure::Conflict("plans are not enforced on this server (billing.enabled = false)".into()));
    }
    match tenant {
        Tenant::Shop { shop, scope } => {
            let shopify = state.shopify.as_ref().ok_or(BillingError::NotConfigured("Shopify"))?;
            let return_url = shopify_return_url(state, &shop);
            let url = billing::shopify::start(shopify, &state.db, billing, &shop, scope, plan, &return_url).await?;
            Ok(RedirectTarget { provider: "shopify".into(), url })
        }
        Tenant::Site { kind: SiteKind::Shopify, .. } => Err(shopify_site_conflict()),
        Tenant::Site { scope, .. } => {
            let url = billing::stripe::checkout(state, scope, plan).await?;
            Ok(RedirectTarget { provider: "stripe".into(), url })
        }
    }
}

fn shopify_site_conflict() -> Failure {
    Failure::Conflict("this site belongs to a Shopify shop: manage its plan from the app in Shopify admin".into())
}

pub struct BillingApi;

#[OpenApi(prefix_path = "/billing", tag = "ApiTags::Billing")]
impl BillingApi {
    /// The plan in effect, its entitlements, this month's usage and quota, and every plan.
    #[oai(path = "/", method = "get", operation_id = "get_billing_status")]
    async fn get_status(&self, Data(state): Data<&Arc<AppState>>, auth: BillingCredential) -> StatusResponse {
        let result = match tenant(state, &auth.0.token).await {
            Ok(t) => status(state, t.scope()).await,
            Err(f) => Err(f),
        };
        match result {
            Ok(s) => StatusResponse::Ok(Json(Box::new(s))),
            Err(Failure::Unauthorized(code, m)) => StatusResponse::Unauthorized(ApiError::new(code, m)),
            Err(Failure::Unavailable(code, m)) => StatusResponse::Unavailable(ApiError::new(code, m)),
            Err(Failure::Conflict(m) | Failure::Invalid(m) | Failure::BadGateway(m)) => {
                StatusResponse::Unavailable(ApiError::new("unavailable", m))
            }
        }
    }

    /// Starts a subscription to a paid plan (also an upgrade or downgrade between paid plans)
    /// and returns the provider page the merchant must open in the top window.
    #[oai(path = "/subscription", method = "post", operation_id = "start_billing_subscription")]
    async fn start_subscription(
        &self,
        Data(state): Data<&Arc<AppState>>,
        auth: BillingCredential,
        body: Json<StartSubscription>,
    ) -> RedirectResponse {
        match start(state, &auth.0.token, &body.0.plan).await {
            Ok(target) => RedirectResponse::Ok(Json(target)),
            Err(f) => respond!(RedirectResponse, f),
        }
    }

    /// Cancels the paid subscription: the tenant returns to Free.
    #[oai(path = "/subscription", method = "delete", operation_id = "cancel_billing_subscription")]
    async fn cancel_subscription(&self, Data(state): Data<&Arc<AppState>>, auth: BillingCredential) -> CancelResponse {
        let result = match tenant(state, &auth.0.token).await {
            Ok(tenant) => cancel_for(state, &tenant).await,
            Err(f) => Err(f),
        };
        match result {
            Ok(s) => CancelResponse::Ok(Json(Box::new(s))),
            Err(Failure::Unauthorized(code, m)) => CancelResponse::Unauthorized(ApiError::new(code, m)),
            Err(Failure::Conflict(m) | Failure::Invalid(m)) => CancelResponse::Conflict(ApiError::new("conflict", m)),
            Err(Failure::BadGateway(m)) => CancelResponse::BadGateway(ApiError::new("provider_error", m)),
            Err(Failure::Unavailable(code, m)) => CancelResponse::Unavailable(ApiError::new(code, m)),
        }
    }

    /// A Stripe customer-portal session (payment method, invoices) for a standalone site.
    #[oai(path = "/portal", method = "post", operation_id = "create_billing_portal_session")]
    async fn portal(&self, Data(state): Data<&Arc<AppState>>, auth: BillingCredential) -> RedirectResponse {
        let result = match tenant(state, &auth.0.token).await {
            Ok(tenant) => portal_for(state, tenant).await,
            Err(f) => Err(f),
        };
        match result {
            Ok(target) => RedirectResponse::Ok(Json(target)),
            Err(f) => respond!(RedirectResponse, f),
        }
    }
}

/// Cancels the tenant's paid subscription (back to Free) and returns the new status.
pub(super) async fn cancel_for(state: &AppState, tenant: &Tenant) -> Result<BillingStatus, Failure> {
    let billing = &state.settings.billing;
    match tenant {
        Tenant::Shop { shop, scope } => {
            let shopify = state.shopify.as_ref().ok_or(BillingError::NotConfigured("Shopify"))?;
            billing::shopify::cancel(shopify, &state.db, billing, shop, *scope).await?;
        }
        Tenant::Site { kind: SiteKind::Shopify, .. } => return Err(shopify_site_conflict()),
        Tenant::Site { scope, .. } => billing::stripe::cancel(state, *scope).await?,
    }
    status(state, tenant.scope()).await
}

/// A Stripe customer-portal session of a standalone site.
pub(super) async fn portal_for(state: &AppState, tenant: Tenant) -> Result<RedirectTarget, Failure> {
    match tenant {
        Tenant::Site { kind: SiteKind::Standalone, scope } => {
            let url = billing::stripe::portal(state, scope).await?;
            Ok(RedirectTarget { provider: "stripe".into(), url })
        }
        _ => Err(shopify_site_conflict()),
    }
}
