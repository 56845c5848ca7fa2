//! Billing: the plan in effect, this month's usage against the quota, and plan cards. A change
//! asks the backend for the provider's page (Shopify's confirmation, Stripe Checkout) and opens
//! it in the top window; Shopify sends the merchant back into the app, which re-reads the plan.

use ghosttrack_wire::{BillingPage, PlanChoice, PlanItem, ProviderRedirect, QuotaItem};
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::{Load, failure, fetch_into, loading};
use crate::api;
use crate::logic::billing::{PlanAction, action, action_label, banner, feature_label, used_percent};
use crate::logic::format;

#[component]
pub fn Billing() -> impl IntoView {
    let version = RwSignal::new(0u32);
    let data = fetch_into::<BillingPage>(move || {
        version.track();
        "/api/panel/billing".to_owned()
    });
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let change = Callback::new(move |(plan, act): (String, PlanAction)| {
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            let result = match act {
                PlanAction::Cancel => {
                    api::delete_json::<BillingPage>("/api/panel/billing/subscription").await.map(|_| None)
                }
                _ => api::post::<_, ProviderRedirect>("/api/panel/billing/subscription", &PlanChoice { plan })
                    .await
                    .map(Some),
            };
            match result {
                Ok(Some(target)) => api::open_top(&target.url),
                Ok(None) => {
                    api::toast("Subscription cancelled");
                    version.update(|v| *v += 1);
                }
                Err(e) => {
                    let _ = error.try_set(Some(e.message));
                }
            }
            let _ = busy.try_set(false);
        });
    });
    let portal = Callback::new(move |()| {
        spawn_local(async move {
            match api::post_empty::<ProviderRedirect>("/api/panel/billing/portal").await {
                Ok(target) => api::open_top(&target.url),
                Err(e) => {
                    let _ = error.try_set(Some(e.message));
                }
            }
        });
    });
    move || match data.get() {
        Load::Loading => loading(),
        Load::Failed(e) => failure(&e),
        Load::Ready(page) => view! {
            {move || error.get().map(|m| view! { <div class="banner critical" role="alert"><p>{m}</p></div> })}
            {current(&page, portal)}
            {usage(&page.quota)}
            <div class="plans">{page.plans.iter().map(|p| card(&page, p, change, busy)).collect_view()}</div>
        }
        .into_any(),
    }
}

fn current(page: &BillingPage, portal: Callback<()>) -> impl IntoView {
    let name =
        page.plans.iter().find(|p| p.id == page.plan).map(|p| p.name.clone()).unwrap_or_else(|| page.plan.clone());
    let status = page.subscription_status.clone().map(|s| view! { " " <span class="badge">{s}</span> });
    let test = page.test.then(|| view! { " " <span class="badge warning">"test charge"</span> });
    let trial = page.trial_ends_at.clone().map(|t| view! { <p>"Free trial until " {t}</p> });
    let renews = page.current_period_end.clone().map(|t| view! { <p>"Current period ends " {t}</p> });
    let enforced = (!page.enforced).then(|| view! { <p class="hint">"Plans are not enforced on this server: every feature is on and there is no session quota."</p> });
    let manage = (page.portal && page.can_manage).then(|| {
        view! {
            <button class="button" on:click=move |_| portal.run(())>"Payment method and invoices"</button>
        }
    });
    let who =
        (!page.can_manage && page.enforced).then(|| view! { <p class="hint">"Only owners can change the plan."</p> });
    view! {
        <section class="card current-plan" aria-labelledby="plan-title">
            <h2 id="plan-title">"Your plan: " <span id="current-plan">{name}</span>{status}{test}</h2>
            {trial}{renews}{enforced}{who}{manage}
        </section>
    }
}

fn usage(q: &QuotaItem) -> impl IntoView {
    let text = match q.limit {
        Some(limit) => format!(
            "{} of {} sessions this month ({})",
            format::count(q.used as i64),
            format::count(limit as i64),
            q.month
        ),
        None => format!("{} sessions this month ({}); no quota", format::count(q.used as i64), q.month),
    };
    let meter = used_percent(q).map(|p| {
        view! { <progress class="meter" max="100" value=p.to_string() aria-label="Share of this month's sessions used">{format!("{p}%")}</progress> }
    });
    let note = banner(q).map(|b| view! { <p class=format!("banner {}", b.level)>{b.text}</p> });
    view! {
        <section class="card usage" aria-labelledby="usage-title">
            <h2 id="usage-title">"Usage"</h2>
            <p id="usage-text">{text}</p>
            {meter}
            {note}
        </section>
    }
}

fn card(
    page: &BillingPage,
    p: &PlanItem,
    change: Callback<(String, PlanAction)>,
    busy: RwSignal<bool>,
) -> impl IntoView {
    let act = action(page, p);
    let price = if p.price.trim_start_matches(['0', '.']).is_empty() {
        "Free".to_owned()
    } else {
        format!("{} {} / 30 days", p.price, p.currency)
    };
    let trial = (p.trial_days > 0 && act == PlanAction::Upgrade).then(|| format!("{}-day free trial", p.trial_days));
    let features = p.features.iter().map(|f| view! { <li>{feature_label(f)}</li> }).collect_view();
    let button = action_label(&act, p).map(|label| {
        let id = p.id.clone();
        let data_plan = p.id.clone();
        let class = if act == PlanAction::Upgrade { "button primary" } else { "button" };
        let act = act.clone();
        view! {
            <button class=class data-plan=data_plan disabled=move || busy.get()
                on:click=move |_| change.run((id.clone(), act.clone()))>{label}</button>
        }
    });
    let current = (act == PlanAction::Current).then(|| view! { <span class="badge success">"Current plan"</span> });
    view! {
        <article class="card plan" data-plan=p.id.clone() aria-labelledby=format!("plan-{}", p.id)>
            <h2 id=format!("plan-{}", p.id)>{p.name.clone()} " " {current}</h2>
            <p class="price">{price}</p>
            {trial.map(|t| view! { <p class="hint">{t}</p> })}
            <ul>
                <li>{format!("{} sessions a month", format::count(p.sessions_per_month as i64))}</li>
                <li>{format!("{} days of history", p.retention_days)}</li>
                {features}
            </ul>
            {button}
        </article>
    }
}

/// The quota banner at the top of every page (fetches the billing status once per page view).
#[component]
pub fn QuotaBannerSlot() -> impl IntoView {
    let data = RwSignal::new(None::<BillingPage>);
    spawn_local(async move {
        if let Ok(page) = api::get::<BillingPage>("/api/panel/billing").await {
            let _ = data.try_set(Some(page));
        }
    });
    move || {
        data.get().and_then(|p| banner(&p.quota)).map(|b| {
            let class = format!("banner {} quota-banner", b.level);
            view! { <div class=class role="status"><p>{b.text} " " <a href="/app/billing">"See plans"</a></p></div> }
        })
    }
}
