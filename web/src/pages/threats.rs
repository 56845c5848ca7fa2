//! Live threats: the newest verdict changes, then new ones as the server streams them.

use ghosttrack_wire::{ThreatItem, ThreatList};
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::{Load, decision_badge, failure, fetch_into, loading};
use crate::api;
use crate::logic::format;

/// Most rows kept on the page.
const MAX_ROWS: usize = 200;
/// Wait before reconnecting after a failed stream.
const RECONNECT_DELAY_MS: i32 = 2_000;

#[component]
pub fn Threats() -> impl IntoView {
    let initial = fetch_into::<ThreatList>(|| "/api/panel/threats?limit=50".to_owned());
    let live = RwSignal::new(Vec::<ThreatItem>::new());
    let connected = RwSignal::new(false);
    let abort = web_sys::AbortController::new().ok();
    let signal = abort.as_ref().map(|a| a.signal());
    // Start streaming once the first page is in, from its newest id (no duplicates, no gap).
    Effect::new(move |started: Option<bool>| {
        if started == Some(true) {
            return true;
        }
        let Load::Ready(list) = initial.get() else { return false };
        let after = list.threats.iter().map(|t| t.id).max().unwrap_or(0);
        let Some(signal) = signal.clone() else { return true };
        spawn_local(async move {
            // The server ends a stream after `panel.live_max_secs`; reconnect after the newest id
            // seen, so nothing is missed or shown twice. A failure waits a little first.
            let cursor = std::rc::Rc::new(std::cell::Cell::new(after));
            loop {
                let _ = connected.try_set(true);
                let seen = cursor.clone();
                let result = api::stream(&format!("/api/panel/threats/live?after={}", cursor.get()), &signal, |data| {
                    if let Ok(threat) = serde_json::from_str::<ThreatItem>(data) {
                        seen.set(seen.get().max(threat.id));
                        live.update(|rows| {
                            rows.insert(0, threat);
                            rows.truncate(MAX_ROWS);
                        });
                    }
                })
                .await;
                let _ = connected.try_set(false);
                if signal.aborted() {
                    return;
                }
                if let Err(e) = result {
                    if e.status == 401 || e.status == 403 {
                        api::toast(&e.message);
                        return;
                    }
                    api::sleep_ms(RECONNECT_DELAY_MS).await;
                }
            }
        });
        true
    });
    on_cleanup(move || {
        if let Some(abort) = abort {
            abort.abort();
        }
    });
    view! {
        <p class="status" role="status">
            {move || if connected.get() { "Live: new threats appear here as they are detected." } else { "Not connected to the live feed." }}
        </p>
        {move || match initial.get() {
            Load::Loading => loading(),
            Load::Failed(e) => failure(&e),
            Load::Ready(list) => {
                let rows = move || {
                    let mut all = live.get();
                    all.extend(list.threats.clone());
                    all
                };
                view! { <ThreatTable rows=Signal::derive(rows)/> }.into_any()
            }
        }}
    }
}

#[component]
fn ThreatTable(rows: Signal<Vec<ThreatItem>>) -> impl IntoView {
    move || {
        let rows = rows.get();
        if rows.is_empty() {
            return view! {
                <section class="empty card">
                    <h2>"No threats so far"</h2>
                    <p>"When a rule flags a visitor, card testing or a scraper, it appears here within seconds. Check the Setup page if no traffic arrives at all."</p>
                </section>
            }
            .into_any();
        }
        let body = rows.into_iter().map(row).collect_view();
        view! {
            <div class="card table-wrap">
                <table id="threats">
                    <caption class="visually-hidden">"Verdict changes, newest first"</caption>
                    <thead><tr><th scope="col">"Time (UTC)"</th><th scope="col">"Decision"</th><th scope="col">"Score"</th><th scope="col">"Subject"</th><th scope="col">"Why"</th></tr></thead>
                    <tbody>{body}</tbody>
                </table>
            </div>
        }
        .into_any()
    }
}

fn row(t: ThreatItem) -> impl IntoView {
    let subject = match t.session_id {
        Some(id) => view! { <a href=format!("/app/sessions/{id}")>{t.subject.clone()}</a> }.into_any(),
        None => view! { <span>{t.subject.clone()}</span> }.into_any(),
    };
    let reasons = t
        .reasons
        .iter()
        .map(|r| {
            let shadow = r.shadow.then_some(" (shadow)");
            view! { <li><code>{r.rule.clone()}</code>" "{r.sentence.clone()}{shadow}</li> }
        })
        .collect_view();
    view! {
        <tr class="threat" data-id=t.id.to_string()>
            <td>{format::datetime(t.at)}</td>
            <td>{decision_badge(&t.decision)}</td>
            <td>{t.score}</td>
            <td>{subject}</td>
            <td><ul class="reasons">{reasons}</ul></td>
        </tr>
    }
}
