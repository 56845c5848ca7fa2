//! Rule filters: whether an event is one a rule looks at, and what matched (for reasons).

use super::event::{Body, DetectEvent, EnvProbe};
use super::rules::{EnvFlag, Filter, RuleSet, is_static_path};

/// Whether `filter` accepts the event; `Some(detail)` names what matched (UA token, flags).
pub(super) fn matches(filter: &Filter, event: &DetectEvent, ua_bits: u64, set: &RuleSet) -> Option<String> {
    let body = &event.body;
    if filter.events_mask != 0 && filter.events_mask & body.event_type().bit() == 0 {
        return None;
    }
    let mut detail = String::new();
    if filter.ua_missing && event.user_agent.as_deref().is_some_and(|u| !u.trim().is_empty()) {
        return None;
    }
    if let Some(i) = filter.ua {
        if ua_bits & (1 << i) == 0 {
            return None;
        }
        if let Some(found) = event.user_agent.as_deref().and_then(|ua| set.ua_matchers[i].find(ua)) {
            detail = found;
        }
    }
    if filter.status_min.is_some() || filter.status_max.is_some() || filter.exclude_static {
        let Body::Request { status, path, .. } = body else {
            if filter.exclude_static && body.path().is_some_and(is_static_path) {
                return None;
            }
            if filter.status_min.is_some() || filter.status_max.is_some() {
                return None;
            }
            return Some(detail);
        };
        if filter.status_min.is_some_and(|m| *status < m) || filter.status_max.is_some_and(|m| *status > m) {
            return None;
        }
        // CrowdSec: 404/403/502 answers are never "static", whatever the extension.
        if filter.exclude_static && is_static_path(path) && !matches!(status, 403 | 404 | 502) {
            return None;
        }
    }
    if filter.net_mask != 0 {
        let hit = event.net_flags & filter.net_mask;
        if hit == 0 {
            return None;
        }
        detail = net_names(hit);
    }
    if !filter.env_flags.is_empty() {
        let Body::Environment(env) = body else { return None };
        let ua = event.user_agent.as_deref().unwrap_or("");
        let hits: Vec<&str> =
            filter.env_flags.iter().filter(|f| env_flag(**f, env, ua)).map(|f| env_name(*f)).collect();
        if hits.is_empty() {
            return None;
        }
        detail = hits.join(", ");
    }
    if let Some(want) = filter.payment_failure
        && body.is_payment_failure() != want
    {
        return None;
    }
    if let Some(want) = filter.payment_attempt
        && body.is_payment_attempt() != want
    {
        return None;
    }
    if !filter.error_codes.is_empty() {
        let Body::OrderTransaction(t) = body else { return None };
        let code = t.error_code.as_deref()?.to_ascii_lowercase();
        if !filter.error_codes.contains(&code) {
            return None;
        }
    }
    if filter.quantity_min.is_some() || filter.quantity_max.is_some() {
        let q = match body {
            Body::AddToCart { quantity, .. } | Body::CartChange { quantity, .. } => *quantity,
            _ => return None,
        };
        if filter.quantity_min.is_some_and(|m| q < m) || filter.quantity_max.is_some_and(|m| q > m) {
            return None;
        }
        if detail.is_empty() {
            detail = format!("quantity {q}");
        }
    }
    if let Some(max) = filter.amount_max_minor {
        let amount = match body {
            Body::OrderTransaction(t) => t.amount_minor,
            Body::OrderCreated { total_minor, .. } => *total_minor,
            _ => return None,
        };
        if amount > max {
            return None;
        }
    }
    if let Some(want) = filter.guest {
        let guest = match body {
            Body::OrderTransaction(t) => t.guest,
            Body::OrderCreated { guest, .. } => *guest,
            _ => return None,
        };
        if guest != want {
            return None;
        }
    }
    if let Some(want) = filter.product {
        let Body::Pageview { product, .. } = body else { return None };
        if product.is_some() != want {
            return None;
        }
    }
    if let Some(want) = filter.rejected {
        let Body::AddToCart { rejected, .. } = body else { return None };
        if *rejected != want {
            return None;
        }
    }
    Some(detail)
}

fn env_flag(flag: EnvFlag, env: &EnvProbe, ua: &str) -> bool {
    match flag {
        EnvFlag::Webdriver => env.webdriver,
        EnvFlag::HeadlessUa => env.headless_ua || ua.contains("HeadlessChrome"),
        EnvFlag::NoPluginsDesktopChrome => env.desktop_chrome && env.plugins == Some(0),
        EnvFlag::NoLanguages => env.languages == Some(0),
        EnvFlag::PermissionInconsistent => env.permission_inconsistent,
        EnvFlag::ZeroOuterWindow => env.outer_width == Some(0) && env.outer_height == Some(0),
        EnvFlag::SoftwareWebgl => env.webgl.as_deref().is_some_and(|g| {
            let g = g.to_ascii_lowercase();
            g.contains("swiftshader") || g.contains("llvmpipe") || g.contains("mesa offscreen")
        }),
        EnvFlag::StealthWebglMismatch => {
            env.webgl.as_deref().is_some_and(|g| g.contains("Intel Iris OpenGL Engine")) && !ua.contains("Mac OS X")
        }
        EnvFlag::WorkerMismatch => env.worker_mismatch != 0,
    }
}

fn env_name(flag: EnvFlag) -> &'static str {
    match flag {
        EnvFlag::Webdriver => "navigator.webdriver",
        EnvFlag::HeadlessUa => "HeadlessChrome user agent",
        EnvFlag::NoPluginsDesktopChrome => "no plugins on desktop Chrome",
        EnvFlag::NoLanguages => "no languages",
        EnvFlag::PermissionInconsistent => "notification permission inconsistency",
        EnvFlag::ZeroOuterWindow => "0×0 outer window",
        EnvFlag::SoftwareWebgl => "software WebGL renderer",
        EnvFlag::StealthWebglMismatch => "Mac-only WebGL renderer on a non-Mac user agent",
        EnvFlag::WorkerMismatch => "a worker reports other navigator values than the page",
    }
}

fn net_names(bits: i32) -> String {
    use crate::ingest::enrich::geo::net_flags as f;
    [
        (f::TOR_EXIT, "Tor exit"),
        (f::VPN, "VPN"),
        (f::HOSTING, "hosting"),
        (f::PUBLIC_PROXY, "public proxy"),
        (f::RESIDENTIAL_PROXY, "residential proxy"),
    ]
    .iter()
    .filter(|(b, _)| bits & b != 0)
    .map(|(_, n)| *n)
    .collect::<Vec<_>>()
    .join(", ")
}
