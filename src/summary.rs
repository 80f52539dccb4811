//! The end-of-run summary on stdout: the table a person reads first.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::format::{self, cpu_time, duration_terse, percent_fixed};
use crate::result::memory::{MemoryResult, bytes_text, growth_text};
use crate::result::overhead::{
    ArmResult, Effect, FaultCounts, InstructionCounts, OverheadResult, ServiceEffect, Spread,
    StepEffect,
};
use crate::result::{Percentiles, RunResult, RunStatus};

fn row(out: &mut String, name: &str, sent: u64, unexpected: u64, dropped: u64, p: &Percentiles) {
    let _ = writeln!(
        out,
        "{name:<20} {sent:>9} {unexpected:>10} {dropped:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        duration_terse(p.p50),
        duration_terse(p.p90),
        // Unknown in a result written before p95 was recorded.
        p.p95.map_or_else(|| "-".to_owned(), duration_terse),
        duration_terse(p.p99),
        duration_terse(p.p999),
        duration_terse(p.max),
    );
}

/// The summary of `result` as printed after a run: load, latency, verification, thresholds and,
/// for an experiment, the overhead.
pub fn render(result: &RunResult) -> String {
    let mut out = String::new();
    let load = &result.load;
    let _ = writeln!(
        out,
        "scenario {}: {}",
        result.scenario.name,
        status_line(&result.status)
    );
    let _ = writeln!(
        out,
        "rate: target {:.1}/s, achieved {:.1}/s ({:.1}%) over {:.1}s; {} scheduled, {} sent, {} dropped",
        load.target_rate,
        load.achieved_rate,
        if load.target_rate > 0.0 {
            100.0 * load.achieved_rate / load.target_rate
        } else {
            0.0
        },
        load.send_duration_s,
        load.scheduled,
        load.sent,
        load.dropped,
    );
    if let Some(fleet) = &result.fleet {
        let late = fleet
            .shards
            .iter()
            .map(|s| s.start_lag_ms)
            .max()
            .unwrap_or(0);
        let _ = writeln!(
            out,
            "fleet: {} shards merged (histograms added exactly); the latest started {late} ms after the common start",
            fleet.count
        );
        if let Some(note) = &fleet.metrics_not_reconciled {
            let _ = writeln!(out, "metrics: {note}");
        }
    }
    for key in &result.scenario.insecure {
        let _ = writeln!(
            out,
            "WARNING: {key}.insecure: server certificates were not verified; what came through it is unauthenticated"
        );
    }
    if load.sent > 1 && load.achieved_rate < 0.99 * load.target_rate {
        let _ = writeln!(
            out,
            "WARNING: the target rate was not held ({:.1}% of it); latencies describe a lighter load",
            100.0 * load.achieved_rate / load.target_rate
        );
    }
    if load.send_lag.p99 > 5_000 {
        let _ = writeln!(
            out,
            "WARNING: the harness sent late (send lag p99 {}): the machine is short of CPU, and every latency includes that lag",
            duration_terse(load.send_lag.p99)
        );
    }
    let _ = writeln!(out, "latency from the intended send time:");
    let _ = writeln!(
        out,
        "{:<20} {:>9} {:>10} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "kind", "sent", "unexpected", "dropped", "p50", "p90", "p95", "p99", "p99.9", "max"
    );
    for kind in &result.kinds {
        row(
            &mut out,
            &kind.name,
            kind.sent,
            kind.unexpected,
            kind.dropped,
            &kind.latency,
        );
    }
    row(
        &mut out,
        "all",
        load.sent,
        load.unexpected,
        load.dropped,
        &load.latency,
    );
    let _ = writeln!(
        out,
        "service time (from the actual send): p50 {}, p99 {}, max {}",
        duration_terse(load.service_time.p50),
        duration_terse(load.service_time.p99),
        duration_terse(load.service_time.max),
    );
    let _ = writeln!(
        out,
        "send lag (actual minus intended send, included above): p50 {}, p99 {}, max {}",
        duration_terse(load.send_lag.p50),
        duration_terse(load.send_lag.p99),
        duration_terse(load.send_lag.max),
    );
    for kind in result.kinds.iter().filter(|k| k.unexpected > 0) {
        let outcomes: Vec<String> = kind
            .outcomes
            .iter()
            .map(|(o, n)| format!("{o}: {n}"))
            .collect();
        let _ = writeln!(out, "outcomes of {}: {}", kind.name, outcomes.join(", "));
        for error in &kind.transport_errors {
            let _ = writeln!(out, "  transport error: {error}");
        }
    }
    if let Some(stream) = &result.stream {
        stream::lines(&mut out, stream);
    }
    verification(&mut out, result);
    if let Some(experiment) = &result.overhead {
        overhead(&mut out, experiment);
    }
    if let Some(sampled) = &result.memory {
        memory(&mut out, sampled);
    }
    if !result.thresholds.is_empty() {
        let _ = writeln!(out, "thresholds:");
        for t in &result.thresholds {
            let _ = writeln!(out, "  [{}] {}", t.scope, t.evaluation);
        }
    }
    out
}

mod stream;
/// Each process's resident memory over the load and its growth with the interval.
fn memory(out: &mut String, memory: &MemoryResult) {
    let _ = writeln!(
        out,
        "memory (resident; growth from second {:.0} of the load, 95% interval):",
        memory.steady_from_s
    );
    for p in &memory.processes {
        let growth = match p.growth {
            Some(g) => format!(
                "growth {} [{} to {}]",
                growth_text(g.estimate),
                growth_text(g.low),
                growth_text(g.high)
            ),
            None => "growth not estimated (too few samples)".to_owned(),
        };
        let _ = writeln!(
            out,
            "  {:<14} {} -> {} (max {}), {growth}",
            p.name,
            bytes_text(p.start_bytes),
            bytes_text(p.end_bytes),
            bytes_text(p.max_bytes),
        );
        if let Some(why) = &p.stopped {
            let _ = writeln!(out, "    sampling stopped early: {why}");
        }
    }
}

/// Examples of failures printed; the rest are in result.json.
const SHOWN_FAILURES: usize = 5;

fn verification(out: &mut String, result: &RunResult) {
    if let Some(traces) = &result.verification.traces {
        let _ = writeln!(
            out,
            "traces ({}): {} sampled, {} complete ({}), {} passed every check",
            traces.source,
            traces.sampled,
            traces.complete,
            traces
                .completeness
                .map_or_else(|| "n/a".to_owned(), |c| format!("{:.1}%", c * 100.0)),
            traces.passed,
        );
        if traces.unanswered > 0 {
            let _ = writeln!(
                out,
                "  {} sampled request(s) got no response: each failed the response check",
                traces.unanswered
            );
        }
        if traces.not_judged > 0 {
            let _ = writeln!(
                out,
                "  {} sampled request(s) failed in transport and were not judged",
                traces.not_judged
            );
        }
        if let Some(visible) = &traces.visible {
            let _ = writeln!(
                out,
                "  visible after: p50 {}, p90 {}, p99 {}, max {}",
                duration_terse(visible.p50),
                duration_terse(visible.p90),
                duration_terse(visible.p99),
                duration_terse(visible.max),
            );
        }
        for (check, count) in &traces.failed_checks {
            let _ = writeln!(out, "  failed {check}: {count} trace(s)");
        }
        for failing in traces.failing.iter().take(SHOWN_FAILURES) {
            for failure in &failing.failures {
                let _ = writeln!(
                    out,
                    "  {} [{} {}] {}: {}",
                    failing.trace_id, failing.kind, failing.outcome, failure.check, failure.detail
                );
            }
        }
    }
    if let Some(streams) = &result.verification.streams {
        stream::traces(out, streams);
    }
    if let Some(metrics) = &result.verification.metrics {
        let _ = writeln!(
            out,
            "metrics: {}",
            if metrics.reconciled {
                "reconciled"
            } else {
                "NOT reconciled"
            }
        );
        for source in &metrics.sources {
            let passed = source.checks.iter().filter(|c| c.passed).count();
            let _ = writeln!(
                out,
                "  {}: {passed}/{} checks passed",
                source.source,
                source.checks.len()
            );
            if let Some(error) = &source.error {
                let _ = writeln!(out, "    error: {error}");
            }
            for check in source.checks.iter().filter(|c| !c.passed) {
                let _ = writeln!(out, "    {}: {}", check.subject(), check.comparison());
            }
        }
    }
    if let Some(pii) = &result.verification.pii {
        let _ = writeln!(out, "pii: {}", pii.headline());
        for finding in pii.findings.iter().take(SHOWN_FAILURES) {
            let sort = if finding.canary { "canary" } else { "pattern" };
            let _ = writeln!(
                out,
                "  {sort} {} {} at {}",
                finding.kind, finding.value, finding.place
            );
        }
        for why in &pii.not_searched {
            let _ = writeln!(out, "  not searched: {why}");
        }
    }
}

fn overhead(out: &mut String, experiment: &OverheadResult) {
    let arm = |arm: &ArmResult| {
        let tracing = if arm.tracing {
            "tracing on"
        } else {
            "tracing off"
        };
        std::iter::once(tracing.to_owned())
            .chain(arm.extras.iter().cloned())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let _ = writeln!(
        out,
        "overhead: control ({}) against treatment ({}), {} trials each, {}",
        arm(&experiment.control),
        arm(&experiment.treatment),
        experiment.trials_per_arm,
        experiment.execution.describe(),
    );
    for (n, step) in experiment.steps.iter().enumerate() {
        let _ = writeln!(
            out,
            "  arm between them, {}: {} ({})",
            n + 1,
            step.name,
            arm(&step.arm)
        );
    }
    let claim = &experiment.claim;
    let metric = claim.metric.describe();
    let _ = writeln!(
        out,
        "  claim: {metric} rises by less than {}: {}",
        percent_fixed(claim.bound),
        experiment.verdict
    );
    if let Some(spans) = experiment.spans_received {
        let _ = writeln!(out, "  spans received from the tracing arm(s): {spans}");
    }
    for point in &experiment.points {
        let a = &point.analysis;
        if let Some(setting) = &point.setting {
            let _ = writeln!(out, "  at {setting}:");
        }
        let judged = a.claim_effect(claim.metric);
        let _ = writeln!(
            out,
            "    {}: {metric} {} over {} pairs; smallest detectable effect {}",
            a.verdict,
            effect(judged.as_ref(), percent_fixed),
            a.pairs,
            a.smallest_detectable
                .map_or_else(|| "n/a".to_owned(), |r| format!("±{}", percent_fixed(r))),
        );
        if let (Some(control), Some(treatment)) = (a.control_cpu_us, a.treatment_cpu_us) {
            let _ = writeln!(
                out,
                "    CPU per request: control {control:.1}µs, treatment {treatment:.1}µs; cost {}",
                effect(a.cpu_cost_us.as_ref(), |us| format!("{us:.2}µs"))
            );
        }
        if let Some(break_even) = a.break_even_us {
            let range = a.break_even_range_us.map_or(String::new(), |(low, high)| {
                format!(" (95%: {} to {})", cpu_time(low), cpu_time(high))
            });
            let _ = writeln!(
                out,
                "    the cost is under {} only for requests of at least {} CPU{range}",
                percent_fixed(claim.bound),
                cpu_time(break_even),
            );
        }
        let services: Vec<String> = a
            .services
            .iter()
            .map(|(name, e)| {
                format!(
                    "{name} {} ({})",
                    effect(e.relative.as_ref(), percent_fixed),
                    effect(e.cost_us.as_ref(), |us| format!("{us:.2}µs"))
                )
            })
            .collect();
        let _ = writeln!(out, "    per service: {}", services.join("; "));
        page_faults(out, &a.services);
        let _ = writeln!(
            out,
            "    latency: p50 {}, p90 {}, p99 {}",
            effect(a.p50.as_ref(), percent_fixed),
            effect(a.p90.as_ref(), percent_fixed),
            effect(a.p99.as_ref(), percent_fixed),
        );
        if !a.steps.is_empty() {
            steps(out, experiment, &a.steps);
        }
        if let Some(counts) = &point.instructions {
            instructions(out, counts);
        }
    }
}

/// Each service's minor page faults per request in both arms, and a warning where they differ
/// enough to move the CPU comparison by themselves.
fn page_faults(out: &mut String, services: &BTreeMap<String, ServiceEffect>) {
    let counted: Vec<(&String, FaultCounts)> = services
        .iter()
        .filter_map(|(name, e)| Some((name, e.faults?)))
        .collect();
    if counted.is_empty() {
        return;
    }
    let listed: Vec<String> = counted
        .iter()
        .map(|(name, f)| format!("{name} {:.1} → {:.1}", f.control, f.treatment))
        .collect();
    let _ = writeln!(
        out,
        "    page faults per request (control → treatment): {}",
        listed.join(", ")
    );
    for (name, _) in counted.iter().filter(|(_, f)| f.differ()) {
        let _ = writeln!(
            out,
            "    warning: {name}'s page faults differ between the arms; its memory allocator \
             moves its CPU per request by itself, tracing or not (docs/overhead.md, \"Page faults\")"
        );
    }
}

/// Where tracing's cost goes, along the chain of arms.
fn steps(out: &mut String, experiment: &OverheadResult, steps: &[StepEffect]) {
    let _ = writeln!(
        out,
        "    where the cost goes (each arm against the one before it; CPU per request, and as a \
         share of the control's):"
    );
    for step in steps {
        let services: Vec<String> = step
            .services
            .iter()
            .map(|(name, e)| format!("{name} {}", effect(e.as_ref(), |us| format!("{us:.2}µs"))))
            .collect();
        let _ = writeln!(
            out,
            "      {}: {}, {}; {}",
            experiment.arm_title(step.arm),
            effect(step.cost_us.as_ref(), |us| format!("{us:.2}µs")),
            effect(step.share.as_ref(), percent_fixed),
            services.join(", "),
        );
    }
}

/// The second estimate, labelled as what it is.
fn instructions(out: &mut String, counts: &InstructionCounts) {
    let _ = writeln!(
        out,
        "    instructions per request (callgrind; {} counts of {} requests at {}/s; not time):",
        counts.counts.len(),
        counts.requests,
        counts.rate,
    );
    let (Some(control), Some(treatment), Some(relative), Some(cost)) = (
        counts.control,
        counts.treatment,
        counts.relative,
        counts.cost,
    ) else {
        let _ = writeln!(out, "      n/a (no complete count)");
        return;
    };
    let spread = |s: Spread, show: &dyn Fn(f64) -> String| {
        format!(
            "{} (from {} to {})",
            format::signed(show(s.median)),
            show(s.low),
            show(s.high)
        )
    };
    let _ = writeln!(
        out,
        "      control {control:.0}, treatment {treatment:.0}: {}, {} instructions",
        spread(relative, &percent_fixed),
        spread(cost, &|x| format!("{x:.0}")),
    );
    let services: Vec<String> = counts
        .services
        .iter()
        .map(|(name, s)| format!("{name} {}", spread(*s, &percent_fixed)))
        .collect();
    let _ = writeln!(out, "      per service: {}", services.join("; "));
}

/// `+12.3% [10.1%, 14.0%]`: an estimate and its 95% interval.
pub(crate) fn effect(effect: Option<&Effect>, show: impl Fn(f64) -> String) -> String {
    match effect {
        Some(e) => format!(
            "{} [{}, {}]",
            format::signed(show(e.estimate)),
            show(e.low),
            show(e.high)
        ),
        None => "n/a (too few pairs)".to_owned(),
    }
}

fn status_line(status: &RunStatus) -> String {
    match status {
        RunStatus::Completed => "completed".to_owned(),
        RunStatus::Interrupted { reason } => format!("INTERRUPTED: {reason}"),
        RunStatus::Failed { reason } => format!("FAILED: {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(name: &str) -> RunResult {
        let text = match name {
            "smoke" => include_str!("../tests/fixtures/results/smoke.json"),
            _ => include_str!("../tests/fixtures/results/stall.json"),
        };
        serde_json::from_str(text).expect("a stored result")
    }

    /// The `all` row's cells after the counts: p50, p90, p95, p99, p99.9, max.
    fn all_row(summary: &str) -> Vec<String> {
        let line = summary
            .lines()
            .find(|l| l.starts_with("all "))
            .expect("an all row");
        line.split_whitespace().skip(4).map(str::to_owned).collect()
    }

    #[test]
    fn the_latency_table_has_p95_between_p90_and_p99() {
        let mut result = stored("stall");
        result.load.latency.p95 = Some(987_000);
        let summary = render(&result);
        let header = summary
            .lines()
            .find(|l| l.starts_with("kind "))
            .expect("a header");
        let names: Vec<&str> = header.split_whitespace().skip(4).collect();
        assert_eq!(names, ["p50", "p90", "p95", "p99", "p99.9", "max"]);
        let cells = all_row(&summary);
        assert_eq!(cells[2], duration_terse(987_000), "{summary}");
        assert_eq!(cells[3], duration_terse(result.load.latency.p99));
    }

    #[test]
    fn a_result_without_p95_shows_a_dash_not_a_zero() {
        let result = stored("smoke");
        assert_eq!(result.load.latency.p95, None, "the fixture predates p95");
        let cells = all_row(&render(&result));
        assert_eq!(cells.len(), 6);
        assert_eq!(cells[2], "-");
    }

    #[test]
    fn memory_lines_give_each_process_its_growth_and_interval() {
        use crate::result::memory::ProcessMemory;
        let mut result = stored("smoke");
        assert!(!render(&result).contains("memory"));
        let process = |name: &str, growth| ProcessMemory {
            name: name.to_owned(),
            service: true,
            samples: vec![(0.0, 24_000_000), (30.0, 96_000_000)],
            start_bytes: 24_000_000,
            end_bytes: 96_000_000,
            max_bytes: 96_000_000,
            growth,
            steady_samples: 24,
            stopped: None,
        };
        result.memory = Some(MemoryResult {
            sample_every_s: 1.0,
            steady_from_s: 6.0,
            processes: vec![
                process(
                    "core-engine",
                    Some(stats::Estimate {
                        estimate: 40_000.0,
                        low: 39_000.0,
                        high: 41_000.0,
                    }),
                ),
                process("api-gateway", None),
            ],
        });
        let text = render(&result);
        assert!(
            text.contains("memory (resident; growth from second 6 of the load, 95% interval):"),
            "{text}"
        );
        assert!(
            text.contains(
                "  core-engine    24.0 MB -> 96.0 MB (max 96.0 MB), growth 2.40 MB/min \
                 [2.34 MB/min to 2.46 MB/min]"
            ),
            "{text}"
        );
        assert!(
            text.contains("api-gateway    24.0 MB -> 96.0 MB (max 96.0 MB), growth not estimated")
        );
    }
}
