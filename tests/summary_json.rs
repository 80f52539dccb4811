//! `harness run --summary-json`: the machine-readable summary as CI reads it, on stdout or in a
//! file, for a run that passes, fails a threshold, cannot start or is interrupted.

use std::process::Output;

use serde_json::Value;

mod support;

use support::run::Run;

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn read_json(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}: {text}", path.display()))
}

#[test]
fn on_stdout_it_is_the_only_thing_there_and_agrees_with_the_run() {
    let run = Run::new("summary-stdout");
    let output = run.run(&[
        "run",
        "scenarios/smoke.yaml",
        "--summary-json",
        "-",
        // A latency bound without a unit, as k6 takes it: milliseconds.
        "--set",
        "thresholds.1=p(95)<2000",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary: Value = serde_json::from_str(&stdout).expect("stdout is one JSON document");
    // The human summary went to stderr instead.
    assert!(stderr(&output).contains("scenario smoke: completed"));
    assert!(stderr(&output).contains("p95"));

    assert_eq!(summary["schema_version"], 1);
    assert_eq!(
        (
            &summary["verdict"],
            &summary["exit_code"],
            &summary["scenario"]
        ),
        (
            &Value::from("passed"),
            &Value::from(0),
            &Value::from("smoke")
        )
    );
    let result = run.result("smoke");
    assert_eq!(summary["requests"]["sent"], result["load"]["sent"]);
    assert_eq!(summary["requests"]["sent"], 100);
    // The smoke's rejected kind expects its 400: every request is ok.
    assert_eq!(summary["requests"]["ok"], 100);
    assert_eq!(summary["requests"]["errors"], 0);
    let p95_us = result["load"]["latency"]["p95"]
        .as_u64()
        .expect("p95 in result.json");
    assert_eq!(summary["latency_ms"]["p95"], p95_us as f64 / 1e3);
    let p90 = summary["latency_ms"]["p90"].as_f64().expect("p90");
    let p99 = summary["latency_ms"]["p99"].as_f64().expect("p99");
    let p95 = p95_us as f64 / 1e3;
    assert!(p90 <= p95 && p95 <= p99, "{}", summary["latency_ms"]);
    assert_eq!(summary["kinds"].as_array().map(Vec::len), Some(2));
    assert!(
        result["timeline"][1]["p95_us"].is_u64(),
        "{}",
        result["timeline"]
    );

    let threshold = &summary["thresholds"][1];
    assert_eq!(threshold["expression"], "p(95) < 2000ms");
    assert_eq!(
        (&threshold["unit"], &threshold["bound"]),
        (&Value::from("ms"), &Value::from(2000.0))
    );
    assert_eq!(threshold["observed"], summary["latency_ms"]["p95"]);
    assert_eq!(threshold["passed"], true);
    assert_eq!(result["thresholds"][1]["bound"], 2_000_000.0);
    run.assert_no_leftovers();
}

#[test]
fn in_a_file_it_is_written_whole_for_a_failed_run_and_stdout_keeps_the_table() {
    let run = Run::new("summary-failed");
    let file = run.out.join("ci/summary.json");
    let output = run.run(&[
        "run",
        "scenarios/smoke.yaml",
        "--summary-json",
        &file.display().to_string(),
        "--set",
        "thresholds.0=p(99) < 0.001",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("scenario smoke: completed"), "{stdout}");
    assert!(
        stdout.ends_with(&format!("summary: {}\n", file.display())),
        "{stdout}"
    );
    let summary = read_json(&file);
    assert!(!run.out.join("ci/summary.json.partial").exists());
    assert_eq!(
        (&summary["verdict"], &summary["exit_code"]),
        (&Value::from("failed"), &Value::from(1))
    );
    let threshold = &summary["thresholds"][0];
    assert_eq!(threshold["expression"], "p(99) < 0.001ms");
    assert_eq!(threshold["passed"], false);
    assert!(threshold["observed"].as_f64().expect("observed") > 0.001);
}

#[test]
fn a_run_that_cannot_start_leaves_an_incomplete_summary() {
    let run = Run::new("summary-no-start");
    let file = run.out.join("summary.json");
    let output = run.run(&[
        "run",
        "scenarios/smoke.yaml",
        "--summary-json",
        &file.display().to_string(),
        "--set",
        "system.managed.engine.args.0=--no-such-flag",
    ]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let summary = read_json(&file);
    assert_eq!(
        (&summary["verdict"], &summary["exit_code"]),
        (&Value::from("incomplete"), &Value::from(3))
    );
    assert_eq!(summary["status"], "failed");
    let reason = summary["reason"].as_str().expect("a reason");
    assert!(
        reason.contains("core engine exited before it was ready"),
        "{reason}"
    );
    assert_eq!(summary["requests"]["sent"], 0);
    run.assert_no_leftovers();
}

#[test]
fn an_interrupted_run_leaves_what_it_measured() {
    let run = Run::new("summary-sigint");
    let file = run.out.join("summary.json");
    let code = run.interrupt_after(
        &[
            "run",
            "scenarios/smoke.yaml",
            "--set",
            "load.phases.0.constant.duration=60s",
            "--summary-json",
            &file.display().to_string(),
        ],
        "[phase 1",
        2,
    );
    assert_eq!(code, Some(3));
    let summary = read_json(&file);
    assert_eq!(
        (&summary["verdict"], &summary["status"]),
        (&Value::from("incomplete"), &Value::from("interrupted"))
    );
    let sent = summary["requests"]["sent"].as_u64().expect("sent");
    assert!(sent > 50, "{summary}");
    assert!(summary["latency_ms"]["p95"].is_f64(), "{summary}");
    run.assert_no_leftovers();
}
