//! `memory.growth`: how fast a process's resident memory grew over the steady part of the load,
//! in bytes per second, written as a rate (`memory.growth(core-engine) < 1MB/min`).
//!
//! A bound is judged on the end of the growth's 95% interval that must clear it: `<` and `<=`
//! on the upper end, `>` and `>=` on the lower. A run too short or too noisy to rule out growth
//! at the bound therefore fails rather than passes by luck, as the overhead claim does
//! (`overhead::verdict`): passing says the data exclude a leak of that rate, not merely that the
//! estimate fell below it. Without a process name the threshold holds for every service the
//! harness launched, and is judged on the one whose end is the largest.

use super::{Op, Problem};
use crate::result::memory::MemoryResult;

/// The metric's name in expressions.
pub(super) const NAME: &str = "memory.growth";

/// Bytes per unit of memory: decimal as disks and networks count (`KB` = 1000), binary with an
/// `i` (`KiB` = 1024).
fn bytes_per(unit: &str) -> Option<f64> {
    Some(match unit {
        "B" => 1.0,
        "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    })
}

/// Seconds per unit of time.
fn seconds_per(unit: &str) -> Option<f64> {
    Some(match unit {
        "s" => 1.0,
        "min" => 60.0,
        "h" => 3600.0,
        _ => return None,
    })
}

/// The argument of `memory.growth(NAME)`: a process name, as the memory section names them.
pub(super) fn process(argument: Option<&str>) -> Result<Option<String>, Problem> {
    let Some(argument) = argument else {
        return Ok(None);
    };
    let name = argument.trim();
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(Some(name.to_owned()))
    } else {
        Err(Problem::BadProcessName {
            text: argument.to_owned(),
        })
    }
}

/// The operators a growth bound takes: equality with a rate measured to an interval means
/// nothing.
pub(super) fn check_op(op: Op) -> Result<(), Problem> {
    match op {
        Op::Eq => Err(Problem::EqualityOnGrowth),
        _ => Ok(()),
    }
}

/// A rate bound from the number and what follows it (`MB/min`), in bytes per second.
pub(super) fn bound(value: f64, after_number: &str) -> Result<f64, Problem> {
    let text = after_number.trim();
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    let (unit, trailing) = text.split_at(end);
    if unit.is_empty() {
        return Err(Problem::MissingGrowthUnit);
    }
    let (size, per) = unit
        .split_once('/')
        .ok_or_else(|| Problem::UnknownGrowthUnit {
            unit: unit.to_owned(),
        })?;
    let (Some(bytes), Some(seconds)) = (bytes_per(size), seconds_per(per)) else {
        return Err(Problem::UnknownGrowthUnit {
            unit: unit.to_owned(),
        });
    };
    let trailing = trailing.trim();
    if !trailing.is_empty() {
        return Err(Problem::TrailingGarbage {
            rest: trailing.to_owned(),
        });
    }
    let bound = value * bytes / seconds;
    if bound.is_finite() {
        Ok(bound)
    } else {
        Err(Problem::TooLarge {
            text: format!("{value}{unit}"),
        })
    }
}

/// A bound in bytes per second as a rate that parses back to exactly the same value, in the
/// largest of a few readable units that does (`1MB/min`), else in `B/s`.
pub(super) fn bound_text(bytes_per_second: f64) -> String {
    for per in ["min", "s", "h"] {
        for size in ["GB", "MB", "KB", "GiB", "MiB", "KiB"] {
            let (Some(bytes), Some(seconds)) = (bytes_per(size), seconds_per(per)) else {
                continue;
            };
            // Three decimals at most, computed back as `bound` computes it.
            let value = (bytes_per_second * seconds / bytes * 1000.0).round() / 1000.0;
            if value >= 1.0 && value * bytes / seconds == bytes_per_second {
                return format!("{value}{size}/{per}");
            }
        }
    }
    format!("{bytes_per_second}B/s")
}

/// What the threshold measured: the judged end of the named process's growth interval, or the
/// largest such end among the services (the fastest-growing one); `None` when there is no estimate to judge (no memory
/// sampled, no such process, too few steady samples), which fails the threshold.
pub(super) fn measured(
    memory: Option<&MemoryResult>,
    process: Option<&str>,
    op: Op,
) -> Option<f64> {
    let memory = memory?;
    let upper = matches!(op, Op::Lt | Op::Le);
    match process {
        Some(name) => memory.process(name)?.judged_growth(upper),
        None => {
            let services: Vec<_> = memory.processes.iter().filter(|p| p.service).collect();
            // Every service must have an estimate: one that has none cannot be vouched for.
            let ends: Option<Vec<f64>> = services.iter().map(|p| p.judged_growth(upper)).collect();
            ends?.into_iter().reduce(f64::max)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::super::{Metric, Threshold};
    use super::*;
    use crate::system::rss::{PERIOD, Series, Watched};

    fn parsed(text: &str) -> Threshold {
        Threshold::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn problem(text: &str) -> String {
        Threshold::parse(text).expect_err("refused").to_string()
    }

    #[test]
    fn rates_parse_in_every_unit_and_print_back() {
        for (text, process, bytes_per_second) in [
            ("memory.growth < 1MB/min", None, 1e6 / 60.0),
            (
                "memory.growth(core-engine) < 1MB/min",
                Some("core-engine"),
                1e6 / 60.0,
            ),
            (
                "memory.growth( api-gateway ) <= 2 KiB/s",
                Some("api-gateway"),
                2048.0,
            ),
            (
                "memory.growth(harness) < 0.5GB/h",
                Some("harness"),
                0.5e9 / 3600.0,
            ),
            ("memory.growth > 100B/s", None, 100.0),
            (
                "memory.growth < 3MiB/min",
                None,
                3.0 * 1024.0 * 1024.0 / 60.0,
            ),
        ] {
            let t = parsed(text);
            assert_eq!(
                t.metric,
                Metric::MemoryGrowth(process.map(str::to_owned)),
                "{text}"
            );
            assert!(
                (t.bound - bytes_per_second).abs() < 1e-9,
                "{text}: {}",
                t.bound
            );
            // The canonical form parses back to the same threshold.
            assert_eq!(parsed(&t.to_string()), t, "{text} -> {t}");
        }
        assert_eq!(
            parsed("memory.growth(core-engine) < 1MB/min").to_string(),
            "memory.growth(core-engine) < 1MB/min"
        );
        assert_eq!(bound_text(1.0 / 3.0), "1.2KB/h");
        assert_eq!(bound_text(0.1), "0.1B/s");
    }

    #[test]
    fn bad_growth_thresholds_say_what_is_wrong() {
        for (text, wanted) in [
            (
                "memory.growth < 1",
                "missing unit; memory.growth takes a rate of memory",
            ),
            ("memory.growth < 1MB", "unknown unit \"MB\""),
            ("memory.growth < 1MB/day", "unknown unit \"MB/day\""),
            ("memory.growth < 1mb/min", "unknown unit \"mb/min\""),
            ("memory.growth < 1%", "unknown unit \"%\""),
            ("memory.growth == 1MB/min", "cannot be equal to a bound"),
            (
                "memory.growth(core engine) < 1MB/min",
                "process name \"core engine\"",
            ),
            ("memory.growth() < 1MB/min", "process name \"\""),
            (
                "memory.growth(core-engine < 1MB/min",
                "unclosed parenthesis after memory.growth",
            ),
            ("memory.growth < 1MB/min extra", "unexpected \"extra\""),
            ("memory.growth < -1MB/min", "negative"),
            ("memory.grow < 1MB/min", "unknown metric \"memory.grow\""),
        ] {
            let message = problem(text);
            assert!(message.contains(wanted), "{text}: {message}");
        }
    }

    fn series(name: &str, service: bool, slope: f64, noise: u64, seconds: u32) -> Series {
        let t0 = Instant::now();
        Series {
            watched: Watched {
                name: name.into(),
                pid: 1,
                service,
            },
            samples: (0..seconds)
                .map(|s| {
                    let wobble = if s % 2 == 0 { noise } else { 0 };
                    (
                        t0 + PERIOD * s,
                        40_000_000 + (slope * s as f64) as u64 + wobble,
                    )
                })
                .collect(),
            every: Duration::from_secs(1),
            stopped: None,
        }
    }

    #[test]
    fn a_leak_fails_and_a_flat_process_passes_on_the_interval() {
        let leaky = series("core-engine", true, 200_000.0, 0, 30);
        let flat = series("api-gateway", true, 0.0, 4096, 30);
        let harness = series("harness", false, 1e6, 0, 30);
        let t0 = Instant::now();
        let memory = MemoryResult::of(vec![leaky, flat, harness], t0 - Duration::from_millis(1));
        let judge_in = |memory: Option<&MemoryResult>, text: &str| {
            let t = parsed(text);
            let Metric::MemoryGrowth(process) = &t.metric else {
                unreachable!()
            };
            let measured = measured(memory, process.as_deref(), t.op);
            t.evaluate(measured)
        };
        let judge = |text: &str| judge_in(memory.as_ref(), text);
        let engine = judge("memory.growth(core-engine) < 1MB/min");
        assert_eq!(engine.passed, Some(false), "{engine}");
        assert!(engine.to_string().contains("12.0 MB/min"), "{engine}");
        assert_eq!(
            judge("memory.growth(api-gateway) < 1MB/min").passed,
            Some(true)
        );
        // Unnamed: the services only (the harness grows fastest here), the fastest of them.
        let any = judge("memory.growth < 1MB/min");
        assert_eq!(any.measured, engine.measured);
        assert_eq!(judge("memory.growth < 20MB/min").passed, Some(true));
        assert_eq!(
            judge("memory.growth(core-engine) > 10MB/min").passed,
            Some(true)
        );
        assert_eq!(
            judge("memory.growth(harness) < 1MB/min").passed,
            Some(false)
        );
        // No such process, or no memory sampled at all: no data, which is no pass.
        assert_eq!(judge("memory.growth(jaeger) < 1MB/min").passed, None);
        assert_eq!(judge_in(None, "memory.growth < 1MB/min").passed, None);
    }

    /// The interval decides, not the estimate: a short, noisy series whose estimate is below the
    /// bound but whose interval reaches past it fails.
    #[test]
    fn an_interval_that_reaches_past_the_bound_fails() {
        let noisy = series("core-engine", true, 5_000.0, 2_000_000, 8);
        let memory = MemoryResult::of(vec![noisy], Instant::now() - Duration::from_millis(1));
        let process = &memory.as_ref().expect("memory").processes[0];
        let growth = process.growth.expect("estimate");
        let bound = 1e6 / 60.0;
        assert!(growth.estimate < bound && growth.high > bound, "{growth:?}");
        assert_eq!(
            measured(memory.as_ref(), Some("core-engine"), Op::Lt),
            Some(growth.high)
        );
    }
}
