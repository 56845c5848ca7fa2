//! Pages: where visitors click and how far they scroll, per page. The list shows pages with
//! click or scroll data; a page's map draws the click grid over a wireframe of the page's
//! proportions and the share of sessions reaching each 10 % of its height. Aggregates only: the
//! tracker sends coordinates and depths, never the page's content.

use ghosttrack_wire::{PageActivityList, PageMap};
use leptos::prelude::*;

use super::{Load, failure, fetch_into, loading};
use crate::logic::filters::encode;
use crate::logic::format;
use crate::logic::heatmap::{self, depth_bars};
use crate::route::Route;

const RANGES: [(&str, &str); 3] = [("24h", "Last 24 hours"), ("7d", "Last 7 days"), ("30d", "Last 30 days")];

#[component]
pub fn PagesPage(path: String) -> impl IntoView {
    let range = RwSignal::new("7d".to_owned());
    let buttons = RANGES
        .iter()
        .map(|&(value, label)| {
            let pressed = move || (range.get() == value).to_string();
            view! { <button type="button" aria-pressed=pressed on:click=move |_| range.set(value.to_owned())>{label}</button> }
        })
        .collect_view();
    let content = if path.is_empty() {
        view! { <PageList range=range/> }.into_any()
    } else {
        view! { <PageDetail path=path range=range/> }.into_any()
    };
    view! {
        <div class="segmented" role="group" aria-label="Time range">{buttons}</div>
        {content}
    }
}

#[component]
fn PageList(range: RwSignal<String>) -> impl IntoView {
    let data = fetch_into::<PageActivityList>(move || format!("/api/panel/pages?range={}", range.get()));
    move || {
        match data.get() {
        Load::Loading => loading(),
        Load::Failed(e) => failure(&e),
        Load::Ready(list) if list.pages.is_empty() => view! {
            <section class="empty card">
                <h2>"No clicks or scrolling recorded in this range"</h2>
                <p>"Click and scroll maps fill in as shoppers who allow analytics browse your store. If the tracker is not on yet, turn it on in Setup; in strict privacy mode no clicks are collected."</p>
                <a class="button primary" href="/app/setup">"Open setup"</a>
            </section>
        }
        .into_any(),
        Load::Ready(list) => {
            let rows = list
                .pages
                .into_iter()
                .map(|p| {
                    let href = Route::Pages(p.path.clone()).href();
                    view! {
                        <tr class="page-row">
                            <th scope="row"><a href=href>{p.path.clone()}</a></th>
                            <td>{format::count(p.clicks)}</td>
                            <td>{format::count(p.scroll_sessions)}</td>
                        </tr>
                    }
                })
                .collect_view();
            view! {
                <section class="card table-wrap">
                    <table id="pages">
                        <caption>"Pages with clicks or scroll data, most clicked first"</caption>
                        <thead><tr><th scope="col">"Page"</th><th scope="col">"Clicks"</th><th scope="col">"Sessions that scrolled"</th></tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                </section>
            }
            .into_any()
        }
    }
    }
}

#[component]
fn PageDetail(path: String, range: RwSignal<String>) -> impl IntoView {
    let api_path = encode(&path);
    let data = fetch_into::<PageMap>(move || format!("/api/panel/pages/map?path={api_path}&range={}", range.get()));
    view! {
        <p><a href="/app/pages">"← All pages"</a></p>
        <h2 class="page-path"><code>{path}</code></h2>
        {move || match data.get() {
            Load::Loading => loading(),
            Load::Failed(e) => failure(&e),
            Load::Ready(m) => detail(m).into_any(),
        }}
    }
}

fn detail(m: PageMap) -> impl IntoView {
    let clicks = if m.clicks == 0 {
        view! {
            <section class="card">
                <h2>"Click map"</h2>
                <p>"No clicks with a page size were recorded on this page in this range. Choose a longer range."</p>
            </section>
        }
        .into_any()
    } else {
        click_map(&m).into_any()
    };
    view! {
        <div class="maps">
            {clicks}
            {scroll_map(&m)}
        </div>
    }
}

fn click_map(m: &PageMap) -> impl IntoView + use<> {
    let h = heatmap::heatmap(m);
    let view_box = format!("0 0 {} {}", h.width, h.height);
    // The wireframe: the page's outline, a header band and faint content blocks, so the grid
    // reads as "top of the page" to "bottom" without showing the page itself.
    let header_h = (h.height * 0.06).min(48.0);
    let blocks = (1..6)
        .map(|i| {
            let y = h.height * f64::from(i) / 6.0;
            view! { <rect class="wire-block" x="16" y=y width={h.width - 32.0} height={h.height / 12.0} rx="4"></rect> }
        })
        .collect_view();
    let cells = h
        .cells
        .iter()
        .map(|c| {
            let class = format!("heat h{}", c.level);
            view! { <rect class=class x={c.x} y={c.y} width={c.w} height={c.h}><title>{c.label.clone()}</title></rect> }
        })
        .collect_view();
    let summary = format!(
        "Click map of {} clicks on a page about {} × {} px; the busiest area has {} clicks.",
        format::count(m.clicks),
        m.page_width,
        m.page_height,
        format::count(h.max)
    );
    let legend = (1..=heatmap::HEAT_LEVELS)
        .map(|l| view! { <span class={format!("swatch-box heat h{l}")} aria-hidden="true"></span> })
        .collect_view();
    view! {
        <section class="card click-map">
            <h2>"Click map"</h2>
            <p class="hint">{summary.clone()}</p>
            <svg class="wireframe" viewBox=view_box role="img" aria-label=summary>
                <rect class="wire-page" x="0" y="0" width={h.width} height={h.height}></rect>
                <rect class="wire-header" x="0" y="0" width={h.width} height=header_h></rect>
                {blocks}
                {cells}
            </svg>
            <p class="legend">"Fewer clicks "{legend}" more clicks"</p>
        </section>
    }
}

fn scroll_map(m: &PageMap) -> impl IntoView + use<> {
    if m.scroll_sessions == 0 {
        return view! {
            <section class="card">
                <h2>"Scroll depth"</h2>
                <p>"No scroll depths were recorded on this page in this range."</p>
            </section>
        }
        .into_any();
    }
    let bars = depth_bars(m)
        .into_iter()
        .map(|b| {
            let share = format::percent(b.share);
            let width = format!("width: {:.1}%", b.share * 100.0);
            view! {
                <tr class="depth">
                    <th scope="row">{format!("{} %", b.depth)}</th>
                    <td class="bar-cell"><span class="bar" style=width></span></td>
                    <td>{share}</td>
                    <td>{format::count(b.sessions)}</td>
                </tr>
            }
        })
        .collect_view();
    let caption = format!(
        "Share of the {} sessions that scrolled this page reaching each depth",
        format::count(m.scroll_sessions)
    );
    view! {
        <section class="card scroll-map">
            <h2>"Scroll depth"</h2>
            <table id="scroll-depth">
                <caption>{caption}</caption>
                <thead><tr><th scope="col">"Reached"</th><th scope="col">"Share"</th><th scope="col"><span class="visually-hidden">"Percent"</span></th><th scope="col">"Sessions"</th></tr></thead>
                <tbody>{bars}</tbody>
            </table>
        </section>
    }
    .into_any()
}
