//! `GET /api/panel/threats/live?after=ID`: new verdict changes as server-sent events
//! (`text/event-stream`, one `data:` JSON `ThreatItem` per event, `id:` the threat id). The
//! panel reads it with fetch, so it authenticates like every panel call (EventSource could
//! not send the bearer token). The feed follows the `threats` table, so verdicts recorded by
//! any node appear. A stream ends after `panel.live_max_secs` (so a load balancer can move clients
//! and a revoked sign-in stops being served); the panel reconnects after the last id it saw.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use poem::web::Data;
use poem::web::sse::{Event, SSE};
use poem::{IntoResponse, Request, Response, handler};

use super::auth::authenticate;
use crate::panel::present;
use crate::startup::AppState;
use crate::storage::TenantScope;
use crate::storage::panel as store;

/// How often the feed looks for new verdicts (well inside the panel's 2 s promise).
const POLL: Duration = Duration::from_millis(250);
/// Most verdicts read per look.
const BATCH: u64 = 100;
/// A comment line this often keeps proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

struct Feed {
    db: sea_orm::DatabaseConnection,
    scope: TenantScope,
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
    let lifetime = state.settings.panel.live_max_lifetime();
    let ends_at = tokio::time::Instant::now() + lifetime;
    let feed = Feed { db: state.db.clone(), scope: user.scope, cursor, pending: VecDeque::new(), ends_at };
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        loop {
            if let Some(event) = feed.pending.pop_front() {
                return Some((event, feed));
            }
            if tokio::time::Instant::now() >= feed.ends_at {
                return None;
            }
            tokio::time::sleep(POLL).await;
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
