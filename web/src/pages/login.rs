//! The standalone sign-in page (self-hosted installs; inside Shopify admin App Bridge signs in).

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::{Deserialize, Serialize};

use crate::api;

/// `GET /api/account/me` and the login answer.
#[derive(Clone, Debug, Deserialize)]
pub struct Me {
    pub csrf_token: String,
}

#[derive(Serialize)]
struct Credentials {
    email: String,
    password: String,
}

#[component]
pub fn Login(on_signed_in: Callback<()>) -> impl IntoView {
    let email = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        busy.set(true);
        let body = Credentials { email: email.get_untracked(), password: password.get_untracked() };
        spawn_local(async move {
            match api::post::<_, Me>("/api/account/login", &body).await {
                Ok(me) => {
                    api::set_csrf(Some(me.csrf_token));
                    on_signed_in.run(());
                }
                Err(e) => {
                    let message = match (e.status, e.retry_after) {
                        (429, Some(s)) => format!("Too many attempts. Try again in {s} seconds."),
                        (401, _) => "The email or password is wrong.".to_owned(),
                        (404, _) => "Sign-in is not enabled on this server.".to_owned(),
                        _ => e.message,
                    };
                    let _ = error.try_set(Some(message));
                    let _ = busy.try_set(false);
                }
            }
        });
    };
    view! {
        <main id="main" class="login">
            <form class="card" on:submit=submit>
                <h1>"Sign in to GhostTrack"</h1>
                {move || error.get().map(|m| view! { <div class="banner critical" role="alert"><p>{m}</p></div> })}
                <div class="field">
                    <label for="email">"Email"</label>
                    <input id="email" type="email" autocomplete="username" required
                        on:input=move |ev| email.set(event_target_value(&ev))/>
                </div>
                <div class="field">
                    <label for="password">"Password"</label>
                    <input id="password" type="password" autocomplete="current-password" required
                        on:input=move |ev| password.set(event_target_value(&ev))/>
                </div>
                <button class="button primary" type="submit" disabled=move || busy.get()>"Sign in"</button>
            </form>
        </main>
    }
}
