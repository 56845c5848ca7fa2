//! The GhostTrack admin panel: a Leptos client-side app, embedded in Shopify admin through App
//! Bridge or served standalone behind a login. Page logic lives in plain structs
//! (`logic`, `route`, `sse`) tested natively; components only render; `api` does all HTTP.

pub mod api;
pub mod app;
pub mod logic;
pub mod pages;
pub mod route;
pub mod sse;

/// Entry point called by the wasm-bindgen glue once the module is instantiated.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
