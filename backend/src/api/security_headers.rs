//! Security headers on every response, added in one place after the handler ran (so a handler
//! that knows better, like the embedded panel's per-shop `frame-ancestors`, keeps its value).
//!
//! - `X-Content-Type-Options: nosniff` and `Referrer-Policy` everywhere.
//! - HTML gets a Content-Security-Policy: the handler's `frame-ancestors` (the Shopify admin may
//!   frame the embedded panel, see `shopify::frame_ancestors`) or `frame-ancestors 'none'`, plus
//!   `base-uri 'self'` and `object-src 'none'`. The panel page adds its `script-src`: its own
//!   assets, the sha256 of its inline boot script (computed when the build is loaded,
//!   `panel::assets`), `'wasm-unsafe-eval'` and App Bridge's origin inside Shopify admin.
//!   Styles are not restricted. `X-Frame-Options: DENY` only goes with `frame-ancestors
//!   'none'`, never on pages Shopify admin must frame.
//! - `Strict-Transport-Security` when the server's public or app URL is `https`.
//! - `Cross-Origin-Resource-Policy: same-origin` on non-HTML responses, except the routes that
//!   storefronts load from other origins by design: `/collect`, `/collect.gif`, the app-proxy
//!   collect routes and `/t.js`.

use poem::http::{HeaderMap, HeaderValue, header};
use poem::{Endpoint, IntoResponse, Request, Response};

use crate::settings::Settings;

pub const REFERRER_POLICY: &str = "strict-origin-when-cross-origin";
/// One year; without `includeSubDomains`, which is the operator's choice for their domain.
pub const HSTS: &str = "max-age=31536000";
/// Directives added to every HTML response's CSP (after its `frame-ancestors`).
const HTML_DIRECTIVES: [(&str, &str); 2] = [("base-uri", "base-uri 'self';"), ("object-src", "object-src 'none';")];

/// What the middleware adds, decided once from the settings.
#[derive(Clone, Copy, Debug)]
pub struct SecurityHeaders {
    hsts: bool,
}

impl SecurityHeaders {
    pub fn from_settings(settings: &Settings) -> Self {
        let https = |url: Option<&url::Url>| url.is_some_and(|u| u.scheme() == "https");
        SecurityHeaders { hsts: https(settings.public_url.as_ref()) || https(settings.app_url.as_ref()) }
    }

    /// Wraps an endpoint; errors become responses first so they get the headers too.
    pub async fn call<E: Endpoint>(self, ep: &E, req: Request) -> poem::Result<Response> {
        let path = req.uri().path().to_owned();
        let mut response = match ep.call(req).await {
            Ok(resp) => resp.into_response(),
            Err(err) => err.into_response(),
        };
        self.apply(&path, response.headers_mut());
        Ok(response)
    }

    /// Adds the headers a response to `path` should carry.
    pub fn apply(self, path: &str, headers: &mut HeaderMap) {
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        if !headers.contains_key(header::REFERRER_POLICY) {
            headers.insert(header::REFERRER_POLICY, HeaderValue::from_static(REFERRER_POLICY));
        }
        if self.hsts {
            headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
        }
        let html = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("text/html"));
        if html {
            let csp = html_csp(headers.get(header::CONTENT_SECURITY_POLICY).and_then(|v| v.to_str().ok()));
            if csp.contains("frame-ancestors 'none'") {
                headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            }
            if let Ok(value) = HeaderValue::from_str(&csp) {
                headers.insert(header::CONTENT_SECURITY_POLICY, value);
            }
        } else if !cross_origin_by_design(path) {
            headers.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
        }
    }
}

/// The CSP of an HTML response: the handler's policy (or `frame-ancestors 'none'`), completed
/// with the directives every page gets unless the handler chose its own value.
pub fn html_csp(existing: Option<&str>) -> String {
    let mut csp = existing.map(str::trim).filter(|c| !c.is_empty()).unwrap_or("frame-ancestors 'none';").to_owned();
    if !csp.ends_with(';') {
        csp.push(';');
    }
    for (name, directive) in HTML_DIRECTIVES {
        let present = csp.split(';').any(|d| d.split_whitespace().next() == Some(name));
        if !present {
            csp.push(' ');
            csp.push_str(directive);
        }
    }
    csp
}

/// Routes that browsers load from merchants' pages (other origins): no CORP there.
fn cross_origin_by_design(path: &str) -> bool {
    matches!(path, "/collect" | "/collect.gif" | "/t.js")
        || path.strip_prefix(super::APP_PROXY_PATH).is_some_and(|rest| rest == "/collect" || rest == "/collect.gif")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html_headers(csp: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        if let Some(csp) = csp {
            h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_str(csp).unwrap());
        }
        h
    }

    #[test]
    fn a_shop_framed_page_keeps_its_frame_ancestors_and_gets_no_x_frame_options() {
        let mut h = html_headers(Some("frame-ancestors https://a.myshopify.com https://admin.shopify.com;"));
        SecurityHeaders { hsts: false }.apply("/app", &mut h);
        assert_eq!(
            h[header::CONTENT_SECURITY_POLICY],
            "frame-ancestors https://a.myshopify.com https://admin.shopify.com; base-uri 'self'; object-src 'none';"
        );
        assert!(!h.contains_key(header::X_FRAME_OPTIONS));
        assert!(!h.contains_key("cross-origin-resource-policy"));
    }

    #[test]
    fn html_without_a_policy_is_never_framed() {
        let mut h = html_headers(None);
        SecurityHeaders { hsts: false }.apply("/demo", &mut h);
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], "frame-ancestors 'none'; base-uri 'self'; object-src 'none';");
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
    }

    #[test]
    fn a_handler_directive_is_not_duplicated() {
        assert_eq!(html_csp(Some("object-src 'self'")), "object-src 'self'; base-uri 'self';");
    }

    #[test]
    fn every_response_gets_nosniff_and_a_referrer_policy_and_hsts_only_over_https() {
        let mut h = HeaderMap::new();
        SecurityHeaders { hsts: false }.apply("/health", &mut h);
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(h[header::REFERRER_POLICY], REFERRER_POLICY);
        assert!(!h.contains_key(header::STRICT_TRANSPORT_SECURITY));

        let mut settings = Settings::default();
        assert!(!SecurityHeaders::from_settings(&settings).hsts);
        settings.public_url = Some("http://stats.example".parse().unwrap());
        assert!(!SecurityHeaders::from_settings(&settings).hsts);
        settings.app_url = Some("https://app.example".parse().unwrap());
        let mut h = HeaderMap::new();
        SecurityHeaders::from_settings(&settings).apply("/health", &mut h);
        assert_eq!(h[header::STRICT_TRANSPORT_SECURITY], HSTS);
    }

    #[test]
    fn corp_is_same_origin_except_on_the_cross_origin_collect_routes() {
        for path in ["/collect", "/collect.gif", "/t.js", "/proxy/collect", "/proxy/collect.gif"] {
            let mut h = HeaderMap::new();
            SecurityHeaders { hsts: false }.apply(path, &mut h);
            assert!(!h.contains_key("cross-origin-resource-policy"), "{path}");
        }
        for path in ["/api/v1/stats", "/app/assets/panel.js", "/metrics", "/proxy/other"] {
            let mut h = HeaderMap::new();
            SecurityHeaders { hsts: false }.apply(path, &mut h);
            assert_eq!(h["cross-origin-resource-policy"], "same-origin", "{path}");
        }
    }
}
