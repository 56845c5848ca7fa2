//! Rules: what GhostTrack watches for, with each rule's explainer, and this site's settings of
//! each rule (on/off, shadow mode, threshold and window) for owners and analysts.

use std::collections::HashMap;

use ghosttrack_wire::{RuleItem, RuleList, RuleSetting, RuleSettings};
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::{Load, failure, fetch_into, loading};
use crate::api;
use crate::logic::alerts::field_of;
use crate::logic::rules::{RuleForm, describe};

#[component]
pub fn Rules() -> impl IntoView {
    let data = fetch_into::<RuleList>(|| "/api/panel/rules".to_owned());
    let settings = fetch_into::<RuleSettings>(|| "/api/panel/rules/settings".to_owned());
    move || {
        match (data.get(), settings.get()) {
        (Load::Failed(e), _) | (_, Load::Failed(e)) => failure(&e),
        (Load::Ready(list), _) if list.rules.is_empty() => view! {
            <section class="empty card">
                <h2>"Detection is off"</h2>
                <p>"This server runs without the detection engine (detect.enabled = false). Turn it on to see rules and threats."</p>
            </section>
        }
        .into_any(),
        (Load::Ready(list), Load::Ready(s)) => {
            let can_edit = s.can_edit;
            let mut by_id: HashMap<String, RuleSetting> = s.rules.into_iter().map(|r| (r.id.clone(), r)).collect();
            let note = (!can_edit).then(|| view! { <p class="hint">"Your role can read rules; owners and analysts change them."</p> });
            view! {
                {note}
                {list.rules.into_iter().map(|r| { let s = by_id.remove(&r.id); rule(r, s, can_edit) }).collect_view()}
            }
            .into_any()
        }
        _ => loading(),
    }
    }
}

fn rule(r: RuleItem, setting: Option<RuleSetting>, can_edit: bool) -> impl IntoView {
    let kind = if r.attack {
        view! { <span class="badge warning">{format!("attack signal · weight {:.2}", r.weight)}</span> }.into_any()
    } else {
        view! { <span class="badge">"label"</span> }.into_any()
    };
    let settings = setting.map(|s| view! { <RuleSettingsForm setting=s can_edit=can_edit/> });
    let data_rule = r.id.clone();
    view! {
        <article class="card rule" data-rule=data_rule>
            <h2><code>{r.id}</code></h2>
            <p>{kind}" "<span class="badge">{r.behavior}</span></p>
            <p>{r.description}</p>
            {settings}
            <details><summary>"How it works"</summary><pre class="explainer">{r.explainer}</pre></details>
        </article>
    }
}

#[component]
fn RuleSettingsForm(setting: RuleSetting, can_edit: bool) -> impl IntoView {
    let form = RwSignal::new(RuleForm::from(&setting));
    let current = RwSignal::new(setting);
    let error = RwSignal::new(None::<(Option<String>, String)>);
    let saved = RwSignal::new(false);
    let slug = current.get_untracked().id.replace('/', "-");
    let id = move |part: &str| format!("{part}-{slug}");
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        saved.set(false);
        let change = match form.get_untracked().to_change() {
            Ok(c) => c,
            Err(e) => return error.set(Some((Some(e.field), e.message))),
        };
        spawn_local(async move {
            match api::put::<_, RuleSetting>("/api/panel/rules/settings", &change).await {
                Ok(s) => {
                    let _ = form.try_set(RuleForm::from(&s));
                    let _ = current.try_set(s);
                    let _ = error.try_set(None);
                    let _ = saved.try_set(true);
                    api::toast("Rule saved");
                }
                Err(e) => {
                    let _ = error.try_set(Some((field_of(&e.message).map(str::to_owned), e.message)));
                }
            }
        });
    };
    let invalid = move |field: &'static str| {
        move || error.get().is_some_and(|(f, _)| f.as_deref() == Some(field)).then_some("true")
    };
    let state = move || {
        let s = current.get();
        let on = if s.enabled {
            view! { <span class="badge success">"on"</span> }.into_any()
        } else {
            view! { <span class="badge">"off"</span> }.into_any()
        };
        let shadow =
            s.shadow.then(|| view! { " " <span class="badge warning">"shadow: reported, not enforced"</span> });
        let tuned = describe(s.threshold.or(s.default_threshold), s.window_secs.or(s.default_window_secs))
            .map(|d| format!(" · fires at {d}"));
        view! { <p class="rule-state">{on}{shadow}{tuned}</p> }
    };
    if !can_edit {
        return state.into_any();
    }
    let s = current.get_untracked();
    let threshold_field = s.default_threshold.map(|t| {
        let (tid, hid) = (id("threshold"), id("threshold-hint"));
        let hint = format!("Default {t}; {}–{}.", s.threshold_min, s.threshold_max);
        view! {
            <div class="field">
                <label for=tid.clone()>"Threshold"</label>
                <input id=tid type="text" inputmode="numeric" placeholder=t.to_string() aria-describedby=hid.clone()
                    aria-invalid=invalid("threshold") prop:value=move || form.get().threshold
                    on:input=move |ev| { let v = event_target_value(&ev); form.update(|f| f.threshold = v) }/>
                <span class="hint" id=hid>{hint}</span>
            </div>
        }
    });
    let window_field = s.default_window_secs.map(|w| {
        let (wid, hid) = (id("window"), id("window-hint"));
        let hint = format!("Default {w} s; {}–{} s.", s.window_min, s.window_max);
        view! {
            <div class="field">
                <label for=wid.clone()>"Window, seconds"</label>
                <input id=wid type="text" inputmode="numeric" placeholder=w.to_string() aria-describedby=hid.clone()
                    aria-invalid=invalid("window_secs") prop:value=move || form.get().window_secs
                    on:input=move |ev| { let v = event_target_value(&ev); form.update(|f| f.window_secs = v) }/>
                <span class="hint" id=hid>{hint}</span>
            </div>
        }
    });
    let (eid, sid) = (id("enabled"), id("shadow"));
    let (for_eid, for_sid) = (eid.clone(), sid.clone());
    view! {
        {state}
        <form class="filters rule-settings" on:submit=submit aria-label=format!("Settings of {}", s.id)>
            <label class="check" for=for_eid>
                <input id=eid type="checkbox" prop:checked=move || form.get().enabled
                    on:change=move |ev| { let on = event_target_checked(&ev); form.update(|f| f.enabled = on) }/>
                "Enabled"
            </label>
            <label class="check" for=for_sid>
                <input id=sid type="checkbox" prop:checked=move || form.get().shadow
                    on:change=move |ev| { let on = event_target_checked(&ev); form.update(|f| f.shadow = on) }/>
                "Shadow mode"
            </label>
            {threshold_field}
            {window_field}
            <button class="button primary" type="submit">"Save"</button>
        </form>
        {move || error.get().map(|(_, m)| view! { <div class="banner critical" role="alert"><p>{m}</p></div> })}
        {move || saved.get().then(|| view! { <p class="hint" role="status">"Saved: the engine uses it from now on."</p> })}
    }
    .into_any()
}
