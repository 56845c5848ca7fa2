//! The Pages page: a page's click grid drawn over a wireframe of the page's proportions, and
//! the scroll-depth bars (share of sessions reaching each 10 % band).

use ghosttrack_wire::PageMap;

/// Width of the drawn wireframe in SVG units; its height follows the page's proportions.
pub const WIRE_WIDTH: f64 = 360.0;
/// The tallest wireframe drawn (very long pages are squeezed, the grid stays proportional).
pub const WIRE_MAX_HEIGHT: f64 = 1_200.0;
/// Heat steps of a cell (1 = fewest clicks).
pub const HEAT_LEVELS: usize = 5;

/// One drawn cell: position and size in the wireframe, heat level and its count.
#[derive(Clone, Debug, PartialEq)]
pub struct HeatCell {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub level: usize,
    pub clicks: i64,
    /// "Clicks in the top left: 12 (10 % of the page's clicks)"-style label.
    pub label: String,
}

/// The drawn click map.
#[derive(Clone, Debug, PartialEq)]
pub struct HeatMap {
    pub width: f64,
    pub height: f64,
    pub cells: Vec<HeatCell>,
    /// The busiest cell's clicks.
    pub max: i64,
}

/// Scales the grid onto a wireframe `WIRE_WIDTH` wide with the page's proportions (a square
/// when the size is unknown) and gives each non-empty cell a heat level relative to the busiest.
pub fn heatmap(m: &PageMap) -> HeatMap {
    let width = WIRE_WIDTH;
    let height = if m.page_width > 0 && m.page_height > 0 {
        (width * m.page_height as f64 / m.page_width as f64).clamp(width / 4.0, WIRE_MAX_HEIGHT)
    } else {
        width
    };
    let (cols, rows) = (m.cols.max(1) as f64, m.rows.max(1) as f64);
    let (w, h) = (width / cols, height / rows);
    let max = m.cells.iter().map(|c| c.clicks).max().unwrap_or(0);
    let cells = m
        .cells
        .iter()
        .filter(|c| c.clicks > 0 && c.col >= 0 && c.row >= 0 && c.col < m.cols && c.row < m.rows)
        .map(|c| {
            let share = if m.clicks > 0 { c.clicks as f64 / m.clicks as f64 } else { 0.0 };
            HeatCell {
                x: c.col as f64 * w,
                y: c.row as f64 * h,
                w,
                h,
                level: heat_level(c.clicks, max),
                clicks: c.clicks,
                label: format!(
                    "{} click{} {} across, {} down ({} of the page's clicks)",
                    c.clicks,
                    if c.clicks == 1 { "" } else { "s" },
                    crate::logic::format::percent((c.col as f64 + 0.5) / cols),
                    crate::logic::format::percent((c.row as f64 + 0.5) / rows),
                    crate::logic::format::percent(share),
                ),
            }
        })
        .collect();
    HeatMap { width, height, cells, max }
}

/// 1..=HEAT_LEVELS, linear in the cell's share of the busiest cell.
pub fn heat_level(clicks: i64, max: i64) -> usize {
    if clicks <= 0 || max <= 0 {
        return 0;
    }
    ((clicks as f64 / max as f64 * HEAT_LEVELS as f64).ceil() as usize).clamp(1, HEAT_LEVELS)
}

/// One scroll-depth bar: "reached 30 %", with the share of the page's scrolling sessions.
#[derive(Clone, Debug, PartialEq)]
pub struct DepthBar {
    /// 10, 20, … 100.
    pub depth: u32,
    pub sessions: i64,
    /// 0..1 of `scroll_sessions`.
    pub share: f64,
}

/// The ten bars, 10 % to 100 %.
pub fn depth_bars(m: &PageMap) -> Vec<DepthBar> {
    m.reach
        .iter()
        .enumerate()
        .map(|(i, &sessions)| DepthBar {
            depth: (i as u32 + 1) * 10,
            sessions,
            share: if m.scroll_sessions > 0 { sessions as f64 / m.scroll_sessions as f64 } else { 0.0 },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ghosttrack_wire::ClickCell;
    use rstest::rstest;

    fn map(page: (i64, i64), cells: Vec<(i32, i32, i64)>) -> PageMap {
        let clicks = cells.iter().map(|c| c.2).sum();
        PageMap {
            path: "/".into(),
            range: "24h".into(),
            cols: 24,
            rows: 48,
            page_width: page.0,
            page_height: page.1,
            clicks,
            cells: cells.into_iter().map(|(col, row, clicks)| ClickCell { col, row, clicks }).collect(),
            scroll_sessions: 4,
            reach: vec![4, 4, 3, 3, 2, 2, 1, 1, 1, 0],
        }
    }

    #[test]
    fn the_wireframe_keeps_the_pages_proportions_and_cells_tile_it() {
        let h = heatmap(&map((1280, 2560), vec![(0, 0, 1), (23, 47, 3)]));
        assert_eq!((h.width, h.height), (WIRE_WIDTH, 2.0 * WIRE_WIDTH));
        assert_eq!(h.max, 3);
        let last = &h.cells[1];
        assert!((last.x + last.w - h.width).abs() < 1e-9 && (last.y + last.h - h.height).abs() < 1e-9);
        assert_eq!((h.cells[0].level, last.level), (2, HEAT_LEVELS));
        assert!(last.label.starts_with("3 clicks"), "{}", last.label);
        assert!(last.label.ends_with("(75.0% of the page's clicks)"), "{}", last.label);
    }

    #[test]
    fn an_unknown_size_is_a_square_and_a_very_long_page_is_capped() {
        assert_eq!(heatmap(&map((0, 0), vec![])).height, WIRE_WIDTH);
        assert_eq!(heatmap(&map((400, 40_000), vec![])).height, WIRE_MAX_HEIGHT);
    }

    #[test]
    fn cells_outside_the_grid_are_not_drawn() {
        let h = heatmap(&map((1000, 1000), vec![(24, 0, 5), (0, 48, 5), (-1, 2, 1), (3, 3, 2)]));
        assert_eq!(h.cells.len(), 1);
    }

    #[rstest]
    #[case(0, 10, 0)]
    #[case(1, 10, 1)]
    #[case(2, 10, 1)]
    #[case(3, 10, 2)]
    #[case(10, 10, 5)]
    fn heat_is_linear_in_the_share_of_the_busiest_cell(#[case] clicks: i64, #[case] max: i64, #[case] level: usize) {
        assert_eq!(heat_level(clicks, max), level);
    }

    #[test]
    fn depth_bars_are_shares_of_the_scrolling_sessions() {
        let bars = depth_bars(&map((1, 1), vec![]));
        assert_eq!(bars.len(), 10);
        assert_eq!((bars[0].depth, bars[0].share), (10, 1.0));
        assert_eq!((bars[4].depth, bars[4].sessions, bars[4].share), (50, 2, 0.5));
        assert_eq!((bars[9].depth, bars[9].share), (100, 0.0));
    }
}
