//! Run-to-run noise that a percentile's sampling error does not see: how much each run's latency
//! moved while it ran. Read from repeated measurements inside each result: the treatment trials of
//! an overhead experiment (each a run of its own), or else the per-second timeline. The shift
//! between the two runs' sets of repeats, with its interval, bounds how far apart two runs of the
//! same system could land by wandering alone.
//!
//! What this cannot see: the luck of one process against another (a different heap layout, a
//! different core) when each result holds a single process. That is the tolerance's job.

use serde::Serialize;
use stats::shift;

use super::Percentile;
use super::decision::{Change, from_log, widened};
use crate::result::RunResult;
use crate::result::overhead::ArmName;

/// Where the repeats came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub(crate) enum Source {
    /// Treatment trials of two overhead experiments: their p50, p90 and p99.
    Trials { base: usize, new: usize },
    /// Seconds of the two timelines in which something completed: their p50 and p99 (the p90
    /// takes the wider side of each).
    Timeline {
        base_seconds: usize,
        new_seconds: usize,
    },
}

/// The shift between the runs' repeats, per percentile, as relative changes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Wander {
    pub(crate) source: Source,
    pub(crate) p50: Option<Change>,
    pub(crate) p90: Option<Change>,
    pub(crate) p99: Option<Change>,
    pub(crate) p999: Option<Change>,
    /// Why the repeats could not be used, or what stood in for them.
    pub note: Option<String>,
}

impl Wander {
    /// How the two runs wandered: from their trials when both are single-point overhead
    /// experiments with enough of them, from their timelines otherwise.
    pub fn between(base: &RunResult, new: &RunResult) -> Wander {
        match (trials(base), trials(new)) {
            (Ok(b), Ok(n)) => {
                let shift = |field: fn(&Trial) -> u64| {
                    shift::between(&logs(&b, field), &logs(&n, field)).map(from_log)
                };
                let p99 = shift(|t| t.p99);
                let wander = Wander {
                    source: Source::Trials {
                        base: b.len(),
                        new: n.len(),
                    },
                    p50: shift(|t| t.p50),
                    p90: shift(|t| t.p90),
                    p99,
                    p999: p99,
                    note: None,
                };
                if wander.p50.is_some() {
                    return wander;
                }
                Wander {
                    note: Some(format!(
                        "{} and {} treatment trials are too few to compare as repeats; the \
                         timelines stand in",
                        b.len(),
                        n.len()
                    )),
                    ..timeline(base, new)
                }
            }
            (Err(Some(why)), _) | (_, Err(Some(why))) => Wander {
                note: Some(why),
                ..timeline(base, new)
            },
            _ => timeline(base, new),
        }
    }

    pub(crate) fn of(&self, percentile: Percentile) -> Option<Change> {
        match percentile {
            Percentile::P50 => self.p50,
            Percentile::P90 => self.p90,
            Percentile::P99 => self.p99,
            Percentile::P999 => self.p999,
        }
    }
}

struct Trial {
    p50: u64,
    p90: u64,
    p99: u64,
}

/// The treatment trials of a single-point experiment. `Err(None)` for a plain run, `Err(Some)`
/// with the reason for an experiment whose trials are not repeats.
fn trials(result: &RunResult) -> Result<Vec<Trial>, Option<String>> {
    let Some(experiment) = &result.overhead else {
        return Err(None);
    };
    let [point] = experiment.points.as_slice() else {
        return Err(Some(format!(
            "{} is a sweep: its trials are at different settings, not repeats; the timelines \
             stand in",
            result.scenario.name
        )));
    };
    Ok(point
        .trials
        .iter()
        .filter(|t| t.arm == ArmName::Treatment && t.sent > 0)
        .map(|t| Trial {
            p50: t.p50_us,
            p90: t.p90_us,
            p99: t.p99_us,
        })
        .collect())
}

fn logs(trials: &[Trial], field: fn(&Trial) -> u64) -> Vec<f64> {
    trials
        .iter()
        .map(|t| (field(t).max(1) as f64).ln())
        .collect()
}

fn timeline(base: &RunResult, new: &RunResult) -> Wander {
    let series = |result: &RunResult, field: fn(&crate::result::SecondResult) -> Option<u64>| {
        result
            .timeline
            .iter()
            .filter_map(field)
            .map(|us| (us.max(1) as f64).ln())
            .collect::<Vec<f64>>()
    };
    let (base_p50, new_p50) = (series(base, |s| s.p50_us), series(new, |s| s.p50_us));
    let (base_p99, new_p99) = (series(base, |s| s.p99_us), series(new, |s| s.p99_us));
    let p50 = shift::between(&base_p50, &new_p50).map(from_log);
    let p99 = shift::between(&base_p99, &new_p99).map(from_log);
    let note = p50.is_none().then(|| {
        format!(
            "the timelines are too short to show how the runs wandered ({} s and {} s with \
             completions; at least 4 each, or 3 against 5): the intervals are sampling error only",
            base_p50.len(),
            new_p50.len()
        )
    });
    Wander {
        source: Source::Timeline {
            base_seconds: base_p50.len(),
            new_seconds: new_p50.len(),
        },
        p50,
        p90: wider(p50, p99),
        p99,
        p999: p99,
        note,
    }
}

/// The timeline has no per-second p90, and the p90 lies between the two it has: it takes the
/// wider side of each, so that neither run's wander is understated.
fn wider(a: Option<Change>, b: Option<Change>) -> Option<Change> {
    match (a, b) {
        (Some(a), Some(b)) => Some(widened(a, b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::SecondResult;

    fn fixture(name: &str) -> RunResult {
        let path = format!(
            "{}/tests/fixtures/results/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).expect("fixture");
        serde_json::from_str(&text).expect("a result")
    }

    fn with_timeline(mut result: RunResult, p50s: &[Option<u64>]) -> RunResult {
        result.timeline = p50s
            .iter()
            .enumerate()
            .map(|(i, p50)| SecondResult {
                second: i as u64,
                sent: 100,
                completed: if p50.is_some() { 100 } else { 0 },
                unexpected: 0,
                dropped: 0,
                p50_us: *p50,
                p95_us: p50.map(|v| v * 2),
                p99_us: p50.map(|v| v * 2),
            })
            .collect();
        result
    }

    #[test]
    fn a_steady_timeline_gives_a_narrow_interval_and_a_wandering_one_a_wide_one() {
        let smoke = fixture("smoke");
        let steady: Vec<_> = [1000, 1010, 990, 1005, 995, 1000].map(Some).to_vec();
        let wandering: Vec<_> = [1000, 3000, 900, 5000, 1100, 800].map(Some).to_vec();
        let narrow = Wander::between(
            &with_timeline(smoke.clone(), &steady),
            &with_timeline(smoke.clone(), &steady),
        );
        let wide = Wander::between(
            &with_timeline(smoke.clone(), &steady),
            &with_timeline(smoke, &wandering),
        );
        let width = |w: &Wander| {
            let c = w.of(Percentile::P50).expect("an interval");
            c.high - c.low
        };
        assert!(width(&narrow) < 0.05, "{narrow:?}");
        assert!(width(&wide) > 1.0, "{wide:?}");
        assert_eq!(narrow.p999, narrow.p99);
        assert_eq!(narrow.note, None);
    }

    #[test]
    fn the_p90_takes_the_wider_of_the_p50_and_p99_wander() {
        let steady = [1000, 1010, 990, 1005, 995, 1000];
        let swinging = [1000, 5000, 900, 4500, 1050, 4000];
        let base = with_timeline(fixture("smoke"), &steady.map(Some));
        let below = |c: Change| c.estimate.ln_1p() - c.low.ln_1p();
        let above = |c: Change| c.high.ln_1p() - c.estimate.ln_1p();
        // A steady p50 with a swinging p99, then the other way round.
        for (p50s, p99s) in [
            (steady, swinging.map(|v| v * 2)),
            (swinging, steady.map(|v| v * 2)),
        ] {
            let mut new = with_timeline(fixture("smoke"), &p50s.map(Some));
            for (second, p99) in new.timeline.iter_mut().zip(p99s) {
                second.p99_us = Some(p99);
            }
            let wander = Wander::between(&base, &new);
            let (p50, p90, p99) = (
                wander.p50.expect("p50"),
                wander.p90.expect("p90"),
                wander.p99.expect("p99"),
            );
            let (narrow, wide) = if p50s == steady {
                (p50, p99)
            } else {
                (p99, p50)
            };
            assert!(above(wide) > 10.0 * above(narrow), "{wander:?}");
            for side in [below, above] {
                assert!((side(p90) - side(wide)).abs() < 1e-9, "{wander:?}");
            }
        }
    }

    #[test]
    fn two_seconds_against_eight_are_too_few() {
        let smoke = fixture("smoke");
        let short = with_timeline(smoke.clone(), &[Some(1000), Some(1100)]);
        let long = with_timeline(smoke, &[Some(1000); 8]);
        let wander = Wander::between(&short, &long);
        assert_eq!((wander.p50, wander.p90, wander.p99), (None, None, None));
        let note = wander.note.expect("a note");
        assert!(note.contains("2 s and 8 s"), "{note}");
    }

    #[test]
    fn stalled_seconds_are_skipped_and_short_timelines_are_said_to_be() {
        let smoke = fixture("smoke");
        let run = with_timeline(smoke, &[Some(1000), None, Some(1100), Some(1050)]);
        let wander = Wander::between(&run, &run);
        assert_eq!(
            wander.source,
            Source::Timeline {
                base_seconds: 3,
                new_seconds: 3
            }
        );
        assert_eq!(wander.p50, None);
        let note = wander.note.expect("a note");
        assert!(note.contains("3 s and 3 s"), "{note}");
        assert!(note.contains("sampling error only"), "{note}");
    }

    #[test]
    fn overhead_experiments_use_their_treatment_trials() {
        let experiment = fixture("overhead-quick");
        let wander = Wander::between(&experiment, &experiment);
        assert_eq!(wander.source, Source::Trials { base: 8, new: 8 });
        for p in [
            Percentile::P50,
            Percentile::P90,
            Percentile::P99,
            Percentile::P999,
        ] {
            let c = wander.of(p).expect("eight trials each");
            assert!(c.low < 0.0 && 0.0 < c.high, "{p:?}: {c:?}");
        }
        // Against a plain run, the timelines stand in.
        let plain = Wander::between(&fixture("stall"), &experiment);
        assert!(matches!(plain.source, Source::Timeline { .. }), "{plain:?}");
    }

    #[test]
    fn a_sweep_falls_back_to_the_timeline_and_says_why() {
        let experiment = fixture("overhead-quick");
        let mut sweep = experiment.clone();
        let overhead = sweep.overhead.as_mut().expect("an experiment");
        overhead.points.push(overhead.points[0].clone());
        let wander = Wander::between(&experiment, &sweep);
        assert!(matches!(wander.source, Source::Timeline { .. }));
        let note = wander.note.expect("a note");
        assert!(note.contains("is a sweep"), "{note}");
    }
}
