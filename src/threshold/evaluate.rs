//! The scenario's thresholds held against what a run measured: which apply to the whole run and
//! which to one request kind, the checks that gate a run even when no threshold names them, and
//! the measurement each metric reads.

use hdrhistogram::Histogram;

use super::{Metric, Threshold};
use crate::exit::RunError;
use crate::load::RunReport;
use crate::result::{RunResult, StreamKindResult, ThresholdResult};
use crate::scenario::{Protocol, Scenario};

/// A threshold with its scope: one request kind (an index into the scenario's requests), or the
/// whole run.
#[derive(Debug, Clone)]
pub(crate) struct Scoped {
    pub kind: Option<usize>,
    pub threshold: Threshold,
}

/// The scenario's thresholds, parsed; one that only the whole run has, declared on a kind, is bad
/// input. Every problem is reported, each at the place its expression was written
/// (`file:line:col: thresholds[2]: ...`, or the `--set` that supplied it).
pub(crate) fn parse_all(scenario: &Scenario) -> Result<Vec<Scoped>, RunError> {
    let overall = scenario.thresholds.iter().map(|t| (None, t));
    let per_kind = scenario
        .requests
        .iter()
        .enumerate()
        .flat_map(|(k, kind)| kind.thresholds.iter().map(move |t| (Some(k), t)));
    let mut problems = Vec::new();
    let mut parsed = Vec::new();
    for (scope, located) in overall.chain(per_kind) {
        let threshold = match Threshold::parse(&located.value) {
            Ok(threshold) => threshold,
            Err(error) => {
                problems.push(located.problem(error.to_string()));
                continue;
            }
        };
        let whole_run = matches!(
            threshold.metric,
            Metric::AchievedRate
                | Metric::Rps
                | Metric::TracesComplete
                | Metric::TracesPassed
                | Metric::TracesVisible(_)
                | Metric::MetricsReconciled
                | Metric::StreamTracesPassed
                | Metric::PiiClean
                | Metric::MemoryGrowth(_)
        );
        if threshold.metric.is_stream() && scenario.load.protocol != Protocol::WebSocket {
            problems.push(located.problem(format!(
                "{} measures the messages of websocket: kinds, and this scenario has none",
                threshold.metric
            )));
            continue;
        }
        if scope.is_some() && whole_run {
            problems.push(located.problem(format!(
                "{} is a property of the whole run; declare it under thresholds",
                threshold.metric
            )));
            continue;
        }
        parsed.push(Scoped {
            kind: scope,
            threshold,
        });
    }
    if problems.is_empty() {
        Ok(parsed)
    } else {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        Err(RunError::BadInput(lines.join("\n")))
    }
}

/// Checks gate the run even when no threshold names them: a scenario that verifies traces and
/// declares no `traces.*` threshold requires every sampled trace to pass, and one that verifies
/// metrics without `metrics.reconciled` requires them to reconcile.
pub(crate) fn implicit(scenario: &Scenario, declared: &[Scoped]) -> Vec<Scoped> {
    let declares =
        |wanted: fn(&Metric) -> bool| declared.iter().any(|s| wanted(&s.threshold.metric));
    let mut implicit = Vec::new();
    // Visibility percentiles count complete traces only: they cannot stand in for completeness.
    let traces = |m: &Metric| matches!(m, Metric::TracesComplete | Metric::TracesPassed);
    if scenario.verify.traces.is_some() && !declares(traces) {
        implicit.push("traces.passed >= 100%");
    }
    if scenario.verify.streams.is_some()
        && !declares(|m: &Metric| matches!(m, Metric::StreamTracesPassed))
    {
        implicit.push("stream.traces.passed >= 100%");
    }
    if scenario.verify.metrics.is_some()
        && !declares(|m: &Metric| matches!(m, Metric::MetricsReconciled))
    {
        implicit.push("metrics.reconciled");
    }
    if scenario.verify.pii.is_some() && !declares(|m: &Metric| matches!(m, Metric::PiiClean)) {
        implicit.push("pii.clean");
    }
    implicit
        .into_iter()
        .map(|text| Scoped {
            kind: None,
            threshold: Threshold::parse(text).expect("implicit thresholds are valid"),
        })
        .collect()
}

/// Every threshold against the run: `report` for the per-kind histograms, `result` for the rest.
pub(crate) fn evaluate(
    thresholds: &[Scoped],
    report: &RunReport,
    result: &RunResult,
) -> Vec<ThresholdResult> {
    let kinds: Vec<Kind<'_>> = report
        .recorder
        .kinds
        .iter()
        .map(|kind| Kind {
            name: &kind.name,
            latency: &kind.latency,
            service: &kind.service_time,
            sent: kind.sent,
            // Never answered counts as unexpected, as for the whole run.
            unexpected: kind.unexpected + (kind.sent - kind.completed),
            dropped: kind.dropped,
        })
        .collect();
    let overall = (
        report.recorder.merged_latency(),
        report.recorder.merged_service_time(),
    );
    evaluate_on(thresholds, &kinds, (&overall.0, &overall.1), result)
}

/// Every threshold against a result that holds its histograms decoded beside it: a merged fleet,
/// whose measurements exist only as the shards' histograms added together. `histograms` are each
/// kind's latency and service time, in `result.kinds`' order, then the whole run's.
pub(crate) fn evaluate_stored(
    thresholds: &[Scoped],
    histograms: &[(Histogram<u64>, Histogram<u64>)],
    overall: (&Histogram<u64>, &Histogram<u64>),
    result: &RunResult,
) -> Vec<ThresholdResult> {
    let kinds: Vec<Kind<'_>> = result
        .kinds
        .iter()
        .zip(histograms)
        .map(|(kind, (latency, service))| Kind {
            name: &kind.name,
            latency,
            service,
            sent: kind.sent,
            unexpected: kind.unexpected + kind.sent.saturating_sub(kind.completed),
            dropped: kind.dropped,
        })
        .collect();
    evaluate_on(thresholds, &kinds, overall, result)
}

/// What a per-kind threshold reads of its kind.
struct Kind<'a> {
    name: &'a str,
    latency: &'a Histogram<u64>,
    service: &'a Histogram<u64>,
    sent: u64,
    unexpected: u64,
    dropped: u64,
}

fn evaluate_on(
    thresholds: &[Scoped],
    kinds: &[Kind<'_>],
    (overall_latency, overall_service): (&Histogram<u64>, &Histogram<u64>),
    result: &RunResult,
) -> Vec<ThresholdResult> {
    thresholds
        .iter()
        .map(|Scoped { kind, threshold }| {
            let (name, latency, service, sent, unexpected, dropped) =
                match kind.and_then(|k| kinds.get(k)) {
                    Some(kind) => (
                        kind.name.to_owned(),
                        kind.latency,
                        kind.service,
                        kind.sent,
                        kind.unexpected,
                        kind.dropped,
                    ),
                    None => (
                        "overall".to_owned(),
                        overall_latency,
                        overall_service,
                        result.load.sent,
                        result.load.unexpected + result.load.abandoned,
                        result.load.dropped,
                    ),
                };
            let measured = match &threshold.metric {
                Metric::MemoryGrowth(process) => super::memory::measured(
                    result.memory.as_ref(),
                    process.as_deref(),
                    threshold.op,
                ),
                metric => measure(
                    metric, latency, service, sent, unexpected, dropped, result, *kind,
                ),
            };
            ThresholdResult {
                scope: name,
                evaluation: threshold.evaluate(measured),
            }
        })
        .collect()
}

/// What `metric` measured, in its unit; `None` when nothing was. `scope` is the kind, for the
/// `stream.*` metrics, which read the result's stream section.
#[allow(clippy::too_many_arguments)]
fn measure(
    metric: &Metric,
    latency: &Histogram<u64>,
    service: &Histogram<u64>,
    sent: u64,
    unexpected: u64,
    dropped: u64,
    result: &RunResult,
    scope: Option<usize>,
) -> Option<f64> {
    let has = |h: &Histogram<u64>| (!h.is_empty()).then_some(());
    let traces = result.verification.traces.as_ref();
    match *metric {
        Metric::LatencyPercentile(p) => {
            has(latency).map(|()| latency.value_at_quantile(p / 100.0) as f64)
        }
        Metric::ServicePercentile(p) => {
            has(service).map(|()| service.value_at_quantile(p / 100.0) as f64)
        }
        Metric::Avg => has(latency).map(|()| latency.mean()),
        Metric::Min => has(latency).map(|()| latency.min() as f64),
        Metric::Max => has(latency).map(|()| latency.max() as f64),
        Metric::Med => has(latency).map(|()| latency.value_at_quantile(0.5) as f64),
        Metric::ErrorRate => (sent > 0).then(|| unexpected as f64 / sent as f64),
        Metric::DroppedRate => {
            (sent + dropped > 0).then(|| dropped as f64 / (sent + dropped) as f64)
        }
        Metric::AchievedRate => (result.load.target_rate > 0.0)
            .then(|| result.load.achieved_rate / result.load.target_rate),
        Metric::Rps => Some(result.load.achieved_rate),
        Metric::TracesComplete => traces.and_then(|t| t.completeness),
        Metric::TracesPassed => traces
            .filter(|t| t.sampled > 0)
            .map(|t| t.passed as f64 / t.sampled as f64),
        Metric::TracesVisible(p) => traces
            .and_then(|t| t.visible_histogram.as_deref())
            .and_then(|h| crate::result::decode_histogram(h).ok())
            .map(|h| h.value_at_quantile(p / 100.0) as f64),
        Metric::MetricsReconciled => result
            .verification
            .metrics
            .as_ref()
            .map(|m| if m.reconciled { 1.0 } else { 0.0 }),
        Metric::StreamTracesPassed => result
            .verification
            .streams
            .as_ref()
            .and_then(|s| s.passed_ratio()),
        Metric::StreamPercentile(_)
        | Metric::StreamFirstMessage(_)
        | Metric::StreamLostRate
        | Metric::StreamSequenceErrorRate
        | Metric::StreamConnectErrorRate => {
            let stream = result.stream.as_ref()?;
            let kind = match scope {
                Some(k) => stream.kinds.get(k)?,
                None => &stream.total,
            };
            stream_measure(metric, kind)
        }
        Metric::PiiClean => result
            .verification
            .pii
            .as_ref()
            .map(|p| if p.passed { 1.0 } else { 0.0 }),
        // Judged on an end of its interval, which depends on the operator: see `memory`.
        Metric::MemoryGrowth(_) => None,
    }
}

/// What a `stream.*` metric measured of one kind's (or all kinds') messages.
fn stream_measure(metric: &Metric, kind: &StreamKindResult) -> Option<f64> {
    let percentile = |encoded: &str, p: f64| {
        crate::result::decode_histogram(encoded)
            .ok()
            .filter(|h| !h.is_empty())
            .map(|h| h.value_at_quantile(p / 100.0) as f64)
    };
    let ratio = |part: u64, whole: u64| (whole > 0).then(|| part as f64 / whole as f64);
    match *metric {
        Metric::StreamPercentile(p) => percentile(&kind.latency_histogram, p),
        Metric::StreamFirstMessage(p) => percentile(&kind.first_message_histogram, p),
        Metric::StreamLostRate => ratio(kind.lost, kind.updates + kind.lost),
        Metric::StreamSequenceErrorRate => ratio(kind.sequence_errors, kind.updates),
        Metric::StreamConnectErrorRate => ratio(kind.connect_errors(), kind.connects),
        _ => None,
    }
}
