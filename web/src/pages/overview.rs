//! Overview: key numbers and the visitors-vs-bots chart over a chosen range.

use ghosttrack_wire::Overview as OverviewData;
use leptos::prelude::*;

use super::{Load, failure, fetch_into, loading};
use crate::logic::{chart, format};

const RANGES: [(&str, &str); 3] = [("24h", "Last 24 hours"), ("7d", "Last 7 days"), ("30d", "Last 30 days")];

#[component]
pub fn Overview() -> impl IntoView {
    let range = RwSignal::new("24h".to_owned());
    let data = fetch_into::<OverviewData>(move || format!("/api/panel/overview?range={}", range.get()));
    let buttons = RANGES
        .iter()
        .map(|&(value, label)| {
            let pressed = move || (range.get() == value).to_string();
            view! {
                <button type="button" aria-pressed=pressed on:click=move |_| range.set(value.to_owned())>{label}</button>
            }
        })
        .collect_view();
    view! {
        <div class="segmented" role="group" aria-label="Time range">{buttons}</div>
        {move || match data.get() {
            Load::Loading => loading(),
            Load::Failed(e) => failure(&e),
            Load::Ready(d) => body(d).into_any(),
        }}
    }
}

fn body(d: OverviewData) -> impl IntoView {
    let empty = d.sessions == 0;
    let cards = [
        ("Visitors", format::count(d.visitors)),
        ("Sessions", format::count(d.sessions)),
        ("Automated", format::percent(d.automated_share)),
        ("Open threats", format::count(d.open_threats)),
        ("Failed-payment bursts", format::count(d.failed_payment_bursts)),
        ("Failed payments", format::count(d.failed_payments)),
    ]
    .into_iter()
    .map(|(label, value)| view! { <div class="card metric"><p class="label">{label}</p><p class="value">{value}</p></div> })
    .collect_view();
    let chart_view = (!empty).then(|| chart_svg(&d));
    let empty_view = empty.then(|| {
        view! {
            <section class="empty card">
                <h2>"No visitors yet"</h2>
                <p>"GhostTrack has not received any traffic in this range. Turn on the app embed (or add the snippet) so the tracker starts reporting."</p>
                <a class="button primary" href="/app/setup">"Open setup"</a>
            </section>
        }
    });
    view! {
        <section class="metrics" aria-label="Key numbers">{cards}</section>
        {empty_view}
        {chart_view}
    }
}

fn chart_svg(d: &OverviewData) -> impl IntoView + use<> {
    let c = chart::scale(&d.series);
    let view_box = format!("0 0 {} {}", chart::WIDTH, chart::HEIGHT);
    let grid = c
        .ticks
        .iter()
        .map(|(y, label)| {
            let (y, label) = (*y, label.clone());
            view! {
                <line x1={chart::PAD_LEFT} x2={chart::WIDTH} y1=y y2=y class="grid"></line>
                <text x={chart::PAD_LEFT - 6.0} y={y + 4.0} text-anchor="end" class="tick">{label}</text>
            }
        })
        .collect_view();
    let first = d.series.first().map(|p| format::bucket_label(p.start, d.bucket_ms)).unwrap_or_default();
    let last = d.series.last().map(|p| format::bucket_label(p.start, d.bucket_ms)).unwrap_or_default();
    let label_y = chart::HEIGHT - 6.0;
    let summary = format!("Sessions per bucket, humans and bots; at most {} in one bucket.", format::count(c.max));
    let label = summary.clone();
    view! {
        <section class="card">
            <h2>"Visitors vs. bots"</h2>
            <svg class="chart" viewBox=view_box role="img" aria-label=label>
                <title>{summary}</title>
                {grid}
                <polyline class="humans" points=c.humans fill="none"></polyline>
                <polyline class="bots" points=c.bots fill="none"></polyline>
                <text x={chart::PAD_LEFT} y=label_y class="tick">{first}</text>
                <text x={chart::WIDTH} y=label_y text-anchor="end" class="tick">{last}</text>
            </svg>
            <p class="legend"><span class="swatch humans"></span>"Humans"<span class="swatch bots"></span>"Bots (automated sessions)"</p>
        </section>
    }
}
