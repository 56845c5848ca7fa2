//! Accepting an invitation (standalone): the link `…/app/accept-invitation#token=…` carries the
//! single-use token in the fragment (never sent to a server log); the invitee sets a password,
//! which creates the account, and is then signed in with it.

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::{Deserialize, Serialize};

use super::login::Me;
use crate::api;

#[derive(Serialize)]
struct Accept {
    token: String,
    password: String,
}

#[derive(Deserialize)]
struct Accepted {
    email: String,
}

#[derive(Serialize)]
struct Credentials {
    email: String,
    password: String,
}

/// The token of an invitation link's fragment (`#token=…`).
pub fn token_of(hash: &str) -> Option<String> {
    let value = hash.trim_start_matches('#').split('&').find_map(|kv| kv.strip_prefix("token="))?;
    (!value.is_empty()).then(|| value.to_owned())
}

/// What to tell the invitee when accepting fails.
pub fn accept_message(status: u16, server: &str) -> String {
    match status {
        400 => "This invitation link is not valid any more (used, expired or mistyped). Ask for a new one.".into(),
        409 => "An account with this email already exists on this site: sign in instead.".into(),
        422 => server.to_owned(),
        _ => format!("The invitation could not be accepted: {server}"),
    }
}

#[component]
pub fn AcceptInvitation(on_signed_in: Callback<()>) -> impl IntoView {
    let hash = web_sys::window().and_then(|w| w.location().hash().ok()).unwrap_or_default();
    let token = token_of(&hash);
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let has_token = token.is_some();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(token) = token.clone() else { return };
        busy.set(true);
        let password = password.get_untracked();
        spawn_local(async move {
            let accepted = api::post::<_, Accepted>(
                "/api/account/invitations/accept",
                &Accept { token, password: password.clone() },
            )
            .await;
            let result = match accepted {
                Ok(user) => api::post::<_, Me>("/api/account/login", &Credentials { email: user.email, password })
                    .await
                    .map_err(|e| e.message),
                Err(e) => Err(accept_message(e.status, &e.message)),
            };
            match result {
                Ok(me) => {
                    api::set_csrf(Some(me.csrf_token));
                    // Drop the used token from the address bar and history.
                    if let Some(history) = web_sys::window().and_then(|w| w.history().ok()) {
                        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some("/app"));
                    }
                    on_signed_in.run(());
                }
                Err(m) => {
                    let _ = error.try_set(Some(m));
                    let _ = busy.try_set(false);
                }
            }
        });
    };
    let form = move || {
        if !has_token {
            return view! {
                <div class="banner critical" role="alert"><p>"This link has no invitation token. Open the full link from your invitation."</p></div>
            }
            .into_any();
        }
        view! {
            <div class="field">
                <label for="new-password">"Choose a password (at least 12 characters)"</label>
                <input id="new-password" type="password" autocomplete="new-password" minlength="12" required
                    on:input=move |ev| password.set(event_target_value(&ev))/>
            </div>
            <button class="button primary" type="submit" disabled=move || busy.get()>"Accept and sign in"</button>
        }
        .into_any()
    };
    view! {
        <main id="main" class="login">
            <form class="card" on:submit=submit>
                <h1>"Join GhostTrack"</h1>
                <p>"You were invited to this site's GhostTrack panel."</p>
                {move || error.get().map(|m| view! { <div class="banner critical" role="alert"><p>{m}</p></div> })}
                {form}
            </form>
        </main>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("#token=gti_abc", Some("gti_abc"))]
    #[case("#x=1&token=gti_abc", Some("gti_abc"))]
    #[case("#token=", None)]
    #[case("", None)]
    fn the_token_comes_from_the_fragment(#[case] hash: &str, #[case] expected: Option<&str>) {
        assert_eq!(token_of(hash).as_deref(), expected);
    }

    #[test]
    fn refusals_say_what_to_do() {
        assert!(accept_message(400, "").contains("Ask for a new one"));
        assert!(accept_message(409, "").contains("sign in"));
        assert_eq!(accept_message(422, "password: at least 12 characters"), "password: at least 12 characters");
    }
}
