//! JUnit XML for CI systems: one `testsuite` per scenario run and one `testcase` per thing that can
//! fail it (the run itself, each threshold, each trace check, each metrics check, the overhead
//! claim), so that a red build names what failed, what was measured and the bound it broke.
//!
//! The XML agrees with the exit code: a testcase fails exactly when it fails the run. Trace checks
//! are the one place where that takes care: a scenario may tolerate a few failing traces
//! (`traces.passed >= 95%`), and then the traces that failed are reported but do not fail.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::ReportError;
use crate::format::{cpu_time, percent_fixed};
use crate::result::CheckKind;
use crate::result::MetricsReport;
use crate::result::overhead::{OverheadResult, Verdict};
use crate::result::{RunResult, RunStatus};
use crate::result::{StreamTraceReport, TraceReport};
use crate::summary::effect;
use crate::threshold::{Metric, Threshold};

/// Failing traces quoted in a failure's text, per check; `result.json` keeps more.
const QUOTED_TRACES: usize = 10;

/// The JUnit report of one run.
pub fn render(result: &RunResult) -> Report {
    report("harness", [suite(result)])
}

/// A report of several suites (a sign-off's); its time is theirs added up.
pub fn report(name: &str, suites: impl IntoIterator<Item = TestSuite>) -> Report {
    let mut report = Report::new(name);
    let mut time = Duration::ZERO;
    for suite in suites {
        time += suite.time.unwrap_or_default();
        report.add_test_suite(suite);
    }
    report.set_time(time);
    report
}

/// Writes `report` to `path`, creating its directory (CI passes paths such as
/// `reports/junit.xml` before anything exists), and naming the file on failure.
pub fn write(path: &Path, report: &Report) -> Result<(), ReportError> {
    let failed = |source| ReportError::Write {
        path: path.display().to_string(),
        source,
    };
    let xml = report
        .to_string()
        .map_err(|error| failed(std::io::Error::other(error)))?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(failed)?;
    }
    super::write(path, &xml)
}

/// One run as a testsuite named after its scenario. Its time is the measured load's (for an
/// overhead experiment, that of the treatment arm's trials); `result.json` holds no other.
pub fn suite(result: &RunResult) -> TestSuite {
    let scenario = result.scenario.name.as_str();
    let mut suite = TestSuite::new(scenario);
    suite.set_time(seconds(result.load.send_duration_s));
    if let Some(started) = timestamp(result.started_at_unix_ms) {
        suite.set_timestamp(started);
    }
    let environment = &result.environment;
    suite.add_property(("harness_version", environment.harness_version.as_str()));
    if let Some(sha) = &environment.git_sha {
        suite.add_property(("git_sha", sha.as_str()));
    }
    suite.add_property(("scenario_path", result.scenario.path.as_str()));
    suite.add_test_case(completion(result));
    suite.add_test_cases(thresholds(result));
    if let Some(traces) = &result.verification.traces {
        suite.add_test_cases(trace_checks(scenario, traces, traces_tolerated(result)));
    }
    if let Some(streams) = &result.verification.streams {
        suite.add_test_case(stream_traces(scenario, streams));
    }
    if let Some(metrics) = &result.verification.metrics {
        suite.add_test_cases(metrics_checks(scenario, metrics));
    }
    if let Some(pii) = &result.verification.pii {
        suite.add_test_case(pii_check(scenario, pii));
    }
    if let Some(overhead) = &result.overhead {
        suite.add_test_cases(overhead_claim(scenario, overhead));
    }
    suite
}

/// The search for personal data as one testcase: a failure names every place found (redacted
/// values only, as `result.json` holds them).
fn pii_check(scenario: &str, pii: &crate::result::PiiReport) -> TestCase {
    let places: Vec<String> = pii
        .findings
        .iter()
        .map(|f| {
            let sort = if f.canary { "canary" } else { "pattern" };
            format!("{sort} {} {} at {}", f.kind, f.value, f.place)
        })
        .collect();
    let status = if pii.passed {
        TestCaseStatus::success()
    } else {
        failure("pii", pii.headline(), places.join("\n"))
    };
    let mut case = case(
        &format!("{scenario}.pii"),
        "no personal data in telemetry",
        status,
    );
    let mut out = pii.headline();
    if pii.passed && !places.is_empty() {
        out.push('\n');
        out.push_str(&places.join("\n"));
    }
    case.set_system_out(out);
    case
}

/// A suite for a scenario that never ran: one `<error type="not run">` saying why. An error, not
/// a skip, because it makes the sign-off incomplete (exit 3), and CI must show that red.
pub fn not_run(scenario: &str, reason: &str) -> TestSuite {
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
    status.set_type("not run").set_message(reason);
    let mut suite = TestSuite::new(scenario);
    suite.set_time(Duration::ZERO);
    suite.add_test_case(case(scenario, "run completed", status));
    suite
}

/// A suite for a scenario whose run returned no result: one `<error>` with the reason.
pub fn broken(scenario: &str, reason: &str, time: Duration) -> TestSuite {
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
    status
        .set_type("failed")
        .set_message(format!("the run did not complete: {reason}"));
    let mut suite = TestSuite::new(scenario);
    suite.set_time(time);
    suite.add_test_case(case(scenario, "run completed", status));
    suite
}

/// Adds a failing testcase named `name` to the scenario's suite.
pub fn add_failure(suite: &mut TestSuite, name: &str, message: &str) {
    let classname = suite.name.as_str().to_owned();
    suite.add_test_case(case(&classname, name, failure("expectation", message, "")));
}

/// The suite of a scenario that is expected to fail, as the sign-off counts it: each failure
/// becomes a skipped testcase saying it failed as expected, the convention of pytest's `xfail`,
/// so that CI shows the failure without turning red for it. Errors (a run that did not complete)
/// stay errors: an expected failure is a failed check, never a broken run.
pub fn expected_failure(suite: &TestSuite) -> TestSuite {
    let mut expected = TestSuite::new(suite.name.as_str());
    expected.time = suite.time;
    expected.timestamp = suite.timestamp;
    expected.properties = suite.properties.clone();
    expected.add_test_cases(suite.test_cases.iter().map(|case| {
        let mut case = case.clone();
        if let TestCaseStatus::NonSuccess {
            kind: NonSuccessKind::Failure,
            message,
            description,
            ..
        } = &case.status
        {
            let mut status = TestCaseStatus::skipped();
            status.set_type("expected failure");
            status.set_message(format!(
                "failed as expected: {}",
                message.as_ref().map_or("", |m| m.as_str())
            ));
            if let Some(description) = description {
                status.set_description(description.as_str());
            }
            case.status = status;
        }
        case
    }));
    expected
}

fn seconds(value: f64) -> Duration {
    Duration::try_from_secs_f64(value).unwrap_or_default()
}

fn timestamp(unix_ms: u64) -> Option<DateTime<FixedOffset>> {
    let ms = i64::try_from(unix_ms).ok()?;
    DateTime::from_timestamp_millis(ms).map(|t| t.fixed_offset())
}

fn case(classname: &str, name: impl AsRef<str>, status: TestCaseStatus) -> TestCase {
    let mut case = TestCase::new(name.as_ref(), status);
    case.set_classname(classname);
    case
}

fn failure(kind: &str, message: impl AsRef<str>, description: impl AsRef<str>) -> TestCaseStatus {
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
    status.set_type(kind).set_message(message.as_ref());
    if !description.as_ref().is_empty() {
        status.set_description(description.as_ref());
    }
    status
}

/// Whether the run completed: an `<error>` with the reason when it did not.
fn completion(result: &RunResult) -> TestCase {
    let error = |kind: &str, reason: &str| {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status
            .set_type(kind)
            .set_message(format!("the run did not complete: {reason}"));
        status
    };
    let status = match &result.status {
        RunStatus::Completed => TestCaseStatus::success(),
        RunStatus::Interrupted { reason } => error("interrupted", reason),
        RunStatus::Failed { reason } => error("failed", reason),
    };
    let mut case = case(&result.scenario.name, "run completed", status);
    case.set_time(seconds(result.load.send_duration_s));
    case
}

fn thresholds(result: &RunResult) -> impl Iterator<Item = TestCase> + '_ {
    let classname = format!("{}.thresholds", result.scenario.name);
    result.thresholds.iter().map(move |t| {
        let evaluation = &t.evaluation;
        let status = if evaluation.is_pass() {
            TestCaseStatus::success()
        } else {
            let detail = match evaluation.measured {
                Some(_) => format!("[{}] {evaluation}", t.scope),
                None => format!(
                    "[{}] {evaluation}: nothing was measured, so it cannot pass",
                    t.scope
                ),
            };
            failure(
                "threshold",
                crate::threshold::against_bound(evaluation),
                detail,
            )
        };
        case(
            &classname,
            format!("{}: {}", t.scope, evaluation.expression),
            status,
        )
    })
}

/// Whether the scenario's trace thresholds accept what failed: it declares at least one of
/// `traces.complete` and `traces.passed`, and they all passed.
fn traces_tolerated(result: &RunResult) -> bool {
    let mut gates = result.thresholds.iter().filter(|t| {
        Threshold::parse(&t.evaluation.expression).is_ok_and(|parsed| {
            matches!(parsed.metric, Metric::TracesComplete | Metric::TracesPassed)
        })
    });
    let mut any = false;
    let all = gates.all(|t| {
        any = true;
        t.evaluation.is_pass()
    });
    any && all
}

fn trace_checks(scenario: &str, traces: &TraceReport, tolerated: bool) -> Vec<TestCase> {
    let classname = format!("{scenario}.traces");
    let mut cases = vec![completeness(&classname, traces, tolerated)];
    let mut kinds = traces.checks.clone();
    kinds.extend(
        traces
            .failed_checks
            .keys()
            .filter(|kind| !traces.checks.contains(kind)),
    );
    for kind in kinds {
        let failed = traces.failed_checks.get(&kind).copied().unwrap_or(0);
        let mut quoted = failing_traces(traces, |check| check == kind);
        if failed as usize > QUOTED_TRACES {
            let _ = writeln!(quoted, "and {} more", failed as usize - QUOTED_TRACES);
        }
        let message = format!(
            "{kind}: {failed} of {} sampled traces failed, bound 0",
            traces.sampled
        );
        let mut case = case(&classname, kind.to_string(), TestCaseStatus::success());
        if failed > 0 && tolerated {
            case.set_system_out(format!(
                "{message}: within the scenario's trace thresholds\n{quoted}"
            ));
        } else if failed > 0 {
            case.status = failure("trace check", message, quoted);
        }
        cases.push(case);
    }
    cases
}

/// `verify.streams`: one case, failing unless every sampled update was traced end to end.
fn stream_traces(scenario: &str, report: &StreamTraceReport) -> TestCase {
    let classname = format!("{scenario}.streams");
    let mut case = case(&classname, "traced end to end", TestCaseStatus::success());
    if report.sampled > 0 && report.passed == report.sampled {
        return case;
    }
    let message = format!(
        "{} of {} sampled updates traced end to end (looked up in {}), bound 100%",
        report.passed, report.sampled, report.source
    );
    let mut detail = String::new();
    for failing in report.failing.iter().take(QUOTED_TRACES) {
        for (check, text) in &failing.failures {
            let _ = writeln!(
                detail,
                "{} [{}] {check}: {text}",
                failing.traceparent, failing.kind
            );
        }
    }
    case.status = failure("stream trace check", message, detail);
    case
}

fn completeness(classname: &str, traces: &TraceReport, tolerated: bool) -> TestCase {
    let mut detail = format!("traces looked up in {}", traces.source);
    if traces.unanswered > 0 {
        let _ = write!(
            detail,
            "; {} sampled request(s) got no response",
            traces.unanswered
        );
    }
    if traces.not_judged > 0 {
        let _ = write!(
            detail,
            "; {} sampled request(s) failed in transport and were not judged",
            traces.not_judged
        );
    }
    detail.push('\n');
    detail.push_str(&failing_traces(traces, |check| {
        matches!(
            check,
            CheckKind::Response | CheckKind::Exists | CheckKind::Services | CheckKind::Chain
        )
    }));
    let message = match traces.completeness {
        Some(ratio) => format!(
            "completeness = {} ({} of {} sampled traces complete), bound 100%",
            percent_fixed(ratio),
            traces.complete,
            traces.sampled
        ),
        None => "completeness: no sampled trace to judge, bound 100%".to_owned(),
    };
    let incomplete = traces.sampled == 0 || traces.complete < traces.sampled;
    let mut case = case(classname, "completeness", TestCaseStatus::success());
    if incomplete && !tolerated {
        case.status = failure("trace check", message, detail);
    } else if incomplete {
        case.set_system_out(format!(
            "{message}: within the scenario's trace thresholds\n{detail}"
        ));
    }
    case
}

/// `trace_id [kind outcome] check: detail` for the first failing traces with a matching failure,
/// each with its Jaeger link when the traces came from Jaeger.
fn failing_traces(traces: &TraceReport, wanted: impl Fn(CheckKind) -> bool) -> String {
    let mut text = String::new();
    let matching = traces
        .failing
        .iter()
        .filter(|t| t.failures.iter().any(|f| wanted(f.check)));
    for trace in matching.take(QUOTED_TRACES) {
        for f in trace.failures.iter().filter(|f| wanted(f.check)) {
            let _ = writeln!(
                text,
                "{} [{} {}] {}: {}",
                trace.trace_id, trace.kind, trace.outcome, f.check, f.detail
            );
        }
        if let Some(ui) = &traces.jaeger_ui {
            let _ = writeln!(
                text,
                "  {}/trace/{}",
                ui.trim_end_matches('/'),
                trace.trace_id
            );
        }
    }
    text
}

fn metrics_checks(scenario: &str, metrics: &MetricsReport) -> Vec<TestCase> {
    let mut cases = Vec::new();
    // The span accounting is a class of its own, so that the sources' classes stay as they were.
    let spans = |source: &crate::result::SourceReport| {
        source.source.starts_with(crate::result::SPAN_COUNTS)
    };
    let sources = metrics.sources.iter().filter(|s| !spans(s)).count();
    for (i, source) in metrics.sources.iter().enumerate() {
        let classname = match sources {
            _ if spans(source) => format!("{scenario}.spans"),
            1 => format!("{scenario}.metrics"),
            _ => format!("{scenario}.metrics.{}", source_label(&source.source, i)),
        };
        if let Some(error) = &source.error {
            cases.push(case(
                &classname,
                "source read",
                failure(
                    "metrics source",
                    format!("could not be read: {error}"),
                    &source.source,
                ),
            ));
        }
        // The same series may be checked twice (present, then reconciled): names stay unique.
        let mut seen: HashMap<String, usize> = HashMap::new();
        for check in &source.checks {
            let mut name = format!("{} {}", check.service, check.metric);
            if !check.labels.is_empty() {
                let _ = write!(name, "{{{}}}", check.labels);
            }
            let count = seen.entry(name.clone()).or_default();
            *count += 1;
            if *count > 1 {
                let _ = write!(name, " ({count})");
            }
            let status = if check.skipped {
                let mut status = TestCaseStatus::skipped();
                status.set_message(check.detail.as_str());
                status
            } else if check.passed {
                TestCaseStatus::success()
            } else {
                failure(
                    "metrics check",
                    format!("{}: {}", check.subject(), check.comparison()),
                    format!("{}\nsource: {}", check.detail, source.source),
                )
            };
            cases.push(case(&classname, name, status));
        }
    }
    cases
}

/// `scrape` or `prometheus` by the source's description, else its position: a name that stays
/// the same from run to run, unlike the description's addresses.
fn source_label(description: &str, index: usize) -> String {
    if description.starts_with("direct scrape") {
        "scrape".to_owned()
    } else if description.starts_with("Prometheus") {
        "prometheus".to_owned()
    } else {
        format!("source{}", index + 1)
    }
}

fn overhead_claim(scenario: &str, overhead: &OverheadResult) -> Vec<TestCase> {
    let classname = format!("{scenario}.overhead");
    let claim = &overhead.claim;
    let metric = claim.metric.describe();
    let bound = percent_fixed(claim.bound);
    overhead
        .points
        .iter()
        .map(|point| {
            let a = &point.analysis;
            let mut name = format!("claim: {metric} rises by less than {bound}");
            if let Some(setting) = &point.setting {
                let _ = write!(name, " at {setting}");
            }
            let judged = a.claim_effect(claim.metric);
            let measured = format!("{metric} {}", effect(judged.as_ref(), percent_fixed));
            let mut detail = format!(
                "{} pairs of trials; smallest detectable effect {}",
                a.pairs,
                a.smallest_detectable
                    .map_or_else(|| "n/a".to_owned(), |r| format!("±{}", percent_fixed(r)))
            );
            if let (Some(control), Some(treatment)) = (a.control_cpu_us, a.treatment_cpu_us) {
                let _ = write!(
                    detail,
                    "\nCPU per request: control {}, treatment {}; cost {}",
                    cpu_time(control),
                    cpu_time(treatment),
                    effect(a.cpu_cost_us.as_ref(), cpu_time)
                );
            }
            if let Some(break_even) = a.break_even_us {
                let _ = write!(
                    detail,
                    "\nthe cost is under {bound} only for requests of at least {} CPU",
                    cpu_time(break_even)
                );
            }
            let status = match a.verdict {
                Verdict::Pass => TestCaseStatus::success(),
                Verdict::Fail => failure(
                    "overhead claim",
                    format!("FAIL: {measured}, bound < {bound}"),
                    detail,
                ),
                Verdict::Inconclusive => {
                    let why = match judged {
                        Some(_) => {
                            format!("{measured}, bound < {bound}: the interval straddles it")
                        }
                        None => format!(
                            "{metric}: too few pairs to estimate ({}), bound < {bound}",
                            a.pairs
                        ),
                    };
                    failure(
                        "overhead claim",
                        format!("INCONCLUSIVE, could not be decided: {why}"),
                        format!("{detail}\nmore or longer trials are needed to decide"),
                    )
                }
            };
            case(&classname, name, status)
        })
        .collect()
}

#[cfg(test)]
mod tests;
