//! When each request is due: the open-loop schedule.
//!
//! Request i is due at `t0 + offset(i)` whatever happened to earlier requests. Offsets come from
//! the phases alone (uniform) or from a seeded Poisson process over them, so a schedule is fully
//! determined before the first request leaves.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One phase of the target rate: constant when `from == to`, else a linear ramp.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatePhase {
    /// Requests per second at the start of the phase.
    pub from: f64,
    /// Requests per second at the end of the phase.
    pub to: f64,
    /// How long the phase lasts.
    pub duration: Duration,
}

impl RatePhase {
    /// `rate` requests per second for `duration`.
    pub fn constant(rate: f64, duration: Duration) -> Self {
        RatePhase {
            from: rate,
            to: rate,
            duration,
        }
    }

    /// Requests due in the first `t` seconds of the phase: the integral of the rate.
    fn arrivals_by(&self, t: f64) -> f64 {
        let total = self.duration.as_secs_f64();
        if total <= 0.0 {
            return 0.0;
        }
        self.from * t + (self.to - self.from) * t * t / (2.0 * total)
    }

    /// Requests due over the whole phase.
    pub fn expected_requests(&self) -> f64 {
        self.arrivals_by(self.duration.as_secs_f64())
    }

    /// The time within the phase at which `n` requests have become due (inverse of `arrivals_by`).
    /// Rounding can take it a hair below zero, and rates beyond what floats square can make it
    /// infinite or NaN: callers keep only finite times within the phase.
    fn time_of(&self, n: f64) -> f64 {
        let total = self.duration.as_secs_f64();
        let slope = (self.to - self.from) / total;
        if slope.abs() < 1e-12 {
            return n / self.from;
        }
        // from·t + slope·t²/2 = n  →  t = (−from + √(from² + 2·slope·n)) / slope
        let discriminant = (self.from * self.from + 2.0 * slope * n).max(0.0);
        (discriminant.sqrt() - self.from) / slope
    }
}

/// The largest count of arrivals a float still counts one by one (2^53).
const MAX_EXACT_COUNT: f64 = 9_007_199_254_740_992.0;

/// How arrivals are spread within the rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrivals {
    /// Evenly spaced, as wrk2 does: the cleanest signal for latency percentiles.
    Uniform,
    /// Exponential gaps (a Poisson process following the rate), as independent users arrive.
    Poisson {
        /// Seeds the gaps, so that runs repeat.
        seed: u64,
    },
}

/// One scheduled request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arrival {
    /// Sequence number from 0.
    pub index: u64,
    /// Due time from the start of the schedule.
    pub offset: Duration,
    /// The phase it belongs to.
    pub phase: usize,
}

/// One shard's share of a schedule, as k6's execution segments share one: arrival `i` belongs to
/// shard `i mod count`, so that the shards of a fleet send every `count`-th arrival each and,
/// together, exactly the arrivals of the whole schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// From 0 to `count - 1`.
    index: u64,
    count: u64,
}

impl Segment {
    /// Shard `index` (from 0) of `count`; `None` unless `index < count`.
    pub fn new(index: u64, count: u64) -> Option<Self> {
        (index < count).then_some(Segment { index, count })
    }

    /// Whether the arrival with this sequence number is this shard's.
    pub fn owns(&self, arrival: u64) -> bool {
        arrival % self.count == self.index
    }

    /// This shard's part of a cap of `total` shared by the fleet: the parts differ by at most
    /// one and add up to `total` (an unbounded cap stays unbounded).
    pub fn share(&self, total: u64) -> u64 {
        if total == u64::MAX {
            return total;
        }
        total / self.count + u64::from(self.index < total % self.count)
    }
}

/// Start offset of each phase, for reports and progress.
pub fn phase_starts(phases: &[RatePhase]) -> Vec<Duration> {
    phases
        .iter()
        .scan(Duration::ZERO, |start, p| {
            let this = *start;
            *start = start.saturating_add(p.duration);
            Some(this)
        })
        .collect()
}

/// The arrivals of a sequence of phases, in order.
pub struct Schedule {
    phases: Vec<RatePhase>,
    arrivals: Arrivals,
    rng: StdRng,
    phase: usize,
    phase_start: f64,
    /// Expected arrivals passed within the current phase (the rate's integral so far).
    within: f64,
    index: u64,
}

impl Schedule {
    /// The send times of `phases`, spread as `arrivals` says.
    pub fn new(phases: Vec<RatePhase>, arrivals: Arrivals) -> Self {
        let seed = match arrivals {
            Arrivals::Poisson { seed } => seed,
            Arrivals::Uniform => 0,
        };
        Schedule {
            phases,
            arrivals,
            rng: StdRng::seed_from_u64(seed),
            phase: 0,
            phase_start: 0.0,
            within: 0.0,
            index: 0,
        }
    }

    fn next_in_phase(&mut self, phase: &RatePhase) -> Option<f64> {
        let length = phase.duration.as_secs_f64();
        // Past 2^53 adding one arrival no longer changes the count, and the phase would never
        // end; no valid scenario comes near (a day at the highest rate is under 2^37).
        if self.within >= MAX_EXACT_COUNT {
            return None;
        }
        let within_phase = |t: f64| (t.is_finite() && t < length).then_some(t.max(0.0));
        match self.arrivals {
            Arrivals::Uniform => {
                // The k-th arrival of a phase is due when k requests' worth of rate has passed,
                // so a phase of N expected requests sends requests 0..N at 0, 1/r, 2/r, ...
                let t = within_phase(phase.time_of(self.within))?;
                self.within += 1.0;
                Some(t)
            }
            Arrivals::Poisson { .. } => {
                // A Poisson process with a varying rate is a unit-rate one in "expected arrivals"
                // time: add an exponential gap there and map it back through the same inverse the
                // uniform schedule uses, exact for ramps of any steepness.
                let u: f64 = self.rng.random_range(f64::EPSILON..1.0);
                self.within += -u.ln();
                within_phase(phase.time_of(self.within))
            }
        }
    }
}

impl Iterator for Schedule {
    type Item = Arrival;

    fn next(&mut self) -> Option<Arrival> {
        while let Some(&phase) = self.phases.get(self.phase) {
            if let Some(t) = self.next_in_phase(&phase) {
                // Only phases of absurd lengths end up beyond what a duration holds: the
                // schedule ends there.
                let Ok(offset) = Duration::try_from_secs_f64(self.phase_start + t) else {
                    self.phase = self.phases.len();
                    return None;
                };
                let arrival = Arrival {
                    index: self.index,
                    offset,
                    phase: self.phase,
                };
                self.index += 1;
                return Some(arrival);
            }
            self.phase_start += phase.duration.as_secs_f64();
            self.phase += 1;
            self.within = 0.0;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn segments_split_a_schedule_into_disjoint_shares_whose_union_is_the_whole() {
        let phases = vec![
            RatePhase::constant(97.0, secs(1.0)),
            RatePhase {
                from: 10.0,
                to: 300.0,
                duration: secs(2.0),
            },
        ];
        for arrivals in [Arrivals::Uniform, Arrivals::Poisson { seed: 5 }] {
            let whole: Vec<Arrival> = Schedule::new(phases.clone(), arrivals).collect();
            for count in 1..=7u64 {
                let mut union: Vec<Arrival> = (0..count)
                    .flat_map(|i| {
                        let segment = Segment::new(i, count).expect("in range");
                        Schedule::new(phases.clone(), arrivals)
                            .filter(move |a| segment.owns(a.index))
                    })
                    .collect();
                union.sort_by_key(|a| a.index);
                assert_eq!(union, whole, "{count} shards of {arrivals:?}");
            }
        }
        assert_eq!(Segment::new(3, 3), None);
        let shares: Vec<u64> = (0..4)
            .map(|i| Segment::new(i, 4).expect("in range").share(10))
            .collect();
        assert_eq!(shares, [3, 3, 2, 2]);
        assert_eq!(
            Segment::new(1, 4).expect("in range").share(u64::MAX),
            u64::MAX
        );
    }

    #[test]
    fn constant_rate_is_evenly_spaced() {
        let arrivals: Vec<_> =
            Schedule::new(vec![RatePhase::constant(4.0, secs(1.0))], Arrivals::Uniform).collect();
        let offsets: Vec<_> = arrivals.iter().map(|a| a.offset).collect();
        assert_eq!(offsets, [secs(0.0), secs(0.25), secs(0.5), secs(0.75)]);
        assert!(
            arrivals
                .iter()
                .enumerate()
                .all(|(i, a)| a.index == i as u64)
        );
    }

    #[test]
    fn phases_follow_each_other() {
        let phases = vec![
            RatePhase::constant(2.0, secs(1.0)),
            RatePhase::constant(4.0, secs(0.5)),
        ];
        assert_eq!(phase_starts(&phases), [secs(0.0), secs(1.0)]);
        let schedule = Schedule::new(phases, Arrivals::Uniform);
        let arrivals: Vec<_> = schedule.map(|a| (a.offset, a.phase)).collect();
        assert_eq!(
            arrivals,
            [
                (secs(0.0), 0),
                (secs(0.5), 0),
                (secs(1.0), 1),
                (secs(1.25), 1)
            ]
        );
    }

    #[test]
    fn ramp_sends_the_integral_of_its_rate_and_speeds_up() {
        let ramp = RatePhase {
            from: 100.0,
            to: 300.0,
            duration: secs(10.0),
        };
        assert_eq!(ramp.expected_requests(), 2_000.0);
        let offsets: Vec<f64> = Schedule::new(vec![ramp], Arrivals::Uniform)
            .map(|a| a.offset.as_secs_f64())
            .collect();
        assert_eq!(offsets.len(), 2_000);
        let first_gap = offsets[1] - offsets[0];
        let last_gap = offsets[1_999] - offsets[1_998];
        assert!((first_gap - 1.0 / 100.0).abs() < 1e-4, "{first_gap}");
        assert!((last_gap - 1.0 / 300.0).abs() < 1e-4, "{last_gap}");
        // Half the requests of a 100 → 300 ramp are due once the rate has covered half its area.
        assert!((offsets[1_000] - ramp.time_of(1_000.0)).abs() < 1e-9);
    }

    #[test]
    fn a_falling_ramp_ends_where_it_should() {
        let ramp = RatePhase {
            from: 300.0,
            to: 100.0,
            duration: secs(10.0),
        };
        let n = Schedule::new(vec![ramp], Arrivals::Uniform).count();
        assert_eq!(n, 2_000);
    }

    #[test]
    fn poisson_follows_a_steep_ramp() {
        // 0.01 → 1000/s over 10 s: about 5,000 arrivals, most of them late in the ramp.
        let ramp = RatePhase {
            from: 0.01,
            to: 1_000.0,
            duration: secs(10.0),
        };
        let offsets: Vec<f64> = Schedule::new(vec![ramp], Arrivals::Poisson { seed: 3 })
            .map(|a| a.offset.as_secs_f64())
            .collect();
        assert!(
            (offsets.len() as f64 - 5_000.0).abs() < 300.0,
            "{}",
            offsets.len()
        );
        let second_half = offsets.iter().filter(|&&t| t >= 5.0).count() as f64;
        assert!((second_half / offsets.len() as f64 - 0.75).abs() < 0.03);
    }

    #[test]
    fn extreme_phases_neither_panic_nor_leave_their_phase() {
        let rates = [1e-300, 1e-9, 1.0, 1e6, 1e150, 1e300, 1e308, f64::MAX];
        let durations = [
            Duration::from_nanos(1),
            Duration::from_millis(1),
            secs(0.5),
            secs(1.0),
            Duration::from_secs(u64::MAX / 2),
            Duration::MAX,
        ];
        for from in rates {
            for to in rates {
                for duration in durations {
                    let phases = vec![RatePhase { from, to, duration }; 3];
                    let end = phase_starts(&phases)[2].saturating_add(duration);
                    for arrivals in [Arrivals::Uniform, Arrivals::Poisson { seed: 1 }] {
                        let schedule = Schedule::new(phases.clone(), arrivals);
                        for arrival in schedule.take(50) {
                            assert!(
                                arrival.offset <= end,
                                "{from} -> {to} over {duration:?}: {arrival:?}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_phase_too_dense_to_count_ends() {
        let mut schedule = Schedule::new(
            vec![RatePhase::constant(1e300, secs(1.0))],
            Arrivals::Uniform,
        );
        // Where the count stops growing, the phase ends instead of repeating its last arrival.
        schedule.within = MAX_EXACT_COUNT;
        assert_eq!(schedule.next(), None);
    }

    #[test]
    fn poisson_is_seeded_and_keeps_the_mean_rate() {
        let phases = vec![RatePhase::constant(1_000.0, secs(20.0))];
        let a: Vec<_> = Schedule::new(phases.clone(), Arrivals::Poisson { seed: 7 }).collect();
        let b: Vec<_> = Schedule::new(phases.clone(), Arrivals::Poisson { seed: 7 }).collect();
        let c: Vec<_> = Schedule::new(phases, Arrivals::Poisson { seed: 8 }).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        // 20,000 expected; the standard deviation of a Poisson count is √20000 ≈ 141.
        assert!((a.len() as f64 - 20_000.0).abs() < 600.0, "{}", a.len());
        assert!(a.windows(2).all(|w| w[0].offset <= w[1].offset));
    }
}
