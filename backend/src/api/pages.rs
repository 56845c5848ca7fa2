//! Small HTML pages and the tracker script.

use std::sync::Arc;

use poem::http::{StatusCode, header};
use poem::web::{Data, Html};
use poem::{Request, Response, handler};

use crate::startup::AppState;
use crate::tracker::{TRACKER_ETAG, TRACKER_JS, snippet};

#[handler]
pub fn tracker(req: &Request) -> Response {
    let etag = TRACKER_ETAG.as_str();
    if req.headers().get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag) {
        return Response::builder().status(StatusCode::NOT_MODIFIED).header(header::ETAG, etag).finish();
    }
    Response::builder()
        .content_type("application/javascript; charset=utf-8")
        .header(header::CACHE_CONTROL, "public, max-age=3600")
        .header(header::ETAG, etag)
        .body(TRACKER_JS)
}

#[handler]
pub fn index(Data(state): Data<&Arc<AppState>>) -> Html<String> {
    let demo_link = if state.demo_site.is_some() {
        r#"<li><a href="/demo">Demo page</a>: a page tracked by the demo site; open it, move around, then query the stats API.</li>"#
    } else {
        ""
    };
    Html(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>GhostTrack</title>
<meta name="viewport" content="width=device-width,initial-scale=1"></head>
<body style="font-family:system-ui,sans-serif;max-width:44rem;margin:3rem auto;padding:0 1rem;line-height:1.5">
<h1>GhostTrack is running</h1>
<ul>{demo_link}
<li><a href="/api/docs">API documentation</a> (<a href="/api/openapi.json">OpenAPI document</a>)</li>
<li><a href="/metrics">Metrics</a> · <a href="/health">Health</a></li>
</ul>
<p>Add a site with <code>ghosttrack site add --domain example.com</code> and paste the snippet it prints into your pages.</p>
</body></html>"#
    ))
}

/// A page tracked by the demo site, so a newcomer sees events arrive from a real browser.
#[handler]
pub fn demo(Data(state): Data<&Arc<AppState>>) -> Response {
    let Some(key) = &state.demo_site else {
        return Response::builder().status(StatusCode::NOT_FOUND).body("no demo site (demo_site = false)");
    };
    let tag = snippet(&state.settings.public_url(), key);
    let body = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>GhostTrack demo page</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
{tag}
</head>
<body style="font-family:system-ui,sans-serif;max-width:44rem;margin:3rem auto;padding:0 1rem;line-height:1.5">
<h1>GhostTrack demo page</h1>
<p>This page is tracked by the demo site <code>{key}</code>. Move the mouse, scroll and click; events are sent every few
seconds and when you leave the page.</p>
<p><button id="demo-button" class="btn primary">A button to click</button></p>
<div style="height:200vh;background:linear-gradient(#fafafa,#e8eef5)"></div>
<p>The end of the page.</p>
</body></html>"#
    );
    Response::builder().content_type("text/html; charset=utf-8").body(body)
}
