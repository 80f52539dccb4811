//! The run over time: latency and throughput second by second, with stalls and the load profile's
//! phases.
//!
//! A long run is drawn in buckets of whole seconds, at most [`MAX_BUCKETS`] of them: a chart is a
//! few hundred pixels wide, and a mark, a hover title and a table row per second would make the
//! page, and the memory that builds it at the end of a run, grow with the run's length. Each
//! bucket keeps what its chart means: the highest p50 and p99 of its seconds (a spike is never
//! averaged away), its counts summed, and how many of its seconds stalled. `result.json` keeps
//! every second.

use serde::Serialize;

use super::profile::{mean_target_over, target_line};
use super::{Figure, HEADROOM, Table};
use crate::format::{count, duration_us, latency_axis_unit, significant};
use crate::report::chart::{Axis, Chart, Color};
use crate::result::{PhaseResult, SecondResult};

/// The most points a timeline chart draws per series (and rows its tables hold): over three
/// pixels each across the plot. A run of up to this many seconds is drawn second by second.
pub(crate) const MAX_BUCKETS: usize = 200;

/// The most runs of stalled seconds the warning lists by name; it counts the rest.
const LISTED_STALLS: usize = 20;

#[derive(Debug, Serialize)]
pub(super) struct TimelineView {
    latency: Figure,
    throughput: Figure,
    /// Seconds in which nothing completed.
    stalled: usize,
    /// Those seconds, runs of them as ranges (`3, 8–11`), the first [`LISTED_STALLS`] runs named.
    stall_list: String,
}

/// Consecutive seconds of the timeline drawn as one point.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bucket {
    /// The index of its first second in the timeline: its place on the time axis.
    pub(crate) start: usize,
    /// How many seconds it covers: the bucket width, or fewer for the run's last.
    pub(crate) len: usize,
    /// Its first and last seconds, numbered as the timeline records them.
    pub(crate) first: u64,
    pub(crate) last: u64,
    pub(crate) sent: u64,
    pub(crate) completed: u64,
    pub(crate) unexpected: u64,
    pub(crate) dropped: u64,
    /// The highest p50 of its seconds; `None` when nothing completed in any of them.
    pub(crate) p50_us: Option<u64>,
    /// The highest p99 of its seconds.
    pub(crate) p99_us: Option<u64>,
    /// Its seconds in which nothing completed.
    pub(crate) stalled: usize,
}

impl Bucket {
    /// `seconds` is not empty: [`buckets`] makes chunks of at least one.
    fn of(start: usize, seconds: &[SecondResult]) -> Bucket {
        let sum =
            |f: fn(&SecondResult) -> u64| seconds.iter().map(f).fold(0u64, u64::saturating_add);
        Bucket {
            start,
            len: seconds.len(),
            first: seconds.first().map_or(0, |s| s.second),
            last: seconds.last().map_or(0, |s| s.second),
            sent: sum(|s| s.sent),
            completed: sum(|s| s.completed),
            unexpected: sum(|s| s.unexpected),
            dropped: sum(|s| s.dropped),
            p50_us: seconds.iter().filter_map(|s| s.p50_us).max(),
            p99_us: seconds.iter().filter_map(|s| s.p99_us).max(),
            stalled: seconds.iter().filter(|s| stalled(s)).count(),
        }
    }

    /// Its interval on the time axis.
    fn span(&self) -> (f64, f64) {
        (self.start as f64, (self.start + self.len) as f64)
    }

    /// `second 3` or `seconds 120–131`.
    fn name(&self) -> String {
        if self.len == 1 {
            format!("second {}", self.first)
        } else {
            format!("seconds {}–{}", self.first, self.last)
        }
    }

    /// The first cell of its table row: the second, or the first and last.
    fn cell(&self) -> String {
        if self.len == 1 {
            self.first.to_string()
        } else {
            format!("{}–{}", self.first, self.last)
        }
    }

    /// A count of the bucket as a rate: per second, over the seconds it covers.
    fn per_second(&self, n: u64) -> f64 {
        n as f64 / self.len as f64
    }
}

/// A second in which nothing completed: a stall, never a zero latency.
fn stalled(second: &SecondResult) -> bool {
    second.p50_us.is_none()
}

/// Seconds per bucket for a timeline of `seconds`: one up to [`MAX_BUCKETS`] seconds, then as
/// few as keep the buckets at most [`MAX_BUCKETS`].
pub(crate) fn bucket_width(seconds: usize) -> usize {
    seconds.div_ceil(MAX_BUCKETS).max(1)
}

/// The timeline in buckets of [`bucket_width`] seconds, in order; the last may be shorter.
pub(crate) fn buckets(seconds: &[SecondResult]) -> impl Iterator<Item = Bucket> + '_ {
    let width = bucket_width(seconds.len());
    seconds
        .chunks(width)
        .enumerate()
        .map(move |(i, chunk)| Bucket::of(i * width, chunk))
}

/// The stalled seconds as the warning names them: runs of consecutive seconds as ranges, the
/// first [`LISTED_STALLS`] runs listed and the rest counted.
fn stall_list(seconds: &[SecondResult]) -> String {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    let mut more = 0usize;
    let mut previous_stalled = false;
    for s in seconds {
        let now = stalled(s);
        if now && previous_stalled {
            if let Some(run) = runs.last_mut().filter(|_| more == 0) {
                run.1 = s.second;
            }
        } else if now {
            if runs.len() < LISTED_STALLS {
                runs.push((s.second, s.second));
            } else {
                more += 1;
            }
        }
        previous_stalled = now;
    }
    let mut list = runs
        .iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}–{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    if more > 0 {
        list.push_str(&format!(" and {more} more run(s) of stalled seconds"));
    }
    list
}

fn phase_label(i: usize, phase: &PhaseResult) -> String {
    let rate = |r: f64| {
        if r.fract() == 0.0 {
            format!("{r:.0}")
        } else {
            significant(r, 3)
        }
    };
    if phase.from_rate == phase.to_rate {
        format!("phase {}: {}/s", i + 1, rate(phase.from_rate))
    } else {
        format!(
            "phase {}: {}→{}/s",
            i + 1,
            rate(phase.from_rate),
            rate(phase.to_rate)
        )
    }
}

/// A bucket's hover text: its latency and its counts.
fn hover(b: &Bucket) -> String {
    let highest = if b.len == 1 { "" } else { "highest " };
    let latency = match (b.p50_us, b.p99_us) {
        (Some(p50), Some(p99)) => format!(
            "{highest}p50 {}, {highest}p99 {}",
            duration_us(p50 as f64),
            duration_us(p99 as f64)
        ),
        _ => "nothing completed".to_owned(),
    };
    let stalls = if b.stalled > 0 && b.stalled < b.len {
        format!(" (nothing completed in {} of its seconds)", b.stalled)
    } else {
        String::new()
    };
    format!(
        "{}: {latency}{stalls}; sent {}, completed {}, unexpected {}, dropped {}",
        b.name(),
        count(b.sent),
        count(b.completed),
        count(b.unexpected),
        count(b.dropped)
    )
}

/// `experiment`: the timeline is an overhead experiment's treatment trials, end to end.
pub(super) fn timeline(
    seconds: &[SecondResult],
    phases: &[PhaseResult],
    experiment: bool,
) -> Option<TimelineView> {
    if seconds.is_empty() {
        return None;
    }
    let width = bucket_width(seconds.len());
    let buckets: Vec<Bucket> = buckets(seconds).collect();
    let end = seconds.len() as f64;
    let top_us = buckets
        .iter()
        .filter_map(|b| b.p50_us.max(b.p99_us))
        .max()
        .unwrap_or(0);
    let (unit_us, unit) = latency_axis_unit(top_us as f64);
    let level = |b: &Bucket, us: Option<u64>| {
        let (from, to) = b.span();
        (from, to, us.map(|us| us as f64 / unit_us))
    };
    let p50: Vec<_> = buckets.iter().map(|b| level(b, b.p50_us)).collect();
    let p99: Vec<_> = buckets.iter().map(|b| level(b, b.p99_us)).collect();
    let stalled_seconds: usize = buckets.iter().map(|b| b.stalled).sum();
    let time_axis = || Axis::linear_exact("time (s)", 0.0, end);
    let hovers: Vec<(f64, f64, String)> = buckets
        .iter()
        .map(|b| {
            let (from, to) = b.span();
            (from, to, hover(b))
        })
        .collect();
    // One phase needs no marking: the target line says all there is. A phase the run never
    // reached has no boundary on this axis.
    let draw_phases = |chart: &mut Chart| {
        if phases.len() > 1 {
            for (i, phase) in phases.iter().enumerate() {
                if phase.start_s < end {
                    chart.vrule(phase.start_s, "phase", &phase_label(i, phase));
                }
            }
        }
    };

    let mut latency = Chart::new(
        if width == 1 {
            "Latency per second: p50 and p99".to_owned()
        } else {
            format!("Latency in buckets of {width} s: the highest per-second p50 and p99 of each")
        },
        time_axis(),
        Axis::spread(
            format!("latency ({unit})"),
            p50.iter().chain(&p99).filter_map(|&(_, _, v)| v),
        ),
    );
    // Drawn where the lines are: at the bucket's place in the timeline.
    for b in buckets.iter().filter(|b| b.stalled > 0) {
        let (from, to) = b.span();
        let title = if b.len == 1 {
            format!("second {}: no request completed", b.first)
        } else {
            format!(
                "{}: no request completed in {} of its {} seconds",
                b.name(),
                b.stalled,
                b.len
            )
        };
        latency.stall(from, to, "nothing completed", &title);
    }
    latency.hover_columns(&hovers);
    draw_phases(&mut latency);
    latency.steps("p50", Color::S1, &p50);
    latency.steps("p99", Color::S2, &p99);
    let mut latency_table = if width == 1 {
        Table::new(&["second", "p50", "p99"])
    } else {
        Table::new(&["seconds", "highest p50", "highest p99"])
    };
    for b in &buckets {
        let (p50, p99) = match (b.p50_us, b.p99_us) {
            (Some(p50), Some(p99)) => (duration_us(p50 as f64), duration_us(p99 as f64)),
            _ => ("nothing completed".to_owned(), "—".to_owned()),
        };
        latency_table.push(vec![b.cell(), p50, p99], b.stalled > 0);
    }

    let rate_of = |f: fn(&Bucket) -> u64| -> Vec<(f64, f64, Option<f64>)> {
        buckets
            .iter()
            .map(|b| {
                let (from, to) = b.span();
                (from, to, Some(b.per_second(f(b))))
            })
            .collect()
    };
    // The target as far as the timeline goes: a run that stopped early was not asked for the
    // rest of the profile, and the axis covers only the rates drawn.
    let target = target_line(phases, end);
    let top = buckets
        .iter()
        .map(|b| b.per_second(b.sent.max(b.completed)))
        .chain(target.iter().map(|&(_, rate)| rate))
        .fold(0.0, f64::max);
    let against = if phases.is_empty() {
        ""
    } else {
        ", against the target rate"
    };
    let mut throughput = Chart::new(
        if width == 1 {
            format!("Requests per second: sent and completed{against}")
        } else {
            format!(
                "Requests per second, the mean of each {width} s bucket: sent and completed{against}"
            )
        },
        time_axis(),
        Axis::linear("requests per second", 0.0, top * HEADROOM),
    );
    throughput.hover_columns(&hovers);
    draw_phases(&mut throughput);
    throughput.steps("sent", Color::S1, &rate_of(|b| b.sent));
    throughput.steps("completed", Color::S3, &rate_of(|b| b.completed));
    if buckets.iter().any(|b| b.unexpected > 0) {
        throughput.steps("unexpected", Color::S2, &rate_of(|b| b.unexpected));
    }
    if buckets.iter().any(|b| b.dropped > 0) {
        throughput.steps("dropped", Color::S4, &rate_of(|b| b.dropped));
    }
    // On top: a held rate runs along the target, which must still show.
    let target: Vec<Option<(f64, f64)>> = target.into_iter().map(Some).collect();
    throughput.dashed("target rate", Color::Muted, &target);
    let mut throughput_table = Table::new(&[
        if width == 1 { "second" } else { "seconds" },
        "target /s",
        "sent",
        "completed",
        "unexpected",
        "dropped",
    ]);
    for b in &buckets {
        let (from, to) = b.span();
        throughput_table.push(
            vec![
                b.cell(),
                mean_target_over(phases, from, to)
                    .map_or_else(|| "—".to_owned(), |r| significant(r, 4)),
                count(b.sent),
                count(b.completed),
                count(b.unexpected),
                count(b.dropped),
            ],
            false,
        );
    }
    let stall_note = if stalled_seconds == 0 {
        String::new()
    } else {
        format!(
            " Shaded: {} where no request completed in {stalled_seconds} second(s) (a stall, not a zero latency).",
            if width == 1 {
                "the seconds"
            } else {
                "the buckets"
            }
        )
    };
    let phase_note = if experiment {
        " The seconds are the treatment arm's trials, one after another."
    } else if phases.len() < 2 {
        ""
    } else {
        " Vertical lines mark the phases of the load profile."
    };
    let bucket_note = |what: &str| {
        if width == 1 {
            String::new()
        } else {
            format!(
                " The run's {} seconds are drawn in {} buckets of {width} s (the last may be shorter); {what} result.json keeps every second.",
                seconds.len(),
                buckets.len()
            )
        }
    };
    Some(TimelineView {
        latency: Figure {
            id: "timeline-latency".to_owned(),
            caption: format!(
                "Latency from the intended send time of the requests that completed in each second.{}{stall_note}{phase_note}",
                bucket_note(
                    "each shows the highest p50 and the highest p99 of its seconds, so that no spike is averaged away;"
                )
            ),
            svgs: vec![latency.render()],
            table: latency_table,
        },
        throughput: Figure {
            id: "timeline-throughput".to_owned(),
            caption: format!(
                "Requests sent and completed in each second{}.{}{phase_note}",
                if phases.is_empty() {
                    ""
                } else {
                    ", with the rate the scenario asked for"
                },
                bucket_note(
                    "the chart shows each one's mean per second, the table its totals and mean target;"
                )
            ),
            svgs: vec![throughput.render()],
            table: throughput_table,
        },
        stalled: stalled_seconds,
        stall_list: stall_list(seconds),
    })
}

#[cfg(test)]
mod tests;
