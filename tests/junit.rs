//! `harness run --junit FILE` as CI uses it: the file is written beside result.json, and a failed
//! threshold shows as a failing testcase that names it, with what was measured and the bound.

mod support;

use quick_junit::{NonSuccessKind, Report, TestCaseStatus};
use support::run::Run;

#[test]
fn a_failing_run_writes_junit_naming_the_threshold() {
    let run = Run::new("junit");
    let junit = run.out.join("ci/junit.xml");
    let output = run.run(&[
        "run",
        "scenarios/smoke.yaml",
        "--set",
        "thresholds.0=p(50) < 1us",
        "--junit",
        &junit.display().to_string(),
    ]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let xml = std::fs::read_to_string(&junit).expect("the JUnit file is written");
    let report = Report::deserialize_from_str(&xml).expect("the JUnit file parses");
    assert_eq!((report.tests, report.failures, report.errors), (2, 1, 0));
    let suite = &report.test_suites[0];
    assert_eq!(suite.name.as_str(), "smoke");
    let failing: Vec<_> = suite
        .test_cases
        .iter()
        .filter_map(|case| match &case.status {
            TestCaseStatus::NonSuccess {
                kind: NonSuccessKind::Failure,
                message,
                ..
            } => Some((case.name.as_str(), message.as_ref().map(|m| m.as_str()))),
            _ => None,
        })
        .collect();
    assert_eq!(failing.len(), 1, "{xml}");
    let (name, message) = failing[0];
    assert_eq!(name, "overall: p(50) < 1us");
    let message = message.expect("a failure message");
    assert!(
        message.starts_with("p(50) = ") && message.ends_with(", bound < 1us"),
        "{message}"
    );
    run.assert_no_leftovers();
}

#[test]
fn a_clean_verified_run_lists_every_check_made_and_fails_none() {
    let run = Run::new("junit-verify");
    let junit = run.out.join("junit.xml");
    let output = run.run(&[
        "run",
        "scenarios/verify.yaml",
        "--junit",
        &junit.display().to_string(),
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let xml = std::fs::read_to_string(&junit).expect("the JUnit file is written");
    let report = Report::deserialize_from_str(&xml).expect("the JUnit file parses");
    assert_eq!((report.failures, report.errors), (0, 0), "{xml}");
    let suite = &report.test_suites[0];
    let in_class = |class: &str| -> Vec<&str> {
        suite
            .test_cases
            .iter()
            .filter(|c| c.classname.as_ref().map(|n| n.as_str()) == Some(class))
            .map(|c| c.name.as_str())
            .collect()
    };
    // The bundled services through the gateway, managed: every check is made, logs included.
    assert_eq!(
        in_class("verify.traces"),
        [
            "completeness",
            "response",
            "response_header",
            "exists",
            "services",
            "chain",
            "orphans",
            "attributes",
            "error_status",
            "logs"
        ]
    );
    let result = run.result("verify");
    let checks = |source: usize| {
        result["verification"]["metrics"]["sources"][source]["checks"]
            .as_array()
            .expect("metrics checks")
            .len()
    };
    assert_eq!(in_class("verify.metrics").len(), checks(0));
    // The span accounting, a class of its own.
    assert_eq!(in_class("verify.spans").len(), checks(1));
    assert!(checks(1) >= 10, "{:#}", result["verification"]["metrics"]);
    run.assert_no_leftovers();
}
