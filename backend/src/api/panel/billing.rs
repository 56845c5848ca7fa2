//! `/api/panel/billing*`: the Billing page and the quota banner with the panel's sign-in. The
//! same functions as `/api/billing` (site token or id token) behind it; the tenant is the
//! signed-in user's: a Shopify shop pays through the Billing API, a standalone site through
//! Stripe. Everyone reads; only owners change the plan (`Action::ManageBilling`).

use std::sync::Arc;

use ghosttrack_wire::{BillingPage, PanelError, PlanChoice, ProviderRedirect};
use poem::Request;
use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::payload::Json;

use super::auth::{PanelUser, authenticate};
use super::responses::{body, manage_response};
use crate::accounts::Action;
use crate::api::billing::{self as api, Failure, Tenant};
use crate::startup::AppState;

manage_response!(BillingPageResponse {
    #[oai(status = 200)]
    Ok(Json<BillingPage>),
    /// No paid subscription to cancel.
    #[oai(status = 409)]
    Conflict(Json<PanelError>),
    /// The provider refused or failed; the message says why.
    #[oai(status = 502)]
    BadGateway(Json<PanelError>),
});
manage_response!(RedirectResponse {
    /// Open `url` in the top window.
    #[oai(status = 200)]
    Ok(Json<ProviderRedirect>),
    /// Already on that plan, plans not enforced, or nothing to manage at the provider.
    #[oai(status = 409)]
    Conflict(Json<PanelError>),
    /// Unknown or free plan.
    #[oai(status = 422)]
    Invalid(Json<PanelError>),
    #[oai(status = 502)]
    BadGateway(Json<PanelError>),
});

/// The billing tenant of a panel user: the shop when signed in through Shopify.
fn tenant(u: &PanelUser) -> Tenant {
    match &u.shop {
        Some(shop) => Tenant::Shop { shop: shop.clone(), scope: u.scope },
        None => Tenant::Site { scope: u.scope, kind: u.site.kind },
    }
}

/// How the user's tenant pays.
fn channel(u: &PanelUser) -> &'static str {
    if u.shop.is_some() || u.site.kind == crate::storage::sites::SiteKind::Shopify { "shopify" } else { "stripe" }
}

macro_rules! failure {
    ($ty:ident, $f:expr) => {
        match $f {
            Failure::Unauthorized(code, m) => $ty::Unauthorized(body(code, &m), None),
            Failure::Conflict(m) => $ty::Conflict(body("conflict", &m)),
            Failure::BadGateway(m) => $ty::BadGateway(body("provider_error", &m)),
            Failure::Unavailable(code, m) => $ty::Unavailable(body(code, &m)),
            Failure::Invalid(m) => failure!(@invalid $ty, m),
        }
    };
    (@invalid BillingPageResponse, $m:expr) => { BillingPageResponse::Conflict(body("conflict", &$m)) };
    (@invalid RedirectResponse, $m:expr) => { RedirectResponse::Invalid(body("invalid_plan", &$m)) };
}

pub struct PanelBillingApi;

#[OpenApi(prefix_path = "/panel/billing", tag = "super::ApiTags::Panel")]
impl PanelBillingApi {
    /// The plan in effect, this month's usage against the quota, every plan, and whether the
    /// user may change the plan.
    #[oai(path = "/", method = "get", operation_id = "get_panel_billing")]
    async fn page(&self, req: &Request, Data(state): Data<&Arc<AppState>>) -> BillingPageResponse {
        let u = match authenticate(state, req).await {
            Ok(u) => u,
            Err(e) => return e.into(),
        };
        match api::status(state, u.scope).await {
            Ok(s) => BillingPageResponse::Ok(Json(s.into_page(channel(&u), u.allows(Action::ManageBilling)))),
            Err(f) => failure!(BillingPageResponse, f),
        }
    }

    /// Starts a subscription to a paid plan (also a move between paid plans): Shopify's
    /// `confirmationUrl` for a shop, a Stripe Checkout page for a standalone site.
    #[oai(path = "/subscription", method = "post", operation_id = "start_panel_subscription")]
    async fn start(
        &self,
        req: &Request,
        Data(state): Data<&Arc<AppState>>,
        choice: Json<PlanChoice>,
    ) -> RedirectResponse {
        let u = match authenticate(state, req).await {
            Ok(u) => u,
            Err(e) => return e.into(),
        };
        if !u.allows(Action::ManageBilling) {
            return RedirectResponse::forbidden("change the plan (owners do)");
        }
        match api::start_for(state, tenant(&u), &choice.0.plan).await {
            Ok(t) => RedirectResponse::Ok(Json(ProviderRedirect { provider: t.provider, url: t.url })),
            Err(f) => failure!(RedirectResponse, f),
        }
    }

    /// Cancels the paid subscription: back to Free.
    #[oai(path = "/subscription", method = "delete", operation_id = "cancel_panel_subscription")]
    async fn cancel(&self, req: &Request, Data(state): Data<&Arc<AppState>>) -> BillingPageResponse {
        let u = match authenticate(state, req).await {
            Ok(u) => u,
            Err(e) => return e.into(),
        };
        if !u.allows(Action::ManageBilling) {
            return BillingPageResponse::forbidden("change the plan (owners do)");
        }
        match api::cancel_for(state, &tenant(&u)).await {
            Ok(s) => BillingPageResponse::Ok(Json(s.into_page(channel(&u), true))),
            Err(f) => failure!(BillingPageResponse, f),
        }
    }

    /// The Stripe customer portal (payment method, invoices) of a standalone site.
    #[oai(path = "/portal", method = "post", operation_id = "create_panel_billing_portal")]
    async fn portal(&self, req: &Request, Data(state): Data<&Arc<AppState>>) -> RedirectResponse {
        let u = match authenticate(state, req).await {
            Ok(u) => u,
            Err(e) => return e.into(),
        };
        if !u.allows(Action::ManageBilling) {
            return RedirectResponse::forbidden("manage billing (owners do)");
        }
        match api::portal_for(state, tenant(&u)).await {
            Ok(t) => RedirectResponse::Ok(Json(ProviderRedirect { provider: t.provider, url: t.url })),
            Err(f) => failure!(RedirectResponse, f),
        }
    }
}
