//! The run report (`report.html`): a view model of a [`RunResult`] with every value already
//! formatted for display, rendered by `templates/run.html`. Sections appear only when the result
//! has their data; the charts come from `report::chart`.
//!
//! This module holds the page and its general sections (verdict, scenario, load, thresholds,
//! outcomes); `latency` draws the percentile spectra, `timeline` the run over time (in buckets of
//! seconds when it is long), `verification` the trace and metrics checks, `overhead` the
//! tracing-overhead experiment.

mod fleet;
pub(crate) mod latency;
mod memory;
mod overhead;
mod pii;
mod profile;
#[cfg(test)]
mod samples;
mod stream;
mod timeline;
mod verification;

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ReportError;
use crate::format::{count, duration_us, percent, rate, significant, utc};
use crate::result::overhead::Verdict;
use crate::result::{
    HistogramError, KindResult, Percentiles, RunResult, RunStatus, ThresholdResult,
};
use crate::threshold::Unit;
use fleet::{FleetView, fleet};
use latency::{SpectrumView, spectrum};
use memory::{MemoryView, memory};
use overhead::{OverheadView, claim_text, overhead};
use pii::{PiiView, pii};
use timeline::{TimelineView, timeline};
use verification::{MetricsView, TracesView, metrics, traces};

/// The file `harness run` writes beside `result.json`.
pub const FILE_NAME: &str = "report.html";
const TEMPLATE: &str = "run.html";

/// Room above the largest value of a linear axis, so that a line at the maximum stays off the
/// chart's frame.
pub(crate) const HEADROOM: f64 = 1.05;
/// A send lag p99 above this is worth a warning: the harness itself was late.
const LATE_SEND_US: u64 = 5_000;

/// Why a run's HTML report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// A histogram in the result does not decode; `field` says which, as a JSON path.
    #[error("{field}: {source}")]
    Histogram {
        /// The JSON path of the histogram.
        field: String,
        /// Why it does not decode.
        #[source]
        source: HistogramError,
    },
    /// Rendering or writing failed.
    #[error(transparent)]
    Report(#[from] ReportError),
}

/// The page for `result`; `result_file` is how the footer names the result it came from.
pub fn render(result: &RunResult, result_file: &str) -> Result<String, PageError> {
    let page = Page::of(result, result_file)?;
    Ok(super::render(TEMPLATE, &page)?)
}

/// Renders the page for `result` into the file at `path`, without holding the page whole: a
/// bad histogram is found before the file is created.
pub fn write(result: &RunResult, result_file: &str, path: &Path) -> Result<(), PageError> {
    let page = Page::of(result, result_file)?;
    Ok(super::render_to_file(TEMPLATE, &page, path)?)
}

#[derive(Debug, Serialize)]
struct Page {
    title: String,
    verdict: VerdictView,
    scenario: ScenarioView,
    environment: Vec<Fact>,
    fleet: Option<FleetView>,
    load: LoadView,
    thresholds: Vec<ThresholdRow>,
    spectra: Vec<SpectrumView>,
    timeline: Option<TimelineView>,
    errors: Vec<KindErrors>,
    traces: Option<TracesView>,
    metrics: Option<MetricsView>,
    /// A stream load's messages, and the trace checks of its updates.
    stream: Option<stream::StreamView>,
    pii: Option<PiiView>,
    overhead: Option<OverheadView>,
    memory: Option<MemoryView>,
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
    /// Inline `<svg>` elements built by [`crate::report::chart`], which escapes every text
    /// it draws.
    svgs: Vec<String>,
    table: Table,
}

#[derive(Debug, Serialize)]
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
    /// `pass`, `fail` or `inconclusive`: the banner's CSS class. An incomplete run is `fail`.
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
    /// `target rate`, `mean target rate`, or either over the part of the profile that ran.
    target_label: String,
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
    p95: String,
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
struct KindErrors {
    name: String,
    sent: String,
    completed: String,
    unexpected: String,
    dropped: String,
    outcomes: Vec<Fact>,
    transport_errors: Vec<String>,
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
            fleet: fleet(result),
            load: load(result),
            thresholds: result.thresholds.iter().map(threshold_row).collect(),
            spectra,
            timeline: timeline(&result.timeline, &result.phases, result.overhead.is_some()),
            errors: result.kinds.iter().map(kind_errors).collect(),
            traces: result.verification.traces.as_ref().map(traces),
            metrics: result.verification.metrics.as_ref().map(metrics),
            stream: result
                .stream
                .as_ref()
                .map(|s| stream::stream(s, result.verification.streams.as_ref()))
                .transpose()?,
            pii: result.verification.pii.as_ref().map(pii),
            overhead: result.overhead.as_ref().map(overhead),
            memory: result.memory.as_ref().and_then(memory),
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
    // As the exit code: an incomplete run (exit 3) is neither a pass nor a measured failure,
    // though it is shown in the failing colour; otherwise the result's own pass rule, with an
    // undecided claim (and no failing threshold) told apart from a failure.
    let (class, word) = if status.is_some() {
        ("fail", "INCOMPLETE")
    } else if result.passed() {
        ("pass", "PASS")
    } else if failing.is_empty() && claim == Some(Verdict::Inconclusive) {
        ("inconclusive", "INCONCLUSIVE")
    } else {
        ("fail", "FAIL")
    };
    let mut lines = Vec::new();
    let total = result.thresholds.len();
    lines.push(match (total, failing.len()) {
        (0, _) if status.is_some() => {
            "Thresholds were not evaluated: the run did not get that far.".to_owned()
        }
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

/// The rate the run was asked for over the time it sent, and how the page names it. A run that
/// stopped early is held to the part of the profile that ran, not to the whole; when that part
/// cannot be worked out (no phases), the comparison is left out rather than made unfairly.
fn expected_rate(result: &RunResult) -> (Option<f64>, String) {
    let load = &result.load;
    let mean = if profile::is_constant(&result.phases) {
        "target rate"
    } else {
        "mean target rate"
    };
    if matches!(result.status, RunStatus::Completed) {
        return (Some(load.target_rate), mean.to_owned());
    }
    match profile::mean_target(&result.phases, load.send_duration_s) {
        Some(target) => (
            Some(target),
            format!(
                "{mean} over the {} s that ran",
                significant(load.send_duration_s, 3)
            ),
        ),
        None => (None, format!("{mean} of the whole profile")),
    }
}

fn load(result: &RunResult) -> LoadView {
    let load = &result.load;
    let (expected, target_label) = expected_rate(result);
    let share = expected
        .filter(|t| *t > 0.0)
        .map(|t| load.achieved_rate / t);
    let mut warnings = Vec::new();
    if let (Some(share), Some(expected)) = (share.filter(|s| load.sent > 1 && *s < 0.99), expected)
    {
        warnings.push(format!(
            "The target rate was not held: {} was achieved, {} of the {} asked for. The latencies describe a lighter load than the scenario's.",
            rate(load.achieved_rate),
            percent(share),
            rate(expected)
        ));
    }
    if expected.is_none() && load.sent > 0 {
        warnings.push(
            "The run stopped early: the achieved rate covers only the part that ran, so it is not compared with the whole profile's target.".to_owned(),
        );
    }
    if load.send_lag.count > 0 && load.send_lag.p99 > LATE_SEND_US {
        warnings.push(format!(
            "The harness itself sent late (send lag p99 {}): the machine was short of CPU, and every latency includes that lag.",
            duration_us(load.send_lag.p99 as f64)
        ));
    }
    LoadView {
        target_label,
        target: rate(expected.unwrap_or(load.target_rate)),
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
        // A result written before p95 was recorded has none: a dash, not a 0.
        p95: p.p95.map_or_else(|| "—".to_owned(), shown),
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
        Unit::BytesPerSecond => crate::result::memory::growth_text(value),
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
            .map(|(label, n)| fact(label, count(*n)))
            .collect(),
        transport_errors: kind.transport_errors.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::samples::{SAMPLES, charts, draws_data, element, escaped, has_id, html, sample};
    use super::*;
    use crate::result::FailingTrace;
    use crate::result::{CheckKind, Failure};

    #[test]
    fn the_latency_table_has_p95_and_a_dash_where_a_result_predates_it() {
        let old = sample("smoke");
        assert_eq!(old.load.latency.p95, None, "the fixture predates p95");
        let page = html(&old);
        let load = element(&page, "load");
        assert!(load.contains("<th class=\"num\">p95</th>"), "{load}");
        let row = |page: &str| {
            let start = page
                .find("<td>latency (from the intended send)</td>")
                .expect("row");
            page[start..]
                .split("</tr>")
                .next()
                .unwrap_or_default()
                .to_owned()
        };
        let cells = |row: &str| row.matches("<td class=\"num\">").count();
        let old_row = row(load);
        // count, min, p50, p90, p95, p99, p99.9, max, mean; p95 the fifth.
        assert_eq!(cells(&old_row), 9, "{old_row}");
        let fifth = |row: &str| row.split("<td class=\"num\">").nth(5).map(str::to_owned);
        assert_eq!(fifth(&old_row).as_deref(), Some("—</td>"), "{old_row}");

        let mut new = old.clone();
        new.load.latency.p95 = Some(123_400);
        let page = html(&new);
        let new_row = row(element(&page, "load"));
        let shown = duration_us(123_400.0);
        assert_eq!(fifth(&new_row), Some(format!("{shown}</td>")), "{new_row}");
    }

    #[test]
    fn every_section_is_there_for_the_sample_results() {
        let common = [
            "verdict",
            "scenario",
            "environment",
            "load",
            "thresholds",
            "spectrum-quote",
            "timeline-latency",
            "timeline-throughput",
            "errors",
        ];
        for (name, class, extra) in [
            ("smoke", "pass", &["spectrum-bad_symbol"][..]),
            (
                "verify",
                "pass",
                &["spectrum-bad_symbol", "traces", "metrics"],
            ),
            ("stall", "fail", &[]),
            (
                "overhead-quick",
                "fail",
                &["overhead", "overhead-trials", "overhead-effect"],
            ),
        ] {
            let page = html(&sample(name));
            for id in common.iter().chain(extra) {
                assert!(has_id(&page, id), "{name}: no #{id}");
            }
            assert!(
                page.contains(&format!("id=\"verdict\" class=\"verdict {class}\"")),
                "{name}: verdict {class}"
            );
            assert!(page.contains("<code>result.json</code>"), "{name}: footer");
            // Every chart sits in a figure with an id, is named, and draws data.
            for chart in charts(&page) {
                assert!(chart.contains("<title>") && chart.contains("aria-label=\""));
                assert!(chart.contains("class=\"legend\""), "{name}: legend");
                assert!(
                    draws_data(chart),
                    "{name}: a chart with no data drawn: {chart}"
                );
            }
            let figures = page.matches("<figure id=\"").count();
            assert_eq!(figures, charts(&page).len(), "{name}: one chart per figure");
            assert_eq!(
                page.matches("<details class=\"data\">").count(),
                figures,
                "{name}: every figure has its data table"
            );
            assert!(page.len() < 100_000, "{name}: {} bytes", page.len());
        }
    }

    #[test]
    fn sections_without_data_are_left_out() {
        let page = html(&sample("smoke"));
        for id in [
            "traces",
            "metrics",
            "overhead",
            "overhead-trials",
            "overhead-sweep",
        ] {
            assert!(!has_id(&page, id), "smoke has no #{id}");
        }
        // A run that failed before any load: no timeline, no spectrum to draw.
        let mut failed = sample("smoke");
        failed.status = RunStatus::Failed {
            reason: "the core engine exited before it was ready".to_owned(),
        };
        failed.timeline.clear();
        let empty = crate::result::encode_histogram(&crate::load::recorder::new_histogram());
        for kind in &mut failed.kinds {
            kind.latency_histogram = empty.clone();
            kind.service_time_histogram = empty.clone();
        }
        let page = html(&failed);
        assert!(!has_id(&page, "timeline-latency") && !has_id(&page, "timeline-throughput"));
        assert!(charts(&page).is_empty());
        assert!(element(&page, "spectrum-quote").contains("No request of this kind completed"));
        let banner = element(&page, "verdict");
        assert!(banner.contains("verdict fail"), "{banner}");
        assert!(banner.contains(">INCOMPLETE<"), "{banner}");
        assert!(
            banner.contains("The run failed: the core engine exited before it was ready"),
            "{banner}"
        );
        // It never got as far as its thresholds: not the same as having none.
        failed.thresholds.clear();
        let page = html(&failed);
        let banner = element(&page, "verdict");
        assert!(
            banner.contains("Thresholds were not evaluated: the run did not get that far."),
            "{banner}"
        );
        let mut none_set = sample("smoke");
        none_set.thresholds.clear();
        assert!(element(&html(&none_set), "verdict").contains("No thresholds were set."));
    }

    #[test]
    fn a_failing_threshold_is_named_in_the_banner() {
        let page = html(&sample("stall"));
        let banner = element(&page, "verdict");
        assert!(banner.contains("verdict fail"));
        assert!(banner.contains("FAIL"));
        assert!(banner.contains("p(99) &lt; 100ms"), "{banner}");
        assert!(
            banner.contains("970 ms") && banner.contains("100 ms"),
            "{banner}"
        );

        let passing = html(&sample("smoke"));
        let banner = element(&passing, "verdict");
        assert!(banner.contains("verdict pass") && !banner.contains("Failing"));
    }

    #[test]
    fn the_verdict_follows_status_thresholds_and_the_claim() {
        let class = |result: &RunResult| verdict(result).class;
        let mut experiment = sample("overhead-quick");
        assert_eq!(class(&experiment), "fail");
        let overhead = experiment.overhead.as_mut().expect("an experiment");
        overhead.verdict = Verdict::Inconclusive;
        assert_eq!(class(&experiment), "inconclusive");
        experiment.overhead.as_mut().expect("an experiment").verdict = Verdict::Pass;
        assert_eq!(class(&experiment), "pass");
        // A failed threshold outweighs an undecided claim.
        experiment.overhead.as_mut().expect("an experiment").verdict = Verdict::Inconclusive;
        experiment.thresholds[0].evaluation.passed = Some(false);
        assert_eq!(class(&experiment), "fail");

        let mut interrupted = sample("smoke");
        interrupted.status = RunStatus::Interrupted {
            reason: "interrupted (SIGINT or SIGTERM)".to_owned(),
        };
        let page = html(&interrupted);
        let banner = element(&page, "verdict");
        assert!(banner.contains("verdict fail"));
        assert!(
            banner.contains(">INCOMPLETE<") && !banner.contains("FAIL"),
            "{banner}"
        );
        assert!(banner.contains("did not complete (interrupted (SIGINT or SIGTERM))"));
        // Its thresholds passed on what was measured: still incomplete, not a pass.
        assert!(interrupted.passed());
        assert_eq!(verdict(&interrupted).word, "INCOMPLETE");
        // An experiment whose claim passed but a threshold failed is a failure, as it exits.
        let mut experiment = sample("overhead-quick");
        experiment.overhead.as_mut().expect("an experiment").verdict = Verdict::Pass;
        experiment.thresholds[0].evaluation.passed = Some(false);
        assert!(!experiment.passed());
        assert_eq!(verdict(&experiment).word, "FAIL");
        // A threshold that measured nothing cannot pass.
        let mut no_data = sample("smoke");
        no_data.thresholds[0].evaluation.measured = None;
        no_data.thresholds[0].evaluation.passed = None;
        let page = html(&no_data);
        assert!(element(&page, "verdict").contains("no data"));
    }

    #[test]
    fn user_strings_are_escaped() {
        let mut result = sample("verify");
        let evil = "<script>alert(1)</script>";
        result.scenario.name = evil.to_owned();
        result.scenario.source = format!("name: x\ndescription: \"{evil}\"\n");
        result.scenario.overrides = vec![format!("name={evil}")];
        result.kinds[0].name = evil.to_owned();
        result.kinds[0].transport_errors = vec![evil.to_owned()];
        result.thresholds[0].evaluation.expression = evil.to_owned();
        result.environment.cpu_model = Some(evil.to_owned());
        let traces = result.verification.traces.as_mut().expect("traces");
        traces.failing.push(FailingTrace {
            trace_id: evil.to_owned(),
            kind: evil.to_owned(),
            outcome: evil.to_owned(),
            failures: vec![Failure {
                check: CheckKind::Chain,
                detail: evil.to_owned(),
            }],
        });
        let page = html(&result);
        assert!(!page.contains("<script"), "a script tag got through");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;"));
        // The kind's charts carry its name too, escaped by the chart itself.
        for chart in charts(&page) {
            assert!(!chart.contains("<script"));
        }
    }

    #[test]
    fn nothing_links_out_but_the_jaeger_trace_links() {
        for (name, _) in SAMPLES {
            let page = html(&sample(name));
            for forbidden in [
                "http://", "https://", " src=", "url(", "@import", "<script", "<link",
            ] {
                assert!(!page.contains(forbidden), "{name}: {forbidden}");
            }
            assert!(!page.contains("href="), "{name}: no links without Jaeger");
        }
        let mut result = sample("verify");
        let traces = result.verification.traces.as_mut().expect("traces");
        traces.jaeger_ui = Some("http://127.0.0.1:16686/".to_owned());
        traces.failing.push(FailingTrace {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".to_owned(),
            kind: "quote".to_owned(),
            outcome: "200".to_owned(),
            failures: vec![Failure {
                check: CheckKind::Chain,
                detail: "broken at api-gateway client -> core-engine server".to_owned(),
            }],
        });
        let page = html(&result);
        let hrefs: Vec<&str> = page
            .split("href=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect();
        assert_eq!(
            hrefs,
            ["http:&#x2f;&#x2f;127.0.0.1:16686&#x2f;trace&#x2f;4bf92f3577b34da6a3ce929d0e0e4736"]
        );
        // Only a web address becomes a link.
        result
            .verification
            .traces
            .as_mut()
            .expect("traces")
            .jaeger_ui = Some("javascript:alert(1)".to_owned());
        let page = html(&result);
        assert!(!page.contains("href="));
        assert!(page.contains("4bf92f3577b34da6a3ce929d0e0e4736"));
    }

    #[test]
    fn the_scenario_description_comes_from_the_stored_file() {
        let page = html(&sample("stall"));
        let wanted = escaped("The engine stalls 1 s in every 5 s under 100 requests/s");
        assert!(element(&page, "scenario").contains(&wanted));
        assert_eq!(description("name: x\n"), None);
        assert_eq!(description("not: [yaml"), None);
        assert_eq!(
            description("name: x\ndescription: >\n  two\n  lines\n").as_deref(),
            Some("two lines")
        );
    }

    #[test]
    fn a_rate_not_held_is_said_plainly() {
        assert!(!html(&sample("smoke")).contains("was not held"));
        let mut slow = sample("smoke");
        slow.load.achieved_rate = 40.0;
        let page = html(&slow);
        let load = element(&page, "load");
        assert!(load.contains("The target rate was not held"), "{load}");
        assert!(load.contains(&escaped("80.0% of the 50.0 req/s")), "{load}");
    }

    #[test]
    fn a_run_that_stopped_early_is_held_to_the_part_that_ran() {
        use crate::result::PhaseResult;
        let phase = |start_s, rate| PhaseResult {
            start_s,
            duration_s: 10.0,
            from_rate: rate,
            to_rate: rate,
        };
        // 50/s for 10 s, then 200/s: stopped after 5 s at 50/s, it held its rate.
        let mut stopped = sample("smoke");
        stopped.phases = vec![phase(0.0, 50.0), phase(10.0, 200.0)];
        stopped.load.target_rate = 125.0;
        stopped.load.achieved_rate = 50.0;
        stopped.load.send_duration_s = 5.0;
        stopped.status = RunStatus::Interrupted {
            reason: "interrupted (SIGINT or SIGTERM)".to_owned(),
        };
        let page = html(&stopped);
        let load = element(&page, "load");
        assert!(!load.contains("was not held"), "{load}");
        assert!(
            load.contains(&format!(
                "<dt>mean target rate over the 5.00 s that ran</dt><dd>{}</dd>",
                escaped("50.0 req/s")
            )),
            "{load}"
        );
        assert!(
            load.contains(&escaped("50.0 req/s (100% of target)")),
            "{load}"
        );
        // Had it fallen short over those 5 s, that is still said.
        stopped.load.achieved_rate = 30.0;
        let page = html(&stopped);
        assert!(element(&page, "load").contains(&escaped("60.0% of the 50.0 req/s")));

        // Without phases there is nothing fair to compare with: said so, and no false alarm.
        stopped.phases.clear();
        let page = html(&stopped);
        let load = element(&page, "load");
        assert!(!load.contains("was not held"), "{load}");
        assert!(load.contains("covers only the part that ran"), "{load}");
        assert!(
            load.contains("<dt>target rate of the whole profile</dt>"),
            "{load}"
        );

        // A completed run of several rates is held to their mean, named so.
        let mut completed = sample("smoke");
        completed.phases = vec![phase(0.0, 50.0), phase(10.0, 200.0)];
        let page = html(&completed);
        assert!(element(&page, "load").contains("<dt>mean target rate</dt>"));
        assert!(html(&sample("smoke")).contains("<dt>target rate</dt>"));
    }

    #[test]
    fn a_bad_histogram_is_named_by_its_field() {
        let mut result = sample("smoke");
        result.kinds[1].service_time_histogram = "not base64!".to_owned();
        let error = render(&result, "result.json").expect_err("cannot decode");
        let message = error.to_string();
        assert!(
            message.starts_with("kinds[1].service_time_histogram (kind \"bad_symbol\"): "),
            "{message}"
        );
        assert!(message.contains("base64"), "{message}");
    }
}
