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
    /// Pointer windows ([`POINTER_WINDOW_STEPS`] steps of one movement, at least
    /// [`POINTER_WINDOW_MIN_PX`] long), and those that are near-perfect lines and those at a
    /// near-constant speed (see [`pointer_windows`]).
    /// Shared state holds these in `Slot`s; a change of this struct's fields needs a new
    /// `redis_store::SLOT_FORMAT` (postcard is not self-describing).
    pub pointer_windows: u32,
    pub straight_windows: u32,
    pub steady_windows: u32,
}

/// Dwell limits tracked per session (ms); `short_dwell` rules must use one of them.
pub const DWELL_LIMITS_MS: [u64; 3] = [2_000, 5_000, 10_000];

/// Steps per pointer window. Straightness and speed are judged over windows of this many
/// consecutive steps of one movement (~200 ms at the browser's frame rate): short enough that a
/// hand's curve or its acceleration shows inside a window, long enough that the tracker's 2 px
/// quantisation does not dominate. Calibrated with the thresholds below (docs/DETECTION.md).
pub const POINTER_WINDOW_STEPS: usize = 12;
/// A window shorter than this path length (px) is not judged: at under 4 px per step the 2 px
/// quantisation, not the mover, decides straightness and speed.
pub const POINTER_WINDOW_MIN_PX: f64 = 48.0;
/// A gap between two samples longer than this (ms) ends a movement: the pointer rested. The
/// tracker samples a moving pointer every 16–33 ms (frame rate, ≥ 16 ms apart).
pub const POINTER_PAUSE_MS: i32 = 100;
/// A window is a near-perfect line when displacement / path length is at least this. Human
/// windows computed from SapiMouse (signs lost, so an upper bound of their straightness) reach it
/// in ~10 % of windows; a quantised straight line at ≥ 25 px per step always does (at 16 px per
/// step ~90 % of its windows, at 12 px ~40 %: the 2 px grid zigzags).
pub const STRAIGHT_MIN: f64 = 0.998;
/// A window moves at a near-constant speed when the coefficient of variation (std / mean) of its
/// step lengths is at most this. Humans accelerate and decelerate: ~1 % of SapiMouse windows are
/// this steady; a quantised interpolated line at ≥ 10 px per step always is (at 8 px, 99 % of
/// its windows).
pub const STEADY_CV_MAX: f64 = 0.15;

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
                let PathSummary { steps, repeats, windows: w } = path_summary(samples);
                self.pointer_steps = self.pointer_steps.saturating_add(steps);
                self.pointer_repeats = self.pointer_repeats.saturating_add(repeats);
                self.pointer_windows = self.pointer_windows.saturating_add(w.windows);
                self.straight_windows = self.straight_windows.saturating_add(w.straight);
                self.steady_windows = self.steady_windows.saturating_add(w.steady);
                self.interactions = self.interactions.saturating_add(steps + 1);
            }
            _ => {}
        }
    }

    /// Whether `feature` holds, with the counts for the reason (`count`, `detail`).
    pub fn check(&self, feature: &Feature) -> Option<(u32, String)> {
        let count = self.holds(feature)?;
        Some((count, self.detail(feature)))
    }

    /// Whether `feature` holds, with the count for the reason; without the sentence, which
    /// [`check`](Self::check) adds. A session keeps holding a feature on each of its events while
    /// the rule's cooldown silences it, so the engine asks this first.
    pub fn holds(&self, feature: &Feature) -> Option<u32> {
        let share = |part: u32, whole: u32| if whole == 0 { 0.0 } else { f64::from(part) / f64::from(whole) };
        match *feature {
            Feature::NoInteraction { min_pageviews } => {
                (self.pageviews >= min_pageviews && self.interactions == 0).then_some(self.pageviews)
            }
            Feature::RepeatedPointerSteps { min_steps, min_share } => {
                let s = share(self.pointer_repeats, self.pointer_steps);
                (self.pointer_steps >= min_steps && s >= min_share).then_some(self.pointer_repeats)
            }
            Feature::StraightPointer { min_windows, min_share } => {
                let s = share(self.straight_windows, self.pointer_windows);
                (self.pointer_windows >= min_windows && s >= min_share).then_some(self.straight_windows)
            }
            Feature::SteadyPointer { min_windows, min_share } => {
                let s = share(self.steady_windows, self.pointer_windows);
                (self.pointer_windows >= min_windows && s >= min_share).then_some(self.steady_windows)
            }
            Feature::ClicksWithoutApproach { min_clicks, min_share } => {
                let s = share(self.clicks_without_approach, self.clicks);
                (self.clicks >= min_clicks && self.touches == 0 && s >= min_share)
                    .then_some(self.clicks_without_approach)
            }
            Feature::ClicksWithoutScroll { min_clicks, min_pageviews } => {
                (self.clicks >= min_clicks && self.pageviews >= min_pageviews && self.scrolls == 0)
                    .then_some(self.clicks)
            }
            Feature::ShortDwell { min_pageviews, max_dwell_ms, min_share } => {
                let i = DWELL_LIMITS_MS.iter().position(|l| *l == max_dwell_ms)?;
                let short = self.dwells_under[i];
                (self.pageviews >= min_pageviews && share(short, self.dwell_pairs) >= min_share).then_some(short)
            }
        }
    }

    /// The sentence of a reason for `feature` (see [`check`](Self::check)).
    fn detail(&self, feature: &Feature) -> String {
        match *feature {
            Feature::NoInteraction { .. } => {
                format!("{} pages with no pointer, touch, key or scroll", self.pageviews)
            }
            Feature::RepeatedPointerSteps { .. } => format!(
                "{} of {} pointer steps repeat the previous step exactly",
                self.pointer_repeats, self.pointer_steps
            ),
            Feature::StraightPointer { .. } => format!(
                "{} of {} pointer movement windows are straight lines (displacement / path ≥ {STRAIGHT_MIN})",
                self.straight_windows, self.pointer_windows
            ),
            Feature::SteadyPointer { .. } => format!(
                "{} of {} pointer movement windows keep a constant speed (step-length variation ≤ {STEADY_CV_MAX})",
                self.steady_windows, self.pointer_windows
            ),
            Feature::ClicksWithoutApproach { .. } => format!(
                "{} of {} clicks had no pointer movement before them",
                self.clicks_without_approach, self.clicks
            ),
            Feature::ClicksWithoutScroll { .. } => {
                format!("{} clicks over {} pages and never a scroll, wheel or touch", self.clicks, self.pageviews)
            }
            Feature::ShortDwell { max_dwell_ms, .. } => {
                // `holds` found this limit among DWELL_LIMITS_MS.
                let i = DWELL_LIMITS_MS.iter().position(|l| *l == max_dwell_ms).unwrap_or(0);
                format!("{} of {} pages left within {} s", self.dwells_under[i], self.dwell_pairs, max_dwell_ms / 1000)
            }
        }
    }
}

/// (steps, exact repeats) of one self-contained `[dt,dx,dy, …]` path; the first triple is an
/// absolute position, not a step.
pub fn repeated_steps(samples: &[i32]) -> (u32, u32) {
    let p = path_summary(samples);
    (p.steps, p.repeats)
}

/// Judged pointer windows of one path and how many of them were straight or steady.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PointerWindows {
    pub windows: u32,
    pub straight: u32,
    pub steady: u32,
}

/// Steps with both components below this (px, absolute) take their length from a table.
const STEP_TABLE: usize = 64;

/// The length of one pointer step: `hypot(dx, dy)`, bit for bit. Not `sqrt(dx² + dy²)`: the two
/// differ in the last bit for some steps (e.g. 27, 17), and the calibrated thresholds were
/// measured with `hypot`. glibc's `hypot` costs ~30 ns and a path has ~30 steps, nearly all of
/// them short, so lengths of steps under [`STEP_TABLE`] px are computed once, by `hypot`
/// itself, into a 32 KiB table (`hypot` works on absolute values: the sign does not matter,
/// which `step_table_is_hypot` checks on every integer step the table covers).
fn step_length(dx: i32, dy: i32) -> f64 {
    static TABLE: std::sync::LazyLock<Box<[f64]>> = std::sync::LazyLock::new(|| {
        (0..STEP_TABLE * STEP_TABLE).map(|i| ((i / STEP_TABLE) as f64).hypot((i % STEP_TABLE) as f64)).collect()
    });
    let (ax, ay) = (dx.unsigned_abs() as usize, dy.unsigned_abs() as usize);
    if ax < STEP_TABLE && ay < STEP_TABLE { TABLE[ax * STEP_TABLE + ay] } else { f64::from(dx).hypot(f64::from(dy)) }
}

/// What one pointer path adds to its session: [`repeated_steps`] and [`pointer_windows`],
/// computed in one pass over the samples (paths are a sixth of the tracker's events).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathSummary {
    pub steps: u32,
    pub repeats: u32,
    pub windows: PointerWindows,
}

/// Splits one self-contained `[dt,dx,dy, …]` path into movements (a gap over
/// [`POINTER_PAUSE_MS`] or a zero step ends one), cuts each movement into consecutive windows of
/// [`POINTER_WINDOW_STEPS`] steps (a shorter rest is not judged), and judges each window at
/// least [`POINTER_WINDOW_MIN_PX`] long: straight (displacement / path length ≥
/// [`STRAIGHT_MIN`]) and steady (coefficient of variation of step lengths ≤ [`STEADY_CV_MAX`]).
pub fn pointer_windows(samples: &[i32]) -> PointerWindows {
    path_summary(samples).windows
}

/// [`PathSummary`] of one self-contained `[dt,dx,dy, …]` path; the first triple is an absolute
/// position, not a step. Zero steps are not steps (nor repeats) and end a movement.
pub fn path_summary(samples: &[i32]) -> PathSummary {
    let mut out = PathSummary::default();
    let mut previous: Option<(i32, i32)> = None;
    // The open window: step count, summed dx and dy, summed step lengths and their squares.
    let (mut n, mut sx, mut sy, mut len, mut len2) = (0usize, 0i64, 0i64, 0f64, 0f64);
    for triple in samples.chunks_exact(3).skip(1) {
        let (dt, dx, dy) = (triple[0], triple[1], triple[2]);
        if (dx, dy) == (0, 0) {
            n = 0;
            continue;
        }
        out.steps += 1;
        if previous == Some((dx, dy)) {
            out.repeats += 1;
        }
        previous = Some((dx, dy));
        if dt > POINTER_PAUSE_MS {
            n = 0;
        }
        if n == 0 {
            (sx, sy, len, len2) = (0, 0, 0.0, 0.0);
        }
        let step = step_length(dx, dy);
        n += 1;
        sx += i64::from(dx);
        sy += i64::from(dy);
        len += step;
        len2 += step * step;
        if n == POINTER_WINDOW_STEPS {
            n = 0;
            if len < POINTER_WINDOW_MIN_PX {
                continue;
            }
            let w = &mut out.windows;
            w.windows += 1;
            if (sx as f64).hypot(sy as f64) / len >= STRAIGHT_MIN {
                w.straight += 1;
            }
            let mean = len / POINTER_WINDOW_STEPS as f64;
            let variance = (len2 / POINTER_WINDOW_STEPS as f64 - mean * mean).max(0.0);
            if variance.sqrt() / mean <= STEADY_CV_MAX {
                w.steady += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_table_is_hypot() {
        let reach = STEP_TABLE as i32 + 2;
        for dx in -reach..=reach {
            for dy in -reach..=reach {
                let want = f64::from(dx).hypot(f64::from(dy));
                assert_eq!(step_length(dx, dy).to_bits(), want.to_bits(), "step ({dx}, {dy})");
            }
        }
        // The reason for the table: the plain formula is not `hypot` for every step.
        let plain = |dx: i32, dy: i32| f64::from(dx * dx + dy * dy).sqrt();
        assert!((1..STEP_TABLE as i32).any(|dx| (1..STEP_TABLE as i32).any(|dy| plain(dx, dy) != step_length(dx, dy))));
    }

    /// A path from (400, 300) of `steps` steps `dt` ms apart.
    fn path(steps: usize, dt: i32, mut step: impl FnMut(usize) -> (i32, i32)) -> Vec<i32> {
        let mut p = vec![0, 400, 300];
        for i in 0..steps {
            let (dx, dy) = step(i);
            p.extend([dt, dx, dy]);
        }
        p
    }

    /// A straight line at `speed` px per step and `angle`, quantised to 2 px like the tracker.
    fn line(steps: usize, speed: f64, angle: f64, accelerate: bool) -> Vec<i32> {
        let q = |v: f64| (2.0 * (v / 2.0).round()) as i32;
        let (mut x, mut y, mut qx, mut qy) = (400.0, 300.0, 400, 300);
        path(steps, 16, |i| {
            let v = if accelerate { speed * (0.2 + 1.6 * (i % 12) as f64 / 11.0) } else { speed };
            x += v * angle.cos();
            y += v * angle.sin();
            let (nx, ny) = (q(x), q(y));
            let step = (nx - qx, ny - qy);
            (qx, qy) = (nx, ny);
            step
        })
    }

    #[test]
    fn an_interpolated_line_is_straight_and_steady() {
        // From 25 px per step every window of a quantised line is straight (slower lines are
        // straight less often: the 2 px grid zigzags), and from 8 px per step steady.
        for angle in [0.1, 0.7, 1.3, 2.5, 4.0, 5.5] {
            let w = pointer_windows(&line(60, 25.0, angle, false));
            assert_eq!(w, PointerWindows { windows: 5, straight: 5, steady: 5 }, "angle {angle}");
        }
    }

    #[test]
    fn an_accelerating_line_is_not_steady() {
        let w = pointer_windows(&line(60, 20.0, 0.7, true));
        assert_eq!((w.windows, w.steady), (5, 0));
        let w = pointer_windows(&line(60, 8.0, 0.7, false));
        assert_eq!((w.windows, w.steady), (5, 5), "the same line at a constant 8 px per step is steady");
    }

    #[test]
    fn a_curve_is_not_straight() {
        // A quarter circle of radius ~300 px over 48 steps.
        let mut p = vec![0, 400, 300];
        let (mut px, mut py) = (300i32, 0i32);
        for i in 1..=48 {
            let a = std::f64::consts::FRAC_PI_2 * f64::from(i) / 48.0;
            let (x, y) = ((300.0 * a.cos()).round() as i32, (300.0 * a.sin()).round() as i32);
            p.extend([16, x - px, y - py]);
            (px, py) = (x, y);
        }
        let w = pointer_windows(&p);
        assert_eq!((w.windows, w.straight), (4, 0), "{w:?}");
        assert_eq!(w.steady, 4, "a constant-speed arc is steady though not straight");
    }

    #[test]
    fn pauses_and_short_movements_are_not_judged() {
        // 11 steps, a rest, 11 steps: no window is complete.
        let mut p = path(11, 16, |_| (10, 4));
        p.extend([400, 10, 4]);
        p.extend(path(10, 16, |_| (10, 4))[3..].iter());
        assert_eq!(pointer_windows(&p).windows, 0);
        // A zero step ends the movement too.
        let mut z = path(6, 16, |_| (10, 4));
        z.extend([16, 0, 0]);
        z.extend(path(6, 16, |_| (10, 4))[3..].iter());
        assert_eq!(pointer_windows(&z).windows, 0);
        // Twelve 2 px steps are 24 px: too short to judge; twelve 4 px steps are judged.
        assert_eq!(pointer_windows(&path(12, 16, |_| (2, 0))).windows, 0);
        assert_eq!(pointer_windows(&path(12, 16, |_| (4, 0))).windows, 1);
        // The gap limit itself still continues the movement.
        let mut edge = path(6, 16, |_| (10, 4));
        edge.extend([POINTER_PAUSE_MS, 10, 4]);
        edge.extend(path(5, 16, |_| (10, 4))[3..].iter());
        assert_eq!(pointer_windows(&edge).windows, 1);
    }

    #[test]
    fn a_wobbly_hand_is_neither() {
        let w = pointer_windows(&path(48, 17, |i| (8 + (i % 5) as i32 * 4, ((i * 7) % 9) as i32 - 4)));
        assert_eq!((w.windows, w.straight, w.steady), (4, 0, 0), "{w:?}");
    }

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
