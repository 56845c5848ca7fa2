//! `GET /api/panel/threats/live?after=ID`: new verdict changes as server-sent events
//! (`text/event-stream`, one `data:` JSON `ThreatItem` per event, `id:` the threat id). The
//! panel reads it with fetch, so it authenticates like every panel call (EventSource could
//! not send the bearer token). The feed follows the `threats` table, so verdicts recorded by
//! any node appear. It reads the table when the recorder announces the tenant's verdicts on the
//! `ThreatBus` (this node directly, other nodes through Redis pub/sub), and also polls: every
//! [`POLL`] while other nodes cannot be heard (no Redis, or its subscription is down), every
//! [`SAFETY_POLL`] while they can. A stream ends after `panel.live_max_secs` (so a load balancer
//! can move clients and a revoked sign-in stops being served); the panel reconnects after the
//! last id it saw.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use poem::web::Data;
use poem::web::sse::{Event, SSE};
use poem::{IntoResponse, Request, Response, handler};
use tokio::sync::broadcast;

use super::auth::authenticate;
use crate::detect::bus::ThreatBus;
use crate::domain::SiteId;
use crate::panel::present;
use crate::startup::AppState;
use crate::storage::TenantScope;
use crate::storage::panel as store;

/// How often the feed looks for new verdicts when other nodes' announcements cannot be heard
/// (well inside the panel's 2 s promise).
const POLL: Duration = Duration::from_millis(250);
/// How often it looks anyway while announcements arrive (a lost message costs this much delay).
const SAFETY_POLL: Duration = Duration::from_secs(5);
/// Most verdicts read per look.
const BATCH: u64 = 100;
/// A comment line this often keeps proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

struct Feed {
    db: sea_orm::DatabaseConnection,
    scope: TenantScope,
    site: SiteId,
    bus: Arc<ThreatBus>,
    wake: broadcast::Receiver<SiteId>,
    cursor: i64,
    pending: VecDeque<Event>,
    ends_at: tokio::time::Instant,
}

#[handler]
pub async fn live(req: &Request, Data(state): Data<&Arc<AppState>>) -> Response {
    let user = match authenticate(state, req).await {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    let after = url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "after")
        .and_then(|(_, v)| v.parse::<i64>().ok());
    // Without a cursor the feed starts after the newest verdict: only new ones are sent.
    let cursor = match after {
        Some(id) => id.max(0),
        None => match store::recent_threats(&state.db, user.scope, 1).await {
            Ok(rows) => rows.first().map_or(0, |t| t.id),
            Err(error) => {
                tracing::error!(error = %error, "live feed cursor lookup failed");
                return poem::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
        },
    };
    let ends_at = tokio::time::Instant::now() + state.settings.panel.live_max_lifetime();
    // Every look reads everything after the cursor, so a wake-up missed before subscribing costs
    // at most one poll interval.
    let feed = Feed {
        db: state.db.clone(),
        scope: user.scope,
        site: user.site.id,
        bus: state.threat_bus.clone(),
        wake: state.threat_bus.subscribe(),
        cursor,
        pending: VecDeque::new(),
        ends_at,
    };
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        loop {
            if let Some(event) = feed.pending.pop_front() {
                return Some((event, feed));
            }
            let now = tokio::time::Instant::now();
            if now >= feed.ends_at {
                return None;
            }
            let poll = if feed.bus.hears_other_nodes() { SAFETY_POLL } else { POLL };
            let _ = tokio::time::timeout(poll.min(feed.ends_at - now), woken(&mut feed.wake, feed.site)).await;
            match store::threats_after(&feed.db, feed.scope, feed.cursor, BATCH).await {
                Ok(rows) => {
                    for t in rows {
                        feed.cursor = feed.cursor.max(t.id);
                        let data = serde_json::to_string(&present::threat(&t)).unwrap_or_default();
                        feed.pending.push_back(Event::message(data).id(t.id.to_string()).event_type("threat"));
                    }
                }
                Err(error) => tracing::warn!(error = %error, "live feed query failed; retrying"),
            }
        }
    });
    SSE::new(stream).keep_alive(KEEP_ALIVE).into_response()
}

/// Returns when `site` had verdicts recorded, or when announcements were missed (read anyway).
async fn woken(wake: &mut broadcast::Receiver<SiteId>, site: SiteId) {
    loop {
        match wake.recv().await {
            Ok(s) if s == site => return,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => return,
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}
