//! Bodies of the Geography and Pages (click and scroll maps) pages.

use serde::{Deserialize, Serialize};

wire! {
    /// Traffic and threats of one country.
    pub struct CountryStats {
        /// ISO 3166-1 alpha-2 code; `null` when the country is unknown (no geo database, private network).
        pub country: Option<String>,
        /// Distinct daily visitor ids among sessions started in the range.
        pub visitors: i64,
        pub sessions: i64,
        /// Sessions of the country a verdict in the range challenged or blocked.
        pub threats: i64,
    }
}

wire! {
    /// The Geography page: visitors and threats by country over a range ending now.
    pub struct Geography {
        /// `24h`, `7d` or `30d`.
        pub range: String,
        pub from: i64,
        pub to: i64,
        /// Most visitors first; the unknown country (if any) among them.
        pub countries: Vec<CountryStats>,
    }
}

wire! {
    /// A page with clicks or scroll depths in the range.
    pub struct PageActivity {
        pub path: String,
        pub clicks: i64,
        /// Sessions that reported how far they scrolled the page.
        pub scroll_sessions: i64,
    }
}

wire! {
    /// The Pages list: pages with click or scroll data, most clicked first.
    pub struct PageActivityList {
        pub range: String,
        pub pages: Vec<PageActivity>,
    }
}

wire! {
    /// Clicks in one cell of a page's click grid.
    pub struct ClickCell {
        /// 0-based column (of `cols`, left to right) and row (of `rows`, top to bottom).
        pub col: i32,
        pub row: i32,
        pub clicks: i64,
    }
}

wire! {
    /// One page's click map and scroll-depth map: aggregates only (grid counts and shares), no
    /// single click and nothing of the page's content.
    pub struct PageMap {
        pub path: String,
        pub range: String,
        /// The grid: columns across the page's width, rows down its full height.
        pub cols: i32,
        pub rows: i32,
        /// Mean page size of the clicks, px (the wireframe's proportions); 0 without clicks.
        pub page_width: i64,
        pub page_height: i64,
        /// Clicks counted (those that reported the page's size).
        pub clicks: i64,
        /// Non-empty cells.
        pub cells: Vec<ClickCell>,
        /// Sessions that reported a scroll depth on the page.
        pub scroll_sessions: i64,
        /// `reach[i]`: sessions whose deepest scroll reached `(i + 1) × 10 %` of the page (10 bands).
        pub reach: Vec<i64>,
    }
}
