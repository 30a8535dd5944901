//! How many batch rows upload at once when the user did not say: start from the cores, then
//! let the measured combined upload rate decide. A row already converts on every core and keeps
//! several parts in flight, so on a fast nearby link more rows only compete for the same CPU
//! and link; on a far or per-connection-limited link each added row adds its own share. The
//! tuner climbs while an added row still brings at least half the rate an average row brings,
//! steps back when it does not, and probes again when the rate moves a lot (the link changed)
//! or, once in a while, to find out whether it did.
//!
//! Pure: it sees ticks of (seconds, bytes, parts, rows sending), so its tests drive it with a
//! modelled link instead of a clock.

pub use imgport_base::climb::{ChangeReason, LimitChange};
use imgport_base::climb::{Climber, Gap, Pace, Step};

/// Rows are measured over at least 5 s and 12 finished parts per sending row (parts finishing
/// in bursts must not decide the rate), one row at a time.
const ROWS: Pace = Pace {
    min_window_secs: 5.0,
    min_parts_per_unit: 12,
    step: Step::One,
    reprobe_factor: 1.5,
    reprobe_after: 12,
    gap: Gap::Restart,
};

/// Picks the number of rows uploading at once from the rate they reach together (the shared
/// [`Climber`] at the pace of rows).
#[derive(Debug)]
pub struct Tuner(Climber);

impl Tuner {
    /// Starts at `start` rows and never goes above `max` (nor below one).
    pub fn new(start: usize, max: usize) -> Tuner {
        Tuner(Climber::new(start, max, ROWS))
    }

    /// Rows that may upload at once now.
    pub fn limit(&self) -> usize {
        self.0.limit()
    }

    /// Every change so far, oldest first.
    pub fn changes(&self) -> &[LimitChange] {
        self.0.changes()
    }

    /// One tick of `secs`: `bytes` in `parts` finished uploading, `sending` rows were in their
    /// upload stage, and `more_waiting` says whether rows are queued for a slot. Only ticks
    /// where exactly `limit` rows were sending and rows were waiting measure the limit; any
    /// other tick (ramping up, after lowering, draining the queue) starts the measurement over.
    /// Returns a change made.
    pub fn tick(
        &mut self,
        secs: f64,
        bytes: u64,
        parts: u64,
        sending: usize,
        more_waiting: bool,
    ) -> Option<LimitChange> {
        // More rows than the limit send for a while after it was lowered.
        let busy = sending == self.limit() && more_waiting;
        self.0.tick(secs, bytes, parts, busy)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// A link where each row reaches `per_row` bytes/s until the link's `cap` is shared.
    fn link(per_row: f64, cap: f64) -> impl Fn(usize) -> f64 {
        move |rows| (rows as f64 * per_row).min(cap)
    }

    /// Drives `tuner` for `seconds` of one-second ticks on `rate`, every slot sending and rows
    /// waiting, with 1 MiB parts; returns the limit held longest in the second half (probes
    /// come and go).
    fn run(tuner: &mut Tuner, seconds: u32, rate: &dyn Fn(usize) -> f64) -> usize {
        let mut held = BTreeMap::<usize, u32>::new();
        for s in 0..seconds {
            let bytes = rate(tuner.limit());
            tuner.tick(
                1.0,
                bytes as u64,
                (bytes / 1048576.0) as u64,
                tuner.limit(),
                true,
            );
            if s >= seconds / 2 {
                *held.entry(tuner.limit()).or_default() += 1;
            }
        }
        held.into_iter()
            .max_by_key(|&(_, n)| n)
            .map_or(0, |(l, _)| l)
    }

    const MB: f64 = 1e6;

    #[test]
    fn a_cpu_bound_machine_keeps_the_rows_it_started_with() {
        // Every row shares the same cores: more rows bring nothing.
        let mut t = Tuner::new(2, 8);
        assert_eq!(run(&mut t, 300, &|_| 400.0 * MB), 2);
        let whys: Vec<_> = t.changes().iter().map(|c| (c.from, c.to, c.why)).collect();
        // Tried a third row, went back, and tries again once in a while.
        assert!(whys.len() >= 4, "{whys:?}");
        for pair in whys.chunks(2) {
            assert_eq!(
                pair,
                [
                    (2, 3, ChangeReason::ProbeUp),
                    (3, 2, ChangeReason::StepBack)
                ]
            );
        }
    }

    #[test]
    fn a_far_link_gets_rows_until_the_link_is_full() {
        // 30 MB/s a row, 150 MB/s the link: five rows fill it, a sixth brings nothing.
        let mut t = Tuner::new(2, 8);
        assert_eq!(run(&mut t, 300, &link(30.0 * MB, 150.0 * MB)), 5);
        let first: Vec<_> = t.changes().iter().take(5).map(|c| c.to).collect();
        assert_eq!(first, [3, 4, 5, 6, 5]);
    }

    #[test]
    fn the_limit_stays_within_its_bounds() {
        let mut t = Tuner::new(2, 4);
        assert_eq!(run(&mut t, 300, &link(30.0 * MB, 1e12)), 4);
        assert!(t.changes().iter().all(|c| c.to <= 4));
        let mut t = Tuner::new(9, 4);
        assert_eq!(t.limit(), 4);
        run(&mut t, 10, &|_| 0.0);
        assert_eq!(t.limit(), 4, "no parts finished: nothing measured");
        assert_eq!(Tuner::new(0, 0).limit(), 1);
    }

    #[test]
    fn a_link_that_gets_faster_or_slower_is_probed_again() {
        let mut t = Tuner::new(2, 8);
        assert_eq!(run(&mut t, 300, &link(30.0 * MB, 90.0 * MB)), 3);
        // The link's cap doubles; the rate of three rows stays the same, but the next probe
        // finds that more rows pay off again.
        assert_eq!(run(&mut t, 300, &link(30.0 * MB, 180.0 * MB)), 6);
        // Now one row alone fills the narrower link: the rate fell, fewer rows carry it.
        assert_eq!(run(&mut t, 300, &link(100.0 * MB, 100.0 * MB)), 1);
        assert!(t.changes().iter().any(|c| c.why == ChangeReason::ProbeDown));
    }

    #[test]
    fn only_ticks_with_every_slot_sending_and_rows_waiting_measure() {
        let mut t = Tuner::new(2, 8);
        // One row is still converting before its first part: the limit is not measured.
        for _ in 0..100 {
            t.tick(1.0, 100_000_000, 100, 1, true);
        }
        // A row beyond the limit is still sending (it was just lowered).
        for _ in 0..100 {
            t.tick(1.0, 100_000_000, 100, 3, true);
        }
        // The queue is empty: a higher limit could start nothing.
        for _ in 0..100 {
            t.tick(1.0, 100_000_000, 100, 2, false);
        }
        assert!(t.changes().is_empty());
        // Interleaved partial ticks restart the window: five full ticks in a row are needed.
        for _ in 0..4 {
            t.tick(1.0, 100_000_000, 100, 2, true);
        }
        assert!(t.changes().is_empty());
        t.tick(1.0, 100_000_000, 100, 2, true);
        assert_eq!(t.limit(), 3);
    }

    #[test]
    fn few_large_parts_need_a_longer_window() {
        // 64 MiB parts at 100 MB/s for two rows: 24 parts take about 16 s.
        let mut t = Tuner::new(2, 8);
        for s in 1..=30 {
            let parts = if s % 2 == 0 { 3 } else { 0 };
            t.tick(1.0, parts * (64 << 20), parts, 2, true);
            if s < 16 {
                assert_eq!(t.limit(), 2, "measured after {s} s");
            }
        }
        assert_eq!(t.limit(), 3);
    }
}
