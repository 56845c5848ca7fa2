//! The detection API (GhostLine-compatible paths under `/v1`): `POST /v1/evaluate`,
//! `GET /v1/recent`, `GET /v1/stats`, `GET /v1/verdict`. Authenticated like the stats API with
//! a site's `Authorization: Bearer gtk_…` token; the token's site is the tenant.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

use super::site_token::{ApiError, AuthFailure, SiteToken, tenant};

use crate::billing::{Denied, Feature};
use crate::detect::event::{Body, DetectEvent, ip_key_prefix};
use crate::detect::score::{Evidence, Reason, Verdict};
use crate::domain::UnixMillis;
use crate::startup::AppState;
use crate::storage::{self as store};

/// Largest `POST /v1/evaluate` body; larger ones get 413 (see [`limit_body`]).
pub const MAX_EVALUATE_BYTES: usize = 16 * 1024;

/// Answers 413 to bodies over [`MAX_EVALUATE_BYTES`], declared or streamed, before the JSON
/// extractor buffers them. GETs without a body pass untouched.
pub async fn limit_body<E: poem::Endpoint>(ep: Arc<E>, mut req: Request) -> poem::Result<poem::Response> {
    use poem::IntoResponse;
    use poem::http::{StatusCode, header};
    let too_large = || {
        poem::Response::builder()
            .status(StatusCode::PAYLOAD_TOO_LARGE)
            .content_type("application/json")
            .body(format!(r#"{{"error":"payload_too_large","message":"body larger than {MAX_EVALUATE_BYTES} bytes"}}"#))
    };
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    match declared {
        Some(n) if n > MAX_EVALUATE_BYTES => return Ok(too_large()),
        None if req.method() == poem::http::Method::POST => {
            match req.take_body().into_bytes_limit(MAX_EVALUATE_BYTES).await {
                Ok(bytes) => req.set_body(bytes),
                Err(poem::error::ReadBodyError::PayloadTooLarge) => return Ok(too_large()),
                Err(e) => return Err(e.into()),
            }
        }
        _ => {}
    }
    ep.call(req).await.map(IntoResponse::into_response)
}
const MAX_RECENT: u64 = 500;
/// Verdict changes per export page.
const EXPORT_PAGE: u64 = 1_000;

#[derive(Tags)]
enum ApiTags {
    /// Detection verdicts.
    Detect,
}

/// One request to judge.
#[derive(Object)]
struct EvaluateRequest {
    /// The site's public key (`gt_…`); must be the token's site.
    site: String,
    /// Who to judge; default: `ip`, else the client address from this request (the peer, or the
    /// right-most untrusted `X-Forwarded-For` hop when the peer is a trusted proxy).
    client_key: Option<String>,
    /// The client's IP address (its /24 or /64 is the network key of rate rules).
    ip: Option<String>,
    user_agent: Option<String>,
    #[oai(default = "default_method")]
    method: String,
    path: String,
    /// The status the server answered (0 when evaluating before answering).
    #[oai(default)]
    status: u16,
    /// Event time in ms since the epoch; default: now.
    ts: Option<i64>,
}

fn default_method() -> String {
    "GET".into()
}

#[derive(Object)]
struct ReasonBody {
    rule: String,
    sentence: String,
    shadow: bool,
}

#[derive(Object)]
struct EvidenceBody {
    rule: String,
    behavior: String,
    key: String,
    count: u32,
    threshold: u32,
    window_secs: u64,
    at: i64,
    sample: String,
}

/// A verdict: what to do with the subject and why.
#[derive(Object)]
struct VerdictBody {
    /// `session:ID`, `client:KEY`, `ip:PREFIX`, …
    subject: String,
    /// `ALLOW`, `CHALLENGE` or `BLOCK`.
    decision: String,
    /// 0–100.
    score: u8,
    reasons: Vec<ReasonBody>,
    /// Seconds the decision holds without new evidence (use as `Retry-After` for BLOCK).
    ttl: u64,
    evidence: Vec<EvidenceBody>,
    labels: Vec<String>,
    /// Event time of the verdict (ms).
    at: i64,
}

fn reasons(r: Vec<Reason>) -> Vec<ReasonBody> {
    r.into_iter().map(|r| ReasonBody { rule: r.rule, sentence: r.sentence, shadow: r.shadow }).collect()
}

fn evidence(e: Vec<Evidence>) -> Vec<EvidenceBody> {
    e.into_iter()
        .map(|e| EvidenceBody {
            rule: e.rule,
            behavior: e.behavior,
            key: e.key,
            count: e.count,
            threshold: e.threshold,
            window_secs: e.window_secs,
            at: e.at,
            sample: e.sample,
        })
        .collect()
}

impl From<Verdict> for VerdictBody {
    fn from(v: Verdict) -> Self {
        VerdictBody {
            subject: v.subject,
            decision: v.decision.as_str().into(),
            score: v.score,
            reasons: reasons(v.reasons),
            ttl: v.ttl,
            evidence: evidence(v.evidence),
            labels: v.labels,
            at: v.at,
        }
    }
}

/// One recorded verdict change.
#[derive(Object)]
struct RecentItem {
    subject: String,
    decision: String,
    score: i16,
    reasons: Vec<ReasonBody>,
    ttl: i64,
    at: DateTime<Utc>,
}

#[derive(Object)]
struct RecentBody {
    site: String,
    items: Vec<RecentItem>,
}

/// One verdict change with its evidence, as exported.
#[derive(Object)]
struct ExportItem {
    /// Stable id; pass the last one as `after` for the next page.
    id: i64,
    subject: String,
    decision: String,
    score: i16,
    reasons: Vec<ReasonBody>,
    /// The counters, windows and sampled events behind the verdict, as recorded.
    evidence: serde_json::Value,
    ttl: i64,
    at: DateTime<Utc>,
}

#[derive(Object)]
struct ExportBody {
    site: String,
    items: Vec<ExportItem>,
    /// `after` for the next page; absent on the last page.
    next_after: Option<i64>,
}

#[derive(ApiResponse)]
enum ExportResponse {
    #[oai(status = 200)]
    Ok(Json<ExportBody>),
    #[oai(status = 400)]
    BadRequest(Json<ApiError>),
    #[oai(status = 401)]
    Unauthorized(Json<ApiError>),
    /// The site's plan does not include exports (`billing.*.exports`).
    #[oai(status = 402)]
    NotInPlan(Json<ApiError>),
    #[oai(status = 404)]
    NotFound(Json<ApiError>),
    #[oai(status = 503)]
    Unavailable(Json<ApiError>),
}

#[derive(Object)]
struct RuleCount {
    rule: String,
    count: u64,
}

#[derive(Object)]
struct DetectStats {
    site: String,
    window_seconds: u64,
    /// Verdict changes in the window by decision.
    decisions: BTreeMap<String, i64>,
    /// Rules named by those changes, most frequent first.
    top_rules: Vec<RuleCount>,
    /// Detection state slots held by this node (all tenants).
    state_keys: u64,
}

#[derive(ApiResponse)]
enum EvaluateResponse {
    #[oai(status = 200)]
    Ok(Json<VerdictBody>),
    #[oai(status = 400)]
    BadRequest(Json<ApiError>),
    #[oai(status = 401)]
    Unauthorized(Json<ApiError>),
    /// The site's plan does not include the evaluate API (`billing.*.features`).
    #[oai(status = 402)]
    NotInPlan(Json<ApiError>),
    #[oai(status = 404)]
    NotFound(Json<ApiError>),
    /// Detection is disabled on this server.
    #[oai(status = 503)]
    Unavailable(Json<ApiError>),
}

#[derive(ApiResponse)]
enum RecentResponse {
    #[oai(status = 200)]
    Ok(Json<RecentBody>),
    #[oai(status = 400)]
    BadRequest(Json<ApiError>),
    #[oai(status = 401)]
    Unauthorized(Json<ApiError>),
    #[oai(status = 404)]
    NotFound(Json<ApiError>),
    #[oai(status = 503)]
    Unavailable(Json<ApiError>),
}

#[derive(ApiResponse)]
enum StatsResponse {
    #[oai(status = 200)]
    Ok(Json<DetectStats>),
    #[oai(status = 400)]
    BadRequest(Json<ApiError>),
    #[oai(status = 401)]
    Unauthorized(Json<ApiError>),
    #[oai(status = 404)]
    NotFound(Json<ApiError>),
    #[oai(status = 503)]
    Unavailable(Json<ApiError>),
}

#[derive(ApiResponse)]
enum VerdictResponse {
    #[oai(status = 200)]
    Ok(Json<VerdictBody>),
    #[oai(status = 401)]
    Unauthorized(Json<ApiError>),
    /// Unknown site for this token, or no verdict recorded or live for the subject.
    #[oai(status = 404)]
    NotFound(Json<ApiError>),
    #[oai(status = 503)]
    Unavailable(Json<ApiError>),
}

macro_rules! auth_or_return {
    ($resp:ident, $state:expr, $token:expr, $site:expr) => {
        match tenant(&$state.db, $token, $site).await {
            Ok(t) => t,
            Err(failure @ AuthFailure::Unauthorized) => return $resp::Unauthorized(failure.body()),
            Err(failure @ AuthFailure::NotFound) => return $resp::NotFound(failure.body()),
            Err(failure @ AuthFailure::Unavailable) => return $resp::Unavailable(failure.body()),
        }
    };
}

/// Returns `402 not_in_plan` (or 503 when the lookup fails) unless the tenant's plan includes
/// the feature (`billing::require`).
macro_rules! plan_or_return {
    ($resp:ident, $state:expr, $scope:expr, $feature:expr) => {
        match crate::billing::require(&$state.db, &$state.settings.billing, $scope, $feature).await {
            Ok(_) => {}
            Err(Denied::NotInPlan(message)) => return $resp::NotInPlan(ApiError::new("not_in_plan", message)),
            Err(Denied::Lookup(error)) => {
                tracing::error!(error = %error, "entitlements lookup failed");
                return $resp::Unavailable(ApiError::new("unavailable", "try again shortly"));
            }
        }
    };
}

pub struct DetectApi;

#[OpenApi(tag = "ApiTags::Detect")]
impl DetectApi {
    /// Judges one request of a client and answers the client's current verdict.
    #[oai(path = "/evaluate", method = "post", operation_id = "evaluate_request")]
    async fn evaluate(
        &self,
        Data(state): Data<&Arc<AppState>>,
        req: &Request,
        auth: SiteToken,
        body: Json<EvaluateRequest>,
    ) -> EvaluateResponse {
        let body = body.0;
        let (scope, tenant) = auth_or_return!(EvaluateResponse, state, &auth, &body.site);
        plan_or_return!(EvaluateResponse, state, scope, Feature::EvaluateApi);
        let Some(detector) = &state.detector else {
            return EvaluateResponse::Unavailable(ApiError::new(
                "detection_disabled",
                "detection is disabled (detect.enabled)",
            ));
        };
        if body.path.is_empty() || body.path.len() > 2048 || body.method.is_empty() || body.method.len() > 16 {
            return EvaluateResponse::BadRequest(ApiError::new(
                "invalid_request",
                "`path` (1..2048 chars) and `method` (1..16 chars) are required",
            ));
        }
        let ip: IpAddr = match body.ip.as_deref().map(str::parse) {
            Some(Ok(ip)) => ip,
            Some(Err(_)) => {
                return EvaluateResponse::BadRequest(ApiError::new("invalid_ip", "`ip` is not an IP address"));
            }
            None => {
                let peer =
                    req.remote_addr().as_socket_addr().map(|a| a.ip()).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
                let xff = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
                crate::ingest::client_ip::resolve(peer, xff, &state.settings.trusted_proxies)
            }
        };
        let client_key: String = body.client_key.unwrap_or_else(|| ip.to_string()).chars().take(128).collect();
        let event = DetectEvent {
            ts: body.ts.unwrap_or_else(|| UnixMillis::now().0),
            session: None,
            visitor: None,
            client_key: Some(client_key),
            ip_prefix: Some(ip_key_prefix(ip)),
            device: None,
            asn: None,
            country: None,
            net_flags: state.ingest.net_flags(ip),
            user_agent: body.user_agent.map(|u| u.chars().take(512).collect()),
            cart_token: None,
            checkout_token: None,
            body: Body::Request { method: body.method, path: body.path, status: body.status },
        };
        EvaluateResponse::Ok(Json(detector.evaluate(tenant.id, &event).into()))
    }

    /// The newest verdict changes of a site.
    #[oai(path = "/recent", method = "get", operation_id = "list_recent_verdicts")]
    async fn recent(
        &self,
        Data(state): Data<&Arc<AppState>>,
        auth: SiteToken,
        site: Query<String>,
        /// 1..500, default 50.
        limit: Query<Option<u64>>,
        /// Only `ALLOW`, `CHALLENGE` or `BLOCK`.
        decision: Query<Option<String>>,
    ) -> RecentResponse {
        let (scope, tenant) = auth_or_return!(RecentResponse, state, &auth, &site.0);
        let limit = limit.0.unwrap_or(50);
        if !(1..=MAX_RECENT).contains(&limit) {
            return RecentResponse::BadRequest(ApiError::new(
                "invalid_limit",
                format!("limit must be 1..{MAX_RECENT}"),
            ));
        }
        let decision = match decision.0.as_deref().map(crate::detect::Decision::parse) {
            Some(None) => {
                return RecentResponse::BadRequest(ApiError::new(
                    "invalid_decision",
                    "decision is ALLOW, CHALLENGE or BLOCK",
                ));
            }
            Some(Some(d)) => Some(d.as_str()),
            None => None,
        };
        match store::threats::recent(&state.db, scope, limit, decision).await {
            Ok(rows) => RecentResponse::Ok(Json(RecentBody {
                site: tenant.key.to_string(),
                items: rows
                    .into_iter()
                    .map(|r| RecentItem {
                        subject: r.subject,
                        decision: r.decision,
                        score: r.score,
                        reasons: reasons(serde_json::from_str(&r.reasons).unwrap_or_default()),
                        ttl: r.ttl_secs,
                        at: DateTime::from_timestamp_millis(r.at.0).unwrap_or_default(),
                    })
                    .collect(),
            })),
            Err(error) => {
                tracing::error!(error = %error, "recent verdicts query failed");
                RecentResponse::Unavailable(ApiError::new("unavailable", "the database is unavailable; retry shortly"))
            }
        }
    }

    /// Exports the site's verdict changes with their evidence for `[from, to)`, 1,000 per page in id
    /// order (follow `next_after`). A plan feature (`exports`: Business by default).
    #[oai(path = "/export", method = "get", operation_id = "export_verdicts")]
    async fn export(
        &self,
        Data(state): Data<&Arc<AppState>>,
        auth: SiteToken,
        site: Query<String>,
        from: Query<DateTime<Utc>>,
        to: Query<DateTime<Utc>>,
        /// The `next_after` of the previous page.
        after: Query<Option<i64>>,
    ) -> ExportResponse {
        let (scope, tenant) = auth_or_return!(ExportResponse, state, &auth, &site.0);
        plan_or_return!(ExportResponse, state, scope, Feature::Exports);
        let (from, to) = (UnixMillis(from.0.timestamp_millis()), UnixMillis(to.0.timestamp_millis()));
        if from >= to {
            return ExportResponse::BadRequest(ApiError::new("invalid_range", "`from` must be before `to`"));
        }
        let after = after.0.unwrap_or(0).max(0);
        match store::threats::page_between(&state.db, scope, from, to, after, EXPORT_PAGE).await {
            Ok(rows) => {
                let next_after = (rows.len() as u64 == EXPORT_PAGE).then(|| rows.last().map(|r| r.id)).flatten();
                ExportResponse::Ok(Json(ExportBody {
                    site: tenant.key.to_string(),
                    items: rows
                        .into_iter()
                        .map(|r| ExportItem {
                            id: r.id,
                            subject: r.subject,
                            decision: r.decision,
                            score: r.score,
                            reasons: reasons(serde_json::from_str(&r.reasons).unwrap_or_default()),
                            evidence: serde_json::from_str(&r.evidence).unwrap_or(serde_json::Value::Null),
                            ttl: r.ttl_secs,
                            at: DateTime::from_timestamp_millis(r.at.0).unwrap_or_default(),
                        })
                        .collect(),
                    next_after,
                }))
            }
            Err(error) => {
                tracing::error!(error = %error, "export query failed");
                ExportResponse::Unavailable(ApiError::new("unavailable", "the database is unavailable; retry shortly"))
            }
        }
    }

    /// Verdict changes and the rules behind them over the last `window_seconds`.
    #[oai(path = "/stats", method = "get", operation_id = "get_detection_stats")]
    async fn stats(
        &self,
        Data(state): Data<&Arc<AppState>>,
        auth: SiteToken,
        site: Query<String>,
        /// 10..86400.
        window_seconds: Query<u64>,
    ) -> StatsResponse {
        let (scope, tenant) = auth_or_return!(StatsResponse, state, &auth, &site.0);
        if !(10..=86_400).contains(&window_seconds.0) {
            return StatsResponse::BadRequest(ApiError::new("invalid_window", "window_seconds must be 10..86400"));
        }
        let from = UnixMillis(UnixMillis::now().0 - window_seconds.0 as i64 * 1000);
        let result = async {
            let decisions = store::threats::count_by_decision(&state.db, scope, from).await?;
            let reasons = store::threats::reasons_since(&state.db, scope, from, 10_000).await?;
            Ok::<_, sea_orm::DbErr>((decisions, reasons))
        }
        .await;
        let (decisions, reason_rows) = match result {
            Ok(r) => r,
            Err(error) => {
                tracing::error!(error = %error, "detection stats query failed");
                return StatsResponse::Unavailable(ApiError::new(
                    "unavailable",
                    "the database is unavailable; retry shortly",
                ));
            }
        };
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for row in reason_rows {
            for r in serde_json::from_str::<Vec<Reason>>(&row).unwrap_or_default() {
                *counts.entry(r.rule).or_default() += 1;
            }
        }
        let mut top_rules: Vec<RuleCount> = counts.into_iter().map(|(rule, count)| RuleCount { rule, count }).collect();
        top_rules.sort_by(|a, b| b.count.cmp(&a.count).then(a.rule.cmp(&b.rule)));
        top_rules.truncate(20);
        StatsResponse::Ok(Json(DetectStats {
            site: tenant.key.to_string(),
            window_seconds: window_seconds.0,
            decisions: decisions.into_iter().collect(),
            top_rules,
            state_keys: state.detector.as_ref().map(|d| d.state_keys() as u64).unwrap_or(0),
        }))
    }

    /// The verdict of one subject, e.g. a tracked session (`session:ID`): live from the engine,
    /// else the last recorded change.
    #[oai(path = "/verdict", method = "get", operation_id = "get_verdict")]
    async fn verdict(
        &self,
        Data(state): Data<&Arc<AppState>>,
        auth: SiteToken,
        site: Query<String>,
        subject: Query<String>,
    ) -> VerdictResponse {
        let (scope, tenant) = auth_or_return!(VerdictResponse, state, &auth, &site.0);
        if let Some(v) = state.detector.as_ref().and_then(|d| d.verdict_of(tenant.id, &subject.0, UnixMillis::now())) {
            return VerdictResponse::Ok(Json(v.into()));
        }
        match store::threats::latest_for_subject(&state.db, scope, &subject.0).await {
            Ok(Some(r)) => VerdictResponse::Ok(Json(VerdictBody {
                subject: r.subject,
                decision: r.decision,
                score: u8::try_from(r.score).unwrap_or(0),
                reasons: reasons(serde_json::from_str(&r.reasons).unwrap_or_default()),
                ttl: u64::try_from(r.ttl_secs).unwrap_or(0),
                evidence: evidence(serde_json::from_str(&r.evidence).unwrap_or_default()),
                labels: Vec::new(),
                at: r.at.0,
            })),
            Ok(None) => VerdictResponse::NotFound(ApiError::new("no_verdict", "no verdict for this subject")),
            Err(error) => {
                tracing::error!(error = %error, "verdict query failed");
                VerdictResponse::Unavailable(ApiError::new("unavailable", "the database is unavailable; retry shortly"))
            }
        }
    }
}
