//! Rows for the writer tests: two commits, the second updating what the first inserted.

use sea_orm::{DatabaseConnection, EntityTrait, QueryOrder};

use super::entities::{events as ev, sessions as se, visitors as vi};
use super::events::{EventRow, SessionDelta, VisitorDelta};
use crate::domain::{SessionId, SiteId, UnixMillis, VisitorId};

pub fn delta(site: SiteId, id: i64, ts: i64, path: &str, pageviews: i32, automated: bool) -> SessionDelta {
    SessionDelta {
        id: SessionId(id),
        site_id: site,
        visitor_id: VisitorId(id * 10),
        started_at: UnixMillis(ts),
        last_seen_at: UnixMillis(ts),
        pageviews,
        events: 2,
        entry_path: path.into(),
        exit_path: path.into(),
        referrer_host: (id % 2 == 0).then(|| "news.example".into()),
        ip_prefix: Some("81.2.69.0/24".into()),
        country: Some("GB".into()),
        region: None,
        city: Some("London".into()),
        asn: Some(64_512),
        as_org: None,
        net_flags: 3,
        browser: "Chrome".into(),
        browser_version: Some("120".into()),
        os: "Linux".into(),
        device: "desktop".into(),
        bot_family: None,
        automated,
        consent: true,
    }
}

pub fn event(site: SiteId, session: i64, ts: i64, kind: &'static str, props: Option<&str>) -> EventRow {
    EventRow {
        site_id: site,
        session_id: SessionId(session),
        visitor_id: VisitorId(session * 10),
        ts: UnixMillis(ts),
        received_at: UnixMillis(ts + 5),
        kind,
        path: "/products/a".into(),
        props: props.map(str::to_owned),
    }
}

/// Two commits: new rows, then updates of the same session and visitor (the upsert path).
pub fn commits(site: SiteId) -> [(Vec<EventRow>, Vec<SessionDelta>, Vec<VisitorDelta>); 2] {
    let visitor = |id: i64, ts: i64| VisitorDelta {
        site_id: site,
        visitor_id: VisitorId(id * 10),
        first_seen_at: UnixMillis(ts),
        last_seen_at: UnixMillis(ts),
        sessions: 1,
    };
    [
        (
            vec![event(site, 1, 1_000, "pageview", Some(r#"{"r":"x"}"#)), event(site, 2, 1_001, "click", None)],
            vec![delta(site, 1, 1_000, "/", 1, false), delta(site, 2, 1_001, "/a", 0, false)],
            vec![visitor(1, 1_000), visitor(2, 1_001)],
        ),
        (
            vec![event(site, 1, 5_000, "pageview", None)],
            vec![delta(site, 1, 5_000, "/checkout", 1, true)],
            vec![visitor(1, 9_000)],
        ),
    ]
}

/// Both databases hold the same events, sessions and visitors (ids included).
pub async fn assert_same_rows(expected: &DatabaseConnection, actual: &DatabaseConnection) {
    let events = ev::Entity::find().order_by_asc(ev::Column::Id).all(expected).await.unwrap();
    let sessions = se::Entity::find().order_by_asc(se::Column::Id).all(expected).await.unwrap();
    let visitors = vi::Entity::find().order_by_asc(vi::Column::VisitorId).all(expected).await.unwrap();
    assert_eq!((events.len(), sessions.len(), visitors.len()), (3, 2, 2));
    assert_eq!(ev::Entity::find().order_by_asc(ev::Column::Id).all(actual).await.unwrap(), events);
    assert_eq!(se::Entity::find().order_by_asc(se::Column::Id).all(actual).await.unwrap(), sessions);
    assert_eq!(vi::Entity::find().order_by_asc(vi::Column::VisitorId).all(actual).await.unwrap(), visitors);
}
