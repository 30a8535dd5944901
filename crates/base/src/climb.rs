//! How many at once: the one controller behind batch rows uploading together
//! (imgport-core's tuner) and parts of one upload in flight (imgport-store's multipart
//! driver). It climbs while the units it adds still bring at least half the rate an average
//! unit brought, steps back when they do not, and probes again when the rate moves a lot
//! (the link changed) or, once in a while, to find out whether it did.
//!
//! Only time when every slot was busy and more work was waiting measures a limit: then the
//! link (not the producer, not the queue) set the rate, so more units may raise it. A far
//! link shows exactly that: each unit waits a round trip, the producer waits for a slot, and
//! more units in flight cover more of the bandwidth-delay product.
//!
//! Pure: it sees ticks of (seconds, bytes, parts, busy), so its tests drive it with a
//! modelled link instead of a clock.

use std::collections::BTreeMap;

use serde::Serialize;

/// How a [`Climber`] measures and steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    /// A measurement counts once it spans this long...
    pub min_window_secs: f64,
    /// ...and this many finished parts per unit at the limit, so that parts finishing in
    /// bursts do not decide the rate.
    pub min_parts_per_unit: u64,
    /// How the limit moves when probing.
    pub step: Step,
    /// The rate settled on may drift this far either way before the limit is probed again.
    pub reprobe_factor: f64,
    /// Settled this many measurements, one step up is tried anyway: units limited by their
    /// own connections keep the rate flat when the link behind them grows.
    pub reprobe_after: u32,
    /// What a tick that was not busy does to the measurement under way.
    pub gap: Gap,
}

/// What a tick that was not busy (a slot free, or no work waiting) does to a measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gap {
    /// Starts it over: only an unbroken busy stretch measures the limit (batch rows, few and
    /// long).
    Restart,
    /// Leaves it out: the busy ticks around it still add up (parts, which a stream delivers in
    /// bursts, so that an unbroken stretch as long as the level is rare on a far link).
    Skip,
}

/// How far one probe moves the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// One unit up or down (batch rows: each row is heavy).
    One,
    /// Twice or half as many (parts in flight: a far link needs many, found in few steps).
    Double,
}

impl Step {
    fn up(self, n: usize, max: usize) -> usize {
        match self {
            Step::One => n + 1,
            Step::Double => n * 2,
        }
        .min(max)
    }

    fn down(self, n: usize) -> usize {
        match self {
            Step::One => n - 1,
            Step::Double => n / 2,
        }
        .max(1)
    }
}

/// One change of the limit, for reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LimitChange {
    /// Seconds since the climber started.
    pub at_seconds: f64,
    pub from: usize,
    pub to: usize,
    /// Combined rate measured at `from`, bytes per second.
    pub rate_at_from: f64,
    pub why: ChangeReason,
}

/// Why the limit changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeReason {
    /// Trying more: the last units added paid off (or none were tried yet).
    ProbeUp,
    /// Trying fewer: the rate fell, fewer units may carry it as well.
    ProbeDown,
    /// The units tried last did not bring their share: back to the level before.
    StepBack,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Up,
    Down,
    /// Holding the limit at the rate measured there, for this many measurements so far.
    Settled(f64, u32),
}

#[derive(Debug, Default)]
struct Window {
    secs: f64,
    bytes: u64,
    parts: u64,
}

/// Units `above` pay off over `below` when each added one brings at least half the rate an
/// average unit brought at `below`.
fn pays_off(rate_below: f64, below: usize, rate_above: f64, above: usize) -> bool {
    let added = above.saturating_sub(below) as f64;
    rate_above - rate_below >= 0.5 * added * rate_below / below.max(1) as f64
}

/// Picks how many units work at once from the rate they reach together.
#[derive(Debug)]
pub struct Climber {
    pace: Pace,
    limit: usize,
    max: usize,
    /// The fewest units it ever allows ([`Climber::with_floor`]; 1 unless told).
    floor: usize,
    phase: Phase,
    /// Rate measured at each limit since the last (re)start of probing.
    rates: BTreeMap<usize, f64>,
    window: Window,
    elapsed: f64,
    /// Seconds spent at each limit.
    held: BTreeMap<usize, f64>,
    changes: Vec<LimitChange>,
}

impl Climber {
    /// Starts at `start` units and never goes above `max` (nor below one).
    pub fn new(start: usize, max: usize, pace: Pace) -> Climber {
        let max = max.max(1);
        Climber {
            pace,
            limit: start.clamp(1, max),
            max,
            floor: 1,
            phase: Phase::Up,
            rates: BTreeMap::new(),
            window: Window::default(),
            elapsed: 0.0,
            held: BTreeMap::new(),
            changes: Vec::new(),
        }
    }

    /// Never goes below `floor` units (within 1 and the most): for units that cost nothing
    /// while the producer, not the link, sets the rate, so that a dip of the rate cannot walk
    /// the limit down below what a far link needs.
    pub fn with_floor(mut self, floor: usize) -> Climber {
        self.floor = floor.clamp(1, self.max);
        self.limit = self.limit.max(self.floor);
        self
    }

    /// Units that may work at once now.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The most units it may ever allow.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Every change so far, oldest first.
    pub fn changes(&self) -> &[LimitChange] {
        &self.changes
    }

    /// The limit held for the most time so far (the current one before any time passed).
    pub fn held_longest(&self) -> usize {
        self.held
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(self.limit, |(&l, _)| l)
    }

    /// One tick of `secs` in which `bytes` in `parts` finished. `busy` says that exactly
    /// `limit` units worked through the tick and more work was waiting for a slot; any other
    /// tick (ramping up, after lowering, the producer behind) is a gap, which starts the
    /// measurement over or is left out of it ([`Pace::gap`]). Returns a change made.
    pub fn tick(&mut self, secs: f64, bytes: u64, parts: u64, busy: bool) -> Option<LimitChange> {
        self.elapsed += secs;
        *self.held.entry(self.limit).or_default() += secs;
        if !busy {
            if self.pace.gap == Gap::Restart {
                self.window = Window::default();
            }
            return None;
        }
        self.window.secs += secs;
        self.window.bytes += bytes;
        self.window.parts += parts;
        let units = self.limit as u64;
        if self.window.secs < self.pace.min_window_secs
            || self.window.parts < self.pace.min_parts_per_unit * units
        {
            return None;
        }
        let rate = self.window.bytes as f64 / self.window.secs;
        self.window = Window::default();
        self.measured(rate)
    }

    fn measured(&mut self, rate: f64) -> Option<LimitChange> {
        let n = self.limit;
        let floor = self.floor;
        let (up, down) = (
            self.pace.step.up(n, self.max),
            self.pace.step.down(n).max(floor),
        );
        match self.phase {
            Phase::Settled(at, held) => {
                let f = self.pace.reprobe_factor;
                let try_more = rate > at * f || held + 1 >= self.pace.reprobe_after;
                if try_more && n < self.max {
                    self.restart(rate, Phase::Up);
                    self.change(up, rate, ChangeReason::ProbeUp)
                } else if rate * f < at && n > floor {
                    self.restart(rate, Phase::Down);
                    self.change(down, rate, ChangeReason::ProbeDown)
                } else {
                    self.phase = Phase::Settled(at, (held + 1).min(self.pace.reprobe_after));
                    None
                }
            }
            Phase::Up => {
                self.rates.insert(n, rate);
                let below = self.rates.range(..n).next_back().map(|(&l, &r)| (l, r));
                match below {
                    Some((l, r)) if !pays_off(r, l, rate, n) => {
                        self.phase = Phase::Settled(r, 0);
                        self.change(l, rate, ChangeReason::StepBack)
                    }
                    _ if n < self.max => self.change(up, rate, ChangeReason::ProbeUp),
                    _ => {
                        self.phase = Phase::Settled(rate, 0);
                        None
                    }
                }
            }
            Phase::Down => {
                self.rates.insert(n, rate);
                let above = self.rates.range(n + 1..).next().map(|(&l, &r)| (l, r));
                match above {
                    Some((l, r)) if pays_off(rate, n, r, l) => {
                        self.phase = Phase::Settled(r, 0);
                        self.change(l, rate, ChangeReason::StepBack)
                    }
                    _ if n > floor => self.change(down, rate, ChangeReason::ProbeDown),
                    _ => {
                        self.phase = Phase::Settled(rate, 0);
                        None
                    }
                }
            }
        }
    }

    fn restart(&mut self, rate: f64, phase: Phase) {
        self.rates.clear();
        self.rates.insert(self.limit, rate);
        self.phase = phase;
    }

    fn change(&mut self, to: usize, rate: f64, why: ChangeReason) -> Option<LimitChange> {
        let change = LimitChange {
            at_seconds: self.elapsed,
            from: self.limit,
            to,
            rate_at_from: rate,
            why,
        };
        self.limit = to;
        self.changes.push(change.clone());
        Some(change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARTS: Pace = Pace {
        min_window_secs: 0.25,
        min_parts_per_unit: 1,
        step: Step::Double,
        reprobe_factor: 1.5,
        reprobe_after: 12,
        gap: Gap::Skip,
    };
    const MIB: f64 = 1048576.0;

    /// Parts of `part` bytes over a link of `rtt` seconds where each part in flight moves
    /// `per_conn` bytes/s once sent, the link carries at most `cap` bytes/s, and the producer
    /// makes at most `producer` bytes/s. Drives `c` for `secs` in ticks of one part latency.
    fn drive(c: &mut Climber, secs: f64, rtt: f64, per_conn: f64, cap: f64, producer: f64) {
        let part = 5.0 * MIB;
        let mut t = 0.0;
        while t < secs {
            let n = c.limit() as f64;
            let latency = rtt + part / per_conn;
            let link = (n * part / latency).min(cap);
            let rate = link.min(producer);
            // Busy only when the link, not the producer, sets the rate.
            let busy = link < producer;
            let tick = latency.max(0.01);
            c.tick(
                tick,
                (rate * tick) as u64,
                (rate * tick / part) as u64,
                busy,
            );
            t += tick;
        }
    }

    #[test]
    fn more_round_trip_time_gets_more_parts_in_flight() {
        // An 800 MB/s producer; each part in flight moves 300 MB/s once sent.
        let chosen = |rtt: f64| {
            let mut c = Climber::new(8, 64, PARTS);
            drive(&mut c, 30.0, rtt, 300e6, 1e12, 800e6);
            c.held_longest()
        };
        let (near, at_50, at_150) = (chosen(0.0005), chosen(0.05), chosen(0.15));
        // Near, the producer is behind: nothing is measured, the start stays.
        assert_eq!(near, 8);
        assert_eq!(at_50, 16);
        assert_eq!(at_150, 32);
    }

    #[test]
    fn a_full_link_stops_the_climb() {
        // Far, but the link carries 100 MB/s whatever the parts: doubling 8 to 16 brings
        // nothing, so the climber steps back to 8 and stays there.
        let mut c = Climber::new(8, 64, PARTS);
        drive(&mut c, 60.0, 0.15, 30e6, 100e6, 1e12);
        assert!(c.held_longest() <= 16, "{:?}", c.changes());
        let first: Vec<_> = c.changes().iter().take(2).map(|c| (c.to, c.why)).collect();
        assert_eq!(
            first,
            [(16, ChangeReason::ProbeUp), (8, ChangeReason::StepBack)]
        );
    }

    #[test]
    fn the_limit_stays_within_its_bounds() {
        let mut c = Climber::new(8, 12, PARTS);
        drive(&mut c, 30.0, 0.15, 30e6, 1e12, 1e12);
        assert!(c.changes().iter().all(|c| c.to <= 12));
        assert_eq!(c.held_longest(), 12);
        assert_eq!(Climber::new(0, 0, PARTS).limit(), 1);
        assert_eq!(Climber::new(9, 4, PARTS).max(), 4);
    }

    #[test]
    fn pays_off_asks_half_an_average_units_share() {
        assert!(pays_off(100.0, 1, 150.0, 2));
        assert!(!pays_off(100.0, 1, 149.0, 2));
        assert!(pays_off(700.0, 7, 750.0, 8));
        assert!(!pays_off(700.0, 7, 749.0, 8));
        // Doubling 8 to 16 must bring half again.
        assert!(pays_off(100.0, 8, 150.0, 16));
        assert!(!pays_off(100.0, 8, 149.0, 16));
    }
}
