//! The Shopify admin around an embedded app, as a browser sees it: `/store/{handle}/apps/{app}`
//! frames `application_url?embedded=1&host&id_token&…&hmac` (the URL `embedded_load_url`
//! builds), and `/app-bridge.js` stands in for App Bridge inside the frame: `shopify.idToken()`
//! asks the parent admin for a fresh HS256 id token (minted with the app secret),
//! `shopify.toast.show`, `<ui-nav-menu>` and `<ui-title-bar>` are mirrored into the admin page
//! through `postMessage`, and a click on an admin nav entry moves the frame's History state and
//! fires `popstate`, as App Bridge does. `window.open(url, "_top")` from the app navigates the
//! admin's top window (App Bridge's way out of the iframe, e.g. to a billing confirmation page). The bounce page (`shopify-reload`) reloads with a token.
//!
//! The real admin knows the app's `application_url` from its configuration; here the page takes
//! it as the `application_url` query parameter.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::{Data, Path, Query};
use poem::{Response, handler};
use serde::Deserialize;

use super::{FakeShopify, Inner};

#[derive(Deserialize)]
pub(crate) struct AdminQuery {
    application_url: String,
}

fn shop_of(handle: &str) -> Option<String> {
    let ok = !handle.is_empty() && handle.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    ok.then(|| format!("{handle}.myshopify.com"))
}

fn fake(inner: &Arc<Inner>) -> FakeShopify {
    FakeShopify { inner: inner.clone(), base_url: String::new(), http: reqwest::Client::new() }
}

fn js_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()).replace("</", "<\\/")
}

/// `GET /store/{handle}/apps/{app}?application_url=…`: the admin page framing the app.
#[handler]
pub(crate) fn admin_page(
    Path((handle, _app)): Path<(String, String)>,
    Query(q): Query<AdminQuery>,
    Data(inner): Data<&Arc<Inner>>,
) -> Response {
    let Some(shop) = shop_of(&handle) else {
        return Response::builder().status(StatusCode::NOT_FOUND).body("no such store");
    };
    let src = fake(inner).embedded_load_url(&q.application_url, &shop);
    let page = ADMIN_PAGE.replace("{{SRC}}", &js_string(&src)).replace("{{HANDLE}}", &js_string(&handle));
    Response::builder().content_type("text/html; charset=utf-8").body(page)
}

/// `POST /store/{handle}/id-token`: a fresh id token for the signed-in admin user (user 1).
#[handler]
pub(crate) fn id_token(Path(handle): Path<String>, Data(inner): Data<&Arc<Inner>>) -> Response {
    match shop_of(&handle) {
        Some(shop) => Response::builder().content_type("text/plain").body(fake(inner).mint_id_token(&shop, 1)),
        None => Response::builder().status(StatusCode::NOT_FOUND).body("no such store"),
    }
}

/// `GET /app-bridge.js`: the App Bridge stand-in loaded first in the app's `<head>`.
#[handler]
pub(crate) fn app_bridge_js() -> Response {
    Response::builder().content_type("text/javascript; charset=utf-8").body(APP_BRIDGE_JS)
}

const ADMIN_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shopify admin (fake)</title><link rel="icon" href="data:,">
<style>
body{margin:0;font-family:sans-serif;display:grid;grid-template-columns:200px 1fr;grid-template-rows:48px 1fr;height:100vh}
header{grid-column:1/3;background:#1a1a1a;color:#fff;display:flex;align-items:center;padding:0 16px;gap:16px}
#admin-nav{background:#ebebeb;padding:8px}#admin-nav a{display:block;padding:6px 8px;color:#303030}
iframe{border:0;width:100%;height:100%}#admin-toasts{position:fixed;bottom:16px;left:50%;transform:translateX(-50%)}
.toast{background:#1a1a1a;color:#fff;padding:8px 16px;border-radius:8px;margin-top:8px}
@media (max-width:720px){body{grid-template-columns:1fr;grid-template-rows:48px auto 1fr}header{grid-column:1}
#admin-nav{display:flex;flex-wrap:wrap;gap:4px}}
</style></head>
<body>
<header><strong>Shopify</strong><span id="admin-title"></span></header>
<nav id="admin-nav" aria-label="App navigation"></nav>
<main><iframe id="app-frame" title="App"></iframe></main>
<div id="admin-toasts" role="status"></div>
<script>
const handle = {{HANDLE}};
const frame = document.getElementById('app-frame');
frame.src = {{SRC}};
const reply = (msg) => frame.contentWindow.postMessage(msg, '*');
window.addEventListener('message', async (event) => {
  if (event.source !== frame.contentWindow) return;
  const m = event.data || {};
  if (m.type === 'idToken') {
    const token = await fetch('/store/' + handle + '/id-token', { method: 'POST' }).then((r) => r.text());
    reply({ type: 'idToken', id: m.id, token });
  } else if (m.type === 'nav') {
    const nav = document.getElementById('admin-nav');
    nav.replaceChildren(...m.items.map((item) => {
      const a = document.createElement('a');
      a.href = '#';
      a.textContent = item.label;
      a.dataset.href = item.href;
      a.addEventListener('click', (e) => { e.preventDefault(); reply({ type: 'navigate', href: item.href }); });
      return a;
    }));
  } else if (m.type === 'redirect') {
    window.location.assign(m.url);
  } else if (m.type === 'title') {
    document.getElementById('admin-title').textContent = m.title;
  } else if (m.type === 'toast') {
    const t = document.createElement('div');
    t.className = 'toast';
    t.textContent = m.message;
    document.getElementById('admin-toasts').append(t);
    setTimeout(() => t.remove(), 5000);
  }
});
</script>
</body></html>
"#;

const APP_BRIDGE_JS: &str = r#"(function () {
  'use strict';
  var style = document.createElement('style');
  style.textContent = 'ui-nav-menu, ui-title-bar { display: none !important; }';
  document.head.appendChild(style);
  var pending = {};
  var seq = 0;
  var meta = document.querySelector('meta[name="shopify-api-key"]');
  var params = new URLSearchParams(location.search);
  function post(msg) { if (window.parent !== window) window.parent.postMessage(msg, '*'); }
  window.shopify = {
    config: { apiKey: meta ? meta.content : '', shop: params.get('shop'), host: params.get('host') },
    idToken: function () {
      return new Promise(function (resolve, reject) {
        var id = ++seq;
        pending[id] = resolve;
        post({ type: 'idToken', id: id });
        setTimeout(function () { if (pending[id]) { delete pending[id]; reject(new Error('App Bridge: no id token')); } }, 5000);
      });
    },
    toast: { show: function (message) { post({ type: 'toast', message: String(message) }); } },
  };
  var nativeOpen = window.open;
  window.open = function (url, target) {
    if ((target === '_top' || target === '_parent') && window.parent !== window) {
      post({ type: 'redirect', url: new URL(url, location.href).toString() });
      return null;
    }
    return nativeOpen.apply(window, arguments);
  };
  window.addEventListener('message', function (event) {
    if (event.source !== window.parent) return;
    var m = event.data || {};
    if (m.type === 'idToken' && pending[m.id]) { pending[m.id](m.token); delete pending[m.id]; }
    if (m.type === 'navigate') { history.pushState(null, '', m.href); window.dispatchEvent(new PopStateEvent('popstate')); }
  });
  var lastNav = '', lastTitle = '';
  function sync() {
    var menu = document.querySelector('ui-nav-menu');
    if (menu) {
      var items = Array.prototype.map.call(menu.querySelectorAll('a'), function (a) {
        return { href: a.getAttribute('href'), label: a.textContent, home: a.getAttribute('rel') === 'home' };
      });
      var nav = JSON.stringify(items);
      if (nav !== lastNav) { lastNav = nav; post({ type: 'nav', items: items }); }
    }
    var bar = document.querySelector('ui-title-bar');
    var title = bar ? bar.getAttribute('title') || '' : '';
    if (bar && title !== lastTitle) { lastTitle = title; post({ type: 'title', title: title }); }
  }
  new MutationObserver(sync).observe(document.documentElement, { subtree: true, childList: true, attributes: true, characterData: true });
  document.addEventListener('DOMContentLoaded', sync);
  var reload = params.get('shopify-reload');
  if (reload) {
    window.shopify.idToken().then(function (token) {
      var url = new URL(reload);
      url.searchParams.set('id_token', token);
      location.replace(url.toString());
    });
  }
})();
"#;
