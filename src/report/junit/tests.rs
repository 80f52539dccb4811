//! The JUnit report of real results (tests/fixtures/results/*.json, from runs of the bundled
//! scenarios), as they are and with faults injected into them. Every test reads the XML back and
//! checks its shape, so what is asserted is what a CI system would parse.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::*;
use crate::result::FailingTrace;
use crate::result::overhead::Verdict;
use crate::result::{CheckKind, Failure};
use crate::result::{RunResult, RunStatus};
use crate::scenario::{Protocol, bundled_trace_checks};
use crate::threshold::Threshold;

fn fixture(name: &str) -> RunResult {
    let text = match name {
        "smoke" => include_str!("../../../tests/fixtures/results/smoke.json"),
        "verify" => include_str!("../../../tests/fixtures/results/verify.json"),
        "stall" => include_str!("../../../tests/fixtures/results/stall.json"),
        "overhead-quick" => {
            include_str!("../../../tests/fixtures/results/overhead-quick.json")
        }
        other => panic!("no fixture {other}"),
    };
    serde_json::from_str(text).expect("the fixture is a result.json")
}

/// Serializes, parses the XML back, and checks the shape CI systems rely on: the root counts
/// are the sums of the suites', each suite's counts are those of its testcases, every suite has
/// name and time, every testcase name and classname, every failure and error a message.
fn xml_round_trip(report: &Report) -> Report {
    let xml = report.to_string().expect("serializes");
    let parsed = Report::deserialize_from_str(&xml)
        .unwrap_or_else(|e| panic!("the XML does not parse back: {e}\n{xml}"));
    let suites = &parsed.test_suites;
    assert_eq!(parsed.tests, suites.iter().map(|s| s.tests).sum::<usize>());
    assert_eq!(
        parsed.failures,
        suites.iter().map(|s| s.failures).sum::<usize>()
    );
    assert_eq!(
        parsed.errors,
        suites.iter().map(|s| s.errors).sum::<usize>()
    );
    assert_eq!(
        parsed.skipped,
        suites.iter().map(|s| s.skipped).sum::<usize>()
    );
    for suite in suites {
        assert!(!suite.name.as_str().is_empty(), "{xml}");
        assert!(suite.time.is_some(), "suite {:?} has no time", suite.name);
        assert_eq!(suite.tests, suite.test_cases.len());
        let count = |kind: NonSuccessKind| {
            suite
                .test_cases
                .iter()
                .filter(|c| matches!(&c.status, TestCaseStatus::NonSuccess { kind: k, .. } if *k == kind))
                .count()
        };
        assert_eq!(suite.failures, count(NonSuccessKind::Failure), "{xml}");
        assert_eq!(suite.errors, count(NonSuccessKind::Error), "{xml}");
        for case in &suite.test_cases {
            assert!(!case.name.as_str().is_empty(), "{xml}");
            assert!(case.classname.is_some(), "{:?} has no classname", case.name);
            if let TestCaseStatus::NonSuccess { message, .. } = &case.status {
                assert!(
                    message.as_ref().is_some_and(|m| !m.as_str().is_empty()),
                    "{:?} fails without a message",
                    case.name
                );
            }
        }
    }
    parsed
}

fn only_suite(result: &RunResult) -> TestSuite {
    let mut report = xml_round_trip(&render(result));
    assert_eq!(report.test_suites.len(), 1);
    report.test_suites.remove(0)
}

fn named<'s>(suite: &'s TestSuite, classname: &str, name: &str) -> &'s TestCase {
    suite
        .test_cases
        .iter()
        .find(|c| {
            c.name.as_str() == name && c.classname.as_ref().map(|n| n.as_str()) == Some(classname)
        })
        .unwrap_or_else(|| {
            let names: Vec<String> = suite
                .test_cases
                .iter()
                .map(|c| format!("{:?} {:?}", c.classname, c.name))
                .collect();
            panic!("no testcase {classname} {name}; there are {names:#?}")
        })
}

/// `(kind, message, description)` of a testcase that did not pass.
fn non_success(case: &TestCase) -> (NonSuccessKind, String, String) {
    match &case.status {
        TestCaseStatus::NonSuccess {
            kind,
            message,
            description,
            ..
        } => (
            *kind,
            message
                .as_ref()
                .map(|m| m.as_str().to_owned())
                .unwrap_or_default(),
            description
                .as_ref()
                .map(|d| d.as_str().to_owned())
                .unwrap_or_default(),
        ),
        other => panic!("{:?} did not fail: {other:?}", case.name),
    }
}

fn passes(case: &TestCase) -> bool {
    matches!(case.status, TestCaseStatus::Success { .. })
}

/// Whether `harness run` would exit 0 on this result, by the rule it uses: the gate the XML must
/// agree with.
fn gate_passes(result: &RunResult) -> bool {
    matches!(result.status, RunStatus::Completed) && result.passed()
}

fn assert_agrees_with_the_gate(result: &RunResult) {
    let suite = only_suite(result);
    assert_eq!(
        suite.failures + suite.errors == 0,
        gate_passes(result),
        "the XML and the exit code disagree for {}: {suite:#?}",
        result.scenario.name
    );
}

fn set_threshold(result: &mut RunResult, expression: &str, measured: Option<f64>) {
    let evaluation = Threshold::parse(expression)
        .expect("a valid threshold")
        .evaluate(measured);
    let slot = result
        .thresholds
        .iter_mut()
        .find(|t| t.evaluation.expression.split(' ').next() == expression.split(' ').next())
        .expect("the fixture has a threshold on this metric");
    slot.evaluation = evaluation;
}

/// The verify run with `failed` of its traces failing the chain check, and `traces.passed`
/// held to `bound`.
fn broken_chain(failed: u64, bound: &str) -> RunResult {
    let mut result = fixture("verify");
    let traces = result
        .verification
        .traces
        .as_mut()
        .expect("traces verified");
    traces.checks = CheckKind::made_by(&bundled_trace_checks(Protocol::Http, true), true);
    traces.complete = traces.sampled - failed;
    traces.passed = traces.sampled - failed;
    traces.completeness = Some(traces.complete as f64 / traces.sampled as f64);
    traces.failed_checks.insert(CheckKind::Chain, failed);
    traces.failing = (0..failed)
        .map(|i| FailingTrace {
            trace_id: format!("{:032x}", 0xabc0 + i),
            kind: "quote".to_owned(),
            outcome: "HTTP 200".to_owned(),
            failures: vec![Failure {
                check: CheckKind::Chain,
                detail: "broken at api-gateway client -> core-engine server: no child span"
                    .to_owned(),
            }],
        })
        .collect();
    let (sampled, passed) = (traces.sampled, traces.passed);
    let ratio = passed as f64 / sampled as f64;
    set_threshold(&mut result, "traces.complete >= 0%", Some(ratio));
    set_threshold(
        &mut result,
        &format!("traces.passed >= {bound}"),
        Some(ratio),
    );
    result
}

#[test]
fn a_sampled_request_without_a_response_fails_the_response_check_saying_why() {
    let mut result = fixture("verify");
    let traces = result
        .verification
        .traces
        .as_mut()
        .expect("traces verified");
    traces.checks = CheckKind::made_by(&bundled_trace_checks(Protocol::Http, true), true);
    traces.complete = traces.sampled - 1;
    traces.passed = traces.sampled - 1;
    traces.unanswered = 1;
    traces.completeness = Some(traces.complete as f64 / traces.sampled as f64);
    traces.failed_checks.insert(CheckKind::Response, 1);
    traces.failing = vec![FailingTrace {
        trace_id: format!("{:032x}", 0xdead),
        kind: "quote".to_owned(),
        outcome: "transport".to_owned(),
        failures: vec![Failure {
            check: CheckKind::Response,
            detail: "the request got no response: connection reset by peer".to_owned(),
        }],
    }];
    let ratio = traces.passed as f64 / traces.sampled as f64;
    set_threshold(&mut result, "traces.complete >= 100%", Some(ratio));
    set_threshold(&mut result, "traces.passed >= 100%", Some(ratio));
    let suite = only_suite(&result);
    let (_, message, description) = non_success(named(&suite, "verify.traces", "response"));
    assert!(message.starts_with("response: 1 of "), "{message}");
    assert!(
        description.contains("transport] response: the request got no response: connection reset"),
        "{description}"
    );
    let (_, _, completeness) = non_success(named(&suite, "verify.traces", "completeness"));
    assert!(
        completeness.contains("1 sampled request(s) got no response"),
        "{completeness}"
    );
    assert_agrees_with_the_gate(&result);
}

#[test]
fn a_passing_run_is_one_suite_without_failures() {
    let result = fixture("smoke");
    let suite = only_suite(&result);
    assert_eq!(suite.name.as_str(), "smoke");
    assert_eq!((suite.tests, suite.failures, suite.errors), (2, 0, 0));
    assert!(passes(named(&suite, "smoke", "run completed")));
    assert!(passes(named(
        &suite,
        "smoke.thresholds",
        "overall: error_rate < 1%"
    )));
    let time = suite.time.expect("time").as_secs_f64();
    assert!((time - result.load.send_duration_s).abs() < 1e-3, "{time}");
    assert!(suite.timestamp.is_some());
    assert_agrees_with_the_gate(&result);
}

#[test]
fn a_failed_threshold_gives_the_measured_value_and_the_bound() {
    let result = fixture("stall");
    let suite = only_suite(&result);
    assert_eq!((suite.failures, suite.errors), (1, 0));
    let case = named(&suite, "stall.thresholds", "overall: p(99) < 100ms");
    let (kind, message, description) = non_success(case);
    assert_eq!(kind, NonSuccessKind::Failure);
    assert_eq!(message, "p(99) = 969.73ms, bound < 100ms");
    assert!(description.contains("[overall]"), "{description}");
    assert_agrees_with_the_gate(&result);
}

#[test]
fn a_threshold_with_nothing_measured_fails_saying_so() {
    let mut result = fixture("smoke");
    set_threshold(&mut result, "error_rate < 1%", None);
    let suite = only_suite(&result);
    let (_, message, description) = non_success(named(
        &suite,
        "smoke.thresholds",
        "overall: error_rate < 1%",
    ));
    assert_eq!(message, "error_rate: no data, bound < 1%");
    assert!(
        description.contains("nothing was measured"),
        "{description}"
    );
    assert_agrees_with_the_gate(&result);
}

#[test]
fn every_trace_check_made_and_every_metrics_check_is_a_passing_testcase() {
    let mut result = fixture("verify");
    let traces = result
        .verification
        .traces
        .as_mut()
        .expect("traces verified");
    traces.checks = CheckKind::made_by(&bundled_trace_checks(Protocol::Http, true), true);
    let checks = traces.checks.clone();
    let suite = only_suite(&result);
    assert_eq!((suite.failures, suite.errors), (0, 0));
    assert!(passes(named(&suite, "verify.traces", "completeness")));
    for check in &checks {
        assert!(passes(named(&suite, "verify.traces", &check.to_string())));
    }
    let metrics = result
        .verification
        .metrics
        .as_ref()
        .expect("metrics verified");
    let checked = metrics
        .sources
        .iter()
        .map(|s| s.checks.len())
        .sum::<usize>();
    let metric_cases: Vec<&TestCase> = suite
        .test_cases
        .iter()
        .filter(|c| c.classname.as_ref().map(|n| n.as_str()) == Some("verify.metrics"))
        .collect();
    assert_eq!(metric_cases.len(), checked);
    // The same series may be checked twice (present, then reconciled): names must stay unique,
    // or a CI system would merge them.
    let mut names: Vec<&str> = metric_cases.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), checked);
    assert!(names.contains(&"api-gateway requests_total"));
    assert!(names.contains(&"api-gateway requests_total (2)"));
    assert!(names.contains(
        &r#"api-gateway http_requests_total{method="POST",path="/api/v1/market-data/fetch",status="400"}"#
    ));
    assert_agrees_with_the_gate(&result);
}

#[test]
fn a_broken_chain_fails_its_check_with_the_failing_trace_ids() {
    let result = broken_chain(3, "100%");
    let suite = only_suite(&result);
    let (kind, message, description) = non_success(named(&suite, "verify.traces", "chain"));
    assert_eq!(kind, NonSuccessKind::Failure);
    assert_eq!(message, "chain: 3 of 66 sampled traces failed, bound 0");
    assert!(
        description.contains("0000000000000000000000000000abc0 [quote HTTP 200] chain: broken at"),
        "{description}"
    );
    let (_, message, _) = non_success(named(&suite, "verify.traces", "completeness"));
    assert_eq!(
        message,
        "completeness = 95.5% (63 of 66 sampled traces complete), bound 100%"
    );
    // The checks that found nothing still pass.
    assert!(passes(named(&suite, "verify.traces", "orphans")));
    assert_agrees_with_the_gate(&result);
}

#[test]
fn trace_failures_the_scenario_tolerates_are_reported_without_failing() {
    let result = broken_chain(3, "90%");
    let suite = only_suite(&result);
    let chain = named(&suite, "verify.traces", "chain");
    assert!(passes(chain), "{chain:?}");
    let out = chain
        .system_out
        .as_ref()
        .expect("the failures are reported");
    assert!(
        out.as_str().contains("3 of 66 sampled traces failed"),
        "{out:?}"
    );
    assert!(
        out.as_str()
            .contains("within the scenario's trace thresholds")
    );
    assert_agrees_with_the_gate(&result);
}

#[test]
fn a_long_list_of_failing_traces_is_cut_short() {
    let result = broken_chain(30, "100%");
    let suite = only_suite(&result);
    let (_, _, description) = non_success(named(&suite, "verify.traces", "chain"));
    assert_eq!(
        description.matches("chain: broken at").count(),
        QUOTED_TRACES
    );
    assert!(description.contains("and 20 more"), "{description}");
}

#[test]
fn a_failed_metrics_check_names_observed_and_expected_and_skips_show_as_skipped() {
    let mut result = fixture("verify");
    let metrics = result
        .verification
        .metrics
        .as_mut()
        .expect("metrics verified");
    metrics.reconciled = false;
    let source = &mut metrics.sources[0];
    source.passed = false;
    let bad = source
        .checks
        .iter_mut()
        .find(|c| c.labels.contains("status=\"400\"") && c.metric == "http_requests_total")
        .expect("the fixture checks the 400s");
    bad.observed = 53.0;
    bad.passed = false;
    let skipped = source
        .checks
        .iter_mut()
        .find(|c| c.labels.contains("quantile"))
        .expect("the fixture compares a quantile");
    skipped.skipped = true;
    skipped.detail = "no request completed in the window".to_owned();
    set_threshold(&mut result, "metrics.reconciled", Some(0.0));
    let suite = only_suite(&result);
    let (_, message, description) = non_success(named(
        &suite,
        "verify.metrics",
        r#"api-gateway http_requests_total{method="POST",path="/api/v1/market-data/fetch",status="400"}"#,
    ));
    assert_eq!(
        message,
        "api-gateway http_requests_total{method=\"POST\",path=\"/api/v1/market-data/fetch\",\
         status=\"400\"}: expected 54 (fetch responses the harness received with status 400), \
         observed 53"
    );
    assert!(description.contains("status 400"), "{description}");
    assert!(
        description.contains("source: direct scrape"),
        "{description}"
    );
    assert_eq!(suite.skipped, 1);
    let quantile = suite
        .test_cases
        .iter()
        .find(|c| matches!(c.status, TestCaseStatus::Skipped { .. }))
        .expect("a skipped case");
    assert!(quantile.name.as_str().contains("quantile"));
    // Threshold metrics.reconciled and the check: two failures.
    assert_eq!(suite.failures, 2);
    assert_agrees_with_the_gate(&result);
}

#[test]
fn an_unreadable_metrics_source_fails_and_sources_get_their_own_class() {
    let mut result = fixture("verify");
    let metrics = result
        .verification
        .metrics
        .as_mut()
        .expect("metrics verified");
    let mut prometheus = metrics.sources[0].clone();
    prometheus.source = "Prometheus at http://127.0.0.1:9 (api-gateway as {job=\"x\"})".to_owned();
    prometheus.error = Some("connection refused".to_owned());
    prometheus.checks.clear();
    prometheus.passed = false;
    metrics.sources.push(prometheus);
    metrics.reconciled = false;
    set_threshold(&mut result, "metrics.reconciled", Some(0.0));
    let suite = only_suite(&result);
    let (_, message, _) = non_success(named(&suite, "verify.metrics.prometheus", "source read"));
    assert_eq!(message, "could not be read: connection refused");
    assert!(passes(named(
        &suite,
        "verify.metrics.scrape",
        "api-gateway requests_total"
    )));
    assert_agrees_with_the_gate(&result);
}

#[test]
fn the_overhead_claim_passes_fails_or_could_not_be_decided() {
    let failed = fixture("overhead-quick");
    let suite = only_suite(&failed);
    let name = "claim: CPU per request rises by less than 1.00%";
    let (kind, message, description) = non_success(named(&suite, "overhead-quick.overhead", name));
    assert_eq!(kind, NonSuccessKind::Failure);
    assert_eq!(
        message,
        "FAIL: CPU per request +18.2% [3.79%, 35.3%], bound < 1.00%"
    );
    assert!(description.contains("8 pairs"), "{description}");
    assert!(
        description.contains("cost +314.8µs [72.2µs, 581.9µs]"),
        "{description}"
    );
    assert_agrees_with_the_gate(&failed);

    let mut passed = failed.clone();
    let overhead = passed.overhead.as_mut().expect("an experiment");
    overhead.verdict = Verdict::Pass;
    overhead.points[0].analysis.verdict = Verdict::Pass;
    assert!(passes(named(
        &only_suite(&passed),
        "overhead-quick.overhead",
        name
    )));
    assert_agrees_with_the_gate(&passed);

    let mut undecided = failed.clone();
    let overhead = undecided.overhead.as_mut().expect("an experiment");
    overhead.verdict = Verdict::Inconclusive;
    overhead.points[0].analysis.verdict = Verdict::Inconclusive;
    let suite = only_suite(&undecided);
    let (kind, message, description) = non_success(named(&suite, "overhead-quick.overhead", name));
    assert_eq!(kind, NonSuccessKind::Failure);
    assert!(message.starts_with("INCONCLUSIVE, could not be decided: CPU per request +18.2%"));
    assert!(message.contains("bound < 1.00%"), "{message}");
    assert!(
        description.contains("more or longer trials"),
        "{description}"
    );
    assert_agrees_with_the_gate(&undecided);

    let overhead = undecided.overhead.as_mut().expect("an experiment");
    overhead.points[0].analysis.cpu = None;
    let suite = only_suite(&undecided);
    let (_, message, _) = non_success(named(&suite, "overhead-quick.overhead", name));
    assert_eq!(
        message,
        "INCONCLUSIVE, could not be decided: CPU per request: too few pairs to estimate (8), \
         bound < 1.00%"
    );
}

#[test]
fn a_run_that_did_not_complete_is_an_error_with_the_reason() {
    for status in [
        RunStatus::Interrupted {
            reason: "interrupted (SIGINT or SIGTERM)".to_owned(),
        },
        RunStatus::Failed {
            reason: "the core engine exited with status 1".to_owned(),
        },
    ] {
        let mut result = fixture("smoke");
        result.status = status;
        let suite = only_suite(&result);
        assert_eq!((suite.errors, suite.failures), (1, 0));
        let (kind, message, _) = non_success(named(&suite, "smoke", "run completed"));
        assert_eq!(kind, NonSuccessKind::Error);
        assert!(
            message.starts_with("the run did not complete: "),
            "{message}"
        );
        assert!(
            message.contains("SIGINT") || message.contains("exited"),
            "{message}"
        );
        assert_agrees_with_the_gate(&result);
    }
}

#[test]
fn an_expected_failure_is_skipped_but_a_broken_run_stays_an_error() {
    let stall = suite(&fixture("stall"));
    let expected = expected_failure(&stall);
    assert_eq!(
        (expected.tests, expected.failures, expected.skipped),
        (2, 0, 1)
    );
    let report = xml_round_trip(&report("release", [expected]));
    let case = named(
        &report.test_suites[0],
        "stall.thresholds",
        "overall: p(99) < 100ms",
    );
    match &case.status {
        TestCaseStatus::Skipped { message, .. } => assert_eq!(
            message.as_ref().map(|m| m.as_str()),
            Some("failed as expected: p(99) = 969.73ms, bound < 100ms")
        ),
        other => panic!("not skipped: {other:?}"),
    }

    let mut interrupted = fixture("stall");
    interrupted.status = RunStatus::Interrupted {
        reason: "interrupted".to_owned(),
    };
    let expected = expected_failure(&suite(&interrupted));
    assert_eq!(expected.errors, 1);
}

#[test]
fn a_sign_off_report_adds_up_its_suites() {
    let suites = [
        suite(&fixture("smoke")),
        suite(&fixture("stall")),
        suite(&fixture("overhead-quick")),
        not_run("baseline", "not run: the sign-off was interrupted"),
    ];
    let time: f64 = suites
        .iter()
        .map(|s| s.time.expect("time").as_secs_f64())
        .sum();
    let report = xml_round_trip(&report("release", suites));
    assert_eq!(report.name.as_ref().map(|n| n.as_str()), Some("release"));
    assert_eq!(report.test_suites.len(), 4);
    // The scenario never run is an error: it makes the sign-off exit 3, so CI must not pass it.
    assert_eq!((report.failures, report.errors, report.skipped), (2, 1, 0));
    let reported = report.time.expect("time").as_secs_f64();
    assert!((reported - time).abs() < 1e-3, "{reported} against {time}");
    let not_run = &report.test_suites[3];
    assert_eq!(not_run.name.as_str(), "baseline");
    assert_eq!(not_run.time, Some(std::time::Duration::ZERO));
    match &named(not_run, "baseline", "run completed").status {
        TestCaseStatus::NonSuccess {
            kind: NonSuccessKind::Error,
            message,
            ty,
            ..
        } => {
            assert_eq!(ty.as_ref().map(|t| t.as_str()), Some("not run"));
            assert_eq!(
                message.as_ref().map(|m| m.as_str()),
                Some("not run: the sign-off was interrupted")
            );
        }
        other => panic!("not an error: {other:?}"),
    }
}

#[test]
fn text_from_the_run_is_escaped() {
    let mut result = fixture("smoke");
    result.status = RunStatus::Failed {
        reason: "gateway said <html>&\"bye\"</html>\u{1b}[31m".to_owned(),
    };
    let suite = only_suite(&result);
    let (_, message, _) = non_success(named(&suite, "smoke", "run completed"));
    assert_eq!(
        message,
        "the run did not complete: gateway said <html>&\"bye\"</html>"
    );
}

#[test]
fn stream_trace_checks_are_one_testcase_failing_with_the_first_updates() {
    use crate::result::{FailingUpdate, StreamTraceReport};
    let mut result = fixture("smoke");
    let scenario = result.scenario.name.clone();
    let mut report = StreamTraceReport {
        source: "embedded OTLP receiver".to_owned(),
        kept: 40,
        sampled: 20,
        found: 20,
        passed: 20,
        ..StreamTraceReport::default()
    };
    result.verification.streams = Some(report.clone());
    let classname = format!("{scenario}.streams");
    let suite = only_suite(&result);
    assert!(passes(named(&suite, &classname, "traced end to end")));

    report.passed = 0;
    report.failed_checks.insert("producer".to_owned(), 20);
    report.failing.push(FailingUpdate {
        kind: "sub".to_owned(),
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned(),
        sequence: Some(3),
        failures: vec![("producer".to_owned(), "the span is a root".to_owned())],
    });
    result.verification.streams = Some(report);
    let suite = only_suite(&result);
    let (kind, message, description) = non_success(named(&suite, &classname, "traced end to end"));
    assert_eq!(kind, NonSuccessKind::Failure);
    assert!(
        message.starts_with("0 of 20 sampled updates traced end to end"),
        "{message}"
    );
    assert!(
        description.contains("[sub] producer: the span is a root"),
        "{description}"
    );
}
