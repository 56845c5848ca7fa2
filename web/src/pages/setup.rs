//! Setup: is the tracker installed and reporting?

use ghosttrack_wire::SetupStatus;
use leptos::prelude::*;

use super::{Load, failure, fetch_into, loading};
use crate::logic::format;

#[component]
pub fn Setup() -> impl IntoView {
    let data = fetch_into::<SetupStatus>(|| "/api/panel/setup".to_owned());
    move || match data.get() {
        Load::Loading => loading(),
        Load::Failed(e) => failure(&e),
        Load::Ready(s) => body(s).into_any(),
    }
}

fn status(ok: bool, text: String) -> impl IntoView {
    let class = if ok { "badge success" } else { "badge warning" };
    view! { <span class=class>{text}</span> }
}

fn body(s: SetupStatus) -> impl IntoView {
    let reporting = s.events_last_24h > 0;
    let events = format!("{} events in the last 24 hours", format::count(s.events_last_24h));
    let shopify = (s.kind == "shopify").then(|| {
        let embed_ok = s.app_embed == "enabled";
        let embed_text = match s.app_embed.as_str() {
            "enabled" => "The app embed is on in your published theme.",
            "disabled" => "The app embed is turned off in your published theme.",
            "missing" => "The app embed has not been turned on in your published theme yet.",
            "no_main_theme" => "Your store has no published theme.",
            _ => "GhostTrack could not read your theme just now; reload to try again.",
        };
        let activate = s.activation_url.clone().filter(|_| !embed_ok).map(|url| {
            view! { <a class="button primary" href=url target="_top">"Turn on the app embed"</a> }
        });
        let pixel_ok = s.pixel == "connected";
        let pixel_text = match s.pixel.as_str() {
            "connected" => "The checkout pixel is connected.",
            "missing" => "The checkout pixel is not connected; reopen GhostTrack from your admin to connect it.",
            _ => "GhostTrack could not check the checkout pixel just now.",
        };
        view! {
            <section class="card">
                <h2>"Storefront tracker"</h2>
                <p>{status(embed_ok, s.app_embed.replace('_', " "))}" "{embed_text}</p>
                {activate}
            </section>
            <section class="card">
                <h2>"Checkout pixel"</h2>
                <p>{status(pixel_ok, s.pixel.clone())}" "{pixel_text}</p>
            </section>
        }
    });
    let standalone = (s.kind != "shopify").then(|| {
        let snippet = format!(
            "<script defer src=\"{origin}/t.js\" data-site=\"{key}\"></script>",
            origin = web_sys::window().and_then(|w| w.location().origin().ok()).unwrap_or_default(),
            key = s.site_key
        );
        view! {
            <section class="card">
                <h2>"Tracker snippet"</h2>
                <p>"Paste this into the " <code>"<head>"</code> " of every page of " {s.domain.clone()} ":"</p>
                <pre class="snippet">{snippet}</pre>
            </section>
        }
    });
    view! {
        <section class="card">
            <h2>"Reporting"</h2>
            <p>{status(reporting, if reporting { "receiving".into() } else { "no data".into() })}" "{events}</p>
        </section>
        {shopify}
        {standalone}
    }
}
