//! The shell: sign-in state, the router signal, navigation (App Bridge nav menu and title bar
//! inside Shopify admin, a sidebar standalone) and the current page.

use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;

use crate::api;
use crate::pages;
use crate::route::{Route, nav};

#[derive(Clone, Copy, Debug, PartialEq)]
enum SignIn {
    Checking,
    SignedOut,
    SignedIn,
}

/// The location's route.
fn current_route() -> Route {
    let Some(location) = web_sys::window().map(|w| w.location()) else { return Route::Overview };
    Route::parse(&location.pathname().unwrap_or_default(), &location.search().unwrap_or_default())
}

/// Moves to `route` through the History API (the panel's own URL state is path + filters).
/// Components take `router` from context while they are created (event handlers run outside
/// the reactive owner, where context is not reachable).
pub fn navigate(router: RwSignal<Route>, route: Route) {
    if let Some(history) = web_sys::window().and_then(|w| w.history().ok()) {
        let _ = history.push_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&route.href()));
    }
    router.set(route);
}

/// Follows `popstate` (back/forward, and App Bridge's nav menu, which pushes the new URL into
/// the frame) and turns clicks on in-app links into History API navigation.
fn install_router(router: RwSignal<Route>) {
    let Some(window) = web_sys::window() else { return };
    let on_pop = Closure::<dyn FnMut()>::new(move || router.set(current_route()));
    let _ = window.add_event_listener_with_callback("popstate", on_pop.as_ref().unchecked_ref());
    on_pop.forget();
    let on_click = Closure::<dyn FnMut(web_sys::MouseEvent)>::new(move |ev: web_sys::MouseEvent| {
        if ev.default_prevented() || ev.button() != 0 || ev.ctrl_key() || ev.meta_key() || ev.shift_key() {
            return;
        }
        let Some(anchor) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .and_then(|e| e.closest("a[href]").ok().flatten())
        else {
            return;
        };
        if anchor.get_attribute("target").is_some() {
            return;
        }
        let href = anchor.get_attribute("href").unwrap_or_default();
        if !href.starts_with(crate::route::BASE) {
            return;
        }
        ev.prevent_default();
        let (path, query) = href.split_once('?').unwrap_or((&href, ""));
        if let Some(history) = web_sys::window().and_then(|w| w.history().ok()) {
            let _ = history.push_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&href));
        }
        router.set(Route::parse(path, query));
    });
    if let Some(document) = window.document() {
        let _ = document.add_event_listener_with_callback("click", on_click.as_ref().unchecked_ref());
    }
    on_click.forget();
}

#[component]
pub fn App() -> impl IntoView {
    let router = RwSignal::new(current_route());
    provide_context(router);
    install_router(router);
    let embedded = api::embedded();
    let sign_in = RwSignal::new(if embedded { SignIn::SignedIn } else { SignIn::Checking });
    if !embedded {
        spawn_local(async move {
            match api::get::<pages::login::Me>("/api/account/me").await {
                Ok(me) => {
                    api::set_csrf(Some(me.csrf_token));
                    sign_in.set(SignIn::SignedIn);
                }
                Err(_) => sign_in.set(SignIn::SignedOut),
            }
        });
    }
    let on_signed_in = Callback::new(move |()| {
        if router.get_untracked() == Route::AcceptInvitation {
            router.set(Route::Overview);
        }
        sign_in.set(SignIn::SignedIn)
    });
    let on_signed_out = Callback::new(move |()| {
        api::set_csrf(None);
        sign_in.set(SignIn::SignedOut)
    });
    move || match sign_in.get() {
        SignIn::Checking => view! { <p class="loading" role="status">"Loading GhostTrack…"</p> }.into_any(),
        SignIn::SignedOut if router.get() == Route::AcceptInvitation => {
            view! { <pages::invitation::AcceptInvitation on_signed_in=on_signed_in/> }.into_any()
        }
        SignIn::SignedOut => view! { <pages::login::Login on_signed_in=on_signed_in/> }.into_any(),
        SignIn::SignedIn => view! { <Shell router=router embedded=embedded on_signed_out=on_signed_out/> }.into_any(),
    }
}

#[component]
fn Shell(router: RwSignal<Route>, embedded: bool, on_signed_out: Callback<()>) -> impl IntoView {
    let app_bridge_nav = embedded.then(|| {
        view! {
            <ui-nav-menu>
                <a href="/app" rel="home">"Overview"</a>
                <a href="/app/threats">"Live threats"</a>
                <a href="/app/sessions">"Sessions"</a>
                <a href="/app/rules">"Rules"</a>
                <a href="/app/setup">"Setup"</a>
                <a href="/app/geography">"Geography"</a>
                <a href="/app/pages">"Pages"</a>
                <a href="/app/privacy">"Privacy"</a>
                <a href="/app/alerts">"Alerts"</a>
                <a href="/app/billing">"Billing"</a>
            </ui-nav-menu>
        }
    });
    let title_bar = move || embedded.then(|| view! { <ui-title-bar title=router.get().title()></ui-title-bar> });
    let sidebar = (!embedded).then(|| {
        let links = nav()
            .into_iter()
            .map(|entry| {
                let href = entry.href();
                let title = entry.title();
                let current = move || entry.is_section_of(&router.get()).then_some("page");
                view! { <li><a href=href aria-current=current>{title}</a></li> }
            })
            .collect_view();
        let sign_out = move |_| {
            spawn_local(async move {
                // The session ends server-side either way; a failure only means it already had.
                let _ = api::post_empty::<serde_json::Value>("/api/account/logout").await;
                on_signed_out.run(());
            });
        };
        view! {
            <nav class="sidebar" aria-label="GhostTrack">
                <p class="brand">"GhostTrack"</p>
                <ul>{links}</ul>
                <button class="button sign-out" id="sign-out" on:click=sign_out>"Sign out"</button>
            </nav>
        }
    });
    let page = move || {
        match router.get() {
        Route::Overview => view! { <pages::overview::Overview/> }.into_any(),
        Route::Threats => view! { <pages::threats::Threats/> }.into_any(),
        Route::Sessions(query) => view! { <pages::sessions::Sessions query=query/> }.into_any(),
        Route::Session(id) => view! { <pages::session::SessionPage id=id/> }.into_any(),
        Route::Setup => view! { <pages::setup::Setup/> }.into_any(),
        Route::Rules => view! { <pages::rules::Rules/> }.into_any(),
        Route::Geography => view! { <pages::geography::GeographyPage/> }.into_any(),
        Route::Pages(path) => view! { <pages::heatmaps::PagesPage path=path/> }.into_any(),
        Route::Privacy(query) => view! { <pages::privacy::PrivacyPage query=query/> }.into_any(),
        Route::Alerts => view! { <pages::alerts::Alerts/> }.into_any(),
        Route::Billing => view! { <pages::billing::Billing/> }.into_any(),
        Route::AcceptInvitation => view! {
            <section class="empty card"><p>"You are signed in already."</p><a href="/app">"Go to the overview"</a></section>
        }
        .into_any(),
        Route::NotFound => view! {
            <section class="empty"><p>"This page does not exist."</p><a href="/app">"Go to the overview"</a></section>
        }
        .into_any(),
    }
    };
    let class = if embedded { "layout embedded" } else { "layout" };
    view! {
        {app_bridge_nav}
        {title_bar}
        <div class=class>
            {sidebar}
            <main id="main">
                <pages::billing::QuotaBannerSlot/>
                <h1>{move || router.get().title()}</h1>
                {page}
            </main>
        </div>
    }
}
