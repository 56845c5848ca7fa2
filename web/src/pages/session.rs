//! One session: summary, the pointer replay on a canvas, the signals with their evidence and
//! explainer, and the event timeline.

use ghosttrack_wire::{SessionDetail, SignalItem};
use leptos::html::Canvas;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use super::{Load, decision_badge, failure, fetch_into, loading};
use crate::logic::format;
use crate::logic::replay::Replay;

/// Canvas size in CSS pixels; the page is scaled into it.
const CANVAS_W: f64 = 640.0;
const CANVAS_H: f64 = 400.0;
/// Replay clock period (the clock advances by the real time elapsed, so this only sets smoothness).
const TICK_MS: u64 = 33;

#[component]
pub fn SessionPage(id: i64) -> impl IntoView {
    let data = fetch_into::<SessionDetail>(move || format!("/api/panel/sessions/{id}"));
    move || match data.get() {
        Load::Loading => loading(),
        Load::Failed(e) => failure(&e),
        Load::Ready(d) => detail(d).into_any(),
    }
}

fn detail(d: SessionDetail) -> impl IntoView {
    let s = &d.session;
    let facts = [
        ("Started (UTC)", format::datetime(s.started_at)),
        ("Duration", format::duration(s.last_seen_at - s.started_at)),
        ("Pages", s.pageviews.to_string()),
        ("Entry page", s.entry_path.clone()),
        ("Country", s.country.clone().unwrap_or_else(|| "unknown".into())),
        ("Device", format!("{} · {} · {}", s.device, s.browser, s.os)),
        ("Automated", if s.automated { "yes".into() } else { "no".into() }),
    ]
    .into_iter()
    .map(|(k, v)| view! { <div><dt>{k}</dt><dd>{v}</dd></div> })
    .collect_view();
    let verdict = s.decision.as_deref().map(|dec| {
        let score = s.score.unwrap_or(0);
        view! { <p>"Verdict: "{decision_badge(dec)}" score "{score}</p> }
    });
    let signals = signals_view(d.signals.clone());
    let privacy = format!("/app/privacy?session={}", s.id);
    let timeline = d
        .timeline
        .iter()
        .map(|e| {
            view! { <li><time>{format::datetime(e.ts)}</time>" "<code>{e.kind.clone()}</code>" "{e.path.clone()}" "{e.detail.clone()}</li> }
        })
        .collect_view();
    view! {
        <section class="card">
            <h2>"Summary"</h2>
            {verdict}
            <dl class="facts">{facts}</dl>
            <p><a href=privacy id="visitor-privacy">"Export or delete this visitor's data"</a></p>
        </section>
        <ReplayPanel detail=d.clone()/>
        <section class="card">
            <h2>"Signals"</h2>
            {signals}
        </section>
        <section class="card">
            <h2>"Timeline"</h2>
            <ol class="timeline">{timeline}</ol>
        </section>
    }
}

fn signals_view(signals: Vec<SignalItem>) -> AnyView {
    if signals.is_empty() {
        return view! { <p>"No rule fired for this session."</p> }.into_any();
    }
    signals
        .into_iter()
        .map(|sig| {
            let evidence = sig
                .evidence
                .iter()
                .map(|e| {
                    view! {
                        <tr><td>{e.behavior.clone()}</td><td>{e.key.clone()}</td>
                        <td>{format!("{} / {} in {} s", e.count, e.threshold, e.window_secs)}</td>
                        <td>{e.sample.clone()}</td></tr>
                    }
                })
                .collect_view();
            let shadow = sig.shadow.then_some(view! { <span class="badge">"shadow"</span> });
            view! {
                <article class="signal">
                    <h3><code>{sig.rule.clone()}</code>" "{shadow}</h3>
                    <p>{sig.sentence.clone()}</p>
                    <table class="evidence">
                        <thead><tr><th scope="col">"Behaviour"</th><th scope="col">"Key"</th><th scope="col">"Count"</th><th scope="col">"Sample"</th></tr></thead>
                        <tbody>{evidence}</tbody>
                    </table>
                    <details><summary>"What this rule means"</summary><pre class="explainer">{sig.explainer.clone()}</pre></details>
                </article>
            }
        })
        .collect_view()
        .into_any()
}

#[component]
fn ReplayPanel(detail: SessionDetail) -> impl IntoView {
    let replay = RwSignal::new(Replay::new(detail.pointer.clone(), detail.clicks.clone()));
    if replay.with_untracked(Replay::is_empty) {
        return view! {
            <section class="card">
                <h2>"Replay"</h2>
                <p>"No pointer movement was recorded for this session (touch device, privacy mode, or no interaction)."</p>
            </section>
        }
        .into_any();
    }
    let page_w = f64::from(detail.page_width.unwrap_or(0))
        .max(detail.pointer.iter().map(|p| f64::from(p.x)).fold(1.0, f64::max));
    let page_h = f64::from(detail.page_height.unwrap_or(0))
        .max(detail.pointer.iter().map(|p| f64::from(p.y)).fold(1.0, f64::max));
    let scale = (CANVAS_W / page_w).min(CANVAS_H / page_h).min(1.0);
    let canvas = NodeRef::<Canvas>::new();
    let draw = move || {
        let Some(el) = canvas.get_untracked() else { return };
        let Some(ctx) =
            el.get_context("2d").ok().flatten().and_then(|c| c.dyn_into::<web_sys::CanvasRenderingContext2d>().ok())
        else {
            return;
        };
        replay.with_untracked(|r| {
            let f = r.frame();
            ctx.set_fill_style_str("#f6f6f7");
            ctx.fill_rect(0.0, 0.0, CANVAS_W, CANVAS_H);
            ctx.set_stroke_style_str("#005bd3");
            ctx.set_line_width(2.0);
            ctx.begin_path();
            for (i, p) in f.path.iter().enumerate() {
                let (x, y) = (f64::from(p.x) * scale, f64::from(p.y) * scale);
                if i == 0 { ctx.move_to(x, y) } else { ctx.line_to(x, y) }
            }
            ctx.stroke();
            ctx.set_fill_style_str("#c70a24");
            for c in f.clicks {
                ctx.begin_path();
                let _ = ctx.arc(f64::from(c.x) * scale, f64::from(c.y) * scale, 6.0, 0.0, std::f64::consts::TAU);
                ctx.fill();
            }
            if let Some((x, y)) = f.cursor {
                ctx.set_fill_style_str("#303030");
                ctx.fill_rect(f64::from(x) * scale - 3.0, f64::from(y) * scale - 3.0, 6.0, 6.0);
            }
        });
    };
    let last = StoredValue::new(now());
    let handle = set_interval_with_handle(
        move || {
            let t = now();
            let elapsed = (t - last.get_value()) as i64;
            last.set_value(t);
            if replay.with_untracked(Replay::playing) {
                replay.update(|r| r.tick(elapsed));
                draw();
            }
        },
        std::time::Duration::from_millis(TICK_MS),
    )
    .ok();
    on_cleanup(move || {
        if let Some(h) = handle {
            h.clear();
        }
    });
    Effect::new(move |_| draw());
    let toggle = move |_| {
        replay.update(Replay::toggle);
        draw();
    };
    let label = move || if replay.with(Replay::playing) { "Pause" } else { "Play" };
    let position =
        move || replay.with(|r| format!("{} / {}", format::duration(r.position()), format::duration(r.duration())));
    view! {
        <section class="card">
            <h2>"Replay"</h2>
            <p class="hint">"The pointer path (blue) and clicks (red) at real speed; pauses over 2 s are shortened."</p>
            <canvas node_ref=canvas width=CANVAS_W height=CANVAS_H class="replay" role="img"
                aria-label="Replay of the visitor's pointer path and clicks"></canvas>
            <div class="replay-controls">
                <button type="button" class="button" id="replay-toggle" on:click=toggle>{label}</button>
                <span role="timer" aria-live="off">{position}</span>
            </div>
        </section>
    }
    .into_any()
}

fn now() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map(|p| p.now()).unwrap_or(0.0)
}
