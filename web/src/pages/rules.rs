//! Rules: what GhostTrack watches for, with each rule's explainer (read-only for now).

use ghosttrack_wire::{RuleItem, RuleList};
use leptos::prelude::*;

use super::{Load, failure, fetch_into, loading};

#[component]
pub fn Rules() -> impl IntoView {
    let data = fetch_into::<RuleList>(|| "/api/panel/rules".to_owned());
    move || {
        match data.get() {
        Load::Loading => loading(),
        Load::Failed(e) => failure(&e),
        Load::Ready(list) if list.rules.is_empty() => view! {
            <section class="empty card">
                <h2>"Detection is off"</h2>
                <p>"This server runs without the detection engine (detect.enabled = false). Turn it on to see rules and threats."</p>
            </section>
        }
        .into_any(),
        Load::Ready(list) => list.rules.into_iter().map(rule).collect_view().into_any(),
    }
    }
}

fn rule(r: RuleItem) -> impl IntoView {
    let kind = if r.attack {
        view! { <span class="badge warning">{format!("attack signal · weight {:.2}", r.weight)}</span> }.into_any()
    } else {
        view! { <span class="badge">"label"</span> }.into_any()
    };
    view! {
        <article class="card rule">
            <h2><code>{r.id}</code></h2>
            <p>{kind}" "<span class="badge">{r.behavior}</span></p>
            <p>{r.description}</p>
            <details><summary>"How it works"</summary><pre class="explainer">{r.explainer}</pre></details>
        </article>
    }
}
