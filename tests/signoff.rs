//! `harness signoff SUITE.yaml` end to end: real runs of short scenarios against the bundled
//! services, one suite per test in its scratch directory. What is checked is what a release
//! manager and CI see: the exit code, signoff.json, signoff.html and the JUnit file.

mod support;

use std::process::{Command, Output, Stdio};

use quick_junit::{NonSuccessKind, Report, TestCaseStatus};
use serde_json::Value;
use support::run::{HARNESS, Run};

/// A one-second scenario through the bundled gateway; `threshold` decides whether it passes.
fn scenario(name: &str, threshold: &str) -> String {
    format!(
        r#"name: {name}
description: a short run for the sign-off tests
system:
  managed:
    tracing: true
load:
  protocol: http
  warmup: 0s
  phases:
    - constant: {{rate: 20, duration: 1s}}
requests:
  - name: quote
    weight: 1
    body: {{symbols: [AAPL], source_id: yahoo_finance, window: 100}}
thresholds:
  - "{threshold}"
"#
    )
}

const PASSES: &str = "error_rate < 1%";
/// No request is answered within a microsecond.
const FAILS: &str = "p(50) < 1us";

/// Writes the suite `release` with `entries` (`- path: ...` lines) and runs `harness signoff` on it.
fn signoff(run: &Run, entries: &str) -> Output {
    let suite = run.write_scenario(
        "release.yaml",
        &format!("name: release\nscenarios:\n{entries}"),
    );
    command(run, &suite).output().expect("harness runs")
}

fn command(run: &Run, suite: &str) -> Command {
    let mut command = Command::new(HARNESS);
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["signoff", suite, "--out"])
        .arg(&run.out)
        .arg("--junit")
        .arg(run.out.join("junit.xml"))
        .env("HARNESS_TEST_MARKER", &run.marker)
        .stdin(Stdio::null());
    command
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn read_record(run: &Run) -> Value {
    let path = run.out.join("release/signoff.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("signoff.json is JSON")
}

/// signoff.html with `&#x2f;`, the escaped `/` of every link, read back as `/`; other entities
/// stay as written.
fn page(run: &Run) -> String {
    let path = run.out.join("release/signoff.html");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .replace("&#x2f;", "/")
}

fn row<'h>(html: &'h str, scenario: &str) -> &'h str {
    let start = html
        .find(&format!("<tr id=\"scenario-{scenario}\""))
        .unwrap_or_else(|| panic!("no row for {scenario} in {html}"));
    let end = html[start..].find("</tr>").expect("the row ends") + start;
    &html[start..end]
}

/// The link a row must carry: the scenario's HTML report when the run wrote one, else its result.
fn expected_link(run: &Run, scenario: &str) -> String {
    let report = format!("{scenario}/report.html");
    if run.out.join("release").join(&report).is_file() {
        report
    } else {
        format!("{scenario}/result.json")
    }
}

fn read_junit(run: &Run) -> Report {
    let xml = std::fs::read_to_string(run.out.join("junit.xml")).expect("the JUnit file");
    Report::deserialize_from_str(&xml).expect("the JUnit file parses")
}

/// `(scenario verdict, signed off, exit code)` of each scenario, in order.
fn rows(record: &Value) -> Vec<(String, bool, Option<u64>)> {
    record["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .map(|s| {
            (
                s["verdict"].as_str().expect("verdict").to_owned(),
                s["signed_off"].as_bool().expect("signed_off"),
                s["exit_code"].as_u64(),
            )
        })
        .collect()
}

#[test]
fn two_passing_scenarios_sign_off_with_a_link_to_each() {
    let run = Run::new("signoff-pass");
    run.write_scenario("a.yaml", &scenario("a", PASSES));
    run.write_scenario("b.yaml", &scenario("b", PASSES));
    let output = signoff(&run, "  - path: a.yaml\n  - path: b.yaml\n");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    let record = read_record(&run);
    assert_eq!(record["verdict"], "PASS");
    assert_eq!(record["exit_code"], 0);
    assert_eq!(
        rows(&record),
        [
            ("PASS".into(), true, Some(0)),
            ("PASS".into(), true, Some(0))
        ]
    );
    let html = page(&run);
    assert!(
        html.contains("<div id=\"verdict\" class=\"verdict pass\">"),
        "{html}"
    );
    for scenario in ["a", "b"] {
        assert!(
            run.out
                .join("release")
                .join(scenario)
                .join("result.json")
                .is_file()
        );
        let link = format!("href=\"{}\"", expected_link(&run, scenario));
        assert!(row(&html, scenario).contains(&link), "{link} in {html}");
    }
    let junit = read_junit(&run);
    assert_eq!(
        (junit.test_suites.len(), junit.failures, junit.errors),
        (2, 0, 0)
    );
    run.assert_no_leftovers();
}

#[test]
fn a_failing_scenario_fails_the_sign_off_and_its_row_says_why() {
    let run = Run::new("signoff-fail");
    run.write_scenario("a.yaml", &scenario("a", PASSES));
    run.write_scenario("b.yaml", &scenario("b", FAILS));
    let output = signoff(&run, "  - path: a.yaml\n  - path: b.yaml\n");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("sign-off release: FAIL (exit 1)"),
        "{stdout}"
    );
    assert!(stdout.contains("✗ b  FAIL"), "{stdout}");

    let record = read_record(&run);
    assert_eq!(record["verdict"], "FAIL");
    assert_eq!(
        rows(&record),
        [
            ("PASS".into(), true, Some(0)),
            ("FAIL".into(), false, Some(1))
        ]
    );
    let html = page(&run);
    assert!(html.contains("class=\"verdict fail\""));
    let failing = row(&html, "b");
    assert!(failing.contains("class=\"not-signed-off\""), "{failing}");
    assert!(failing.contains("p(50) &lt; 1us"), "{failing}");
    let junit = read_junit(&run);
    assert_eq!(junit.failures, 1);
    run.assert_no_leftovers();
}

#[test]
fn an_expected_failure_signs_off_only_if_it_fails() {
    let run = Run::new("signoff-expected");
    run.write_scenario("caught.yaml", &scenario("caught", FAILS));
    let output = signoff(&run, "  - path: caught.yaml\n    expect: fail\n");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let record = read_record(&run);
    assert_eq!(record["verdict"], "PASS");
    assert_eq!(record["scenarios"][0]["verdict"], "FAIL");
    assert_eq!(record["scenarios"][0]["note"], "failed as expected");
    assert!(row(&page(&run), "caught").contains("failed as expected"));
    // CI sees the expected failure as skipped, not failed.
    let junit = read_junit(&run);
    assert_eq!((junit.failures, junit.skipped), (0, 1));

    run.write_scenario("missed.yaml", &scenario("missed", PASSES));
    let output = signoff(&run, "  - path: missed.yaml\n    expect: fail\n");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let record = read_record(&run);
    assert_eq!(record["verdict"], "FAIL");
    assert_eq!(
        record["scenarios"][0]["note"],
        "expected to fail but passed"
    );
    assert!(row(&page(&run), "missed").contains("expected to fail but passed"));
    let junit = read_junit(&run);
    let suite = &junit.test_suites[0];
    let failed: Vec<&str> = suite
        .test_cases
        .iter()
        .filter(|c| matches!(c.status, TestCaseStatus::NonSuccess { .. }))
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(failed, ["expected to fail"]);
    run.assert_no_leftovers();
}

#[test]
fn an_unreachable_system_makes_the_sign_off_incomplete_over_a_failure() {
    let run = Run::new("signoff-unreachable");
    // A loopback port that was just free: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let unreachable = scenario("unreachable", PASSES).replace(
        "system:\n  managed:\n    tracing: true\n",
        &format!("system:\n  external:\n    gateway: http://127.0.0.1:{port}\n"),
    );
    run.write_scenario("unreachable.yaml", &unreachable);
    run.write_scenario("b.yaml", &scenario("b", FAILS));
    let output = signoff(&run, "  - path: b.yaml\n  - path: unreachable.yaml\n");
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let record = read_record(&run);
    assert_eq!(record["verdict"], "INCOMPLETE");
    assert_eq!(record["exit_code"], 3);
    assert_eq!(
        rows(&record),
        [
            ("FAIL".into(), false, Some(1)),
            ("INCOMPLETE".into(), false, Some(3))
        ]
    );
    let note = record["scenarios"][1]["note"].as_str().expect("a reason");
    assert!(note.contains(&format!("127.0.0.1:{port}")), "{note}");
    assert!(page(&run).contains("class=\"verdict incomplete\""));
    let junit = read_junit(&run);
    assert_eq!((junit.failures, junit.errors), (1, 1));
    run.assert_no_leftovers();
}

#[test]
fn a_bad_scenario_stops_the_sign_off_before_anything_runs() {
    let run = Run::new("signoff-bad");
    run.write_scenario("a.yaml", &scenario("a", PASSES));
    run.write_scenario("bad.yaml", &scenario("bad", "p99 < 5ms"));
    let output = signoff(
        &run,
        "  - path: a.yaml\n  - path: bad.yaml\n  - path: missing.yaml\n",
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let stderr = stderr(&output);
    // Each problem under the suite line that names the scenario, all of them at once.
    assert!(
        stderr.contains("release.yaml:4:11: scenarios[1].path: "),
        "{stderr}"
    );
    assert!(stderr.contains("bad.yaml"), "{stderr}");
    assert!(stderr.contains("unknown metric \"p99\""), "{stderr}");
    assert!(
        stderr.contains("release.yaml:5:11: scenarios[2].path: "),
        "{stderr}"
    );
    assert!(stderr.contains("missing.yaml"), "{stderr}");
    assert!(!run.out.join("release").exists(), "nothing ran");
    assert!(!run.out.join("junit.xml").exists());
    // `harness validate` checks a suite the same way.
    let validated = Command::new(HARNESS)
        .args(["validate"])
        .arg(run.out.join("release.yaml"))
        .output()
        .expect("harness runs");
    assert_eq!(validated.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&validated.stderr),
        stderr.replacen("harness: ", "", 1)
    );

    // Two scenarios of one name would write over each other's results.
    let output = signoff(&run, "  - path: a.yaml\n  - path: ./a.yaml\n");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(
            "release.yaml:4:11: scenarios[1].path: scenario \"a\" has the name of scenarios[0]"
        ),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let output = signoff(&run, "  - path: a.yaml\n    expect: sometimes\n");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("release.yaml:4:13: unknown variant `sometimes`, expected one of pass, fail"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn sigint_stops_the_scenario_running_and_leaves_the_rest_not_run() {
    let run = Run::new("signoff-sigint");
    run.write_scenario(
        "long.yaml",
        &scenario("long", PASSES).replace("duration: 1s", "duration: 60s"),
    );
    run.write_scenario("b.yaml", &scenario("b", PASSES));
    let suite = run.write_scenario(
        "release.yaml",
        "name: release\nscenarios:\n  - path: long.yaml\n  - path: b.yaml\n",
    );
    let code = run.interrupt_after(
        &[
            "signoff",
            &suite,
            "--junit",
            &run.out.join("junit.xml").display().to_string(),
        ],
        "[phase 1",
        1,
    );
    assert_eq!(code, Some(3));
    let record = read_record(&run);
    assert_eq!(record["verdict"], "INCOMPLETE");
    assert_eq!(
        rows(&record),
        [
            ("INCOMPLETE".into(), false, Some(3)),
            ("NOT_RUN".into(), false, None)
        ]
    );
    assert!(row(&page(&run), "b").contains("NOT RUN"));
    assert!(!run.out.join("release/b").exists(), "b never ran");
    // Exit 3 must be red in CI too: the interrupted run and the one never run are both errors.
    let junit = read_junit(&run);
    assert!(junit.errors > 0, "exit 3 with no error in the JUnit file");
    assert_eq!((junit.errors, junit.skipped), (2, 0));
    let never_ran = &junit.test_suites[1];
    assert_eq!(never_ran.name.as_str(), "b");
    match &never_ran.test_cases[0].status {
        TestCaseStatus::NonSuccess {
            kind: NonSuccessKind::Error,
            ty,
            message,
            ..
        } => {
            assert_eq!(ty.as_ref().map(|t| t.as_str()), Some("not run"));
            assert_eq!(
                message.as_ref().map(|m| m.as_str()),
                Some("not run: the sign-off was interrupted")
            );
        }
        other => panic!("b is not an error: {other:?}"),
    }
    run.assert_no_leftovers();
}
