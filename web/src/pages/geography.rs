//! Geography: visitors and threats by country on a world map drawn from the bundled shapes
//! (no tiles, no network), shaded by the chosen metric, with a legend and the same numbers as
//! an accessible table.

use ghosttrack_wire::{CountryStats, Geography};
use leptos::prelude::*;

use super::{Load, failure, fetch_into, loading};
use crate::logic::format;
use crate::logic::world::{self, Metric, WorldMap};

const RANGES: [(&str, &str); 3] = [("24h", "Last 24 hours"), ("7d", "Last 7 days"), ("30d", "Last 30 days")];

#[component]
pub fn GeographyPage() -> impl IntoView {
    let range = RwSignal::new("24h".to_owned());
    let metric = RwSignal::new(Metric::Visitors);
    let data = fetch_into::<Geography>(move || format!("/api/panel/geography?range={}", range.get()));
    let map = StoredValue::new(WorldMap::bundled());
    let ranges = RANGES
        .iter()
        .map(|&(value, label)| {
            let pressed = move || (range.get() == value).to_string();
            view! { <button type="button" aria-pressed=pressed on:click=move |_| range.set(value.to_owned())>{label}</button> }
        })
        .collect_view();
    let metrics = [(Metric::Visitors, "Visitors"), (Metric::Threats, "Threats")]
        .into_iter()
        .map(|(m, label)| {
            let pressed = move || (metric.get() == m).to_string();
            view! { <button type="button" aria-pressed=pressed on:click=move |_| metric.set(m)>{label}</button> }
        })
        .collect_view();
    view! {
        <div class="toolbar">
            <div class="segmented" role="group" aria-label="Time range">{ranges}</div>
            <div class="segmented" role="group" aria-label="Shade countries by">{metrics}</div>
        </div>
        {move || match data.get() {
            Load::Loading => loading(),
            Load::Failed(e) => failure(&e),
            Load::Ready(g) => map.with_value(|m| body(m, g.countries, metric.get())).into_any(),
        }}
    }
}

fn body(map: &WorldMap, countries: Vec<CountryStats>, metric: Metric) -> AnyView {
    if countries.is_empty() {
        return view! {
            <section class="empty card">
                <h2>"No visitors in this range"</h2>
                <p>"Once the tracker reports traffic, each visitor's country appears here. Check that the tracker is on, or choose a longer range."</p>
                <a class="button primary" href="/app/setup">"Open setup"</a>
            </section>
        }
        .into_any();
    }
    let placed = countries.iter().any(|c| c.country.is_some());
    let no_geo = (!placed).then(|| {
        view! {
            <div class="banner warning" role="status"><p>
                "None of these visitors could be placed in a country. The server needs a GeoIP database: set "
                <code>"geoip_city"</code>" in its configuration (see the README), then new sessions get a country."
            </p></div>
        }
    });
    view! {
        {no_geo}
        {map_view(map, &countries, metric)}
        {table(map, &countries)}
    }
    .into_any()
}

fn map_view(map: &WorldMap, countries: &[CountryStats], metric: Metric) -> impl IntoView + use<> {
    let shading = world::choropleth(countries, metric);
    let what = match metric {
        Metric::Visitors => "visitors",
        Metric::Threats => "threats (challenged or blocked sessions)",
    };
    let view_box = format!("0 0 {} {}", map.width, map.height);
    let (mut shaded, mut plain) = (Vec::new(), Vec::new());
    for shape in &map.shapes {
        let stats = countries.iter().find(|c| c.country.as_deref() == Some(shape.code));
        match shading.levels.get(shape.code) {
            Some((level, _)) => {
                let title = world::title(shape.name, stats);
                let label = title.clone();
                let class = format!("country {} l{level}", metric_class(metric));
                shaded.push(view! {
                    <path d={shape.d} class=class tabindex="0" role="img" aria-label=label data-country={shape.code}>
                        <title>{title}</title>
                    </path>
                });
            }
            None => plain.push(view! {
                <path d={shape.d} class="country l0"><title>{world::title(shape.name, stats)}</title></path>
            }),
        }
    }
    let legend = shading
        .legend
        .iter()
        .map(|&(level, lo, hi)| {
            let class = format!("swatch-box {} l{level}", metric_class(metric));
            let range =
                if lo == hi { format::count(lo) } else { format!("{}–{}", format::count(lo), format::count(hi)) };
            view! { <li><span class=class aria-hidden="true"></span>{range}</li> }
        })
        .collect_view();
    let label = format!("World map of {what} by country; the table below lists the same numbers.");
    view! {
        <section class="card">
            <h2>{format!("Where your {what} come from")}</h2>
            <svg class="world" viewBox=view_box role="group" aria-label=label>
                <g aria-hidden="true">{plain}</g>
                <g>{shaded}</g>
            </svg>
            <ul class="map-legend" aria-label="Legend">
                <li><span class="swatch-box l0" aria-hidden="true"></span>"none"</li>
                {legend}
            </ul>
        </section>
    }
}

fn metric_class(metric: Metric) -> &'static str {
    match metric {
        Metric::Visitors => "visitors",
        Metric::Threats => "threats",
    }
}

fn table(map: &WorldMap, countries: &[CountryStats]) -> impl IntoView + use<> {
    let rows = countries
        .iter()
        .map(|c| {
            let name = match c.country.as_deref() {
                Some(code) => format!("{} ({code})", map.name_of(code)),
                None => "Unknown".to_owned(),
            };
            let sessions_link = c.country.as_ref().map(|code| {
                let href = format!("/app/sessions?country={code}&range=30d");
                let label = format!("Sessions from {} in the last 30 days", map.name_of(code));
                view! { <a href=href aria-label=label>"Sessions"</a> }
            });
            view! {
                <tr class="country-row">
                    <th scope="row">{name}</th>
                    <td>{format::count(c.visitors)}</td>
                    <td>{format::count(c.sessions)}</td>
                    <td>{format::count(c.threats)}</td>
                    <td>{sessions_link}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="card table-wrap">
            <table id="countries">
                <caption>"Visitors and threats by country"</caption>
                <thead><tr>
                    <th scope="col">"Country"</th><th scope="col">"Visitors"</th><th scope="col">"Sessions"</th>
                    <th scope="col">"Threats"</th><th scope="col"><span class="visually-hidden">"Links"</span></th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </section>
    }
}
