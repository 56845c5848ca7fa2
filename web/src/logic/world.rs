//! The Geography page's world map: the bundled shapes (`world-110m.txt`, generated offline by
//! `web/map/generate.mjs` from world-atlas, Natural Earth 1:110m) and the choropleth shading.

use std::collections::HashMap;

use ghosttrack_wire::CountryStats;

/// `W H`, then `CC<TAB>Name<TAB>path` per country (relative SVG path commands, Equal Earth
/// projection, Antarctica left out).
const ASSET: &str = include_str!("world-110m.txt");

/// Shading steps of the choropleth (0: no traffic).
pub const LEVELS: usize = 5;

/// One country's shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Shape {
    /// ISO 3166-1 alpha-2.
    pub code: &'static str,
    pub name: &'static str,
    /// SVG path data in the map's viewBox.
    pub d: &'static str,
}

/// The map: its viewBox size and the shapes, by code.
#[derive(Clone, Debug)]
pub struct WorldMap {
    pub width: u32,
    pub height: u32,
    pub shapes: Vec<Shape>,
}

impl WorldMap {
    /// The bundled map. Malformed lines (there are none in the committed asset) are skipped.
    pub fn bundled() -> WorldMap {
        parse(ASSET)
    }

    /// A country's English name from the map's table, else its code.
    pub fn name_of<'a>(&self, code: &'a str) -> &'a str {
        self.shapes.iter().find(|s| s.code == code).map_or(code, |s| s.name)
    }
}

fn parse(text: &'static str) -> WorldMap {
    let mut lines = text.lines();
    let (width, height) = lines
        .next()
        .and_then(|l| l.split_once(' '))
        .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
        .unwrap_or((960, 420));
    let shapes = lines
        .filter_map(|l| {
            let mut parts = l.splitn(3, '\t');
            let (code, name, d) = (parts.next()?, parts.next()?, parts.next()?);
            (code.len() == 2 && d.starts_with('m')).then_some(Shape { code, name, d })
        })
        .collect();
    WorldMap { width, height, shapes }
}

/// What the metric of the map is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    Visitors,
    Threats,
}

impl Metric {
    pub fn of(self, c: &CountryStats) -> i64 {
        match self {
            Metric::Visitors => c.visitors,
            Metric::Threats => c.threats,
        }
    }
}

/// The shading of each country for one metric, and the legend's ranges.
#[derive(Clone, Debug, PartialEq)]
pub struct Choropleth {
    /// Code → (level 1..=LEVELS, the country's stats); countries without traffic are absent.
    pub levels: HashMap<String, (usize, CountryStats)>,
    /// Upper bound (inclusive) of each level, ascending; fewer than LEVELS when the maximum is small.
    pub legend: Vec<(usize, i64, i64)>,
    pub max: i64,
}

/// Level 1..=LEVELS of `value` on a scale up to `max`: square-root steps, so a few large
/// countries do not wash every other one out to the lightest shade.
pub fn level(value: i64, max: i64) -> usize {
    if value <= 0 || max <= 0 {
        return 0;
    }
    let share = (value as f64 / max as f64).sqrt();
    ((share * LEVELS as f64).ceil() as usize).clamp(1, LEVELS)
}

/// The smallest value reaching `level` on a scale up to `max`: a binary search over [`level`]
/// itself, so the legend and the shading can never disagree by a rounding.
fn level_floor(level_wanted: usize, max: i64) -> i64 {
    let (mut lo, mut hi) = (1, max.max(1));
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if level(mid, max) >= level_wanted { hi = mid } else { lo = mid + 1 }
    }
    lo
}

pub fn choropleth(countries: &[CountryStats], metric: Metric) -> Choropleth {
    let max = countries.iter().filter(|c| c.country.is_some()).map(|c| metric.of(c)).max().unwrap_or(0);
    let levels = countries
        .iter()
        .filter_map(|c| {
            let code = c.country.clone()?;
            let l = level(metric.of(c), max);
            (l > 0).then(|| (code, (l, c.clone())))
        })
        .collect();
    let mut legend = Vec::new();
    if max > 0 {
        for l in 1..=LEVELS {
            let lo = level_floor(l, max);
            let hi = if l == LEVELS { max } else { level_floor(l + 1, max) - 1 };
            if lo <= hi && level(lo, max) == l {
                legend.push((l, lo, hi));
            }
        }
    }
    Choropleth { levels, legend, max }
}

/// The hover/focus title of a country on the map.
pub fn title(name: &str, stats: Option<&CountryStats>) -> String {
    match stats {
        Some(c) => format!(
            "{name}: {} visitors, {} sessions, {} threat{}",
            c.visitors,
            c.sessions,
            c.threats,
            if c.threats == 1 { "" } else { "s" }
        ),
        None => format!("{name}: no visitors"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn stats(code: Option<&str>, visitors: i64, threats: i64) -> CountryStats {
        CountryStats { country: code.map(str::to_owned), visitors, sessions: visitors, threats }
    }

    #[test]
    fn the_bundled_map_has_the_worlds_countries_keyed_by_alpha_2() {
        let map = WorldMap::bundled();
        assert_eq!((map.width, map.height), (960, 422));
        assert!(map.shapes.len() > 170, "{}", map.shapes.len());
        for code in ["DE", "US", "GB", "BR", "JP", "XK", "ZA", "AU", "IN", "FR"] {
            assert!(map.shapes.iter().any(|s| s.code == code), "{code} missing");
        }
        assert!(!map.shapes.iter().any(|s| s.code == "AQ"), "Antarctica is left out");
        let codes: std::collections::HashSet<_> = map.shapes.iter().map(|s| s.code).collect();
        assert_eq!(codes.len(), map.shapes.len(), "one shape per code");
        assert_eq!(map.name_of("DE"), "Germany");
        assert_eq!(map.name_of("ZZ"), "ZZ");
    }

    #[rstest]
    #[case(0, 100, 0)]
    #[case(1, 100, 1)]
    #[case(4, 100, 1)]
    #[case(5, 100, 2)]
    #[case(25, 100, 3)]
    #[case(100, 100, 5)]
    #[case(7, 0, 0)]
    fn levels_follow_the_square_root_of_the_share(#[case] value: i64, #[case] max: i64, #[case] expected: usize) {
        assert_eq!(level(value, max), expected);
    }

    #[test]
    fn the_legend_covers_one_to_max_without_gaps_and_agrees_with_level() {
        for max in [1, 2, 3, 7, 10, 99, 100, 12_345] {
            let c = choropleth(&[stats(Some("DE"), max, 0)], Metric::Visitors);
            let legend = &c.legend;
            assert_eq!(legend.first().map(|l| l.1), Some(1), "max {max}");
            assert_eq!(legend.last().map(|l| l.2), Some(max), "max {max}");
            for pair in legend.windows(2) {
                assert_eq!(pair[0].2 + 1, pair[1].1, "max {max}: {legend:?}");
            }
            for &(l, lo, hi) in legend {
                assert_eq!((level(lo, max), level(hi, max)), (l, l), "max {max}: {legend:?}");
            }
        }
    }

    #[test]
    fn the_unknown_country_is_not_shaded_and_does_not_set_the_scale() {
        let data = [stats(None, 500, 9), stats(Some("DE"), 10, 2), stats(Some("FR"), 1, 0)];
        let visitors = choropleth(&data, Metric::Visitors);
        assert_eq!(visitors.max, 10);
        assert_eq!(visitors.levels["DE"].0, LEVELS);
        assert_eq!(visitors.levels["FR"].0, 2);
        let threats = choropleth(&data, Metric::Threats);
        assert_eq!(threats.max, 2);
        assert!(!threats.levels.contains_key("FR"), "no threats: not shaded");
        assert!(choropleth(&[], Metric::Visitors).legend.is_empty());
    }

    #[test]
    fn titles_give_the_counts() {
        assert_eq!(title("Germany", Some(&stats(Some("DE"), 3, 1))), "Germany: 3 visitors, 3 sessions, 1 threat");
        assert_eq!(title("France", None), "France: no visitors");
    }
}
