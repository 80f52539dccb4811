//! Resident memory over the load, one line per process, with the second from which its growth
//! was estimated marked, and each process's growth with its interval beside the chart.
//!
//! A line that levels off after the marked second is memory that filled and stayed; one that
//! keeps climbing at the same slope is what a leak looks like, and the growth's interval says
//! whether the run was long enough to tell the two apart.

use serde::Serialize;

use super::{Fact, Figure, HEADROOM, Table, fact};
use crate::report::chart::{Axis, Chart, Color};
use crate::result::memory::{MemoryResult, ProcessMemory, bytes_text, growth_text};

/// The most points a line draws: a few per pixel across the plot.
const MAX_POINTS: usize = 400;
/// The line colours, in the order of the processes (services first, the harness last).
const COLORS: [Color; 4] = [Color::S1, Color::S2, Color::S3, Color::S4];

#[derive(Debug, Serialize)]
pub(super) struct MemoryView {
    figure: Figure,
    /// Per process: its growth and interval, for the list beside the chart.
    growth: Vec<Fact>,
    /// Processes whose sampling stopped early, and why.
    stopped: Vec<Fact>,
    steady_from: String,
}

pub(super) fn memory(memory: &MemoryResult) -> Option<MemoryView> {
    let end = memory
        .processes
        .iter()
        .filter_map(|p| p.samples.last().map(|s| s.0))
        .fold(0.0, f64::max);
    let top = memory
        .processes
        .iter()
        .map(|p| p.max_bytes)
        .max()
        .filter(|&max| max > 0)?;
    let x = Axis::linear_exact("seconds into the load", 0.0, end.max(1.0));
    let y = Axis::linear("resident memory (MB)", 0.0, top as f64 / 1e6 * HEADROOM);
    let mut chart = Chart::new("Resident memory of each process over the load", x, y);
    // A line needs two samples; a run too short for any gets its table alone.
    let mut charted = false;
    for (process, color) in memory.processes.iter().zip(COLORS.iter().cycle()) {
        if process.samples.len() < 2 {
            continue;
        }
        charted = true;
        let stride = process.samples.len().div_ceil(MAX_POINTS).max(1);
        let points: Vec<Option<(f64, f64)>> = process
            .samples
            .iter()
            .step_by(stride)
            .chain(process.samples.last())
            .map(|&(t, rss)| Some((t, rss as f64 / 1e6)))
            .collect();
        chart.line(&process.name, *color, &points);
    }
    chart.vrule(memory.steady_from_s, "steady", "growth estimated from here");
    let mut table = Table::new(&[
        "process",
        "start",
        "end",
        "max",
        "growth",
        "95% interval",
        "samples",
    ]);
    for process in &memory.processes {
        let (estimate, interval) = growth_cells(process);
        table.push(
            vec![
                process.name.clone(),
                bytes_text(process.start_bytes),
                bytes_text(process.end_bytes),
                bytes_text(process.max_bytes),
                estimate,
                interval,
                process.steady_samples.to_string(),
            ],
            false,
        );
    }
    let steady_from = format!("{:.0}", memory.steady_from_s);
    Some(MemoryView {
        figure: Figure {
            id: "memory-chart".to_owned(),
            caption: format!(
                "Resident memory (VmRSS) sampled every {} s. The growth is the Theil–Sen slope \
                 from second {steady_from} on (the first fifth of the load is left out); \
                 memory.growth thresholds are judged on its interval.",
                memory.sample_every_s
            ),
            svgs: if charted {
                vec![chart.render()]
            } else {
                Vec::new()
            },
            table,
        },
        growth: memory
            .processes
            .iter()
            .map(|p| {
                let (estimate, interval) = growth_cells(p);
                fact(&p.name, format!("{estimate} ({interval})"))
            })
            .collect(),
        stopped: memory
            .processes
            .iter()
            .filter_map(|p| p.stopped.as_ref().map(|why| fact(&p.name, why.clone())))
            .collect(),
        steady_from,
    })
}

/// The growth and its interval as the page prints them, or why there is none.
fn growth_cells(process: &ProcessMemory) -> (String, String) {
    match process.growth {
        Some(g) => (
            growth_text(g.estimate),
            format!("{} to {}", growth_text(g.low), growth_text(g.high)),
        ),
        None => (
            "not estimated".to_owned(),
            "too few samples after the first fifth of the load".to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::samples::{charts, draws_data, element, escaped, html, sample};
    use super::*;

    fn process(name: &str, slope: f64) -> ProcessMemory {
        let samples: Vec<(f64, u64)> = (0..30)
            .map(|s| (s as f64, 30_000_000 + (slope * s as f64) as u64))
            .collect();
        ProcessMemory {
            name: name.to_owned(),
            service: name != "harness",
            start_bytes: samples[0].1,
            end_bytes: samples[29].1,
            max_bytes: samples[29].1,
            growth: stats::trend::slope(
                &samples[6..]
                    .iter()
                    .map(|&(t, b)| (t, b as f64))
                    .collect::<Vec<_>>(),
            ),
            steady_samples: 24,
            samples,
            stopped: None,
        }
    }

    #[test]
    fn the_page_charts_each_process_and_lists_its_growth() {
        let mut result = sample("smoke");
        result.memory = Some(MemoryResult {
            sample_every_s: 1.0,
            steady_from_s: 5.8,
            processes: vec![
                process("core-engine", 3_000_000.0),
                process("api-gateway", 0.0),
                process("harness", 1000.0),
            ],
        });
        let page = html(&result);
        let section = element(&page, "memory");
        let chart = charts(section);
        assert_eq!(chart.len(), 1);
        assert!(draws_data(chart[0]));
        for name in ["core-engine", "api-gateway", "harness"] {
            assert!(
                chart[0].contains(&format!("<title>{name}</title>")),
                "{name}"
            );
        }
        assert!(chart[0].contains("growth estimated from here"));
        assert!(section.contains(&escaped("180 MB/min")), "{section}");
        assert!(
            section.contains(&escaped("0.00 B/min (0.00 B/min to 0.00 B/min)")),
            "{section}"
        );
        assert!(section.contains("from second 6 of the load"), "{section}");
    }

    #[test]
    fn a_result_without_memory_has_no_section() {
        let page = html(&sample("smoke"));
        assert!(!page.contains("id=\"memory\""));
        let empty = MemoryResult {
            sample_every_s: 1.0,
            steady_from_s: 0.0,
            processes: Vec::new(),
        };
        assert!(memory(&empty).is_none());
    }

    #[test]
    fn a_run_too_short_for_a_line_gets_the_table_alone() {
        let mut result = sample("smoke");
        let mut engine = process("core-engine", 0.0);
        engine.samples.truncate(1);
        result.memory = Some(MemoryResult {
            sample_every_s: 1.0,
            steady_from_s: 0.0,
            processes: vec![engine],
        });
        let page = html(&result);
        let section = element(&page, "memory");
        assert!(charts(section).is_empty(), "{section}");
        assert!(section.contains("core-engine"), "{section}");
    }
}
