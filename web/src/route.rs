//! The panel's pages and their URLs under `/app` (the app home of `shopify.app.toml`). The
//! router is a signal holding a [`Route`]; links and the App Bridge nav menu change the URL
//! through the History API and the panel follows `popstate`.

/// Where the panel is served.
pub const BASE: &str = "/app";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Overview,
    Threats,
    /// The Sessions list; the string is its query (filters), without `?`.
    Sessions(String),
    Session(i64),
    Setup,
    Rules,
    Alerts,
    Billing,
    /// The invitation link (`#token=…` in the fragment); shown signed out.
    AcceptInvitation,
    NotFound,
    Geography,
    /// Pages (click and scroll maps): the selected page's path, empty for the list.
    Pages(String),
    /// Privacy; the string is its query (`session=<id>` from a session detail page), without `?`.
    Privacy(String),
}

impl Route {
    /// The route of a location's path and query (`/app/sessions?decision=BLOCK`).
    pub fn parse(path: &str, query: &str) -> Route {
        let Some(rest) = path.strip_prefix(BASE) else { return Route::NotFound };
        let rest = rest.trim_end_matches('/');
        match rest {
            "" => Route::Overview,
            "/threats" => Route::Threats,
            "/sessions" => Route::Sessions(query.trim_start_matches('?').to_owned()),
            "/setup" => Route::Setup,
            "/rules" => Route::Rules,
            "/geography" => Route::Geography,
            "/pages" => Route::Pages(query_value(query, "path")),
            "/privacy" => Route::Privacy(query.trim_start_matches('?').to_owned()),
            "/alerts" => Route::Alerts,
            "/billing" => Route::Billing,
            "/accept-invitation" => Route::AcceptInvitation,
            _ => match rest.strip_prefix("/sessions/").map(str::parse::<i64>) {
                Some(Ok(id)) if id > 0 => Route::Session(id),
                _ => Route::NotFound,
            },
        }
    }

    /// The URL of the route.
    pub fn href(&self) -> String {
        match self {
            Route::Overview => BASE.to_owned(),
            Route::Threats => format!("{BASE}/threats"),
            Route::Sessions(q) if q.is_empty() => format!("{BASE}/sessions"),
            Route::Sessions(q) => format!("{BASE}/sessions?{q}"),
            Route::Session(id) => format!("{BASE}/sessions/{id}"),
            Route::Setup => format!("{BASE}/setup"),
            Route::Rules => format!("{BASE}/rules"),
            Route::Alerts => format!("{BASE}/alerts"),
            Route::Billing => format!("{BASE}/billing"),
            Route::AcceptInvitation => format!("{BASE}/accept-invitation"),
            Route::NotFound => BASE.to_owned(),
            Route::Geography => format!("{BASE}/geography"),
            Route::Pages(p) if p.is_empty() => format!("{BASE}/pages"),
            Route::Pages(p) => format!("{BASE}/pages?path={}", crate::logic::filters::encode(p)),
            Route::Privacy(q) if q.is_empty() => format!("{BASE}/privacy"),
            Route::Privacy(q) => format!("{BASE}/privacy?{q}"),
        }
    }

    /// The page title (title bar and `<h1>`).
    pub fn title(&self) -> &'static str {
        match self {
            Route::Overview => "Overview",
            Route::Threats => "Live threats",
            Route::Sessions(_) => "Sessions",
            Route::Session(_) => "Session",
            Route::Setup => "Setup",
            Route::Rules => "Rules",
            Route::Alerts => "Alerts",
            Route::Billing => "Billing",
            Route::AcceptInvitation => "Join GhostTrack",
            Route::NotFound => "Page not found",
            Route::Geography => "Geography",
            Route::Pages(_) => "Pages",
            Route::Privacy(_) => "Privacy",
        }
    }

    /// Whether a nav entry for `self` is the current section of `current`.
    pub fn is_section_of(&self, current: &Route) -> bool {
        matches!(
            (self, current),
            (Route::Overview, Route::Overview)
                | (Route::Threats, Route::Threats)
                | (Route::Sessions(_), Route::Sessions(_) | Route::Session(_))
                | (Route::Setup, Route::Setup)
                | (Route::Rules, Route::Rules)
                | (Route::Geography, Route::Geography)
                | (Route::Pages(_), Route::Pages(_))
                | (Route::Privacy(_), Route::Privacy(_))
                | (Route::Alerts, Route::Alerts)
                | (Route::Billing, Route::Billing)
        )
    }
}

/// The entries of the navigation (App Bridge `<ui-nav-menu>` or the standalone sidebar).
pub fn nav() -> [Route; 10] {
    [
        Route::Overview,
        Route::Threats,
        Route::Sessions(String::new()),
        Route::Rules,
        Route::Setup,
        Route::Geography,
        Route::Pages(String::new()),
        Route::Privacy(String::new()),
        Route::Alerts,
        Route::Billing,
    ]
}

/// The decoded value of `key` in a query string (empty when absent).
fn query_value(query: &str, key: &str) -> String {
    query
        .trim_start_matches('?')
        .split('&')
        .find_map(|p| p.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| crate::logic::filters::decode(v)))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("/app", "", Route::Overview)]
    #[case("/app/", "", Route::Overview)]
    #[case("/app/threats", "", Route::Threats)]
    #[case("/app/sessions", "?decision=BLOCK", Route::Sessions("decision=BLOCK".into()))]
    #[case("/app/sessions/42", "", Route::Session(42))]
    #[case("/app/sessions/-1", "", Route::NotFound)]
    #[case("/app/sessions/abc", "", Route::NotFound)]
    #[case("/app/setup", "", Route::Setup)]
    #[case("/app/rules/", "", Route::Rules)]
    #[case("/app/alerts", "", Route::Alerts)]
    #[case("/app/billing", "", Route::Billing)]
    #[case("/elsewhere", "", Route::NotFound)]
    #[case("/app/geography", "", Route::Geography)]
    #[case("/app/pages", "", Route::Pages(String::new()))]
    #[case("/app/pages", "?path=%2Fproducts%2Fa%3Fx", Route::Pages("/products/a?x".into()))]
    #[case("/app/privacy", "?session=9", Route::Privacy("session=9".into()))]
    fn paths_parse_to_routes(#[case] path: &str, #[case] query: &str, #[case] expected: Route) {
        assert_eq!(Route::parse(path, query), expected);
    }

    #[rstest]
    #[case(Route::Overview)]
    #[case(Route::Threats)]
    #[case(Route::Sessions("country=DE".into()))]
    #[case(Route::Session(7_000_000_000_000_000_001))]
    #[case(Route::Setup)]
    #[case(Route::Rules)]
    #[case(Route::Geography)]
    #[case(Route::Pages(String::new()))]
    #[case(Route::Pages("/collections/all shoes".into()))]
    #[case(Route::Privacy("session=4".into()))]
    #[case(Route::Alerts)]
    #[case(Route::Billing)]
    #[case(Route::AcceptInvitation)]
    fn href_round_trips(#[case] route: Route) {
        let href = route.href();
        let (path, query) = href.split_once('?').unwrap_or((&href, ""));
        assert_eq!(Route::parse(path, query), route);
    }

    #[test]
    fn a_session_detail_belongs_to_the_sessions_section() {
        assert!(Route::Sessions(String::new()).is_section_of(&Route::Session(3)));
        assert!(!Route::Threats.is_section_of(&Route::Session(3)));
    }
}
