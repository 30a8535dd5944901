//! How many parts of one upload are in flight: never more than
//! [`UploadOptions::concurrency`](crate::UploadOptions::concurrency) (a part waiting for its
//! answer holds no buffer: the part memory does not bound this), and within it as many as the measured rate asks for. A near server answers a
//! part in milliseconds and the stream, not the link, sets the rate: the start level stays. A
//! far one answers after a round trip, so a part waits for a free slot while the link idles:
//! the shared [`Climber`] doubles the parts in flight until the rate stops growing (the
//! bandwidth-delay product is covered, or the link is full) or the cap is reached.
//!
//! A measurement is the time between two finished parts in which every slot was taken and
//! the next part was ready: only then did the link decide the rate. Finishes that found a
//! slot free or no part ready are left out of it, not a reason to start over: the stream
//! hands parts over in bursts (an MD5 batch at a time), and a far link with many parts in
//! flight would otherwise never see as many busy finishes in a row as it has slots.

use std::time::{Duration, Instant};

use serde::Serialize;

use imgport_base::climb::{Climber, Gap, LimitChange, Pace, Step};

/// Fewest parts in flight when an upload starts (or the cap, when it is lower).
pub const START: usize = 8;
/// Bytes in flight when an upload starts: [`START`] parts of 5 MiB. Smaller parts start with
/// more of them (within the cap), so a far link is covered in as few steps whatever the part
/// size (2 MiB parts: 20; docs/PERFORMANCE.md §WAN).
pub const START_BYTES: u64 = 40 << 20;

/// Windows of at least a quarter second and one finished part per slot: a part's round
/// trip, so that a far link is found in a few of them.
const PARTS: Pace = Pace {
    min_window_secs: 0.25,
    min_parts_per_unit: 1,
    step: Step::Double,
    reprobe_factor: 1.5,
    reprobe_after: 12,
    gap: Gap::Skip,
};

/// The parts in flight one upload chose, for its outcome and the `-v` log.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct InFlightReport {
    /// The cap (`--concurrency`).
    pub max: usize,
    pub start: usize,
    /// The level held for the most time: what the measured rate chose.
    pub chosen: usize,
    /// The level at the end.
    pub last: usize,
    /// Median seconds from sending a part to its answer (retries included).
    pub part_seconds_median: f64,
    /// Every change of the level, oldest first.
    pub changes: Vec<LimitChange>,
}

/// Parts in flight at the start for parts of `part_size` bytes: [`START_BYTES`] of them, at
/// least [`START`].
pub fn start(part_size: u64) -> usize {
    usize::try_from(START_BYTES / part_size.max(1)).map_or(START, |n| n.max(START))
}

/// The parts-in-flight controller of one upload.
#[derive(Debug)]
pub(crate) struct Pacer {
    climber: Climber,
    start: usize,
    last_finish: Instant,
    latencies: Vec<f32>,
}

impl Pacer {
    /// At most `cap` parts of `part_size` bytes in flight, and never fewer than the start: a
    /// part waiting for its answer holds no buffer, and near a server the stream sets the rate
    /// whatever the level, so fewer parts save nothing; on a far link a dip of the rate (a
    /// busy CPU) would otherwise walk the level down to one part (scripts/bench-wan.sh saw
    /// 20 → 1 at 150 ms, docs/PERFORMANCE.md §WAN).
    pub(crate) fn new(cap: usize, part_size: u64) -> Pacer {
        let start = start(part_size);
        let climber = Climber::new(start, cap, PARTS).with_floor(start);
        Pacer {
            start: climber.limit(),
            climber,
            last_finish: Instant::now(),
            latencies: Vec::new(),
        }
    }

    /// Parts that may be in flight now.
    pub(crate) fn limit(&self) -> usize {
        self.climber.limit()
    }

    /// A part of `bytes` finished `now` after `latency`; `in_flight` parts were out just
    /// before (this one included) and `ready` says whether the next part was waiting to be
    /// sent. Returns a change of the level.
    pub(crate) fn finished(
        &mut self,
        now: Instant,
        bytes: u64,
        latency: Duration,
        in_flight: usize,
        ready: bool,
    ) -> Option<LimitChange> {
        let secs = now.duration_since(self.last_finish).as_secs_f64();
        self.last_finish = now;
        self.latencies.push(latency.as_secs_f32());
        let busy = in_flight == self.climber.limit() && ready;
        self.climber.tick(secs, bytes, 1, busy)
    }

    /// What was chosen so far.
    pub(crate) fn report(&self) -> InFlightReport {
        let mut l = self.latencies.clone();
        l.sort_by(f32::total_cmp);
        InFlightReport {
            max: self.climber.max(),
            start: self.start,
            chosen: self.climber.held_longest(),
            last: self.climber.limit(),
            part_seconds_median: l.get(l.len() / 2).map_or(0.0, |&s| f64::from(s)),
            changes: self.climber.changes().to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_and_cap_bound_the_level() {
        assert_eq!(Pacer::new(64, 5 << 20).limit(), START);
        assert_eq!(Pacer::new(2, 5 << 20).limit(), 2);
        assert_eq!(Pacer::new(0, 5 << 20).limit(), 1);
        let r = Pacer::new(3, 5 << 20).report();
        assert_eq!((r.max, r.start, r.chosen, r.last), (3, 3, 3, 3));
    }

    #[test]
    fn smaller_parts_start_with_more_of_them() {
        assert_eq!(start(5 << 20), START);
        assert_eq!(start(2 << 20), 20);
        assert_eq!(start(64 << 20), START);
        assert_eq!(Pacer::new(23, 2 << 20).limit(), 20);
        assert_eq!(Pacer::new(16, 100 << 10).limit(), 16);
    }

    #[test]
    fn parts_that_wait_for_slots_raise_the_level() {
        // Every slot taken and the next part ready at every finish: the link decides.
        let mut p = Pacer::new(32, 5 << 20);
        let mut now = Instant::now();
        let rtt = Duration::from_millis(150);
        for _ in 0..2000 {
            // The level's parts finish a round trip apart: the rate grows with the level.
            now += rtt / p.limit() as u32;
            p.finished(now, 1 << 20, rtt, p.limit(), true);
        }
        assert_eq!(p.limit(), 32, "{:?}", p.report());
        assert!(
            p.report()
                .changes
                .iter()
                .all(|c| c.why == imgport_base::climb::ChangeReason::ProbeUp)
        );
    }

    #[test]
    fn parts_handed_over_in_bursts_still_raise_the_level() {
        // As above, but every 16th finish finds no part ready (the stream's MD5 batch is
        // being hashed): those finishes are left out, the busy ones still measure the link.
        let mut p = Pacer::new(32, 2 << 20);
        let mut now = Instant::now();
        let rtt = Duration::from_millis(150);
        for i in 0..4000 {
            now += rtt / p.limit() as u32;
            p.finished(now, 2 << 20, rtt, p.limit(), i % 16 != 15);
        }
        assert_eq!(p.limit(), 32, "{:?}", p.report());
    }

    #[test]
    fn a_rate_dip_never_takes_the_level_below_its_start() {
        // A rate the level does not change (the stream sets it) that halves for a while (a
        // busy CPU): fewer parts would carry it as well, yet the level stays at its start or
        // above, where a far link needs it once the CPU is free again.
        let mut p = Pacer::new(64, 2 << 20);
        let start = p.limit();
        let mut now = Instant::now();
        for i in 0..4000 {
            let gap = if (1000..3000).contains(&i) { 20 } else { 5 };
            now += Duration::from_millis(gap);
            p.finished(now, 2 << 20, Duration::from_millis(150), p.limit(), true);
            assert!(p.limit() >= start, "{:?}", p.report());
        }
        assert!(
            p.report()
                .changes
                .iter()
                .any(|c| c.why == imgport_base::climb::ChangeReason::ProbeUp)
        );
    }

    #[test]
    fn a_producer_behind_keeps_the_start() {
        let mut p = Pacer::new(32, 5 << 20);
        let mut now = Instant::now();
        for _ in 0..200 {
            now += Duration::from_millis(20);
            p.finished(now, 1 << 20, Duration::from_millis(150), START, false);
        }
        let r = p.report();
        assert_eq!((r.last, r.chosen), (START, START));
        assert!(r.changes.is_empty());
        assert!((r.part_seconds_median - 0.15).abs() < 1e-6);
    }
}
