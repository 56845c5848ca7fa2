//! Privacy: the site's privacy mode with what each one means, the retention that applies,
//! encryption of event payloads at rest (a switch with a confirmation step), and one visitor's
//! data: look it up (by visitor id or session id), download it as JSON, or delete it after a
//! confirmation step. Changes need the owner role; the server enforces it and audit-logs each
//! action, listed at the bottom.

use ghosttrack_wire::{AuditEntry, PrivacyModeChange, PrivacyView, VisitorDeleted};
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::Value;

use super::{Load, failure, fetch_into, loading};
use crate::api;
use crate::logic::filters::encode;
use crate::logic::format;
use crate::logic::privacy::{
    self as logic, ENCRYPTION_DOES_NOT_PROTECT, ENCRYPTION_OFF_EFFECT, ENCRYPTION_PROTECTS, EncryptionCard,
    ExportSummary, MODES,
};

#[component]
pub fn PrivacyPage(query: String) -> impl IntoView {
    let data = fetch_into::<PrivacyView>(|| "/api/panel/privacy".to_owned());
    let session = logic::session_from_query(&query);
    move || match data.get() {
        Load::Loading => loading(),
        Load::Failed(e) => failure(&e),
        Load::Ready(v) => {
            let can_manage = v.can_manage;
            let audit_rows = RwSignal::new(v.audit.clone());
            view! {
                <ModeCard state={v.clone()} data=data/>
                <RetentionCard state={v.clone()}/>
                <PayloadEncryptionCard state={v.clone()} data=data/>
                <VisitorCard can_manage=can_manage session=session audit=audit_rows/>
                {move || audit(audit_rows.get())}
            }
            .into_any()
        }
    }
}

#[component]
fn ModeCard(state: PrivacyView, data: RwSignal<Load<PrivacyView>>) -> impl IntoView {
    let chosen = RwSignal::new(state.mode.clone());
    let status = RwSignal::new(String::new());
    let saving = RwSignal::new(false);
    let current = state.mode.clone();
    let can_manage = state.can_manage;
    let options = MODES
        .iter()
        .map(|m| {
            let id = format!("mode-{}", m.id);
            let value = m.id;
            let checked = move || chosen.get() == value;
            let current_badge = (current == m.id).then(|| view! { <span class="badge success">"current"</span> });
            view! {
                <div class="choice">
                    <input type="radio" name="privacy-mode" id={id.clone()} value=value prop:checked=checked
                        disabled={!can_manage} on:change=move |_| chosen.set(value.to_owned())/>
                    <label for=id>
                        <strong>{m.title}</strong>" "{current_badge}
                        <span class="choice-help">{m.summary}</span>
                    </label>
                </div>
            }
        })
        .collect_view();
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mode = chosen.get_untracked();
        saving.set(true);
        status.set(String::new());
        spawn_local(async move {
            let body = PrivacyModeChange { mode: mode.clone() };
            match api::request::<_, PrivacyView>("PUT", "/api/panel/privacy/mode", Some(&body)).await {
                Ok(v) => {
                    let title = logic::mode(&v.mode).map_or(v.mode.clone(), |m| m.title.to_owned());
                    api::toast(&format!("Privacy mode set to {title}"));
                    let _ = data.try_set(Load::Ready(v));
                }
                Err(e) => {
                    let _ = status.try_set(e.message);
                    let _ = saving.try_set(false);
                }
            }
        });
    };
    let owner_hint =
        (!can_manage).then(|| view! { <p class="hint">"Only an owner of this site can change the privacy mode."</p> });
    view! {
        <section class="card">
            <form on:submit=save aria-label="Privacy mode">
                <fieldset class="choices">
                    <legend><h2>"Privacy mode"</h2></legend>
                    {options}
                </fieldset>
                {owner_hint}
                <p class="hint">"Visitors who decline analytics (cookie banner, Global Privacy Control or Do Not Track) are always treated as strict."</p>
                <button class="button primary" type="submit" id="save-mode"
                    disabled={move || !can_manage || saving.get() || chosen.get() == state.mode}>"Save mode"</button>
                <p role="status" class="error-text">{move || status.get()}</p>
            </form>
        </section>
    }
}

#[component]
fn RetentionCard(state: PrivacyView) -> impl IntoView {
    let lines = logic::retention_lines(&state.retention).into_iter().map(|l| view! { <li>{l}</li> }).collect_view();
    view! {
        <section class="card">
            <h2>"Retention"</h2>
            <ul class="plain" id="retention">{lines}</ul>
            <p class="hint">"These numbers come from the server's settings for the current mode; the retention job applies them every hour."</p>
        </section>
    }
}

/// Encryption of event payloads at rest: the state, what it protects and what it does not, and
/// a switch that asks for confirmation before it sends the change. The answer replaces the
/// page's data, so the state and the audit list show the change.
#[component]
fn PayloadEncryptionCard(state: PrivacyView, data: RwSignal<Load<PrivacyView>>) -> impl IntoView {
    let card = EncryptionCard::of(&state);
    let confirming = RwSignal::new(false);
    let saving = RwSignal::new(false);
    let error = RwSignal::new(String::new());
    let send = move |_: leptos::ev::MouseEvent| {
        let change = card.change();
        saving.set(true);
        error.set(String::new());
        spawn_local(async move {
            match api::request::<_, PrivacyView>("PUT", "/api/panel/privacy/encryption", Some(&change)).await {
                Ok(v) => {
                    api::toast(logic::encryption_toast(v.encrypted_at_rest));
                    let _ = data.try_set(Load::Ready(v));
                }
                Err(e) => {
                    let _ = error.try_set(logic::encryption_failure(change.enabled, &e.message));
                    let _ = confirming.try_set(false);
                    let _ = saving.try_set(false);
                }
            }
        });
    };
    let locked = card.locked.map(|reason| view! { <p class="hint" id="encryption-locked">{reason}</p> });
    let described_by = if card.locked.is_some() { "encryption-state encryption-locked" } else { "encryption-state" };
    let confirmation = move || {
        confirming.get().then(|| {
            let c = card.confirmation();
            let class = if card.on { "banner critical confirm" } else { "banner warning confirm" };
            view! {
                <div class=class role="alertdialog" aria-labelledby="encryption-question" aria-describedby="encryption-consequences">
                    <p id="encryption-question"><strong>{c.question}</strong></p>
                    <p id="encryption-consequences">{c.consequences}</p>
                    <div class="actions">
                        <button type="button" class="button" on:click=move |_| confirming.set(false)>"Cancel"</button>
                        <button type="button" class="button primary" id="confirm-encryption"
                            disabled=move || saving.get() on:click=send>{c.confirm}</button>
                    </div>
                </div>
            }
        })
    };
    view! {
        <section class="card" aria-labelledby="encryption-title">
            <h2 id="encryption-title">"Encryption of event details"</h2>
            <button type="button" role="switch" class="switch" id="encryption-switch" aria-checked={card.on.to_string()}
                aria-describedby=described_by disabled=move || card.locked.is_some() || saving.get()
                on:click=move |_| confirming.set(true)>
                <span class="track" aria-hidden="true"></span>
                <span>"Encrypt event details at rest"</span>
            </button>
            <p id="encryption-state"><strong>{card.state_line()}</strong></p>
            {locked}
            {confirmation}
            <ul class="plain">
                <li>{ENCRYPTION_PROTECTS}</li>
                <li>{ENCRYPTION_DOES_NOT_PROTECT}</li>
                <li>{ENCRYPTION_OFF_EFFECT}</li>
            </ul>
            <p role="status" class="error-text" id="encryption-error">{move || error.get()}</p>
        </section>
    }
}

/// Where the visitor lookup is.
#[derive(Clone, Debug, PartialEq)]
enum Step {
    Idle,
    Found { query: String, summary: ExportSummary, json: String },
    Confirming { query: String, summary: ExportSummary },
    Deleted(VisitorDeleted),
}

#[component]
fn VisitorCard(can_manage: bool, session: Option<i64>, audit: RwSignal<Vec<AuditEntry>>) -> impl IntoView {
    let kind = RwSignal::new(if session.is_some() { "session" } else { "visitor" }.to_owned());
    let raw = RwSignal::new(session.map(|s| s.to_string()).unwrap_or_default());
    let step = RwSignal::new(Step::Idle);
    let message = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    // Exports and deletions are audit-logged: re-read the list after each.
    let refresh = move || async move {
        if let Ok(v) = api::get::<PrivacyView>("/api/panel/privacy").await {
            let _ = audit.try_set(v.audit);
        }
    };
    let find = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let query = match logic::lookup_query(&kind.get_untracked(), &raw.get_untracked()) {
            Ok(q) => q,
            Err(m) => return message.set(m.to_owned()),
        };
        message.set(String::new());
        busy.set(true);
        spawn_local(async move {
            match api::get::<Value>(&format!("/api/panel/privacy/visitor?{query}")).await {
                Ok(export) => {
                    let json = serde_json::to_string_pretty(&export).unwrap_or_default();
                    let _ = step.try_set(Step::Found { query, summary: ExportSummary::of(&export), json });
                    refresh().await;
                }
                Err(e) => {
                    let _ = step.try_set(Step::Idle);
                    let _ = message.try_set(e.message);
                }
            }
            let _ = busy.try_set(false);
        });
    };
    let delete = move |query: String| {
        busy.set(true);
        spawn_local(async move {
            match api::request::<(), VisitorDeleted>("DELETE", &format!("/api/panel/privacy/visitor?{query}"), None)
                .await
            {
                Ok(d) => {
                    api::toast("Visitor data deleted");
                    let _ = step.try_set(Step::Deleted(d));
                    refresh().await;
                }
                Err(e) => {
                    let _ = message.try_set(e.message);
                }
            }
            let _ = busy.try_set(false);
        });
    };
    if !can_manage {
        return view! {
            <section class="card">
                <h2>"A visitor's data"</h2>
                <p>"Only an owner of this site can export or delete a visitor's data."</p>
            </section>
        }
        .into_any();
    }
    let result = move || match step.get() {
        Step::Idle => ().into_any(),
        Step::Found { query, summary, json } => {
            let href = format!("data:application/json;charset=utf-8,{}", encode(&json));
            let file = format!("ghosttrack-visitor-{}.json", summary.visitor_id);
            let sentence = summary.sentence();
            let ask = move |_| step.set(Step::Confirming { query: query.clone(), summary: summary.clone() });
            view! {
                <div class="result" id="visitor-found">
                    <p>{sentence}</p>
                    <div class="actions">
                        <a class="button" href=href download=file>"Download JSON"</a>
                        <button type="button" class="button critical" id="delete-visitor" on:click=ask>"Delete this visitor…"</button>
                    </div>
                </div>
            }
            .into_any()
        }
        Step::Confirming { query, summary } => {
            let text = format!(
                "Permanently delete {} session(s), {} event(s) and {} verdict(s) of visitor {}? This cannot be undone.",
                summary.sessions, summary.events, summary.threats, summary.visitor_id
            );
            view! {
                <div class="banner critical confirm" role="alertdialog" aria-labelledby="confirm-text">
                    <p id="confirm-text">{text}</p>
                    <div class="actions">
                        <button type="button" class="button" on:click=move |_| step.set(Step::Idle)>"Cancel"</button>
                        <button type="button" class="button critical" id="confirm-delete" disabled=move || busy.get()
                            on:click=move |_| delete(query.clone())>"Delete permanently"</button>
                    </div>
                </div>
            }
            .into_any()
        }
        Step::Deleted(d) => view! {
            <div class="banner success" role="status" id="visitor-deleted"><p>{format!(
                "Deleted visitor {}: {} session(s), {} event(s), {} verdict(s).",
                d.visitor_id, d.sessions, d.events, d.threats
            )}</p></div>
        }
        .into_any(),
    };
    view! {
        <section class="card">
            <h2>"A visitor's data"</h2>
            <p class="hint">"Visitor ids change daily, so one id covers one day of one browser. Open a session and use its id to find the visitor."</p>
            <form class="filters" on:submit=find aria-label="Find a visitor">
                <div class="field">
                    <label for="lookup-kind">"Find by"</label>
                    <select id="lookup-kind" on:change=move |ev| kind.set(event_target_value(&ev))>
                        <option value="visitor" selected=move || kind.get() == "visitor">"Visitor id"</option>
                        <option value="session" selected=move || kind.get() == "session">"Session id"</option>
                    </select>
                </div>
                <div class="field">
                    <label for="lookup-id">"Id"</label>
                    <input id="lookup-id" type="text" inputmode="numeric" prop:value=move || raw.get()
                        on:input=move |ev| raw.set(event_target_value(&ev))/>
                </div>
                <button class="button primary" type="submit" id="find-visitor" disabled=move || busy.get()>"Find"</button>
            </form>
            <p role="status" class="error-text">{move || message.get()}</p>
            {result}
        </section>
    }
    .into_any()
}

fn audit(entries: Vec<AuditEntry>) -> AnyView {
    if entries.is_empty() {
        return view! {
            <section class="card">
                <h2>"Privacy actions"</h2>
                <p class="hint">"Mode and encryption changes and visitor exports or deletions made here are listed with who made them."</p>
            </section>
        }
        .into_any();
    }
    let rows = entries
        .into_iter()
        .map(|a| {
            view! {
                <tr class="audit">
                    <td>{format::datetime(a.at)}</td><td>{a.actor}</td>
                    <td>{a.action.replace('_', " ")}</td><td><code>{a.detail}</code></td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="card table-wrap">
            <table id="privacy-audit">
                <caption>"Privacy actions, newest first"</caption>
                <thead><tr><th scope="col">"When (UTC)"</th><th scope="col">"Who"</th><th scope="col">"Action"</th><th scope="col">"Details"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </section>
    }
    .into_any()
}
