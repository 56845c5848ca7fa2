//! All HTTP of the panel. Inside Shopify admin every call carries
//! `Authorization: Bearer <await shopify.idToken()>`; a 401 with
//! `X-Shopify-Retry-Invalid-Session-Request: 1` is retried once with a fresh token. Standalone,
//! the session cookie authenticates and unsafe requests carry `X-CSRF-Token`.

use std::cell::RefCell;

use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, Request, RequestCredentials, RequestInit, Response};

/// Header asking the client to retry once with a fresh session token.
pub const RETRY_HEADER: &str = "X-Shopify-Retry-Invalid-Session-Request";

/// Why a call failed, for the page to show.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiFailure {
    /// HTTP status, or 0 when the request never got an answer.
    pub status: u16,
    pub message: String,
    /// `Retry-After` seconds, when the server sent it (429).
    pub retry_after: Option<u32>,
}

impl ApiFailure {
    fn network(e: JsValue) -> ApiFailure {
        let message = e.as_string().or_else(|| js_sys::JSON::stringify(&e).ok().and_then(|s| s.as_string()));
        ApiFailure {
            status: 0,
            message: format!("GhostTrack could not be reached ({})", message.unwrap_or_default()),
            retry_after: None,
        }
    }
}

thread_local! {
    /// The CSRF token of the standalone session (from login or `/api/account/me`).
    static CSRF: RefCell<Option<String>> = const { RefCell::new(None) };
}

pub fn set_csrf(token: Option<String>) {
    CSRF.with(|c| *c.borrow_mut() = token);
}

fn shopify() -> Option<JsValue> {
    let window = web_sys::window()?;
    let value = js_sys::Reflect::get(&window, &"shopify".into()).ok()?;
    (!value.is_undefined() && !value.is_null()).then_some(value)
}

/// Whether the panel runs inside Shopify admin (App Bridge loaded).
pub fn embedded() -> bool {
    shopify().is_some()
}

/// A fresh App Bridge session token.
async fn id_token() -> Result<String, ApiFailure> {
    let unavailable =
        |_| ApiFailure { status: 0, message: "App Bridge did not provide a session token".into(), retry_after: None };
    let shopify =
        shopify().ok_or(ApiFailure { status: 0, message: "App Bridge is not loaded".into(), retry_after: None })?;
    let f: js_sys::Function = js_sys::Reflect::get(&shopify, &"idToken".into())
        .map_err(unavailable)?
        .dyn_into()
        .map_err(|v: JsValue| unavailable(v))?;
    let promise: js_sys::Promise =
        f.call0(&shopify).map_err(unavailable)?.dyn_into().map_err(|v: JsValue| unavailable(v))?;
    JsFuture::from(promise).await.map_err(unavailable)?.as_string().ok_or_else(|| unavailable(JsValue::NULL))
}

/// Shows a toast: App Bridge's inside Shopify admin, else the console (the standalone page
/// shows errors inline).
pub fn toast(message: &str) {
    if let Some(shopify) = shopify()
        && let Ok(toast) = js_sys::Reflect::get(&shopify, &"toast".into())
        && let Ok(show) = js_sys::Reflect::get(&toast, &"show".into())
        && let Ok(show) = show.dyn_into::<js_sys::Function>()
    {
        let _ = show.call1(&toast, &message.into());
    }
}

async fn send(
    method: &str,
    path: &str,
    body: Option<&str>,
    signal: Option<&web_sys::AbortSignal>,
) -> Result<Response, ApiFailure> {
    let embedded = embedded();
    let mut retried = false;
    loop {
        let headers = Headers::new().map_err(ApiFailure::network)?;
        headers.set("accept", "application/json").map_err(ApiFailure::network)?;
        if embedded {
            headers.set("authorization", &format!("Bearer {}", id_token().await?)).map_err(ApiFailure::network)?;
        } else if method != "GET"
            && let Some(token) = CSRF.with(|c| c.borrow().clone())
        {
            headers.set("x-csrf-token", &token).map_err(ApiFailure::network)?;
        }
        let init = RequestInit::new();
        init.set_method(method);
        init.set_credentials(RequestCredentials::SameOrigin);
        if let Some(body) = body {
            headers.set("content-type", "application/json").map_err(ApiFailure::network)?;
            init.set_body(&JsValue::from_str(body));
        }
        init.set_headers(&headers);
        if let Some(signal) = signal {
            init.set_signal(Some(signal));
        }
        let request = Request::new_with_str_and_init(path, &init).map_err(ApiFailure::network)?;
        let window = web_sys::window().ok_or_else(|| ApiFailure::network(JsValue::NULL))?;
        let response: Response = JsFuture::from(window.fetch_with_request(&request))
            .await
            .map_err(ApiFailure::network)?
            .dyn_into()
            .map_err(ApiFailure::network)?;
        let retry = response.headers().get(RETRY_HEADER).ok().flatten().is_some_and(|v| v == "1");
        if response.status() == 401 && embedded && retry && !retried {
            retried = true;
            continue;
        }
        return Ok(response);
    }
}

async fn read<T: DeserializeOwned>(response: Response) -> Result<T, ApiFailure> {
    let status = response.status();
    let text = match response.text() {
        Ok(p) => JsFuture::from(p).await.ok().and_then(|t| t.as_string()).unwrap_or_default(),
        Err(_) => String::new(),
    };
    if (200..300).contains(&status) {
        return serde_json::from_str(&text).map_err(|e| ApiFailure {
            status,
            message: format!("unexpected answer from GhostTrack: {e}"),
            retry_after: None,
        });
    }
    let message = serde_json::from_str::<ghosttrack_wire::PanelError>(&text)
        .map(|e| e.message)
        .unwrap_or_else(|_| format!("GhostTrack answered {status}"));
    let retry_after = response.headers().get("retry-after").ok().flatten().and_then(|v| v.parse().ok());
    Err(ApiFailure { status, message, retry_after })
}

pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, ApiFailure> {
    read(send("GET", path, None, None).await?).await
}

pub async fn post<B: Serialize, T: DeserializeOwned>(path: &str, body: &B) -> Result<T, ApiFailure> {
    let body = serde_json::to_string(body).unwrap_or_default();
    read(send("POST", path, Some(&body), None).await?).await
}

pub async fn put<B: Serialize, T: DeserializeOwned>(path: &str, body: &B) -> Result<T, ApiFailure> {
    let body = serde_json::to_string(body).unwrap_or_default();
    read(send("PUT", path, Some(&body), None).await?).await
}

/// A POST without a body.
pub async fn post_empty<T: DeserializeOwned>(path: &str) -> Result<T, ApiFailure> {
    read(send("POST", path, None, None).await?).await
}

/// A DELETE whose success has no body (204).
pub async fn delete(path: &str) -> Result<(), ApiFailure> {
    let response = send("DELETE", path, None, None).await?;
    if (200..300).contains(&response.status()) {
        return Ok(());
    }
    read::<serde_json::Value>(response).await.map(|_| ())
}

/// A DELETE answered with a body.
pub async fn delete_json<T: DeserializeOwned>(path: &str) -> Result<T, ApiFailure> {
    read(send("DELETE", path, None, None).await?).await
}

/// Opens `url` in the top window (out of the Shopify admin iframe): App Bridge and browsers
/// both honour `window.open(url, "_top")` from a click.
pub fn open_top(url: &str) {
    if let Some(window) = web_sys::window() {
        let _ = window.open_with_url_and_target(url, "_top");
    }
}

/// Resolves after `ms` milliseconds (`setTimeout`).
pub async fn sleep_ms(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// Reads a `text/event-stream` response with fetch (EventSource cannot send the bearer
/// token) and calls `on_data` with each event's `data`, until the stream ends or `signal` aborts.
pub async fn stream(
    path: &str,
    signal: &web_sys::AbortSignal,
    mut on_data: impl FnMut(&str),
) -> Result<(), ApiFailure> {
    let response = send("GET", path, None, Some(signal)).await?;
    if !(200..300).contains(&response.status()) {
        return read::<serde_json::Value>(response).await.map(|_| ());
    }
    let body = response.body().ok_or_else(|| ApiFailure::network("no body".into()))?;
    let reader: web_sys::ReadableStreamDefaultReader =
        body.get_reader().dyn_into().map_err(|e: js_sys::Object| ApiFailure::network(e.into()))?;
    let mut buffer = crate::sse::Buffer::default();
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(ApiFailure::network)?;
        let done = js_sys::Reflect::get(&chunk, &"done".into()).ok().and_then(|d| d.as_bool()).unwrap_or(true);
        if done {
            return Ok(());
        }
        let value = js_sys::Reflect::get(&chunk, &"value".into()).map_err(ApiFailure::network)?;
        let bytes = js_sys::Uint8Array::new(&value).to_vec();
        for data in buffer.push(&bytes) {
            on_data(&data);
        }
    }
}

/// Any method with an optional JSON body (`PUT`, `DELETE`, …); unsafe methods carry the CSRF
/// token standalone like [`post`].
pub async fn request<B: Serialize, T: DeserializeOwned>(
    method: &str,
    path: &str,
    body: Option<&B>,
) -> Result<T, ApiFailure> {
    let body = body.map(|b| serde_json::to_string(b).unwrap_or_default());
    read(send(method, path, body.as_deref(), None).await?).await
}
