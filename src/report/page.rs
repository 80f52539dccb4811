//! The run report (`report.html`): a view model of a [`RunResult`] with every value already
//! formatted for display, rendered by `templates/run.html`. Sections appear only when the result
//! has their data; the charts come from [`super::chart`].

use std::path::Path;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::ReportError;
use super::chart::{self, Axis, Chart, Color, Direction, Dot, Interval};
use super::format::{bytes, count, duration_us, percent, rate, signed_percent, significant, utc};
use crate::overhead::{ArmName, ArmResult, Effect, OverheadResult, PointResult, Verdict};
use crate::result::{
    HistogramError, KindResult, Percentiles, PhaseResult, RunResult, RunStatus, SecondResult,
    ThresholdResult, decode_histogram,
};
use crate::scenario::ClaimMetric;
use crate::threshold::Unit;
use crate::trace::verify::TraceReport;
use crate::verification::MetricsReport;

/// The file `harness run` writes beside `result.json`.
pub const FILE_NAME: &str = "report.html";
const TEMPLATE: &str = "run.html";

/// Points per decade of the percentile axis: smooth enough, and a few hundred at most per series.
const SPECTRUM_STEPS_PER_DECADE: u32 = 24;
/// The percentile axis ends where even the largest runs have one request per step: 99.99999%.
const MAX_SPECTRUM_DECADES: u32 = 7;
/// Room above the largest value of a linear axis, so that a line at the maximum stays off the
/// chart's frame.
const HEADROOM: f64 = 1.05;
/// A send lag p99 above this is worth a warning: the harness itself was late.
const LATE_SEND_US: u64 = 5_000;

/// Rows of a spectrum's data table: quantile, label, and whether it is one of the named
/// percentiles (p50, p90, p99, p99.9) the table highlights.
const TABLE_QUANTILES: &[(f64, &str, bool)] = &[
    (0.0, "0% (min)", false),
    (0.5, "50% (p50)", true),
    (0.75, "75%", false),
    (0.9, "90% (p90)", true),
    (0.95, "95%", false),
    (0.99, "99% (p99)", true),
    (0.995, "99.5%", false),
    (0.999, "99.9% (p99.9)", true),
    (0.9999, "99.99%", false),
    (0.99999, "99.999%", false),
    (0.999_999, "99.9999%", false),
];
const MARKED_QUANTILES: &[(f64, &str)] =
    &[(0.5, "p50"), (0.9, "p90"), (0.99, "p99"), (0.999, "p99.9")];

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// A histogram in the result does not decode; `field` says which, as a JSON path.
    #[error("{field}: {source}")]
    Histogram {
        field: String,
        source: HistogramError,
    },
    #[error(transparent)]
    Report(#[from] ReportError),
}

/// The page for `result`; `result_file` is how the footer names the result it came from.
pub fn render(result: &RunResult, result_file: &str) -> Result<String, PageError> {
    let page = Page::of(result, result_file)?;
    Ok(super::render(TEMPLATE, &page)?)
}

/// Renders the page for `result` and writes it to `path`.
pub fn write(result: &RunResult, result_file: &str, path: &Path) -> Result<(), PageError> {
    let html = render(result, result_file)?;
    Ok(super::write(path, &html)?)
}

#[derive(Debug, Serialize)]
struct Page {
    title: String,
    verdict: VerdictView,
    scenario: ScenarioView,
    environment: Vec<Fact>,
    load: LoadView,
    thresholds: Vec<ThresholdRow>,
    spectra: Vec<SpectrumView>,
    timeline: Option<TimelineView>,
    errors: Vec<KindErrors>,
    traces: Option<TracesView>,
    metrics: Option<MetricsView>,
    overhead: Option<OverheadView>,
    result_file: String,
    schema_version: u32,
}

/// A label and its value, in a definition list or a two-column table.
#[derive(Debug, Serialize)]
struct Fact {
    label: String,
    value: String,
}

fn fact(label: impl Into<String>, value: impl Into<String>) -> Fact {
    Fact {
        label: label.into(),
        value: value.into(),
    }
}

/// A chart (or several drawn over the same data), its caption and its data as a table.
#[derive(Debug, Serialize)]
struct Figure {
    id: String,
    caption: String,
    /// Inline `<svg>` elements built by [`chart`], which escapes every text it draws.
    svgs: Vec<String>,
    table: Table,
}

#[derive(Debug, Default, Serialize)]
struct Table {
    headers: Vec<String>,
    rows: Vec<Row>,
}

#[derive(Debug, Serialize)]
struct Row {
    cells: Vec<String>,
    /// Emphasised: a named percentile, a stall.
    marked: bool,
}

impl Table {
    fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    fn push(&mut self, cells: Vec<String>, marked: bool) {
        self.rows.push(Row { cells, marked });
    }
}

#[derive(Debug, Serialize)]
struct VerdictView {
    /// `pass`, `fail` or `inconclusive`: the banner's CSS class.
    class: &'static str,
    word: &'static str,
    /// Why the run did not complete, when it did not.
    status: Option<String>,
    lines: Vec<String>,
    failing: Vec<ThresholdRow>,
}

#[derive(Debug, Serialize)]
struct ScenarioView {
    name: String,
    description: Option<String>,
    path: String,
    overrides: Vec<String>,
    started: String,
    source: String,
}

#[derive(Debug, Serialize)]
struct LoadView {
    target: String,
    achieved: String,
    /// Said plainly when the rate was not held (or the harness sent late).
    warnings: Vec<String>,
    counts: Vec<Fact>,
    percentiles: Vec<PercentileRow>,
}

#[derive(Debug, Serialize)]
struct PercentileRow {
    name: String,
    count: String,
    min: String,
    p50: String,
    p90: String,
    p99: String,
    p999: String,
    max: String,
    mean: String,
}

#[derive(Debug, Serialize)]
struct ThresholdRow {
    scope: String,
    expression: String,
    measured: String,
    bound: String,
    /// `pass` or `fail`: a CSS class too.
    outcome: &'static str,
}

#[derive(Debug, Serialize)]
struct SpectrumView {
    kind: String,
    id: String,
    /// `None` when no request of the kind completed.
    figure: Option<Figure>,
}

#[derive(Debug, Serialize)]
struct TimelineView {
    latency: Figure,
    throughput: Figure,
    /// Seconds in which nothing completed.
    stalls: Vec<u64>,
}

#[derive(Debug, Serialize)]
struct KindErrors {
    name: String,
    sent: String,
    completed: String,
    unexpected: String,
    dropped: String,
    outcomes: Vec<Fact>,
    transport_errors: Vec<String>,
}

#[derive(Debug, Serialize)]
struct TracesView {
    source: String,
    facts: Vec<Fact>,
    visible: Option<PercentileRow>,
    failed_checks: Vec<Fact>,
    failing: Vec<FailingTraceView>,
    /// Failing traces that were counted but not listed in the result.
    unlisted: u64,
    source_stats: Vec<Fact>,
}

#[derive(Debug, Serialize)]
struct FailingTraceView {
    trace_id: String,
    /// `{jaeger_ui}/trace/{id}` when the traces came from Jaeger.
    link: Option<String>,
    kind: String,
    outcome: String,
    failures: Vec<Fact>,
}

#[derive(Debug, Serialize)]
struct MetricsView {
    reconciled: bool,
    sources: Vec<SourceView>,
}

#[derive(Debug, Serialize)]
struct SourceView {
    source: String,
    error: Option<String>,
    passed: bool,
    summary: String,
    checks: Vec<CheckRow>,
}

#[derive(Debug, Serialize)]
struct CheckRow {
    service: String,
    metric: String,
    labels: String,
    expected: String,
    observed: String,
    /// `passed`, `skipped` or `failed`.
    outcome: &'static str,
    detail: String,
}

#[derive(Debug, Serialize)]
struct OverheadView {
    claim: String,
    verdict: String,
    verdict_class: &'static str,
    facts: Vec<Fact>,
    points: Vec<PointView>,
    effect: Option<Figure>,
    sweep: Option<Figure>,
}

#[derive(Debug, Serialize)]
struct PointView {
    setting: Option<String>,
    verdict: String,
    verdict_class: &'static str,
    trials: Option<Figure>,
    facts: Vec<Fact>,
    effects: Table,
    services: Table,
}

impl Page {
    fn of(result: &RunResult, result_file: &str) -> Result<Page, PageError> {
        let verdict = verdict(result);
        let spectra = result
            .kinds
            .iter()
            .enumerate()
            .map(|(i, kind)| spectrum(i, kind))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page {
            title: format!("{} — {}", result.scenario.name, verdict.word),
            verdict,
            scenario: ScenarioView {
                name: result.scenario.name.clone(),
                description: description(&result.scenario.source),
                path: result.scenario.path.clone(),
                overrides: result.scenario.overrides.clone(),
                started: utc(result.started_at_unix_ms),
                source: result.scenario.source.clone(),
            },
            environment: environment(result),
            load: load(result),
            thresholds: result.thresholds.iter().map(threshold_row).collect(),
            spectra,
            timeline: timeline(&result.timeline, &result.phases, result.overhead.is_some()),
            errors: result.kinds.iter().map(kind_errors).collect(),
            traces: result.verification.traces.as_ref().map(traces),
            metrics: result.verification.metrics.as_ref().map(metrics),
            overhead: result.overhead.as_ref().map(overhead),
            result_file: result_file.to_owned(),
            schema_version: result.schema_version,
        })
    }
}

fn verdict(result: &RunResult) -> VerdictView {
    let failing: Vec<ThresholdRow> = result
        .thresholds
        .iter()
        .filter(|t| !t.evaluation.is_pass())
        .map(threshold_row)
        .collect();
    let status = match &result.status {
        RunStatus::Completed => None,
        RunStatus::Interrupted { reason } => Some(format!(
            "The run did not complete ({reason}): the figures below cover what was measured until then."
        )),
        RunStatus::Failed { reason } => Some(format!("The run failed: {reason}")),
    };
    let claim = result.overhead.as_ref().map(|o| o.verdict);
    let (class, word) = if status.is_some() || !failing.is_empty() || claim == Some(Verdict::Fail) {
        ("fail", "FAIL")
    } else if claim == Some(Verdict::Inconclusive) {
        ("inconclusive", "INCONCLUSIVE")
    } else {
        ("pass", "PASS")
    };
    let mut lines = Vec::new();
    let total = result.thresholds.len();
    lines.push(match (total, failing.len()) {
        (0, _) => "No thresholds were set.".to_owned(),
        (1, 0) => "The threshold passed.".to_owned(),
        (1, _) => "The threshold failed.".to_owned(),
        (n, 0) => format!("All {n} thresholds passed."),
        (n, f) => format!("{f} of {n} thresholds failed."),
    });
    if let Some(experiment) = &result.overhead {
        lines.push(format!(
            "Overhead claim ({}): {}. {}",
            claim_text(experiment),
            experiment.verdict,
            match experiment.verdict {
                Verdict::Pass => "The whole 95% interval is below the bound.",
                Verdict::Fail => "The whole 95% interval is above the bound.",
                Verdict::Inconclusive =>
                    "The 95% interval straddles the bound (or could not be estimated): more or longer trials are needed to tell.",
            }
        ));
    }
    VerdictView {
        class,
        word,
        status,
        lines,
        failing,
    }
}

/// The scenario's `description`, read from the file text the result keeps.
fn description(source: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Head {
        #[serde(default)]
        description: Option<String>,
    }
    serde_saphyr::from_str::<Head>(source)
        .ok()?
        .description
        .map(|d| d.trim().to_owned())
        .filter(|d| !d.is_empty())
}

fn environment(result: &RunResult) -> Vec<Fact> {
    let env = &result.environment;
    let unknown = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".to_owned());
    vec![
        fact("harness", env.harness_version.clone()),
        fact("git commit", unknown(&env.git_sha)),
        fact("CPU", unknown(&env.cpu_model)),
        fact("cores", env.cores.to_string()),
        fact("kernel", unknown(&env.kernel)),
    ]
}

fn load(result: &RunResult) -> LoadView {
    let load = &result.load;
    let share = (load.target_rate > 0.0).then(|| load.achieved_rate / load.target_rate);
    let mut warnings = Vec::new();
    if let Some(share) = share.filter(|s| load.sent > 1 && *s < 0.99) {
        warnings.push(format!(
            "The target rate was not held: {} was achieved, {} of the {} asked for. The latencies describe a lighter load than the scenario's.",
            rate(load.achieved_rate),
            percent(share),
            rate(load.target_rate)
        ));
    }
    if load.send_lag.count > 0 && load.send_lag.p99 > LATE_SEND_US {
        warnings.push(format!(
            "The harness itself sent late (send lag p99 {}): the machine was short of CPU, and every latency includes that lag.",
            duration_us(load.send_lag.p99 as f64)
        ));
    }
    LoadView {
        target: rate(load.target_rate),
        achieved: match share {
            Some(share) => format!(
                "{} ({} of target)",
                rate(load.achieved_rate),
                percent(share)
            ),
            None => rate(load.achieved_rate),
        },
        warnings,
        counts: vec![
            fact("scheduled", count(load.scheduled)),
            fact("sent", count(load.sent)),
            fact("dropped (in-flight cap)", count(load.dropped)),
            fact("completed", count(load.completed)),
            fact("unexpected outcome", count(load.unexpected)),
            fact("abandoned (never answered)", count(load.abandoned)),
            fact(
                "sending took",
                format!("{} s", significant(load.send_duration_s, 3)),
            ),
        ],
        percentiles: vec![
            percentile_row("latency (from the intended send)", &load.latency),
            percentile_row("service time (from the actual send)", &load.service_time),
            percentile_row("send lag (actual − intended send)", &load.send_lag),
        ],
    }
}

fn percentile_row(name: &str, p: &Percentiles) -> PercentileRow {
    let shown = |us: u64| {
        if p.count == 0 {
            "—".to_owned()
        } else {
            duration_us(us as f64)
        }
    };
    PercentileRow {
        name: name.to_owned(),
        count: count(p.count),
        min: shown(p.min),
        p50: shown(p.p50),
        p90: shown(p.p90),
        p99: shown(p.p99),
        p999: shown(p.p999),
        max: shown(p.max),
        mean: if p.count == 0 {
            "—".to_owned()
        } else {
            duration_us(p.mean)
        },
    }
}

fn unit_value(value: f64, unit: Unit) -> String {
    match unit {
        Unit::Micros => duration_us(value),
        Unit::Ratio => percent(value),
        Unit::PerSecond => rate(value),
        Unit::Bool => (if value == 1.0 { "true" } else { "false" }).to_owned(),
    }
}

fn threshold_row(t: &ThresholdResult) -> ThresholdRow {
    let e = &t.evaluation;
    ThresholdRow {
        scope: t.scope.clone(),
        expression: e.expression.clone(),
        measured: e
            .measured
            .map_or_else(|| "no data".to_owned(), |v| unit_value(v, e.unit)),
        bound: unit_value(e.bound, e.unit),
        outcome: if e.is_pass() { "pass" } else { "fail" },
    }
}

fn decode(text: &str, field: String) -> Result<Histogram<u64>, PageError> {
    decode_histogram(text).map_err(|source| PageError::Histogram { field, source })
}

/// How many nines the percentile axis needs for `count` values: one decade past the last
/// quantile the data can resolve, so that the curve ends at the maximum.
fn spectrum_decades(count: u64) -> u32 {
    let resolved = (count.max(1) as f64).log10().floor() as u32;
    (resolved + 1).clamp(1, MAX_SPECTRUM_DECADES)
}

/// The percentile spectrum of `h` in milliseconds, at even steps of the percentile axis.
fn spectrum_points(h: &Histogram<u64>, decades: u32) -> Vec<Option<(f64, f64)>> {
    (0..=decades * SPECTRUM_STEPS_PER_DECADE)
        .map(|step| {
            let x = f64::from(step) / f64::from(SPECTRUM_STEPS_PER_DECADE);
            let q = 1.0 - 10f64.powf(-x);
            Some((x, h.value_at_quantile(q) as f64 / 1e3))
        })
        .collect()
}

fn spectrum(index: usize, kind: &KindResult) -> Result<SpectrumView, PageError> {
    let field = |name: &str| format!("kinds[{index}].{name} (kind {:?})", kind.name);
    let latency = decode(&kind.latency_histogram, field("latency_histogram"))?;
    let service = decode(
        &kind.service_time_histogram,
        field("service_time_histogram"),
    )?;
    let id = format!("spectrum-{}", kind.name);
    if latency.is_empty() {
        return Ok(SpectrumView {
            kind: kind.name.clone(),
            id,
            figure: None,
        });
    }
    let decades = spectrum_decades(latency.len().max(service.len()));
    let top = latency.max().max(service.max()) as f64 / 1e3;
    let mut chart = Chart::new(
        format!("Latency by percentile, {}", kind.name),
        Axis::percentile("percentile", decades),
        Axis::linear("latency (ms)", 0.0, top * HEADROOM),
    );
    // Latency drawn last: where the two coincide (no queueing), it is the one to see.
    if !service.is_empty() {
        chart.line(
            "service time from the actual send",
            Color::S2,
            &spectrum_points(&service, decades),
        );
    }
    chart.line(
        "latency from the intended send",
        Color::S1,
        &spectrum_points(&latency, decades),
    );
    for &(q, label) in MARKED_QUANTILES {
        let x = chart::percentile_position(q);
        if x <= f64::from(decades) + 1e-9 {
            let us = latency.value_at_quantile(q);
            chart.marker(
                x,
                us as f64 / 1e3,
                label,
                &format!("{label} latency: {}", duration_us(us as f64)),
            );
        }
    }
    let mut table = Table::new(&["percentile", "latency", "service time"]);
    let service_at = |q: f64| {
        if service.is_empty() {
            "—".to_owned()
        } else {
            duration_us(service.value_at_quantile(q) as f64)
        }
    };
    for &(q, label, marked) in TABLE_QUANTILES {
        if chart::percentile_position(q) <= f64::from(decades) + 1e-9 {
            table.push(
                vec![
                    label.to_owned(),
                    duration_us(latency.value_at_quantile(q) as f64),
                    service_at(q),
                ],
                marked,
            );
        }
    }
    table.push(
        vec![
            "100% (max)".to_owned(),
            duration_us(latency.max() as f64),
            service_at(1.0),
        ],
        false,
    );
    Ok(SpectrumView {
        kind: kind.name.clone(),
        figure: Some(Figure {
            id: id.clone(),
            caption: format!(
                "{}: latency at each percentile over {} completed requests. Latency counts from the moment each request was due, so time spent waiting on a stalled system is included; service time counts from the actual send. The axis spaces 90%, 99%, 99.9% evenly: the right-hand end is the tail.",
                kind.name,
                count(latency.len())
            ),
            svgs: vec![chart.render()],
            table,
        }),
        id,
    })
}

/// The target rate at `t` seconds into the load profile.
fn target_at(phases: &[PhaseResult], t: f64) -> Option<f64> {
    phases
        .iter()
        .find(|p| p.start_s <= t && t < p.start_s + p.duration_s)
        .map(|p| {
            let along = if p.duration_s > 0.0 {
                (t - p.start_s) / p.duration_s
            } else {
                0.0
            };
            p.from_rate + (p.to_rate - p.from_rate) * along
        })
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

/// `experiment`: the timeline is an overhead experiment's treatment trials, end to end.
fn timeline(
    seconds: &[SecondResult],
    phases: &[PhaseResult],
    experiment: bool,
) -> Option<TimelineView> {
    if seconds.is_empty() {
        return None;
    }
    let end = seconds.len() as f64;
    let ms = |us: Option<u64>| us.map(|us| us as f64 / 1e3);
    let p50: Vec<Option<f64>> = seconds.iter().map(|s| ms(s.p50_us)).collect();
    let p99: Vec<Option<f64>> = seconds.iter().map(|s| ms(s.p99_us)).collect();
    let stalls: Vec<u64> = seconds
        .iter()
        .filter(|s| s.p50_us.is_none())
        .map(|s| s.second)
        .collect();
    let time_axis = || Axis::linear_exact("time (s)", 0.0, end);
    let hover: Vec<String> = seconds
        .iter()
        .map(|s| {
            let latency = match (s.p50_us, s.p99_us) {
                (Some(p50), Some(p99)) => format!(
                    "p50 {}, p99 {}",
                    duration_us(p50 as f64),
                    duration_us(p99 as f64)
                ),
                _ => "nothing completed".to_owned(),
            };
            format!(
                "second {}: {latency}; sent {}, completed {}, unexpected {}, dropped {}",
                s.second, s.sent, s.completed, s.unexpected, s.dropped
            )
        })
        .collect();
    // One phase needs no marking: the target line says all there is.
    let draw_phases = |chart: &mut Chart| {
        if phases.len() > 1 {
            for (i, phase) in phases.iter().enumerate() {
                chart.vrule(phase.start_s, "phase", &phase_label(i, phase));
            }
        }
    };

    let mut latency = Chart::new(
        "Latency per second: p50 and p99",
        time_axis(),
        Axis::spread("latency (ms)", p50.iter().chain(&p99).flatten().copied()),
    );
    for &second in &stalls {
        latency.band(
            second as f64,
            second as f64 + 1.0,
            "stall",
            "nothing completed",
            &format!("second {second}: no request completed"),
        );
    }
    latency.hover_columns(0.0, 1.0, &hover);
    draw_phases(&mut latency);
    latency.steps("p50", Color::S1, 0.0, 1.0, &p50);
    latency.steps("p99", Color::S2, 0.0, 1.0, &p99);
    let mut latency_table = Table::new(&["second", "p50", "p99"]);
    for s in seconds {
        let (p50, p99) = match (s.p50_us, s.p99_us) {
            (Some(p50), Some(p99)) => (duration_us(p50 as f64), duration_us(p99 as f64)),
            _ => ("nothing completed".to_owned(), "—".to_owned()),
        };
        latency_table.push(vec![s.second.to_string(), p50, p99], s.p50_us.is_none());
    }

    let sent: Vec<Option<f64>> = seconds.iter().map(|s| Some(s.sent as f64)).collect();
    let completed: Vec<Option<f64>> = seconds.iter().map(|s| Some(s.completed as f64)).collect();
    let dropped: Vec<Option<f64>> = seconds.iter().map(|s| Some(s.dropped as f64)).collect();
    let unexpected: Vec<Option<f64>> = seconds.iter().map(|s| Some(s.unexpected as f64)).collect();
    let top = seconds
        .iter()
        .map(|s| s.sent.max(s.completed) as f64)
        .chain(phases.iter().map(|p| p.from_rate.max(p.to_rate)))
        .fold(0.0, f64::max);
    let mut throughput = Chart::new(
        "Requests per second: sent and completed, against the target rate",
        time_axis(),
        Axis::linear("requests per second", 0.0, top * HEADROOM),
    );
    throughput.hover_columns(0.0, 1.0, &hover);
    draw_phases(&mut throughput);
    let target: Vec<Option<(f64, f64)>> = phases
        .iter()
        .flat_map(|p| {
            [
                Some((p.start_s, p.from_rate)),
                Some((p.start_s + p.duration_s, p.to_rate)),
            ]
        })
        .collect();
    throughput.steps("sent", Color::S1, 0.0, 1.0, &sent);
    throughput.steps("completed", Color::S3, 0.0, 1.0, &completed);
    if seconds.iter().any(|s| s.unexpected > 0) {
        throughput.steps("unexpected", Color::S2, 0.0, 1.0, &unexpected);
    }
    if seconds.iter().any(|s| s.dropped > 0) {
        throughput.steps("dropped", Color::S4, 0.0, 1.0, &dropped);
    }
    // On top: a held rate runs along the target, which must still show.
    throughput.dashed("target rate", Color::Muted, &target);
    let mut throughput_table = Table::new(&[
        "second",
        "target /s",
        "sent",
        "completed",
        "unexpected",
        "dropped",
    ]);
    for s in seconds {
        throughput_table.push(
            vec![
                s.second.to_string(),
                target_at(phases, s.second as f64 + 0.5)
                    .map_or_else(|| "—".to_owned(), |r| significant(r, 4)),
                count(s.sent),
                count(s.completed),
                count(s.unexpected),
                count(s.dropped),
            ],
            false,
        );
    }
    let stall_note = if stalls.is_empty() {
        String::new()
    } else {
        format!(
            " Shaded: {} second(s) in which no request completed (a stall, not a zero latency).",
            stalls.len()
        )
    };
    let phase_note = if experiment {
        " The seconds are the treatment arm's trials, one after another."
    } else if phases.len() < 2 {
        ""
    } else {
        " Vertical lines mark the phases of the load profile."
    };
    Some(TimelineView {
        latency: Figure {
            id: "timeline-latency".to_owned(),
            caption: format!(
                "Latency from the intended send time of the requests that completed in each second.{stall_note}{phase_note}"
            ),
            svgs: vec![latency.render()],
            table: latency_table,
        },
        throughput: Figure {
            id: "timeline-throughput".to_owned(),
            caption: format!(
                "Requests sent and completed in each second{}.{phase_note}",
                if phases.is_empty() {
                    ""
                } else {
                    ", with the rate the scenario asked for"
                }
            ),
            svgs: vec![throughput.render()],
            table: throughput_table,
        },
        stalls,
    })
}

fn kind_errors(kind: &KindResult) -> KindErrors {
    KindErrors {
        name: kind.name.clone(),
        sent: count(kind.sent),
        completed: count(kind.completed),
        unexpected: count(kind.unexpected),
        dropped: count(kind.dropped),
        outcomes: kind
            .outcomes
            .iter()
            .map(|(label, n)| Fact {
                label: label.clone(),
                value: count(*n),
            })
            .collect(),
        transport_errors: kind.transport_errors.clone(),
    }
}

fn traces(report: &TraceReport) -> TracesView {
    let listed = report.failing.len() as u64;
    let failed = report.sampled - report.passed.min(report.sampled);
    // Only a web address gets a link: a result could carry anything in `jaeger_ui`.
    let jaeger = report
        .jaeger_ui
        .as_deref()
        .filter(|url| url.starts_with("http://") || url.starts_with("https://"))
        .map(|url| url.trim_end_matches('/'));
    TracesView {
        source: report.source.clone(),
        facts: vec![
            fact("sampled", count(report.sampled)),
            fact("complete", count(report.complete)),
            fact(
                "completeness",
                report
                    .completeness
                    .map_or_else(|| "n/a (nothing sampled)".to_owned(), percent),
            ),
            fact("passed every check", count(report.passed)),
            fact("failed a check", count(failed)),
            fact("not judged (failed in transport)", count(report.not_judged)),
        ],
        visible: report
            .visible
            .as_ref()
            .map(|p| percentile_row("visible after (send to complete trace)", p)),
        failed_checks: report
            .failed_checks
            .iter()
            .map(|(check, n)| Fact {
                label: check.to_string(),
                value: count(*n),
            })
            .collect(),
        failing: report
            .failing
            .iter()
            .map(|t| FailingTraceView {
                trace_id: t.trace_id.clone(),
                link: jaeger.map(|base| format!("{base}/trace/{}", t.trace_id)),
                kind: t.kind.clone(),
                outcome: t.outcome.clone(),
                failures: t
                    .failures
                    .iter()
                    .map(|f| Fact {
                        label: f.check.to_string(),
                        value: f.detail.clone(),
                    })
                    .collect(),
            })
            .collect(),
        unlisted: failed.saturating_sub(listed),
        source_stats: match &report.source_stats {
            Some(serde_json::Value::Object(stats)) => stats
                .iter()
                .map(|(key, value)| Fact {
                    label: key.replace('_', " "),
                    value: match value {
                        serde_json::Value::String(s) => s.clone(),
                        serde_json::Value::Number(n) => {
                            n.as_u64().map_or_else(|| n.to_string(), count)
                        }
                        other => other.to_string(),
                    },
                })
                .collect(),
            _ => Vec::new(),
        },
    }
}

/// A metric's value as read: whole numbers as counts, the rest to four significant digits.
fn observed(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        let sign = if value < 0.0 { "-" } else { "" };
        format!("{sign}{}", count(value.abs() as u64))
    } else {
        significant(value, 4)
    }
}

fn metrics(report: &MetricsReport) -> MetricsView {
    MetricsView {
        reconciled: report.reconciled,
        sources: report
            .sources
            .iter()
            .map(|source| {
                let passed = source.checks.iter().filter(|c| c.passed).count();
                SourceView {
                    source: source.source.clone(),
                    error: source.error.clone(),
                    passed: source.passed,
                    summary: format!("{passed} of {} checks passed", source.checks.len()),
                    checks: source
                        .checks
                        .iter()
                        .map(|c| CheckRow {
                            service: c.service.clone(),
                            metric: c.metric.clone(),
                            labels: c.labels.clone(),
                            expected: observed(c.expected),
                            observed: observed(c.observed),
                            outcome: match (c.passed, c.skipped) {
                                (_, true) => "skipped",
                                (true, false) => "passed",
                                (false, false) => "failed",
                            },
                            detail: c.detail.clone(),
                        })
                        .collect(),
                }
            })
            .collect(),
    }
}

fn verdict_class(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
        Verdict::Inconclusive => "inconclusive",
    }
}

fn claim_metric_name(metric: ClaimMetric) -> &'static str {
    match metric {
        ClaimMetric::Cpu => "CPU per request",
        ClaimMetric::P50 => "latency p50",
        ClaimMetric::P90 => "latency p90",
        ClaimMetric::P99 => "latency p99",
    }
}

fn claim_text(experiment: &OverheadResult) -> String {
    format!(
        "{} rises by less than {} with tracing on",
        claim_metric_name(experiment.claim.metric),
        percent(experiment.claim.bound)
    )
}

/// The effect a point's verdict is about.
fn claim_effect(metric: ClaimMetric, point: &PointResult) -> Option<Effect> {
    let a = &point.analysis;
    match metric {
        ClaimMetric::Cpu => a.cpu,
        ClaimMetric::P50 => a.p50,
        ClaimMetric::P90 => a.p90,
        ClaimMetric::P99 => a.p99,
    }
}

fn effect_text(effect: Option<&Effect>, show: impl Fn(f64) -> String) -> String {
    match effect {
        Some(e) => {
            let estimate = show(e.estimate);
            let signed = if e.estimate > 0.0 {
                format!("+{estimate}")
            } else {
                estimate
            };
            format!("{signed} [{}, {}]", show(e.low), show(e.high))
        }
        None => "n/a (too few pairs)".to_owned(),
    }
}

/// A point's name on a chart axis: the swept value alone (`1000` of `window=1000`).
fn point_label(point: &PointResult) -> String {
    match &point.setting {
        Some(setting) => setting
            .split_once('=')
            .map_or(setting.as_str(), |(_, value)| value)
            .to_owned(),
        None => "all pairs".to_owned(),
    }
}

fn arm_text(arm: &ArmResult) -> String {
    std::iter::once(
        if arm.tracing {
            "tracing on"
        } else {
            "tracing off"
        }
        .to_owned(),
    )
    .chain(arm.extras.iter().cloned())
    .collect::<Vec<_>>()
    .join("; ")
}

fn overhead(experiment: &OverheadResult) -> OverheadView {
    let mut facts = vec![
        fact("control arm", arm_text(&experiment.control)),
        fact("treatment arm", arm_text(&experiment.treatment)),
        fact(
            "trials",
            format!(
                "{} per arm, in A B B A order; {} s settle after each",
                experiment.trials_per_arm,
                significant(experiment.settle_s, 3)
            ),
        ),
    ];
    if let Some(spans) = experiment.spans_received {
        facts.push(fact("spans received from the tracing arm", count(spans)));
    }
    let sweep = experiment.points.len() > 1;
    let points = experiment
        .points
        .iter()
        .enumerate()
        .map(|(i, point)| point_view(experiment, point, sweep.then_some(i)))
        .collect();
    OverheadView {
        claim: claim_text(experiment),
        verdict: experiment.verdict.to_string(),
        verdict_class: verdict_class(experiment.verdict),
        facts,
        points,
        effect: effect_figure(experiment),
        sweep: sweep.then(|| sweep_figure(experiment)).flatten(),
    }
}

/// The claim metric's value in one trial, and the unit the chart shows it in.
fn trial_value(metric: ClaimMetric, trial: &crate::overhead::TrialResult) -> f64 {
    match metric {
        ClaimMetric::Cpu => trial.cpu_us_total,
        ClaimMetric::P50 => trial.p50_us as f64 / 1e3,
        ClaimMetric::P90 => trial.p90_us as f64 / 1e3,
        ClaimMetric::P99 => trial.p99_us as f64 / 1e3,
    }
}

fn trial_text(metric: ClaimMetric, value: f64) -> String {
    match metric {
        ClaimMetric::Cpu => duration_us(value),
        _ => duration_us(value * 1e3),
    }
}

fn trials_figure(metric: ClaimMetric, point: &PointResult, index: Option<usize>) -> Option<Figure> {
    if point.trials.is_empty() {
        return None;
    }
    let pairs = point.trials.iter().map(|t| t.pair + 1).max().unwrap_or(0);
    let values = point.trials.iter().map(|t| trial_value(metric, t));
    let (low, high) = values.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let pad = ((high - low) * 0.1).max(high * 0.01);
    let y_title = match metric {
        ClaimMetric::Cpu => "CPU per request (µs)",
        ClaimMetric::P50 => "latency p50 (ms)",
        ClaimMetric::P90 => "latency p90 (ms)",
        ClaimMetric::P99 => "latency p99 (ms)",
    };
    let mut chart = Chart::new(
        format!(
            "{} per trial, control and treatment by pair{}",
            claim_metric_name(metric),
            point
                .setting
                .as_ref()
                .map_or(String::new(), |s| format!(", at {s}"))
        ),
        Axis::categories("pair", (1..=pairs).map(|p| p.to_string()).collect()),
        Axis::linear(y_title, (low - pad).max(0.0), high + pad),
    );
    // The two arms of a pair side by side, joined, so that the pairing the analysis uses shows.
    let offset = |arm: ArmName| match arm {
        ArmName::Control => -0.15,
        ArmName::Treatment => 0.15,
    };
    let position = |t: &crate::overhead::TrialResult| {
        (t.pair as f64 + 0.5 + offset(t.arm), trial_value(metric, t))
    };
    for pair in 0..pairs {
        let of = |arm| point.trials.iter().find(|t| t.pair == pair && t.arm == arm);
        if let (Some(c), Some(t)) = (of(ArmName::Control), of(ArmName::Treatment)) {
            chart.link(position(c), position(t));
        }
    }
    for (arm, color) in [
        (ArmName::Control, Color::S1),
        (ArmName::Treatment, Color::S2),
    ] {
        let dots: Vec<Dot> = point
            .trials
            .iter()
            .filter(|t| t.arm == arm)
            .map(|t| {
                let (x, y) = position(t);
                Dot {
                    x,
                    y,
                    title: format!(
                        "pair {}, {}: {}",
                        t.pair + 1,
                        arm.as_str(),
                        trial_text(metric, y)
                    ),
                }
            })
            .collect();
        let label = match arm {
            ArmName::Control => "control (tracing off)",
            ArmName::Treatment => "treatment (tracing on)",
        };
        chart.dots(label, color, &dots);
    }
    let mut table = Table::new(&[
        "pair",
        "arm",
        "sent",
        "achieved rate",
        "CPU per request",
        "p50",
        "p90",
        "p99",
        "peak memory",
    ]);
    let mut trials: Vec<_> = point.trials.iter().collect();
    trials.sort_by_key(|t| (t.pair, t.arm == ArmName::Treatment));
    for t in trials {
        table.push(
            vec![
                (t.pair + 1).to_string(),
                t.arm.as_str().to_owned(),
                count(t.sent),
                rate(t.achieved_rate),
                duration_us(t.cpu_us_total),
                duration_us(t.p50_us as f64),
                duration_us(t.p90_us as f64),
                duration_us(t.p99_us as f64),
                bytes(t.peak_rss_bytes.values().sum()),
            ],
            false,
        );
    }
    Some(Figure {
        id: match index {
            Some(n) => format!("overhead-trials-{n}"),
            None => "overhead-trials".to_owned(),
        },
        caption: format!(
            "Each trial's {} (the claim's metric), control and treatment side by side for each pair. The analysis compares the two trials of each pair, so drift of the machine over the run cancels.",
            claim_metric_name(metric)
        ),
        svgs: vec![chart.render()],
        table,
    })
}

fn point_view(experiment: &OverheadResult, point: &PointResult, index: Option<usize>) -> PointView {
    let metric = experiment.claim.metric;
    let a = &point.analysis;
    let cpu = |us: Option<f64>| us.map_or_else(|| "n/a".to_owned(), duration_us);
    let mut facts = vec![
        fact("complete pairs", a.pairs.to_string()),
        fact("CPU per request, control (median)", cpu(a.control_cpu_us)),
        fact(
            "CPU per request, treatment (median)",
            cpu(a.treatment_cpu_us),
        ),
        fact(
            "tracing's cost per request",
            effect_text(a.cpu_cost_us.as_ref(), duration_us),
        ),
        fact(
            "smallest detectable effect",
            a.smallest_detectable
                .map_or_else(|| "n/a".to_owned(), |r| format!("±{}", percent(r))),
        ),
    ];
    if let Some(break_even) = a.break_even_us {
        let range = a.break_even_range_us.map_or(String::new(), |(low, high)| {
            format!(" (95%: {} to {})", duration_us(low), duration_us(high))
        });
        facts.push(fact(
            "break-even",
            format!(
                "the cost is under {} only for requests of at least {} of CPU{range}",
                percent(experiment.claim.bound),
                duration_us(break_even)
            ),
        ));
    }
    let mut effects = Table::new(&["metric", "estimate", "95% low", "95% high", "pairs"]);
    for (name, effect, is_claim) in [
        ("CPU per request", a.cpu, metric == ClaimMetric::Cpu),
        ("latency p50", a.p50, metric == ClaimMetric::P50),
        ("latency p90", a.p90, metric == ClaimMetric::P90),
        ("latency p99", a.p99, metric == ClaimMetric::P99),
    ] {
        let cells = match effect {
            Some(e) => vec![
                name.to_owned(),
                signed_percent(e.estimate),
                signed_percent(e.low),
                signed_percent(e.high),
                e.pairs.to_string(),
            ],
            None => vec![
                name.to_owned(),
                "n/a (too few pairs)".to_owned(),
                String::new(),
                String::new(),
                String::new(),
            ],
        };
        effects.push(cells, is_claim);
    }
    let mut services = Table::new(&[
        "service",
        "CPU per request, control",
        "relative change [95%]",
        "cost per request [95%]",
    ]);
    for (name, effect) in &a.services {
        services.push(
            vec![
                name.clone(),
                cpu(effect.control_cpu_us),
                effect_text(effect.relative.as_ref(), percent),
                effect_text(effect.cost_us.as_ref(), duration_us),
            ],
            false,
        );
    }
    PointView {
        setting: point.setting.clone(),
        verdict: a.verdict.to_string(),
        verdict_class: verdict_class(a.verdict),
        trials: trials_figure(metric, point, index),
        facts,
        effects,
        services,
    }
}

/// Every point's estimate and interval of the claim's metric, against the bound.
fn effect_figure(experiment: &OverheadResult) -> Option<Figure> {
    let metric = experiment.claim.metric;
    let bound = experiment.claim.bound * 100.0;
    let effects: Vec<(usize, &PointResult, Effect)> = experiment
        .points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| claim_effect(metric, p).map(|e| (i, p, e)))
        .collect();
    if effects.is_empty() {
        return None;
    }
    let (low, high) = effects.iter().fold((0.0f64, bound), |(lo, hi), (_, _, e)| {
        (lo.min(e.low * 100.0), hi.max(e.high * 100.0))
    });
    let mut chart = Chart::new(
        format!(
            "Relative change in {} with tracing on: estimate and 95% interval against the claim's bound",
            claim_metric_name(metric)
        ),
        Axis::linear(
            format!("change in {} (%)", claim_metric_name(metric)),
            low,
            high,
        ),
        Axis::categories(
            "",
            experiment.points.iter().map(point_label).rev().collect(),
        ),
    )
    .with_rows(experiment.points.len());
    let rows = experiment.points.len();
    chart.vrule(0.0, "zero", "0");
    chart.vrule(
        bound,
        "bound",
        &format!("claim: < +{}", percent(experiment.claim.bound)),
    );
    let intervals: Vec<Interval> = effects
        .iter()
        .map(|(i, point, e)| Interval {
            // Rows run top to bottom in the points' order.
            at: (rows - 1 - i) as f64 + 0.5,
            low: e.low * 100.0,
            estimate: e.estimate * 100.0,
            high: e.high * 100.0,
            title: format!(
                "{}: {} {}",
                point.setting.as_deref().unwrap_or("all pairs"),
                effect_text(Some(e), percent),
                point.analysis.verdict
            ),
        })
        .collect();
    chart.intervals(
        "estimate, 95% interval",
        Color::S2,
        Direction::Horizontal,
        &intervals,
    );
    let mut table = Table::new(&["point", "estimate", "95% low", "95% high", "verdict"]);
    for point in &experiment.points {
        let e = claim_effect(metric, point);
        table.push(
            vec![
                point
                    .setting
                    .clone()
                    .unwrap_or_else(|| "all pairs".to_owned()),
                e.map_or_else(|| "n/a".to_owned(), |e| signed_percent(e.estimate)),
                e.map_or_else(String::new, |e| signed_percent(e.low)),
                e.map_or_else(String::new, |e| signed_percent(e.high)),
                point.analysis.verdict.to_string(),
            ],
            false,
        );
    }
    Some(Figure {
        id: "overhead-effect".to_owned(),
        caption: format!(
            "The claim holds where the whole interval lies left of the bound (+{}), fails where it lies right of it, and is undecided where it straddles it.",
            percent(experiment.claim.bound)
        ),
        svgs: vec![chart.render()],
        table,
    })
}

/// The sweep's settings as numbers, when they all are.
fn numeric_settings(points: &[PointResult]) -> Option<Vec<f64>> {
    points
        .iter()
        .map(|p| {
            p.setting
                .as_deref()
                .and_then(|s| s.split_once('='))
                .and_then(|(_, v)| v.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite())
        })
        .collect()
}

/// The x axis of a sweep: logarithmic at the settings when they are numbers spanning more than
/// ten times, else one slot per setting.
fn sweep_axis(points: &[PointResult], title: &str) -> (Axis, Vec<f64>) {
    let labels: Vec<String> = points.iter().map(point_label).collect();
    if let Some(values) = numeric_settings(points) {
        let (min, max) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(*v), hi.max(*v))
            });
        if min > 0.0 && max / min > 10.0 {
            let ticks: Vec<(f64, String)> = values.iter().copied().zip(labels).collect();
            return (Axis::log_at(title, &ticks), values);
        }
    }
    let positions = (0..points.len()).map(|i| i as f64 + 0.5).collect();
    (Axis::categories(title, labels), positions)
}

fn sweep_figure(experiment: &OverheadResult) -> Option<Figure> {
    let points = &experiment.points;
    let metric = experiment.claim.metric;
    let key = points
        .iter()
        .find_map(|p| {
            p.setting
                .as_deref()?
                .split_once('=')
                .map(|(k, _)| k.to_owned())
        })
        .unwrap_or_else(|| "setting".to_owned());
    let (x_axis, positions) = sweep_axis(points, &key);
    let costs: Vec<(f64, &PointResult, Effect)> = positions
        .iter()
        .zip(points)
        .filter_map(|(x, p)| p.analysis.cpu_cost_us.map(|e| (*x, p, e)))
        .collect();
    let relative: Vec<(f64, &PointResult, Effect)> = positions
        .iter()
        .zip(points)
        .filter_map(|(x, p)| claim_effect(metric, p).map(|e| (*x, p, e)))
        .collect();
    if costs.is_empty() && relative.is_empty() {
        return None;
    }
    let mut svgs = Vec::new();
    let link_estimates = |chart: &mut Chart, series: &[(f64, &PointResult, Effect)], scale: f64| {
        for pair in series.windows(2) {
            chart.link(
                (pair[0].0, pair[0].2.estimate * scale),
                (pair[1].0, pair[1].2.estimate * scale),
            );
        }
    };
    if !costs.is_empty() {
        let (low, high) = costs.iter().fold((0.0f64, 0.0f64), |(lo, hi), (_, _, e)| {
            (lo.min(e.low), hi.max(e.high))
        });
        let mut chart = Chart::new(
            "Tracing's CPU cost per request at each setting, with 95% intervals",
            x_axis.clone(),
            Axis::linear("CPU cost per request (µs)", low, high),
        );
        chart.hrule(0.0, "zero", "");
        link_estimates(&mut chart, &costs, 1.0);
        let intervals: Vec<Interval> = costs
            .iter()
            .map(|(x, p, e)| Interval {
                at: *x,
                low: e.low,
                estimate: e.estimate,
                high: e.high,
                title: format!(
                    "{}: {} per request",
                    p.setting.as_deref().unwrap_or(""),
                    effect_text(Some(e), duration_us)
                ),
            })
            .collect();
        chart.intervals(
            "cost per request",
            Color::S1,
            Direction::Vertical,
            &intervals,
        );
        svgs.push(chart.render());
    }
    if !relative.is_empty() {
        let bound = experiment.claim.bound * 100.0;
        let (low, high) = relative
            .iter()
            .fold((0.0f64, bound), |(lo, hi), (_, _, e)| {
                (lo.min(e.low * 100.0), hi.max(e.high * 100.0))
            });
        let mut chart = Chart::new(
            format!(
                "Relative change in {} at each setting, with 95% intervals, against the claim's bound",
                claim_metric_name(metric)
            ),
            x_axis,
            Axis::linear(
                format!("change in {} (%)", claim_metric_name(metric)),
                low,
                high,
            ),
        );
        chart.hrule(0.0, "zero", "");
        chart.hrule(
            bound,
            "bound",
            &format!("claim: < +{}", percent(experiment.claim.bound)),
        );
        link_estimates(&mut chart, &relative, 100.0);
        let intervals: Vec<Interval> = relative
            .iter()
            .map(|(x, p, e)| Interval {
                at: *x,
                low: e.low * 100.0,
                estimate: e.estimate * 100.0,
                high: e.high * 100.0,
                title: format!(
                    "{}: {} {}",
                    p.setting.as_deref().unwrap_or(""),
                    effect_text(Some(e), percent),
                    p.analysis.verdict
                ),
            })
            .collect();
        chart.intervals(
            "relative change",
            Color::S2,
            Direction::Vertical,
            &intervals,
        );
        svgs.push(chart.render());
    }
    let mut table = Table::new(&[
        "setting",
        "control CPU per request",
        "cost per request [95%]",
        "relative change [95%]",
        "verdict",
        "break-even",
    ]);
    for point in points {
        let a = &point.analysis;
        table.push(
            vec![
                point.setting.clone().unwrap_or_default(),
                a.control_cpu_us
                    .map_or_else(|| "n/a".to_owned(), duration_us),
                effect_text(a.cpu_cost_us.as_ref(), duration_us),
                effect_text(claim_effect(metric, point).as_ref(), percent),
                a.verdict.to_string(),
                a.break_even_us
                    .map_or_else(|| "n/a".to_owned(), duration_us),
            ],
            false,
        );
    }
    Some(Figure {
        id: "overhead-sweep".to_owned(),
        caption: format!(
            "The cost curve over {key}: what tracing adds to each request in CPU time, and what that is relative to the request's own cost. A fixed cost per request falls below the bound once requests are large enough."
        ),
        svgs,
        table,
    })
}
