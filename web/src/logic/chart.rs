//! The visitors-vs-bots chart: scaling a series into an SVG box with "nice" axis ticks.

use ghosttrack_wire::SeriesPoint;

/// Drawing area of the chart, in SVG user units.
pub const WIDTH: f64 = 640.0;
pub const HEIGHT: f64 = 220.0;
/// Room for the y-axis labels on the left and the x-axis labels below.
pub const PAD_LEFT: f64 = 40.0;
pub const PAD_BOTTOM: f64 = 24.0;

/// A chart ready to draw: two polylines and the y ticks.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    /// `points` attribute of the humans line (sessions − automated).
    pub humans: String,
    /// `points` attribute of the bots line (automated sessions).
    pub bots: String,
    /// (y position, label) of each horizontal grid line.
    pub ticks: Vec<(f64, String)>,
    pub max: i64,
}

/// The smallest "nice" number (1, 2, 5 × 10ⁿ) ≥ `v` (at least 1).
pub fn nice_ceiling(v: i64) -> i64 {
    if v <= 1 {
        return 1;
    }
    let mut magnitude = 1;
    while magnitude * 10 <= v {
        magnitude *= 10;
    }
    for step in [1, 2, 5, 10] {
        if step * magnitude >= v {
            return step * magnitude;
        }
    }
    10 * magnitude
}

/// Scales the series: x spreads buckets evenly, y maps 0..nice(max) onto the plot height.
pub fn scale(series: &[SeriesPoint]) -> Chart {
    let humans_of = |p: &SeriesPoint| (p.sessions - p.automated_sessions).max(0);
    let peak = series.iter().map(|p| humans_of(p).max(p.automated_sessions)).max().unwrap_or(0);
    let max = nice_ceiling(peak);
    let plot_w = WIDTH - PAD_LEFT;
    let plot_h = HEIGHT - PAD_BOTTOM;
    let x = |i: usize| {
        if series.len() <= 1 {
            PAD_LEFT + plot_w / 2.0
        } else {
            PAD_LEFT + plot_w * i as f64 / (series.len() - 1) as f64
        }
    };
    let y = |v: i64| plot_h - plot_h * v as f64 / max as f64;
    let line = |value: &dyn Fn(&SeriesPoint) -> i64| {
        series.iter().enumerate().map(|(i, p)| format!("{:.1},{:.1}", x(i), y(value(p)))).collect::<Vec<_>>().join(" ")
    };
    // Whole-number ticks that divide the nice maximum evenly (1, 2, 5 × 10ⁿ).
    let steps = if max <= 5 {
        max
    } else if max % 4 == 0 {
        4
    } else {
        5
    };
    let ticks = (0..=steps).map(|k| (y(max * k / steps), (max * k / steps).to_string())).collect();
    Chart { humans: line(&humans_of), bots: line(&|p| p.automated_sessions), ticks, max }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn point(sessions: i64, automated: i64) -> SeriesPoint {
        SeriesPoint { start: 0, visitors: sessions, sessions, automated_sessions: automated }
    }

    #[rstest]
    #[case(0, 1)]
    #[case(1, 1)]
    #[case(3, 5)]
    #[case(7, 10)]
    #[case(10, 10)]
    #[case(11, 20)]
    #[case(199, 200)]
    #[case(201, 500)]
    fn axis_maxima_are_nice(#[case] peak: i64, #[case] expected: i64) {
        assert_eq!(nice_ceiling(peak), expected);
    }

    #[test]
    fn humans_and_bots_are_scaled_to_the_plot() {
        let chart = scale(&[point(10, 2), point(4, 4)]);
        assert_eq!(chart.max, 10);
        // 8 humans of 10 at x = left edge; 0 humans at the right edge sit on the baseline.
        assert_eq!(chart.humans, "40.0,39.2 640.0,196.0");
        assert_eq!(chart.bots, "40.0,156.8 640.0,117.6");
        assert_eq!(chart.ticks.first().unwrap(), &(196.0, "0".to_owned()));
        assert_eq!(chart.ticks.last().unwrap(), &(0.0, "10".to_owned()));
    }

    #[rstest]
    #[case(2, &["0", "1", "2"])]
    #[case(10, &["0", "2", "4", "6", "8", "10"])]
    #[case(20, &["0", "5", "10", "15", "20"])]
    fn ticks_are_distinct_whole_numbers(#[case] peak: i64, #[case] labels: &[&str]) {
        let chart = scale(&[point(peak, 0)]);
        let got: Vec<&str> = chart.ticks.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(got, labels);
    }

    #[test]
    fn an_empty_series_draws_nothing_and_does_not_divide_by_zero() {
        let chart = scale(&[]);
        assert_eq!((chart.humans.as_str(), chart.bots.as_str(), chart.max), ("", "", 1));
    }
}
