//! Sessions: filters (in the URL) and the matching sessions.

use ghosttrack_wire::{SessionList, SessionSummary};
use leptos::prelude::*;

use super::{Load, decision_badge, failure, fetch_into, loading};
use crate::app::navigate;
use crate::logic::filters::SessionFilters;
use crate::logic::format;
use crate::route::Route;

#[component]
pub fn Sessions(query: String) -> impl IntoView {
    let filters = SessionFilters::from_query(&query);
    let api_query = filters.to_query();
    let data = fetch_into::<SessionList>(move || format!("/api/panel/sessions?{api_query}"));
    let form = RwSignal::new(filters);
    let router = expect_context::<RwSignal<Route>>();
    let apply = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        navigate(router, Route::Sessions(form.get_untracked().to_query()));
    };
    let text = |label: &'static str,
                id: &'static str,
                get: fn(&SessionFilters) -> String,
                set: fn(&mut SessionFilters, String)| {
        view! {
            <div class="field">
                <label for=id>{label}</label>
                <input id=id type="text" prop:value=move || get(&form.get())
                    on:change=move |ev| form.update(|f| set(f, event_target_value(&ev)))/>
            </div>
        }
    };
    let select = |label: &'static str,
                  id: &'static str,
                  options: &'static [(&'static str, &'static str)],
                  get: fn(&SessionFilters) -> String,
                  set: fn(&mut SessionFilters, String)| {
        let opts = options
            .iter()
            .map(|&(value, text)| view! { <option value=value selected=move || get(&form.get()) == value>{text}</option> })
            .collect_view();
        view! {
            <div class="field">
                <label for=id>{label}</label>
                <select id=id on:change=move |ev| form.update(|f| set(f, event_target_value(&ev)))>{opts}</select>
            </div>
        }
    };
    view! {
        <form class="card filters" on:submit=apply aria-label="Filter sessions">
            {select("Decision", "f-decision", &[("", "Any"), ("BLOCK", "Block"), ("CHALLENGE", "Challenge"), ("ALLOW", "Allow")], |f| f.decision.clone(), |f, v| f.decision = v)}
            {text("Rule", "f-rule", |f| f.rule.clone(), |f, v| f.rule = v)}
            {text("Country (ISO code)", "f-country", |f| f.country.clone(), |f, v| f.country = v.to_uppercase())}
            {select("Device", "f-device", &[("", "Any"), ("desktop", "Desktop"), ("mobile", "Mobile"), ("tablet", "Tablet"), ("bot", "Bot"), ("unknown", "Unknown")], |f| f.device.clone(), |f, v| f.device = v)}
            {select("Time", "f-range", &[("", "Last 24 hours"), ("7d", "Last 7 days"), ("30d", "Last 30 days")], |f| f.range.clone(), |f, v| f.range = v)}
            <button class="button primary" type="submit">"Apply filters"</button>
        </form>
        {move || match data.get() {
            Load::Loading => loading(),
            Load::Failed(e) => failure(&e),
            Load::Ready(list) => table(list.sessions).into_any(),
        }}
    }
}

fn table(sessions: Vec<SessionSummary>) -> impl IntoView {
    if sessions.is_empty() {
        return view! {
            <section class="empty card">
                <h2>"No sessions match"</h2>
                <p>"Widen the time range or clear a filter. If there are no sessions at all, turn on the tracker on the Setup page."</p>
            </section>
        }
        .into_any();
    }
    let rows = sessions
        .into_iter()
        .map(|s| {
            let decision = s.decision.as_deref().map(decision_badge);
            let href = format!("/app/sessions/{}", s.id);
            view! {
                <tr class="session">
                    <td><a href=href>{format::datetime(s.started_at)}</a></td>
                    <td>{format::duration(s.last_seen_at - s.started_at)}</td>
                    <td>{s.pageviews}</td>
                    <td>{s.entry_path.clone()}</td>
                    <td>{s.country.clone().unwrap_or_else(|| "–".into())}</td>
                    <td>{format!("{} · {} · {}", s.device, s.browser, s.os)}</td>
                    <td>{if s.automated { "yes" } else { "no" }}</td>
                    <td>{decision}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="card table-wrap">
            <table id="sessions">
                <caption class="visually-hidden">"Sessions, newest first"</caption>
                <thead><tr>
                    <th scope="col">"Started (UTC)"</th><th scope="col">"Duration"</th><th scope="col">"Pages"</th>
                    <th scope="col">"Entry page"</th><th scope="col">"Country"</th><th scope="col">"Device"</th>
                    <th scope="col">"Automated"</th><th scope="col">"Verdict"</th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}
