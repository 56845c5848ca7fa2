//! A fake Shopify, strict where the real one is: the OAuth token endpoint (authorization code,
//! token exchange, refresh with rotation), id-token minting, the authorize redirect, the
//! embedded app-load URL, a webhook sender with Shopify's headers and HMAC, and an app-proxy
//! signer/forwarder. Every call to a shop is served under `/{shop}/…`, so the app under test
//! points `GHOSTTRACK_SHOPIFY_API_BASE` at `http://127.0.0.1:PORT/{shop}`.
//!
//! See `tests/fake-shopify/README.md` for the wire contract and how to drive the binary.

mod admin_page;
pub mod billing;
pub mod orders;
pub mod signing;

pub use orders::RiskAssessment;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use poem::http::StatusCode;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::{Data, Path, Query};
use poem::{EndpointExt, IntoResponse, Request, Response, Route, get, handler, post};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// The app as registered with the fake (what the Partner Dashboard would hold).
#[derive(Clone, Debug)]
pub struct AppRegistration {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_urls: Vec<String>,
    pub scopes: String,
    /// Access-token lifetime of expiring offline tokens (real: 3600 s).
    pub access_ttl_secs: i64,
    /// Refresh-token lifetime (real: 7,776,000 s = 90 days).
    pub refresh_ttl_secs: i64,
    /// How long a spent refresh token still returns the same response (Shopify's "short
    /// retry window").
    pub refresh_retry_window_secs: i64,
}

impl AppRegistration {
    pub fn new(client_id: &str, client_secret: &str) -> Self {
        AppRegistration {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            redirect_urls: Vec::new(),
            scopes: "write_orders,write_pixels,read_customer_events,read_themes,write_app_proxy".into(),
            access_ttl_secs: 3600,
            refresh_ttl_secs: 7_776_000,
            refresh_retry_window_secs: 10,
        }
    }
}

/// Claims of an admin id token, in Shopify's order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub dest: String,
    pub aud: String,
    pub sub: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    pub sid: String,
}

#[derive(Clone, Debug)]
struct TokenRecord {
    shop: String,
    expires_at: Option<i64>,
}

#[derive(Clone, Debug)]
struct RefreshRecord {
    shop: String,
    expires_at: i64,
    /// When it was spent, and the response it produced (replayed inside the retry window).
    spent: Option<(i64, serde_json::Value)>,
}

#[derive(Default)]
struct State {
    access_tokens: HashMap<String, TokenRecord>,
    refresh_tokens: HashMap<String, RefreshRecord>,
    /// The one refreshable token per shop (spec §1.7): issuing a new one retires the old.
    current_refresh: HashMap<String, String>,
    codes: HashMap<String, (String, bool)>,
    counters: Counters,
    /// Leaky bucket per shop: (points available, last update).
    buckets: HashMap<String, (f64, i64)>,
    /// Answer this many GraphQL requests with THROTTLED, whatever the bucket says.
    forced_throttles: u32,
    /// The app's web pixel per shop: (id, settings as sent).
    pixels: HashMap<String, (String, serde_json::Value)>,
    next_pixel_id: u64,
    /// The MAIN theme's `config/settings_data.json` per shop (absent: the shop has no MAIN theme).
    theme_settings_data: HashMap<String, String>,
    orders: orders::Orders,
}

/// What the fake saw, for assertions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub token_exchanges: u32,
    pub refreshes: u32,
    pub code_exchanges: u32,
    pub rejected_token_requests: u32,
    pub graphql_requests: u32,
    pub graphql_throttled: u32,
    pub pixel_creates: u32,
    pub pixel_updates: u32,
}

struct Inner {
    app: AppRegistration,
    state: Mutex<State>,
    clock_offset: Mutex<i64>,
    billing: billing::Book,
}

impl Inner {
    fn now(&self) -> i64 {
        unix_now() + *self.clock_offset.lock()
    }
}

/// A running fake Shopify.
#[derive(Clone)]
pub struct FakeShopify {
    inner: Arc<Inner>,
    pub base_url: String,
    http: reqwest::Client,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970").as_secs() as i64
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill(&mut buf[..]);
    hex::encode(buf)
}

impl FakeShopify {
    /// Starts the fake on `addr` (use `127.0.0.1:0` in tests).
    pub async fn start(app: AppRegistration, addr: SocketAddr) -> anyhow::Result<FakeShopify> {
        let inner = Arc::new(Inner {
            app,
            state: Mutex::new(State::default()),
            clock_offset: Mutex::new(0),
            billing: Default::default(),
        });
        let acceptor = TcpListener::bind(addr).into_acceptor().await?;
        let local = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .ok_or_else(|| anyhow::anyhow!("no local address"))?;
        let routes = Route::new()
            .at("/:shop/admin/oauth/access_token", post(access_token))
            .at("/:shop/admin/oauth/authorize", get(authorize))
            .at("/:shop/admin/api/:version/graphql.json", post(graphql))
            .at("/:shop/admin/charges/:id/confirm_recurring_application_charge", get(billing::confirm_page))
            .at("/:shop/admin/charges/:id/approve", post(billing::approve))
            .at("/:shop/admin/charges/:id/decline", post(billing::decline))
            .at("/store/:handle/apps/:app", get(admin_page::admin_page))
            .at("/store/:handle/id-token", post(admin_page::id_token))
            .at("/app-bridge.js", get(admin_page::app_bridge_js))
            .data(inner.clone());
        tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(routes).await;
        });
        Ok(FakeShopify {
            inner,
            base_url: format!("http://{local}"),
            http: reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?,
        })
    }

    /// `GHOSTTRACK_SHOPIFY_API_BASE` for the app under test.
    pub fn api_base_template(&self) -> String {
        format!("{}/{{shop}}", self.base_url)
    }

    pub fn app(&self) -> &AppRegistration {
        &self.inner.app
    }

    pub fn counters(&self) -> Counters {
        self.inner.state.lock().counters.clone()
    }

    /// Moves the fake's clock (token expiry) forward, to test refresh without waiting.
    pub fn advance_clock(&self, secs: i64) {
        *self.inner.clock_offset.lock() += secs;
    }

    /// Whether `token` is a live access token for `shop` (what the Admin API would accept).
    pub fn access_token_valid(&self, shop: &str, token: &str) -> bool {
        let now = self.inner.now();
        self.inner
            .state
            .lock()
            .access_tokens
            .get(token)
            .is_some_and(|r| r.shop == shop && r.expires_at.is_none_or(|at| at > now))
    }

    /// Every access and refresh token issued so far (to check they never reach a log).
    pub fn issued_tokens(&self) -> Vec<String> {
        let state = self.inner.state.lock();
        state.access_tokens.keys().chain(state.refresh_tokens.keys()).cloned().collect()
    }

    /// The next `n` Admin GraphQL requests answer `THROTTLED` (HTTP 200, Shopify's shape).
    pub fn throttle_next(&self, n: u32) {
        self.inner.state.lock().forced_throttles = n;
    }

    /// The app's web pixel on a shop: `(id, settings)` as last set, if any.
    pub fn web_pixel(&self, shop: &str) -> Option<(String, serde_json::Value)> {
        self.inner.state.lock().pixels.get(shop).cloned()
    }

    /// The merchant (or support) deletes the app's pixel.
    pub fn delete_web_pixel(&self, shop: &str) {
        self.inner.state.lock().pixels.remove(shop);
    }

    /// Publishes a MAIN theme whose `config/settings_data.json` is `content` (verbatim, comments included).
    pub fn set_main_theme_settings_data(&self, shop: &str, content: &str) {
        self.inner.state.lock().theme_settings_data.insert(shop.to_owned(), content.to_owned());
    }

    /// `app/uninstalled` on Shopify's side: every token of the shop is revoked.
    pub fn revoke_shop(&self, shop: &str) {
        let mut state = self.inner.state.lock();
        state.access_tokens.retain(|_, r| r.shop != shop);
        state.refresh_tokens.retain(|_, r| r.shop != shop);
        state.current_refresh.remove(shop);
    }

    /// A 60 s admin id token for `shop` and user `user_id`, as App Bridge gets it.
    pub fn mint_id_token(&self, shop: &str, user_id: u64) -> String {
        let now = unix_now();
        self.mint_id_token_with(shop, user_id, now, now + 60)
    }

    pub fn mint_id_token_with(&self, shop: &str, user_id: u64, nbf: i64, exp: i64) -> String {
        let claims = IdTokenClaims {
            iss: format!("https://{shop}/admin"),
            dest: format!("https://{shop}"),
            aud: self.inner.app.client_id.clone(),
            sub: user_id.to_string(),
            exp,
            nbf,
            iat: nbf,
            jti: random_uuid(),
            sid: random_hex(32),
        };
        signing::jwt(&self.inner.app.client_secret, &claims)
    }

    /// The URL the admin iframe loads: `application_url?embedded=1&hmac&host&id_token&locale&session&shop&timestamp`.
    pub fn embedded_load_url(&self, application_url: &str, shop: &str) -> String {
        let ts = unix_now().to_string();
        let host = base64_no_pad(&format!("admin.shopify.com/store/{}", shop.trim_end_matches(".myshopify.com")));
        let id_token = self.mint_id_token(shop, 1);
        let session = random_hex(32);
        let mut pairs: Vec<(&str, &str)> = vec![
            ("embedded", "1"),
            ("host", &host),
            ("id_token", &id_token),
            ("locale", "en"),
            ("session", &session),
            ("shop", shop),
            ("timestamp", &ts),
        ];
        let hmac = signing::admin_query_hmac(&self.inner.app.client_secret, &pairs);
        pairs.push(("hmac", &hmac));
        let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
        format!("{application_url}?{query}")
    }

    /// Signs an app-proxy request the way Shopify forwards it: adds `shop`,
    /// `logged_in_customer_id` (empty when logged out), `path_prefix`, `timestamp`,
    /// `signature` to the storefront query. Returns the query string.
    pub fn proxy_query(&self, shop: &str, storefront_query: &[(&str, &str)], customer_id: Option<u64>) -> String {
        let ts = unix_now().to_string();
        let customer = customer_id.map(|c| c.to_string()).unwrap_or_default();
        let mut pairs: Vec<(&str, &str)> = storefront_query.to_vec();
        pairs.extend([
            ("shop", shop),
            ("logged_in_customer_id", customer.as_str()),
            ("path_prefix", "/apps/ghosttrack"),
            ("timestamp", ts.as_str()),
        ]);
        let signature = signing::proxy_signature(&self.inner.app.client_secret, &pairs);
        pairs.push(("signature", &signature));
        url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish()
    }

    /// Forwards a storefront POST through the "app proxy": signs the query, strips cookies,
    /// sets `X-Forwarded-For`/`X-Forwarded-Host`, keeps method and body.
    pub async fn proxy_post(
        &self,
        proxy_url: &str,
        shop: &str,
        path: &str,
        client_ip: &str,
        user_agent: &str,
        body: Vec<u8>,
    ) -> reqwest::Result<reqwest::Response> {
        let query = self.proxy_query(shop, &[], None);
        self.http
            .post(format!("{proxy_url}{path}?{query}"))
            .header("x-forwarded-for", client_ip)
            .header("x-forwarded-host", shop)
            .header("user-agent", user_agent)
            .header("content-type", "text/plain;charset=UTF-8")
            .body(body)
            .send()
            .await
    }

    /// Risk assessments written on a shop's orders, oldest first.
    pub fn risk_assessments(&self, shop: &str) -> Vec<RiskAssessment> {
        self.inner.state.lock().orders.assessments.get(shop).cloned().unwrap_or_default()
    }

    /// The merchant fulfils an order: it accepts no new risk assessments.
    pub fn fulfil_order(&self, shop: &str, order_id: u64) {
        self.inner.state.lock().orders.fulfil(shop, order_id);
    }

    /// Whether the app has protected customer data access on `shop`: without it, webhook payloads
    /// arrive with names, emails, addresses, browser IP and client details removed.
    pub fn set_protected_data_access(&self, shop: &str, approved: bool) {
        let mut state = self.inner.state.lock();
        if approved {
            state.orders.redacted.remove(shop);
        } else {
            state.orders.redacted.insert(shop.to_owned());
        }
    }

    /// A webhook delivery with a fresh webhook id. Order webhooks register their order (risk
    /// assessments need it); without protected-data access the payload is redacted.
    pub fn webhook(&self, topic: &str, shop: &str, body: &str) -> WebhookDelivery {
        let body = {
            let mut state = self.inner.state.lock();
            state.orders.observe_webhook(topic, shop, body.as_bytes());
            if state.orders.redacted.contains(shop) {
                orders::redact_payload(body.as_bytes())
            } else {
                body.as_bytes().to_vec()
            }
        };
        WebhookDelivery {
            webhook_id: random_uuid(),
            event_id: random_uuid(),
            topic: topic.into(),
            shop: shop.into(),
            api_version: "2026-10".into(),
            triggered_at: iso_now(),
            body,
        }
    }

    /// Sends one delivery with Shopify's exact headers and HMAC; 5 s total timeout.
    pub async fn deliver(&self, url: &str, d: &WebhookDelivery) -> reqwest::Result<reqwest::Response> {
        let hmac = signing::webhook_hmac(&self.inner.app.client_secret, &d.body);
        self.http
            .post(url)
            .timeout(Duration::from_secs(5))
            .header("content-type", "application/json")
            .header("X-Shopify-Topic", &d.topic)
            .header("X-Shopify-Hmac-Sha256", hmac)
            .header("X-Shopify-Shop-Domain", &d.shop)
            .header("X-Shopify-API-Version", &d.api_version)
            .header("X-Shopify-Webhook-Id", &d.webhook_id)
            .header("X-Shopify-Event-Id", &d.event_id)
            .header("X-Shopify-Triggered-At", &d.triggered_at)
            .body(d.body.clone())
            .send()
            .await
    }

    /// Delivers with Shopify's retry policy: up to 8 retries after the first attempt, any
    /// non-2xx (3xx included) or timeout counts as a failure, exponential backoff starting at
    /// `base_backoff` (real Shopify spreads 8 retries over 4 h; tests compress it). Returns
    /// the number of attempts made and whether one succeeded.
    pub async fn deliver_with_retries(&self, url: &str, d: &WebhookDelivery, base_backoff: Duration) -> (u32, bool) {
        let mut delay = base_backoff;
        for attempt in 1..=9 {
            if let Ok(resp) = self.deliver(url, d).await
                && resp.status().is_success()
            {
                return (attempt, true);
            }
            if attempt < 9 {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
        (9, false)
    }
}

/// One webhook delivery; re-sending it reuses its webhook id (what a Shopify retry does).
#[derive(Clone, Debug)]
pub struct WebhookDelivery {
    pub webhook_id: String,
    pub event_id: String,
    pub topic: String,
    pub shop: String,
    pub api_version: String,
    pub triggered_at: String,
    pub body: Vec<u8>,
}

fn base64_no_pad(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(s)
}

fn random_uuid() -> String {
    let h = random_hex(16);
    format!("{}-{}-4{}-a{}-{}", &h[..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
}

fn iso_now() -> String {
    let secs = unix_now();
    // RFC 3339 without a date library: days since epoch → civil date (Howard Hinnant's algorithm).
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

fn shop_ok(shop: &str) -> bool {
    shop.strip_suffix(".myshopify.com").is_some_and(|name| {
        name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    })
}

fn oauth_error(error: &str, description: &str) -> Response {
    Response::builder()
        .status(StatusCode::BAD_REQUEST)
        .content_type("application/json")
        .body(serde_json::json!({ "error": error, "error_description": description }).to_string())
}

fn ok_json(body: &serde_json::Value) -> Response {
    Response::builder().status(StatusCode::OK).content_type("application/json").body(body.to_string())
}

/// `POST /{shop}/admin/oauth/access_token`, JSON or form body.
#[handler]
async fn access_token(
    req: &Request,
    Path(shop): Path<String>,
    body: poem::Body,
    Data(inner): Data<&Arc<Inner>>,
) -> Response {
    if !shop_ok(&shop) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let is_json = req.content_type().is_some_and(|c| c.starts_with("application/json"));
    let bytes = body.into_vec().await.unwrap_or_default();
    let params: HashMap<String, String> = if is_json {
        match serde_json::from_slice::<HashMap<String, serde_json::Value>>(&bytes) {
            Ok(map) => map
                .into_iter()
                .map(|(k, v)| (k, v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())))
                .collect(),
            Err(_) => return oauth_error("invalid_request", "The request body is not valid JSON"),
        }
    } else {
        url::form_urlencoded::parse(&bytes).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    };
    let p = |k: &str| params.get(k).map(String::as_str);
    let app = &inner.app;
    let mut state = inner.state.lock();
    if p("client_id") != Some(app.client_id.as_str()) || p("client_secret") != Some(app.client_secret.as_str()) {
        state.counters.rejected_token_requests += 1;
        return oauth_error("invalid_client", "Client authentication failed");
    }
    let now = inner.now();
    match p("grant_type") {
        Some("urn:ietf:params:oauth:grant-type:token-exchange") => {
            let claims = p("subject_token").and_then(|t| signing::verify_jwt(&app.client_secret, t));
            let valid = p("subject_token_type") == Some("urn:ietf:params:oauth:token-type:id_token")
                && claims.as_ref().is_some_and(|c| {
                    c["aud"] == app.client_id.as_str()
                        && c["dest"] == format!("https://{shop}").as_str()
                        && c["exp"].as_i64().is_some_and(|exp| exp + 10 >= now)
                        && c["nbf"].as_i64().is_some_and(|nbf| nbf - 10 <= now)
                });
            if !valid {
                state.counters.rejected_token_requests += 1;
                return oauth_error("invalid_subject_token", "The subject token is invalid or expired");
            }
            state.counters.token_exchanges += 1;
            let expiring = p("expiring") == Some("1");
            ok_json(&issue(&mut state, app, &shop, expiring, now))
        }
        Some("refresh_token") => {
            let Some(token) = p("refresh_token") else {
                return oauth_error("invalid_request", "refresh_token is required");
            };
            let Some(record) = state.refresh_tokens.get(token).cloned() else {
                state.counters.rejected_token_requests += 1;
                return oauth_error("invalid_grant", "The refresh token is invalid, expired or revoked");
            };
            if record.shop != shop || record.expires_at < now {
                state.counters.rejected_token_requests += 1;
                return oauth_error("invalid_grant", "The refresh token is invalid, expired or revoked");
            }
            if let Some((spent_at, response)) = &record.spent {
                if now - spent_at <= app.refresh_retry_window_secs {
                    return ok_json(response);
                }
                state.counters.rejected_token_requests += 1;
                return oauth_error("invalid_grant", "The refresh token is invalid, expired or revoked");
            }
            if state.current_refresh.get(&shop).map(String::as_str) != Some(token) {
                state.counters.rejected_token_requests += 1;
                return oauth_error("invalid_grant", "The refresh token is invalid, expired or revoked");
            }
            state.counters.refreshes += 1;
            if let Some(r) = state.refresh_tokens.get_mut(token) {
                r.spent = Some((now, serde_json::Value::Null));
            }
            let response = issue(&mut state, app, &shop, true, now);
            if let Some(r) = state.refresh_tokens.get_mut(token) {
                r.spent = Some((now, response.clone()));
            }
            ok_json(&response)
        }
        // Shopify's documented body has no grant_type; OAuth clients send authorization_code.
        None | Some("authorization_code") => {
            let Some(code) = p("code") else { return oauth_error("invalid_request", "code is required") };
            match state.codes.get_mut(code) {
                Some((code_shop, used)) if *code_shop == shop && !*used => *used = true,
                _ => {
                    state.counters.rejected_token_requests += 1;
                    return oauth_error("invalid_request", "The authorization code was not found or was already used");
                }
            }
            state.counters.code_exchanges += 1;
            let expiring = p("expiring") == Some("1");
            ok_json(&issue(&mut state, app, &shop, expiring, now))
        }
        Some(other) => oauth_error("unsupported_grant_type", &format!("{other} is not supported")),
    }
}

/// Issues an offline token (expiring with a refresh token, or not), retiring the shop's
/// previous refresh token. Old access tokens live until they expire.
fn issue(state: &mut State, app: &AppRegistration, shop: &str, expiring: bool, now: i64) -> serde_json::Value {
    let access = format!("shpat_{}", random_hex(16));
    if !expiring {
        state.access_tokens.insert(access.clone(), TokenRecord { shop: shop.into(), expires_at: None });
        return serde_json::json!({ "access_token": access, "scope": app.scopes });
    }
    let refresh = format!("shprt_{}", random_hex(16));
    state
        .access_tokens
        .insert(access.clone(), TokenRecord { shop: shop.into(), expires_at: Some(now + app.access_ttl_secs) });
    if let Some(old) = state.current_refresh.insert(shop.into(), refresh.clone()) {
        // A retired refresh token is dead at once, unless it was just spent (retry window).
        if state.refresh_tokens.get(&old).is_some_and(|r| r.spent.is_none()) {
            state.refresh_tokens.remove(&old);
        }
    }
    state.refresh_tokens.insert(
        refresh.clone(),
        RefreshRecord { shop: shop.into(), expires_at: now + app.refresh_ttl_secs, spent: None },
    );
    serde_json::json!({
        "access_token": access,
        "expires_in": app.access_ttl_secs,
        "refresh_token": refresh,
        "refresh_token_expires_in": app.refresh_ttl_secs,
        "scope": app.scopes,
    })
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    client_id: String,
    #[serde(default)]
    scope: Option<String>,
    redirect_uri: String,
    state: String,
}

/// `GET /{shop}/admin/oauth/authorize`: the merchant approves at once; 302 to the callback
/// with `code`, `hmac`, `host`, `shop`, `state`, `timestamp`.
#[handler]
async fn authorize(
    Path(shop): Path<String>,
    Query(q): Query<AuthorizeQuery>,
    Data(inner): Data<&Arc<Inner>>,
) -> Response {
    let app = &inner.app;
    if !shop_ok(&shop) || q.client_id != app.client_id {
        return (StatusCode::BAD_REQUEST, "Oauth error invalid_request: The client_id is invalid").into_response();
    }
    if !app.redirect_urls.contains(&q.redirect_uri) {
        return (StatusCode::BAD_REQUEST, "Oauth error invalid_request: The redirect_uri is not whitelisted")
            .into_response();
    }
    if let Some(scope) = &q.scope {
        let known = app.scopes.split(',').collect::<Vec<_>>();
        if scope.split(',').map(str::trim).any(|s| !s.is_empty() && !known.contains(&s)) {
            return (StatusCode::BAD_REQUEST, "Oauth error invalid_scope: The access scope is invalid").into_response();
        }
    }
    let code = random_hex(16);
    inner.state.lock().codes.insert(code.clone(), (shop.clone(), false));
    let ts = inner.now().to_string();
    let host = base64_no_pad(&format!("admin.shopify.com/store/{}", shop.trim_end_matches(".myshopify.com")));
    let mut pairs: Vec<(&str, &str)> =
        vec![("code", &code), ("host", &host), ("shop", &shop), ("state", &q.state), ("timestamp", &ts)];
    let hmac = signing::admin_query_hmac(&app.client_secret, &pairs);
    pairs.push(("hmac", &hmac));
    let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
    Response::builder().status(StatusCode::FOUND).header("location", format!("{}?{query}", q.redirect_uri)).finish()
}

/// Standard-plan limits of 2026 (spec §5.2): 1000-point bucket, 100 points/s.
const BUCKET_MAX: f64 = 1000.0;
const RESTORE_RATE: f64 = 100.0;
/// Cost of the queries the fake answers (an object field costs 1).
const QUERY_COST: f64 = 1.0;

fn cost_extension(requested: f64, actual: Option<f64>, available: f64) -> serde_json::Value {
    serde_json::json!({ "cost": {
        "requestedQueryCost": requested,
        "actualQueryCost": actual,
        "throttleStatus": { "maximumAvailable": BUCKET_MAX, "currentlyAvailable": available, "restoreRate": RESTORE_RATE }
    }})
}

/// `POST /{shop}/admin/api/{version}/graphql.json`: token check, leaky bucket, the `shop` query.
#[handler]
async fn graphql(
    req: &Request,
    Path((shop, _version)): Path<(String, String)>,
    body: poem::Body,
    Data(inner): Data<&Arc<Inner>>,
) -> Response {
    let token = req.headers().get("x-shopify-access-token").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let query: serde_json::Value =
        serde_json::from_slice(&body.into_vec().await.unwrap_or_default()).unwrap_or_default();
    let now = inner.now();
    let mut state = inner.state.lock();
    state.counters.graphql_requests += 1;
    let valid =
        state.access_tokens.get(&token).is_some_and(|r| r.shop == shop && r.expires_at.is_none_or(|at| at > now));
    if !valid {
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .content_type("application/json")
            .body(r#"{"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}"#);
    }
    let (mut available, last) = state.buckets.get(&shop).copied().unwrap_or((BUCKET_MAX, now));
    available = (available + (now - last) as f64 * RESTORE_RATE).min(BUCKET_MAX);
    if state.forced_throttles > 0 || available < QUERY_COST {
        state.forced_throttles = state.forced_throttles.saturating_sub(1);
        state.counters.graphql_throttled += 1;
        state.buckets.insert(shop, (available, now));
        return ok_json(&serde_json::json!({
            "errors": [{ "message": "Throttled", "extensions": { "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits" } }],
            "extensions": cost_extension(QUERY_COST * 10.0, None, 0.0),
        }));
    }
    available -= QUERY_COST;
    state.buckets.insert(shop.clone(), (available, now));
    let text = query["query"].as_str().unwrap_or("").to_owned();
    let vars = &query["variables"];
    let data = if text.contains("webPixelCreate") {
        state.counters.pixel_creates += 1;
        let settings = vars["settings"].clone();
        if let Some(errors) = invalid_pixel_settings(&settings) {
            serde_json::json!({ "webPixelCreate": { "userErrors": errors, "webPixel": null } })
        } else if state.pixels.contains_key(&shop) {
            serde_json::json!({ "webPixelCreate": { "userErrors": [{ "code": "TAKEN", "field": ["webPixel"], "message": "Web pixel is taken." }], "webPixel": null } })
        } else {
            state.next_pixel_id += 1;
            let id = format!("gid://shopify/WebPixel/{}", state.next_pixel_id);
            state.pixels.insert(shop.clone(), (id.clone(), settings.clone()));
            serde_json::json!({ "webPixelCreate": { "userErrors": [], "webPixel": { "id": id, "settings": settings } } })
        }
    } else if text.contains("webPixelUpdate") {
        state.counters.pixel_updates += 1;
        let settings = vars["settings"].clone();
        let id = vars["id"].as_str().unwrap_or("");
        if state.pixels.get(&shop).is_none_or(|(current, _)| current != id) {
            drop(state);
            return ok_json(&serde_json::json!({
                "errors": [{ "message": "No web pixel was found for this app.", "path": ["webPixelUpdate"] }],
                "data": { "webPixelUpdate": null },
                "extensions": cost_extension(QUERY_COST, Some(QUERY_COST), available),
            }));
        }
        if let Some(errors) = invalid_pixel_settings(&settings) {
            serde_json::json!({ "webPixelUpdate": { "userErrors": errors, "webPixel": null } })
        } else {
            state.pixels.insert(shop.clone(), (id.to_owned(), settings.clone()));
            serde_json::json!({ "webPixelUpdate": { "userErrors": [], "webPixel": { "id": id, "settings": settings } } })
        }
    } else if text.contains("webPixel") {
        let found = state.pixels.get(&shop).cloned();
        match found {
            Some((id, settings)) => serde_json::json!({ "webPixel": { "id": id, "settings": settings } }),
            None => {
                drop(state);
                return ok_json(&serde_json::json!({
                    "errors": [{ "message": "No web pixel was found for this app.", "path": ["webPixel"] }],
                    "data": { "webPixel": null },
                    "extensions": cost_extension(QUERY_COST, Some(QUERY_COST), available),
                }));
            }
        }
    } else if text.contains("orderRiskAssessmentCreate") {
        state.orders.risk_assessment_create(&shop, &vars["input"])
    } else if text.contains("themes(") && text.contains("MAIN") {
        let nodes = match state.theme_settings_data.get(&shop) {
            None => serde_json::json!([]),
            Some(content) => serde_json::json!([{ "id": "gid://shopify/OnlineStoreTheme/1", "name": "Dawn",
                "files": { "nodes": [{ "filename": "config/settings_data.json", "body": { "content": content } }] } }]),
        };
        serde_json::json!({ "themes": { "nodes": nodes } })
    } else if let Some(data) = billing::graphql(inner, req, &shop, &text, vars) {
        data
    } else if text.contains("shop") {
        let name = shop.trim_end_matches(".myshopify.com");
        serde_json::json!({ "shop": { "name": name, "plan": { "displayName": "Development", "partnerDevelopment": true } } })
    } else {
        drop(state);
        return ok_json(&serde_json::json!({
            "errors": [{ "message": "This fake does not answer this operation" }],
            "extensions": cost_extension(QUERY_COST, Some(QUERY_COST), available),
        }));
    };
    drop(state);
    ok_json(&serde_json::json!({ "data": data, "extensions": cost_extension(QUERY_COST, Some(QUERY_COST), available) }))
}

/// The setting fields GhostTrack's web pixel extension declares (`[settings.fields.<name>]` in
/// its TOML, each a text field with min length 1), read from the extension itself so the fake
/// and the extension cannot drift apart.
fn pixel_setting_fields() -> Vec<&'static str> {
    include_str!("../../../extensions/ghosttrack-pixel/shopify.extension.toml")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("[settings.fields.").and_then(|r| r.strip_suffix(']')))
        .collect()
}

/// Settings must match the pixel's definition, as Shopify checks them: a JSON object (or a
/// string holding one) with exactly the declared fields, each a non-empty string.
fn invalid_pixel_settings(settings: &serde_json::Value) -> Option<serde_json::Value> {
    let parsed = match settings {
        serde_json::Value::String(s) => serde_json::from_str::<serde_json::Value>(s).ok(),
        other => Some(other.clone()),
    };
    let fields = pixel_setting_fields();
    let ok = parsed.as_ref().and_then(|v| v.as_object()).is_some_and(|o| {
        o.len() == fields.len()
            && fields.iter().all(|f| o.get(*f).and_then(|v| v.as_str()).is_some_and(|s| !s.is_empty()))
    });
    (!ok).then(|| {
        serde_json::json!([{ "code": "INVALID_SETTINGS", "field": ["webPixel", "settings"], "message": "Settings do not match the extension's settings definition." }])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_settings_are_checked_against_the_extension_definition() {
        let fields = pixel_setting_fields();
        assert!(fields.contains(&"accountID"), "parsed the extension TOML: {fields:?}");
        let all: serde_json::Map<String, serde_json::Value> =
            fields.iter().map(|f| (f.to_string(), serde_json::json!("x"))).collect();
        assert_eq!(invalid_pixel_settings(&serde_json::Value::Object(all.clone()).to_string().into()), None);
        let mut missing = all.clone();
        missing.remove("accountID");
        assert!(invalid_pixel_settings(&serde_json::Value::Object(missing)).is_some());
        let mut extra = all;
        extra.insert("other".into(), serde_json::json!("x"));
        assert!(invalid_pixel_settings(&serde_json::Value::Object(extra)).is_some());
        assert!(invalid_pixel_settings(&serde_json::json!({})).is_some());
    }
}
