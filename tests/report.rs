//! The HTML report end to end: `harness run` writes it beside every result.json, and
//! `harness report` renders a stored result again or refuses bad input with exit 2, naming the
//! file and what is wrong with it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

mod support;

use support::run::{HARNESS, Run};
use support::scratch::Scratch;

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/results")
        .join(format!("{name}.json"))
}

fn report(args: &[&Path]) -> Output {
    Command::new(HARNESS)
        .arg("report")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("harness runs")
}

/// Writes the stall sample, changed by `edit`, as `dir/result.json`.
fn edited_result(dir: &Path, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let text = std::fs::read_to_string(fixture("stall")).expect("fixture");
    let mut result: Value = serde_json::from_str(&text).expect("fixture is JSON");
    edit(&mut result);
    let path = dir.join("result.json");
    std::fs::write(&path, serde_json::to_string_pretty(&result).expect("JSON"))
        .expect("write result");
    path
}

#[test]
fn harness_report_renders_a_stored_result_beside_it() {
    let scratch = Scratch::new("report-beside");
    let dir = scratch.path();
    let result = dir.join("result.json");
    std::fs::copy(fixture("stall"), &result).expect("copy fixture");
    let output = report(&[&result]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let written = dir.join("report.html");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains(&written.display().to_string()),
        "names the file it wrote"
    );
    let html = std::fs::read_to_string(&written).expect("report.html");
    assert!(html.contains("id=\"verdict\" class=\"verdict fail\""));
    assert!(html.contains("id=\"spectrum-quote\""));
    assert!(html.contains("<svg class=\"chart\""));

    let elsewhere = dir.join("elsewhere.html");
    let output = report(&[&result, Path::new("--out"), &elsewhere]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(&elsewhere).expect("--out file"),
        html,
        "the same result renders the same page"
    );
}

#[test]
fn bad_input_exits_2_naming_the_file_and_the_problem() {
    let scratch = Scratch::new("report-bad-input");
    let dir = scratch.path();
    let missing = dir.join("missing.json");
    let not_json = dir.join("not-json.json");
    std::fs::write(&not_json, "{\n  \"schema_version\": 1,\n  oops\n}\n").expect("write");
    let cases: Vec<(PathBuf, Vec<&str>)> = vec![
        (missing, vec!["reading ", "missing.json"]),
        (not_json, vec!["not-json.json", "line 3 column 3"]),
    ];
    for (path, wanted) in cases {
        let output = report(&[&path]);
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        for text in wanted {
            assert!(
                stderr(&output).contains(text),
                "{text}: {}",
                stderr(&output)
            );
        }
    }

    let newer = edited_result(dir, |r| r["schema_version"] = 99.into());
    let output = report(&[&newer]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!(
            "{}: schema_version is 99, but this harness reads version 1",
            newer.display()
        )),
        "{}",
        stderr(&output)
    );

    let wrong_type = edited_result(dir, |r| r["load"]["sent"] = "many".into());
    let output = report(&[&wrong_type]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("invalid type: string \"many\"")
            && stderr(&output).contains(" line "),
        "{}",
        stderr(&output)
    );

    let bad_histogram = edited_result(dir, |r| r["kinds"][0]["latency_histogram"] = "%%%".into());
    let output = report(&[&bad_histogram]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!(
            "{}: kinds[0].latency_histogram (kind \"quote\"): histogram is not valid base64",
            bad_histogram.display()
        )),
        "{}",
        stderr(&output)
    );
    assert!(
        !dir.join("report.html").exists(),
        "no report from bad input"
    );
}

#[test]
fn a_report_that_cannot_be_written_exits_3() {
    let scratch = Scratch::new("report-unwritable");
    let dir = scratch.path();
    let out = dir.join("no-such-directory").join("report.html");
    let output = report(&[&fixture("smoke"), Path::new("--out"), &out]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!("writing {}", out.display())),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_run_writes_its_report_beside_the_result() {
    let run = Run::new("report-smoke");
    let output = run.run(&["run", "scenarios/smoke.yaml"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let html = std::fs::read_to_string(run.out.join("smoke/report.html")).expect("report.html");
    assert!(html.contains("id=\"verdict\" class=\"verdict pass\""));
    for id in ["spectrum-quote", "spectrum-bad_symbol", "timeline-latency"] {
        assert!(html.contains(&format!("id=\"{id}\"")), "#{id}");
    }
    run.assert_no_leftovers();
}

#[test]
fn a_run_that_cannot_start_still_writes_its_report() {
    let run = Run::new("report-unreachable");
    let output = run.run(&[
        "run",
        "scenarios/smoke.yaml",
        "--gateway",
        "http://127.0.0.1:9",
    ]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(run.out.join("smoke/result.json").exists());
    let html = std::fs::read_to_string(run.out.join("smoke/report.html")).expect("report.html");
    assert!(html.contains("id=\"verdict\" class=\"verdict fail\""));
    assert!(html.contains("The run failed: cannot reach"), "says why");
}
