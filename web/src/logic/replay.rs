//! The session replay: the pointer path and the clicks played back at real speed. The player
//! is a clock over event time; the canvas draws what [`Replay::frame`] returns.

use ghosttrack_wire::{ClickMark, PointerSample};

/// Pauses longer than this are shortened to it, so a visitor reading a page for ten minutes
/// does not make the merchant watch an empty canvas.
pub const MAX_GAP_MS: i64 = 2_000;

#[derive(Clone, Debug, PartialEq)]
pub struct Replay {
    samples: Vec<PointerSample>,
    clicks: Vec<ClickMark>,
    /// Playback position on the compressed timeline, in ms from the first sample.
    position: i64,
    playing: bool,
}

/// What to draw at the current position.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame<'a> {
    /// The path so far.
    pub path: &'a [PointerSample],
    /// Clicks so far.
    pub clicks: &'a [ClickMark],
    /// Where the pointer is now.
    pub cursor: Option<(i32, i32)>,
}

impl Replay {
    /// Samples and clicks in any order; both are sorted by time and gaps are compressed.
    pub fn new(mut samples: Vec<PointerSample>, mut clicks: Vec<ClickMark>) -> Replay {
        samples.sort_by_key(|s| s.t);
        clicks.sort_by_key(|c| c.t);
        // Compress the shared timeline: every gap longer than MAX_GAP_MS shrinks to it.
        let mut times: Vec<i64> = samples.iter().map(|s| s.t).chain(clicks.iter().map(|c| c.t)).collect();
        times.sort_unstable();
        let compress = |t: i64| -> i64 {
            let mut shift = 0;
            let mut prev: Option<i64> = None;
            for &u in times.iter().take_while(|&&u| u <= t) {
                if let Some(p) = prev {
                    shift += (u - p - MAX_GAP_MS).max(0);
                }
                prev = Some(u);
            }
            t - shift - times.first().copied().unwrap_or(0)
        };
        let samples = samples.into_iter().map(|s| PointerSample { t: compress(s.t), ..s }).collect();
        let clicks = clicks.into_iter().map(|c| ClickMark { t: compress(c.t), ..c }).collect();
        Replay { samples, clicks, position: 0, playing: false }
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty() && self.clicks.is_empty()
    }

    /// Length of the (compressed) recording in ms.
    pub fn duration(&self) -> i64 {
        let last_sample = self.samples.last().map(|s| s.t).unwrap_or(0);
        let last_click = self.clicks.last().map(|c| c.t).unwrap_or(0);
        last_sample.max(last_click)
    }

    pub fn position(&self) -> i64 {
        self.position
    }

    pub fn playing(&self) -> bool {
        self.playing
    }

    /// Play from the current position; at the end, play restarts from the beginning.
    pub fn play(&mut self) {
        if self.position >= self.duration() {
            self.position = 0;
        }
        self.playing = !self.is_empty();
    }

    pub fn pause(&mut self) {
        self.playing = false;
    }

    pub fn toggle(&mut self) {
        if self.playing { self.pause() } else { self.play() }
    }

    /// Advances the clock by `elapsed_ms` of wall time (real speed); stops at the end.
    pub fn tick(&mut self, elapsed_ms: i64) {
        if !self.playing {
            return;
        }
        self.position = (self.position + elapsed_ms.max(0)).min(self.duration());
        if self.position >= self.duration() {
            self.playing = false;
        }
    }

    /// Jumps to a position (clamped), e.g. from a scrubber.
    pub fn seek(&mut self, position: i64) {
        self.position = position.clamp(0, self.duration());
    }

    /// The path, clicks and cursor at the current position.
    pub fn frame(&self) -> Frame<'_> {
        let n = self.samples.partition_point(|s| s.t <= self.position);
        let c = self.clicks.partition_point(|c| c.t <= self.position);
        let path = &self.samples[..n];
        Frame { path, clicks: &self.clicks[..c], cursor: path.last().map(|s| (s.x, s.y)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn s(t: i64, x: i32, y: i32) -> PointerSample {
        PointerSample { t, x, y }
    }

    fn click(t: i64) -> ClickMark {
        ClickMark { t, x: 5, y: 5, target: "button#buy".into() }
    }

    fn replay() -> Replay {
        // Out of order on purpose; a 60 s pause between 1100 and 61100.
        Replay::new(vec![s(1100, 10, 10), s(1000, 0, 0), s(61_100, 20, 20)], vec![click(61_150)])
    }

    #[test]
    fn long_pauses_are_compressed_and_times_start_at_zero() {
        let r = replay();
        assert_eq!(r.duration(), 100 + MAX_GAP_MS + 50);
    }

    #[rstest]
    #[case(0, 1, None, 0)]
    #[case(100, 2, None, 0)]
    #[case(2_100, 3, None, 0)]
    #[case(2_150, 3, Some(()), 1)]
    fn frames_show_what_happened_up_to_the_position(
        #[case] position: i64,
        #[case] points: usize,
        #[case] _marker: Option<()>,
        #[case] clicks: usize,
    ) {
        let mut r = replay();
        r.seek(position);
        let f = r.frame();
        assert_eq!((f.path.len(), f.clicks.len()), (points, clicks));
        assert_eq!(f.cursor, f.path.last().map(|p| (p.x, p.y)));
    }

    #[test]
    fn playback_runs_at_real_speed_pauses_and_stops_at_the_end() {
        let mut r = replay();
        r.tick(500);
        assert_eq!(r.position(), 0, "paused: the clock stands still");
        r.play();
        r.tick(100);
        assert_eq!(r.position(), 100);
        r.toggle();
        r.tick(1_000);
        assert_eq!(r.position(), 100);
        r.toggle();
        r.tick(1_000_000);
        assert_eq!(r.position(), r.duration());
        assert!(!r.playing());
        r.play();
        assert_eq!(r.position(), 0, "play at the end restarts");
    }

    #[test]
    fn an_empty_recording_never_plays() {
        let mut r = Replay::new(Vec::new(), Vec::new());
        r.play();
        assert!(!r.playing() && r.frame().cursor.is_none());
    }
}
