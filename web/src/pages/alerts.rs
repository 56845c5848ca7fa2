//! Alerts: when GhostTrack alerts (the policy), where (channels the plan includes), a test
//! alert, and what was sent (deliveries, dead letters with their error and a retry).

use ghosttrack_wire::{AlertDeliveryItem, AlertPolicyBody, AlertQueued, AlertsPage, CreatedAlertChannel};
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::{Load, failure, fetch_into, loading};
use crate::api;
use crate::logic::alerts::{ChannelForm, PolicyForm, field_of, kind_label, status_label, toggle};
use crate::logic::format;

/// A form's outcome line: a success note or an error naming its field.
#[derive(Clone, Debug, PartialEq)]
enum Outcome {
    Idle,
    Saved(String),
    Error { field: Option<String>, message: String },
}

fn outcome_view(o: RwSignal<Outcome>) -> impl IntoView {
    move || match o.get() {
        Outcome::Idle => None,
        Outcome::Saved(m) => Some(view! { <p class="banner success" role="status">{m}</p> }.into_any()),
        Outcome::Error { message, .. } => {
            Some(view! { <div class="banner critical" role="alert"><p>{message}</p></div> }.into_any())
        }
    }
}

fn api_error(e: api::ApiFailure) -> Outcome {
    Outcome::Error { field: field_of(&e.message).map(str::to_owned), message: e.message }
}

/// Reads one checkbox of the policy form.
type ReadCheck = Box<dyn Fn(&PolicyForm) -> bool + Send + Sync>;
/// Writes one checkbox of the policy form.
type WriteCheck = Box<dyn Fn(&mut PolicyForm, bool) + Send + Sync>;

#[component]
pub fn Alerts() -> impl IntoView {
    let version = RwSignal::new(0u32);
    let data = fetch_into::<AlertsPage>(move || {
        version.track();
        "/api/panel/alerts".to_owned()
    });
    let reload = Callback::new(move |()| version.update(|v| *v += 1));
    move || match data.get() {
        Load::Loading => loading(),
        Load::Failed(e) => failure(&e),
        Load::Ready(page) => view! {
            <PolicyCard policy=page.policy.clone() families=page.families.clone() can_edit=page.can_edit/>
            <Channels page=page.clone() reload=reload/>
            {deliveries_card(page.deliveries.clone())}
            {dead_card(page.dead.clone(), page.can_edit, reload)}
        }
        .into_any(),
    }
}

#[component]
fn PolicyCard(policy: AlertPolicyBody, families: Vec<String>, can_edit: bool) -> impl IntoView {
    let form = RwSignal::new(PolicyForm::from(&policy));
    let outcome = RwSignal::new(Outcome::Idle);
    let invalid = move |field: &'static str| {
        move || matches!(outcome.get(), Outcome::Error { field: Some(f), .. } if f == field).then_some("true")
    };
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = match form.get_untracked().to_body() {
            Ok(b) => b,
            Err(e) => {
                return outcome.set(Outcome::Error {
                    field: Some(e.field.clone()),
                    message: format!("{}: {}", e.field, e.message),
                });
            }
        };
        spawn_local(async move {
            let result = api::put::<_, AlertPolicyBody>("/api/panel/alerts/policy", &body).await;
            let _ = outcome.try_set(match result {
                Ok(saved) => {
                    let _ = form.try_set(PolicyForm::from(&saved));
                    api::toast("Alert policy saved");
                    Outcome::Saved("Alert policy saved.".into())
                }
                Err(e) => api_error(e),
            });
        });
    };
    let check = move |id: String, label: String, get: ReadCheck, set: WriteCheck| {
        let for_id = id.clone();
        view! {
            <label class="check" for=for_id>
                <input id=id type="checkbox" disabled=!can_edit prop:checked=move || get(&form.get())
                    on:change=move |ev| { let on = event_target_checked(&ev); form.update(|f| set(f, on)) }/>
                {label}
            </label>
        }
    };
    let number = move |id: &'static str,
                       label: &'static str,
                       hint: &'static str,
                       get: fn(&PolicyForm) -> String,
                       set: fn(&mut PolicyForm, String)| {
        let hint_id = format!("{id}-hint");
        view! {
            <div class="field">
                <label for=id>{label}</label>
                <input id=id type="text" disabled=!can_edit aria-describedby=hint_id.clone()
                    aria-invalid=invalid(id) prop:value=move || get(&form.get())
                    on:change=move |ev| { let v = event_target_value(&ev); form.update(|f| set(f, v)) }/>
                <span class="hint" id=hint_id>{hint}</span>
            </div>
        }
    };
    let decisions = ["BLOCK", "CHALLENGE"]
        .into_iter()
        .map(|d| {
            check(
                format!("decision-{d}"),
                if d == "BLOCK" { "Blocked visitors".into() } else { "Challenged visitors".into() },
                Box::new(move |f: &PolicyForm| f.decisions.iter().any(|x| x == d)),
                Box::new(move |f: &mut PolicyForm, on: bool| toggle(&mut f.decisions, d, on)),
            )
        })
        .collect_view();
    let family_checks = families
        .into_iter()
        .map(|fam| {
            let (a, b) = (fam.clone(), fam.clone());
            check(
                format!("family-{fam}"),
                fam.clone(),
                Box::new(move |f: &PolicyForm| f.families.contains(&a)),
                Box::new(move |f: &mut PolicyForm, on: bool| toggle(&mut f.families, &b, on)),
            )
        })
        .collect_view();
    let save_button =
        can_edit.then(|| view! { <button class="button primary" type="submit">"Save alert policy"</button> });
    let read_only = (!can_edit)
        .then(|| view! { <p class="hint">"Your role can read the policy; owners and analysts change it."</p> });
    view! {
        <form class="card policy" on:submit=save aria-labelledby="policy-title">
            <h2 id="policy-title">"When GhostTrack alerts"</h2>
            {read_only}
            <fieldset><legend>"Verdicts that count"</legend><div class="checks">{decisions}</div></fieldset>
            <fieldset><legend>"Rule families that count"</legend><div class="checks">{family_checks}</div></fieldset>
            <div class="checks">
                {check("card-testing".into(), "Alert at once on card testing".into(), Box::new(|f: &PolicyForm| f.card_testing), Box::new(|f: &mut PolicyForm, on: bool| f.card_testing = on))}
                {check("traffic".into(), "Alert on traffic spikes and drops".into(), Box::new(|f: &PolicyForm| f.traffic), Box::new(|f: &mut PolicyForm, on: bool| f.traffic = on))}
                {check("digest".into(), "Send a daily digest".into(), Box::new(|f: &PolicyForm| f.digest), Box::new(|f: &mut PolicyForm, on: bool| f.digest = on))}
            </div>
            <div class="form-grid">
                {number("burst_subjects", "Burst: visitors", "Alert when this many visitors get flagged… (0 = off)", |f| f.burst_subjects.clone(), |f, v| f.burst_subjects = v)}
                {number("burst_window_minutes", "Burst: within minutes", "…within this many minutes (1–1440).", |f| f.burst_window_minutes.clone(), |f, v| f.burst_window_minutes = v)}
                {number("cooldown_minutes", "Cooldown, minutes", "Silence after an alert for the same incident.", |f| f.cooldown_minutes.clone(), |f, v| f.cooldown_minutes = v)}
                {number("traffic_spike_ratio", "Spike ratio", "Last hour at least this × the usual hour.", |f| f.traffic_spike_ratio.clone(), |f, v| f.traffic_spike_ratio = v)}
                {number("traffic_drop_ratio", "Drop ratio", "Last hour at most this × the usual hour.", |f| f.traffic_drop_ratio.clone(), |f, v| f.traffic_drop_ratio = v)}
                {number("traffic_min_baseline", "Minimum usual sessions an hour", "Traffic is judged above this.", |f| f.traffic_min_baseline.clone(), |f, v| f.traffic_min_baseline = v)}
                {number("time_zone", "Time zone", "IANA name, e.g. Europe/Paris.", |f| f.time_zone.clone(), |f, v| f.time_zone = v)}
                {number("quiet_hours.from", "Quiet hours from", "HH:MM; empty for none.", |f| f.quiet_from.clone(), |f, v| f.quiet_from = v)}
                {number("quiet_hours.to", "Quiet hours to", "HH:MM; may pass midnight.", |f| f.quiet_to.clone(), |f, v| f.quiet_to = v)}
                {number("digest_hour", "Digest hour", "0–23, local time.", |f| f.digest_hour.clone(), |f, v| f.digest_hour = v)}
            </div>
            {outcome_view(outcome)}
            {save_button}
        </form>
    }
}

#[component]
fn Channels(page: AlertsPage, reload: Callback<()>) -> impl IntoView {
    let can_edit = page.can_edit;
    let outcome = RwSignal::new(Outcome::Idle);
    let secret = RwSignal::new(None::<String>);
    let rows = page
        .channels
        .iter()
        .map(|c| {
            let id = c.id;
            let test = move |_| {
                spawn_local(async move {
                    let r = api::post_empty::<AlertQueued>(&format!("/api/panel/alerts/channels/{id}/test")).await;
                    let _ = outcome.try_set(match r {
                        Ok(_) => Outcome::Saved("Test alert queued: it shows under Recent deliveries.".into()),
                        Err(e) => api_error(e),
                    });
                    reload.run(());
                });
            };
            let remove = move |_| {
                spawn_local(async move {
                    match api::delete(&format!("/api/panel/alerts/channels/{id}")).await {
                        Ok(()) => reload.run(()),
                        Err(e) => {
                            let _ = outcome.try_set(api_error(e));
                        }
                    }
                });
            };
            let actions = can_edit.then(|| {
                let name = c.name.clone();
                view! {
                    <button class="button test-alert" on:click=test aria-label=format!("Send a test alert to {name}")>"Send a test alert"</button>
                    " "
                    <button class="button" on:click=remove aria-label=format!("Remove {}", c.name)>"Remove"</button>
                }
            });
            let state = if c.enabled {
                view! { <span class="badge success">"on"</span> }.into_any()
            } else {
                view! { <span class="badge warning">"unsubscribed"</span> }.into_any()
            };
            view! {
                <tr class="channel">
                    <td>{c.name.clone()}</td>
                    <td>{kind_label(&c.kind)}</td>
                    <td>{c.display.clone()}</td>
                    <td>{state}</td>
                    <td>{actions}</td>
                </tr>
            }
        })
        .collect_view();
    let list = if page.channels.is_empty() {
        view! {
            <div class="empty">
                <p>"No channel yet: GhostTrack has nowhere to send alerts. Add an email address below to be told about card testing and bot bursts."</p>
            </div>
        }
        .into_any()
    } else {
        view! {
            <div class="table-wrap" tabindex="0" role="region" aria-label="Alert channels">
                <table id="channels">
                    <caption class="visually-hidden">"Alert channels"</caption>
                    <thead><tr><th scope="col">"Name"</th><th scope="col">"Kind"</th><th scope="col">"Destination"</th><th scope="col">"State"</th><th scope="col">"Actions"</th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        }
        .into_any()
    };
    let allowed: Vec<String> = page.channel_kinds.iter().filter(|k| k.allowed).map(|k| k.kind.clone()).collect();
    let locked: Vec<&'static str> =
        page.channel_kinds.iter().filter(|k| !k.allowed).map(|k| kind_label(&k.kind)).collect();
    let upsell = (!locked.is_empty()).then(|| {
        let text = format!("{} channels come with a higher plan. ", locked.join(", "));
        view! { <p class="hint">{text}<a href="/app/billing">"See plans"</a></p> }
    });
    let add = (can_edit && !allowed.is_empty()).then(|| add_form(allowed, outcome, secret, reload));
    let secret_view = move || {
        secret.get().map(|s| view! {
            <div class="banner success" role="status">
                <p>"Webhook signing secret (shown once; store it in your receiver to verify X-GhostTrack-Signature):"</p>
                <pre class="snippet">{s}</pre>
            </div>
        })
    };
    view! {
        <section class="card" aria-labelledby="channels-title">
            <h2 id="channels-title">"Where alerts go"</h2>
            {list}
            {outcome_view(outcome)}
            {secret_view}
            {add}
            {upsell}
        </section>
    }
}

fn add_form(
    allowed: Vec<String>,
    outcome: RwSignal<Outcome>,
    secret: RwSignal<Option<String>>,
    reload: Callback<()>,
) -> impl IntoView {
    let form = RwSignal::new(ChannelForm { kind: allowed[0].clone(), ..ChannelForm::default() });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = match form.get_untracked().to_body() {
            Ok(b) => b,
            Err(e) => {
                return outcome.set(Outcome::Error {
                    field: Some(e.field.clone()),
                    message: format!("{}: {}", e.field, e.message),
                });
            }
        };
        spawn_local(async move {
            match api::post::<_, CreatedAlertChannel>("/api/panel/alerts/channels", &body).await {
                Ok(created) => {
                    let _ = secret.try_set(created.signing_secret);
                    let _ = outcome.try_set(Outcome::Saved(format!("Channel “{}” added.", created.channel.name)));
                    reload.run(());
                }
                Err(e) => {
                    let _ = outcome.try_set(api_error(e));
                }
            }
        });
    };
    let options = allowed
        .into_iter()
        .map(|k| {
            let label = kind_label(&k);
            let value = k.clone();
            view! { <option value=value selected=move || form.get().kind == k>{label}</option> }
        })
        .collect_view();
    let is_email = move || form.get().kind == "email";
    view! {
        <form class="filters add-channel" on:submit=submit aria-label="Add a channel">
            <div class="field">
                <label for="channel-kind">"Kind"</label>
                <select id="channel-kind" on:change=move |ev| { let v = event_target_value(&ev); form.update(|f| f.kind = v) }>{options}</select>
            </div>
            <div class="field">
                <label for="channel-name">"Name"</label>
                <input id="channel-name" type="text" prop:value=move || form.get().name
                    on:input=move |ev| { let v = event_target_value(&ev); form.update(|f| f.name = v) }/>
            </div>
            <Show when=is_email fallback=move || view! {
                <div class="field wide">
                    <label for="channel-url">"Incoming-webhook URL (https)"</label>
                    <input id="channel-url" type="url" prop:value=move || form.get().url
                        on:input=move |ev| { let v = event_target_value(&ev); form.update(|f| f.url = v) }/>
                </div>
            }>
                <div class="field wide">
                    <label for="channel-to">"Email addresses (comma separated)"</label>
                    <input id="channel-to" type="text" autocomplete="email" prop:value=move || form.get().to
                        on:input=move |ev| { let v = event_target_value(&ev); form.update(|f| f.to = v) }/>
                </div>
            </Show>
            <button class="button primary" type="submit">"Add channel"</button>
        </form>
    }
}

fn delivery_rows(items: Vec<AlertDeliveryItem>, retry: Option<Callback<i64>>) -> impl IntoView {
    items
        .into_iter()
        .map(|d| {
            let id = d.id;
            let class = match d.status.as_str() {
                "delivered" => "badge success",
                "dead" => "badge critical",
                _ => "badge warning",
            };
            let action = retry.map(|r| view! { <td><button class="button retry" on:click=move |_| r.run(id)>"Retry"</button></td> });
            view! {
                <tr class="delivery" data-status=d.status.clone()>
                    <td>{format::datetime(d.created_at)}</td>
                    <td>{if d.channel_name.is_empty() { "(removed)".to_owned() } else { format!("{} · {}", d.channel_name, kind_label(&d.channel_kind)) }}</td>
                    <td>{d.title.clone()}</td>
                    <td><span class=class>{status_label(&d.status)}</span></td>
                    <td>{d.attempts}</td>
                    <td>{d.last_error.clone().unwrap_or_default()}</td>
                    {action}
                </tr>
            }
        })
        .collect_view()
}

fn deliveries_card(items: Vec<AlertDeliveryItem>) -> impl IntoView {
    let body = if items.is_empty() {
        view! { <p class="hint">"Nothing sent yet. Send a test alert to a channel to check it works."</p> }.into_any()
    } else {
        view! {
            <div class="table-wrap" tabindex="0" role="region" aria-label="Recent deliveries">
                <table id="deliveries">
                    <caption class="visually-hidden">"Recent deliveries, newest first"</caption>
                    <thead><tr><th scope="col">"Queued (UTC)"</th><th scope="col">"Channel"</th><th scope="col">"Alert"</th><th scope="col">"Status"</th><th scope="col">"Attempts"</th><th scope="col">"Last error"</th></tr></thead>
                    <tbody>{delivery_rows(items, None)}</tbody>
                </table>
            </div>
        }
        .into_any()
    };
    view! { <section class="card" aria-labelledby="deliveries-title"><h2 id="deliveries-title">"Recent deliveries"</h2>{body}</section> }
}

fn dead_card(items: Vec<AlertDeliveryItem>, can_edit: bool, reload: Callback<()>) -> impl IntoView {
    let outcome = RwSignal::new(Outcome::Idle);
    let retry = can_edit.then(|| {
        Callback::new(move |id: i64| {
            spawn_local(async move {
                match api::post_empty::<AlertQueued>(&format!("/api/panel/alerts/deliveries/{id}/retry")).await {
                    Ok(_) => {
                        api::toast("Delivery queued again");
                        reload.run(());
                    }
                    Err(e) => {
                        let _ = outcome.try_set(api_error(e));
                    }
                }
            });
        })
    });
    let body = if items.is_empty() {
        view! { <p class="hint">"No failed deliveries. When a channel keeps failing, its alerts land here with the error, ready to retry."</p> }.into_any()
    } else {
        let action_head = can_edit.then(|| view! { <th scope="col">"Action"</th> });
        view! {
            <div class="table-wrap" tabindex="0" role="region" aria-label="Failed deliveries">
                <table id="dead-letters">
                    <caption class="visually-hidden">"Failed deliveries (dead letters)"</caption>
                    <thead><tr><th scope="col">"Queued (UTC)"</th><th scope="col">"Channel"</th><th scope="col">"Alert"</th><th scope="col">"Status"</th><th scope="col">"Attempts"</th><th scope="col">"Error"</th>{action_head}</tr></thead>
                    <tbody>{delivery_rows(items, retry)}</tbody>
                </table>
            </div>
        }
        .into_any()
    };
    view! {
        <section class="card" aria-labelledby="dead-title">
            <h2 id="dead-title">"Failed deliveries"</h2>
            {outcome_view(outcome)}
            {body}
        </section>
    }
}
