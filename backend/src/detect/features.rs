//! Per-session behaviour features, summed from tracker events as they arrive, and the tests
//! behaviour rules run on them.

use super::event::{Body, DetectEvent};
use super::rules::Feature;

/// What one session did so far. Small and fixed-size: one per live session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionFeatures {
    pub pageviews: u32,
    /// Pointer moves, touches, keys, wheels, clicks, scrolls and pointer samples.
    pub interactions: u32,
    pub clicks: u32,
    pub clicks_without_approach: u32,
    /// Touch starts: taps have no pointer approach, so approach rules skip touch sessions.
    pub touches: u32,
    /// Scroll depth reports, wheel and touch events: evidence the page was moved.
    pub scrolls: u32,
    /// Pointer steps (samples after the first of each path).
    pub pointer_steps: u32,
    /// Steps whose (dx, dy) equals the previous step's.
    pub pointer_repeats: u32,
    pub last_pageview_ts: i64,
    /// Consecutive pageview pairs, and those closer than the rule's dwell limit are counted by
    /// the rule from `dwells`.
    pub dwell_pairs: u32,
    /// Pageview gaps under 2 s, 5 s and 10 s (the dwell limits rules may choose).
    pub dwells_under: [u32; 3],
}

/// Dwell limits tracked per session (ms); `short_dwell` rules must use one of them.
pub const DWELL_LIMITS_MS: [u64; 3] = [2_000, 5_000, 10_000];

impl SessionFeatures {
    pub fn update(&mut self, event: &DetectEvent) {
        match &event.body {
            Body::Pageview { .. } => {
                if self.pageviews > 0 {
                    let gap = (event.ts - self.last_pageview_ts).max(0) as u64;
                    self.dwell_pairs += 1;
                    for (i, limit) in DWELL_LIMITS_MS.iter().enumerate() {
                        if gap < *limit {
                            self.dwells_under[i] += 1;
                        }
                    }
                }
                self.pageviews += 1;
                self.last_pageview_ts = event.ts;
            }
            Body::Click { approach } => {
                self.clicks += 1;
                self.interactions += 1;
                if !approach {
                    self.clicks_without_approach += 1;
                }
            }
            Body::Scroll { .. } => {
                self.scrolls += 1;
                self.interactions += 1;
            }
            Body::Interaction { keys, touches, moves, wheels } => {
                self.interactions = self.interactions.saturating_add(keys + touches + moves + wheels);
                self.scrolls = self.scrolls.saturating_add(wheels + touches);
                self.touches = self.touches.saturating_add(*touches);
            }
            Body::PointerPath { samples } => {
                let (steps, repeats) = repeated_steps(samples);
                self.pointer_steps = self.pointer_steps.saturating_add(steps);
                self.pointer_repeats = self.pointer_repeats.saturating_add(repeats);
                self.interactions = self.interactions.saturating_add(steps + 1);
            }
            _ => {}
        }
    }

    /// Whether `feature` holds, with the counts for the reason (`count`, `detail`).
    pub fn check(&self, feature: &Feature) -> Option<(u32, String)> {
        let share = |part: u32, whole: u32| if whole == 0 { 0.0 } else { f64::from(part) / f64::from(whole) };
        match *feature {
            Feature::NoInteraction { min_pageviews } => (self.pageviews >= min_pageviews && self.interactions == 0)
                .then(|| (self.pageviews, format!("{} pages with no pointer, touch, key or scroll", self.pageviews))),
            Feature::RepeatedPointerSteps { min_steps, min_share } => {
                let s = share(self.pointer_repeats, self.pointer_steps);
                (self.pointer_steps >= min_steps && s >= min_share).then(|| {
                    (
                        self.pointer_repeats,
                        format!(
                            "{} of {} pointer steps repeat the previous step exactly",
                            self.pointer_repeats, self.pointer_steps
                        ),
                    )
                })
            }
            Feature::ClicksWithoutApproach { min_clicks, min_share } => {
                let s = share(self.clicks_without_approach, self.clicks);
                (self.clicks >= min_clicks && self.touches == 0 && s >= min_share).then(|| {
                    (
                        self.clicks_without_approach,
                        format!(
                            "{} of {} clicks had no pointer movement before them",
                            self.clicks_without_approach, self.clicks
                        ),
                    )
                })
            }
            Feature::ClicksWithoutScroll { min_clicks, min_pageviews } => {
                (self.clicks >= min_clicks && self.pageviews >= min_pageviews && self.scrolls == 0).then(|| {
                    (
                        self.clicks,
                        format!(
                            "{} clicks over {} pages and never a scroll, wheel or touch",
                            self.clicks, self.pageviews
                        ),
                    )
                })
            }
            Feature::ShortDwell { min_pageviews, max_dwell_ms, min_share } => {
                let i = DWELL_LIMITS_MS.iter().position(|l| *l == max_dwell_ms)?;
                let short = self.dwells_under[i];
                (self.pageviews >= min_pageviews && share(short, self.dwell_pairs) >= min_share).then(|| {
                    (short, format!("{short} of {} pages left within {} s", self.dwell_pairs, max_dwell_ms / 1000))
                })
            }
        }
    }
}

/// (steps, exact repeats) of one self-contained `[dt,dx,dy, …]` path; the first triple is an
/// absolute position, not a step.
pub fn repeated_steps(samples: &[i32]) -> (u32, u32) {
    let mut steps = 0;
    let mut repeats = 0;
    let mut previous: Option<(i32, i32)> = None;
    for triple in samples.chunks_exact(3).skip(1) {
        let step = (triple[1], triple[2]);
        if step == (0, 0) {
            continue;
        }
        steps += 1;
        if previous == Some(step) {
            repeats += 1;
        }
        previous = Some(step);
    }
    (steps, repeats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_straight_scripted_path_repeats_every_step() {
        let mut p = vec![0, 100, 100];
        for _ in 0..20 {
            p.extend([16, 10, 4]);
        }
        assert_eq!(repeated_steps(&p), (20, 19));
    }

    #[test]
    fn a_varied_path_repeats_little() {
        let p = [0, 5, 5, 16, 2, 4, 17, 6, 2, 16, 4, 4, 20, 2, 4];
        assert_eq!(repeated_steps(&p), (4, 0));
    }
}
