//! One module per page. Components are thin: they fetch through `api`, keep the answer in a
//! signal and render it; computations live in `crate::logic`.

pub mod alerts;
pub mod billing;
pub mod geography;
pub mod heatmaps;
pub mod invitation;
pub mod login;
pub mod overview;
pub mod privacy;
pub mod rules;
pub mod session;
pub mod sessions;
pub mod setup;
pub mod threats;

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::de::DeserializeOwned;

use crate::api::{self, ApiFailure};

/// A page's data.
#[derive(Clone, Debug, PartialEq)]
pub enum Load<T> {
    Loading,
    Ready(T),
    Failed(ApiFailure),
}

/// Loads `path()` now and whenever the signals it reads change.
pub fn fetch_into<T>(path: impl Fn() -> String + Send + Sync + 'static) -> RwSignal<Load<T>>
where
    T: DeserializeOwned + Clone + Send + Sync + 'static,
{
    let state = RwSignal::new(Load::Loading);
    Effect::new(move |_| {
        let path = path();
        state.set(Load::Loading);
        spawn_local(async move {
            let result = api::get::<T>(&path).await;
            if let Err(e) = &result {
                api::toast(&e.message);
            }
            let _ = state.try_set(match result {
                Ok(v) => Load::Ready(v),
                Err(e) => Load::Failed(e),
            });
        });
    });
    state
}

pub fn loading() -> AnyView {
    view! { <p class="loading" role="status">"Loading…"</p> }.into_any()
}

pub fn failure(e: &ApiFailure) -> AnyView {
    let message = e.message.clone();
    view! { <div class="banner critical" role="alert"><p>{message}</p></div> }.into_any()
}

/// The colored badge of a decision.
pub fn decision_badge(decision: &str) -> AnyView {
    let class = match decision {
        "BLOCK" => "badge critical",
        "CHALLENGE" => "badge warning",
        _ => "badge success",
    };
    view! { <span class=class>{decision.to_owned()}</span> }.into_any()
}
