//! The memory section of `result.json`: each process's resident memory over the measured load
//! and how fast it grew once the run had settled.
//!
//! The growth is the Theil–Sen slope of resident bytes against time ([`stats::trend`]) over the
//! steady part, which leaves out the first fifth of the load ([`STEADY_AFTER`]): the first
//! seconds fill caches, connection pools and allocator arenas, which grow memory without
//! anything leaking. Its interval is what the `memory.growth` threshold judges.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use stats::Estimate;

use crate::system::rss::Series;

/// The share of the measured load left out of the growth estimate, from its start.
pub const STEADY_AFTER: f64 = 0.2;
/// The most points the slope is estimated from: it takes a few passes over their n²/2 pairwise
/// slopes (about 20 ms for a thousand), and a longer series is thinned evenly to this many
/// (every k-th point), which keeps its span.
pub const MAX_ESTIMATE_POINTS: usize = 1000;

/// The name the harness's own process goes by in the section and in `memory.growth(harness)`.
pub const HARNESS_PROCESS: &str = "harness";

/// `memory` in `result.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MemoryResult {
    /// Seconds between kept samples (1, or more where a long run's series were thinned).
    pub sample_every_s: f64,
    /// The growth is estimated from samples taken at or after this second of the load.
    pub steady_from_s: f64,
    /// Each sampled process: the services the harness launched, then the harness itself.
    pub processes: Vec<ProcessMemory>,
}

/// One process's memory during the measured load.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProcessMemory {
    /// `core-engine`, `api-gateway`, `harness`: what `memory.growth(NAME)` names.
    pub name: String,
    /// A service of the system under test, rather than the harness; an unnamed
    /// `memory.growth` judges the services only.
    pub service: bool,
    /// `[second of the load, resident bytes]`, in time order.
    pub samples: Vec<(f64, u64)>,
    /// Resident bytes at the first sample of the load.
    pub start_bytes: u64,
    /// Resident bytes at the last sample.
    pub end_bytes: u64,
    /// The most resident bytes at any sample.
    pub max_bytes: u64,
    /// Growth in bytes per second over the steady part, with its 95% interval; `None` with
    /// fewer than [`stats::trend::MIN_POINTS`] steady samples.
    pub growth: Option<Estimate>,
    /// How many samples the growth was estimated from.
    pub steady_samples: usize,
    /// Why sampling stopped before the load ended, if it did (the process exited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

impl MemoryResult {
    /// The sampled series, timed from `load_start` (samples before it, in the warm-up, are left
    /// out); `None` when nothing was sampled.
    pub fn of(series: Vec<Series>, load_start: Instant) -> Option<MemoryResult> {
        let since = |at: Instant| {
            let seconds = at.saturating_duration_since(load_start).as_secs_f64();
            (seconds * 1000.0).round() / 1000.0
        };
        let every = series.iter().map(|s| s.every).max()?;
        let kept: Vec<(Series, Vec<(f64, u64)>)> = series
            .into_iter()
            .map(|s| {
                let samples = s
                    .samples
                    .iter()
                    .filter(|(at, _)| *at >= load_start)
                    .map(|&(at, rss)| (since(at), rss))
                    .collect();
                (s, samples)
            })
            .collect();
        let last = kept
            .iter()
            .filter_map(|(_, samples)| samples.last().map(|s| s.0))
            .fold(0.0, f64::max);
        let steady_from_s = (last * STEADY_AFTER * 1000.0).round() / 1000.0;
        let processes = kept
            .into_iter()
            .map(|(s, samples)| ProcessMemory::of(s, samples, steady_from_s))
            .collect();
        Some(MemoryResult {
            sample_every_s: every.as_secs_f64(),
            steady_from_s,
            processes,
        })
    }

    /// The process called `name`.
    pub fn process(&self, name: &str) -> Option<&ProcessMemory> {
        self.processes.iter().find(|p| p.name == name)
    }
}

impl ProcessMemory {
    fn of(series: Series, samples: Vec<(f64, u64)>, steady_from_s: f64) -> ProcessMemory {
        let steady: Vec<(f64, f64)> = samples
            .iter()
            .filter(|(t, _)| *t >= steady_from_s)
            .map(|&(t, rss)| (t, rss as f64))
            .collect();
        let stride = steady.len().div_ceil(MAX_ESTIMATE_POINTS).max(1);
        let points: Vec<(f64, f64)> = steady.iter().copied().step_by(stride).collect();
        ProcessMemory {
            name: series.watched.name,
            service: series.watched.service,
            start_bytes: samples.first().map_or(0, |s| s.1),
            end_bytes: samples.last().map_or(0, |s| s.1),
            max_bytes: samples.iter().map(|s| s.1).max().unwrap_or(0),
            growth: stats::trend::slope(&points),
            steady_samples: points.len(),
            samples,
            stopped: series.stopped,
        }
    }

    /// The end of the growth interval a bound on it is judged by: the upper end for `<` and
    /// `<=` (the data must rule out growth at the bound), the lower end for `>` and `>=`.
    pub fn judged_growth(&self, upper: bool) -> Option<f64> {
        self.growth.map(|g| if upper { g.high } else { g.low })
    }
}

/// A growth in bytes per second as people read it: per minute, in decimal units (`2.3 MB/min`,
/// `-120 KB/min`), with three significant digits.
pub fn growth_text(bytes_per_second: f64) -> String {
    let per_minute = bytes_per_second * 60.0;
    let size = per_minute.abs();
    let (scale, unit) = if size >= 1e9 {
        (1e9, "GB")
    } else if size >= 1e6 {
        (1e6, "MB")
    } else if size >= 1e3 {
        (1e3, "KB")
    } else {
        (1.0, "B")
    };
    let value = per_minute / scale;
    let decimals = if value.abs() >= 100.0 {
        0
    } else if value.abs() >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.decimals$} {unit}/min")
}

/// Resident bytes as people read them: `24.3 MB`.
pub fn bytes_text(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.0} KB", b / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::system::rss::{PERIOD, Watched};

    fn series(name: &str, start: Instant, rss: impl Fn(u64) -> u64, seconds: u64) -> Series {
        Series {
            watched: Watched {
                name: name.into(),
                pid: 1,
                service: name != "harness",
            },
            samples: (0..seconds)
                .map(|s| (start + PERIOD * s as u32, rss(s)))
                .collect(),
            every: PERIOD,
            stopped: None,
        }
    }

    #[test]
    fn growth_is_estimated_after_the_first_fifth_of_the_load() {
        let t0 = Instant::now();
        // 10 s of warm-up before the load, then a leak of 1 MB/s that starts at second 0 and a
        // 100 MB jump in the first second (a cache filling): neither counts.
        let warm = t0 - Duration::from_secs(10);
        let leaky = series(
            "core-engine",
            warm,
            |s| {
                let t = s.saturating_sub(10);
                50_000_000 + if t >= 1 { 100_000_000 } else { 0 } + t * 1_000_000
            },
            60,
        );
        let flat = series("harness", warm, |_| 20_000_000, 60);
        let memory = MemoryResult::of(vec![leaky, flat], t0).expect("sampled");
        assert_eq!(memory.steady_from_s, 9.8);
        let engine = memory.process("core-engine").expect("engine");
        assert_eq!(engine.samples.len(), 50);
        assert_eq!(engine.samples[0], (0.0, 50_000_000));
        assert_eq!(engine.start_bytes, 50_000_000);
        assert_eq!(engine.end_bytes, 150_000_000 + 49_000_000);
        assert_eq!(engine.max_bytes, engine.end_bytes);
        assert_eq!(engine.steady_samples, 40);
        let growth = engine.growth.expect("estimated");
        assert_eq!(growth.estimate, 1_000_000.0);
        assert_eq!(engine.judged_growth(true), Some(1_000_000.0));
        let harness = memory.process("harness").expect("harness");
        assert!(!harness.service);
        assert_eq!(harness.growth.map(|g| (g.low, g.high)), Some((0.0, 0.0)));
    }

    #[test]
    fn long_series_are_thinned_for_the_estimate_and_short_ones_give_none() {
        let t0 = Instant::now();
        let long = series("core-engine", t0, |s| 1000 + 3 * s, 3600);
        let memory = MemoryResult::of(vec![long], t0).expect("sampled");
        let engine = &memory.processes[0];
        assert_eq!(engine.samples.len(), 3600);
        assert!(engine.steady_samples <= MAX_ESTIMATE_POINTS);
        assert_eq!(engine.growth.map(|g| g.estimate), Some(3.0));
        let short = series("core-engine", t0, |s| s, 4);
        let memory = MemoryResult::of(vec![short], t0).expect("sampled");
        assert_eq!(memory.processes[0].growth, None);
        assert_eq!(MemoryResult::of(Vec::new(), t0), None);
    }

    #[test]
    fn growth_reads_per_minute_in_decimal_units() {
        assert_eq!(growth_text(1e6 / 60.0), "1.00 MB/min");
        assert_eq!(growth_text(3_276_800.0), "197 MB/min");
        assert_eq!(growth_text(-2000.0), "-120 KB/min");
        assert_eq!(growth_text(0.0), "0.00 B/min");
        assert_eq!(bytes_text(24_324_000), "24.3 MB");
    }

    /// `result.json` stores samples as `[second, bytes]` pairs and the growth as an estimate.
    #[test]
    fn the_section_keeps_its_stored_shape() {
        let t0 = Instant::now();
        let memory =
            MemoryResult::of(vec![series("harness", t0, |s| 4096 * s, 6)], t0).expect("sampled");
        let json = serde_json::to_value(&memory).expect("serialises");
        assert_eq!(
            json["processes"][0]["samples"][1],
            serde_json::json!([1.0, 4096])
        );
        assert_eq!(json["processes"][0]["growth"]["estimate"], 4096.0);
        assert!(json["processes"][0].get("stopped").is_none());
        let back: MemoryResult = serde_json::from_value(json).expect("reads back");
        assert_eq!(back, memory);
    }
}
