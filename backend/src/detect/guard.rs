//! Enforcement for self-hosted poem apps: `DetectGuard` judges every request with an in-process
//! detector and answers `429 Too Many Requests` with `Retry-After` while the client's verdict is
//! BLOCK. Each request is observed after it is answered (so rules see its real status); the
//! decision for a request is the client's verdict before it. See `examples/guarded_app.rs`.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use ipnet::IpNet;
use poem::http::{StatusCode, header};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};

use super::event::{Body, DetectEvent, ip_key_prefix};
use super::score::Decision;
use super::service::Detector;
use crate::domain::{SiteId, UnixMillis};
use crate::ingest::client_ip;

/// The middleware: one detector and the tenant its requests belong to.
#[derive(Clone)]
pub struct DetectGuard {
    detector: Arc<Detector>,
    site: SiteId,
    trusted_proxies: Arc<Vec<IpNet>>,
}

impl DetectGuard {
    /// `trusted_proxies`: peers whose `X-Forwarded-For` names the client.
    pub fn new(detector: Arc<Detector>, site: SiteId, trusted_proxies: Vec<IpNet>) -> Self {
        DetectGuard { detector, site, trusted_proxies: Arc::new(trusted_proxies) }
    }
}

impl<E: Endpoint> Middleware<E> for DetectGuard {
    type Output = DetectGuardEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        DetectGuardEndpoint { inner: ep, guard: self.clone() }
    }
}

pub struct DetectGuardEndpoint<E> {
    inner: E,
    guard: DetectGuard,
}

impl<E: Endpoint> Endpoint for DetectGuardEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let g = &self.guard;
        let peer = req.remote_addr().as_socket_addr().map(|a| a.ip()).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let xff = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
        let ip = client_ip::resolve(peer, xff, &g.trusted_proxies);
        let client_key = ip.to_string();
        let user_agent = req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let method = req.method().as_str().to_owned();
        let path: String = req.uri().path().chars().take(2048).collect();
        let now = UnixMillis::now();

        let before = g.detector.verdict_of(g.site, &format!("client:{client_key}"), now);
        let response = match &before {
            Some(v) if v.decision == Decision::Block => {
                let body = serde_json::json!({"decision": "BLOCK", "score": v.score, "reasons": v.reasons});
                Response::builder()
                    .status(StatusCode::TOO_MANY_REQUESTS)
                    .header(header::RETRY_AFTER, v.ttl.max(1).to_string())
                    .content_type("application/json")
                    .body(body.to_string())
            }
            _ => match self.inner.call(req).await {
                Ok(r) => r.into_response(),
                Err(e) => e.into_response(),
            },
        };
        let event = DetectEvent {
            ts: now.0,
            session: None,
            visitor: None,
            client_key: Some(client_key),
            ip_prefix: Some(ip_key_prefix(ip)),
            device: None,
            asn: None,
            country: None,
            net_flags: 0,
            user_agent,
            cart_token: None,
            checkout_token: None,
            body: Body::Request { method, path, status: response.status().as_u16() },
        };
        g.detector.observe(g.site, &[event]);
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem::{EndpointExt, handler};

    #[handler]
    fn hello() -> &'static str {
        "hello"
    }

    #[tokio::test]
    async fn a_scanner_is_answered_429_with_retry_after_after_its_first_request() {
        let rules = crate::detect::commands::load_rules(None).unwrap();
        let (detector, _rx) = Detector::new(rules, 10_000, None).unwrap();
        let app = hello.with(DetectGuard::new(detector, SiteId(1), Vec::new()));
        let request = |ua: &str| Request::builder().uri("/x".parse().unwrap()).header("user-agent", ua).finish();

        // The first request is judged after it is answered; from then on the client is blocked.
        let first = app.call(request("sqlmap/1.8")).await.unwrap();
        assert_eq!(first.status(), StatusCode::OK);
        let second = app.call(request("sqlmap/1.8")).await.unwrap();
        assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry: u64 = second.headers().get(header::RETRY_AFTER).unwrap().to_str().unwrap().parse().unwrap();
        assert!(retry > 3600, "{retry}");
    }

    #[tokio::test]
    async fn a_browser_passes() {
        let rules = crate::detect::commands::load_rules(None).unwrap();
        let (detector, _rx) = Detector::new(rules, 10_000, None).unwrap();
        let app = hello.with(DetectGuard::new(detector, SiteId(1), Vec::new()));
        for _ in 0..3 {
            let req =
                Request::builder().uri("/".parse().unwrap()).header("user-agent", "Mozilla/5.0 Chrome/131").finish();
            assert_eq!(app.call(req).await.unwrap().status(), StatusCode::OK);
        }
    }
}
