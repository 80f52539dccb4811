//! `harness` as users and CI run it: exit codes, result.json, and no process left behind, whether
//! the run passes, fails a threshold, meets bad input, cannot start, or is interrupted.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

mod support;

use support::run::{HARNESS, Run};

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_smoke_scenario_passes_and_writes_its_result() {
    let run = Run::new("smoke");
    let output = run.run(&["run", "scenarios/smoke.yaml"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("scenario smoke: completed"), "{stdout}");

    let result = run.result("smoke");
    assert_eq!(result["schema_version"], 1);
    assert_eq!(result["status"]["state"], "completed");
    assert_eq!(result["load"]["scheduled"], 100);
    assert_eq!(result["load"]["sent"], 100);
    assert_eq!(result["load"]["completed"], 100);
    assert_eq!(result["load"]["unexpected"], 0);
    let kinds = result["kinds"].as_array().expect("kinds");
    assert_eq!(kinds.len(), 2);
    for kind in kinds {
        let histogram = kind["latency_histogram"].as_str().expect("histogram");
        let decoded = harness::result::decode_histogram(histogram).expect("decodes");
        assert_eq!(decoded.len(), kind["completed"].as_u64().expect("count"));
    }
    assert_eq!(result["thresholds"][0]["passed"], true);
    assert!(Path::new(&run.out).join("smoke/engine.log").exists());
    run.assert_no_leftovers();
}

#[test]
fn stored_results_and_suites_that_are_devices_are_refused_at_once() {
    // Read unbounded, /dev/zero would fill memory; a FIFO would block forever.
    for args in [
        &["report", "/dev/zero"][..],
        &["compare", "/dev/zero", "/dev/zero"],
        &["signoff", "/dev/zero"],
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
            .args(args)
            .output()
            .expect("harness runs");
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {text}");
        assert!(
            text.contains("/dev/zero") && text.contains("not a regular file"),
            "{args:?}: {text}"
        );
    }
}

#[test]
fn a_failed_threshold_exits_1() {
    let run = Run::new("threshold");
    let output = run.run(&[
        "run",
        "scenarios/smoke.yaml",
        "--set",
        "thresholds.0=p(99) < 1us",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let result = run.result("smoke");
    assert_eq!(result["thresholds"][0]["expression"], "p(99) < 1us");
    assert_eq!(result["thresholds"][0]["passed"], false);
    run.assert_no_leftovers();
}

#[test]
fn bad_input_exits_2_naming_the_place() {
    let run = Run::new("bad-input");
    let output = run.run(&[
        "run",
        "scenarios/smoke.yaml",
        "--set",
        "load.phases.0.constant.rate=-5",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("load.phases[0].constant.rate: expected a number > 0, got -5"),
        "{}",
        stderr(&output)
    );
    let output = run.run(&[
        "run",
        "scenarios/smoke.yaml",
        "--set",
        "thresholds.0=p99 < 5ms",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("thresholds[0]"),
        "{}",
        stderr(&output)
    );
    let output = Command::new(HARNESS)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["validate", "scenarios/smoke.yaml", "Cargo.toml"])
        .output()
        .expect("harness runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).starts_with("Cargo.toml:"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_service_that_will_not_start_exits_3_with_a_result() {
    let run = Run::new("no-start");
    let output = run.run(&[
        "run",
        "scenarios/smoke.yaml",
        "--set",
        "system.managed.engine.args.0=--no-such-flag",
    ]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("core engine exited before it was ready"),
        "{}",
        stderr(&output)
    );
    let result = run.result("smoke");
    assert_eq!(result["status"]["state"], "failed");
    run.assert_no_leftovers();
}

#[test]
fn an_unreachable_target_exits_3() {
    let run = Run::new("unreachable");
    let output = run.run(&[
        "run",
        "scenarios/smoke.yaml",
        "--gateway",
        "http://127.0.0.1:9",
    ]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("cannot reach http://127.0.0.1:9"),
        "{}",
        stderr(&output)
    );
    assert_eq!(run.result("smoke")["status"]["state"], "failed");
}

#[test]
fn sigint_stops_the_run_keeps_the_measurements_and_leaves_nothing_behind() {
    let run = Run::new("sigint");
    // Interrupted at the measured phase's second progress line.
    let code = run.interrupt_after(
        &[
            "run",
            "scenarios/smoke.yaml",
            "--set",
            "load.phases.0.constant.duration=60s",
        ],
        "[phase 1",
        2,
    );
    assert_eq!(code, Some(3));
    let result = run.result("smoke");
    assert_eq!(result["status"]["state"], "interrupted");
    let sent = result["load"]["sent"].as_u64().expect("sent");
    assert!(sent > 50 && sent < 3_000, "{sent}");
    assert_eq!(
        result["load"]["completed"], sent,
        "in-flight requests were waited for"
    );
    run.assert_no_leftovers();
}

/// The highest rate a scenario may ask for, the gateway's tracing off: far more than one harness
/// sends.
const FLOOD: [&str; 6] = [
    "--set",
    "load.warmup=0s",
    "--set",
    "load.phases.0.constant.rate=1000000",
    "--set",
    "system.managed.tracing=false",
];

#[test]
fn a_rate_beyond_the_harness_ends_with_its_schedule() {
    let run = Run::new("flood");
    let mut args = vec![
        "run",
        "scenarios/smoke.yaml",
        "--set",
        "load.phases.0.constant.duration=1s",
    ];
    args.extend(FLOOD);
    let output = run.run(&args);
    // The error rate threshold may fail under such a flood; the run must end either way.
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        stderr(&output)
    );
    let result = run.result("smoke");
    assert_eq!(result["status"]["state"], "completed");
    let sending = result["load"]["send_duration_s"].as_f64().expect("seconds");
    assert!(sending < 1.5, "sent for {sending} s in a 1 s phase");
    run.assert_no_leftovers();
}

#[test]
fn sigterm_at_a_rate_beyond_the_harness_is_honoured_within_a_second() {
    let run = Run::new("flood-sigterm");
    let mut args = vec![
        "run",
        "scenarios/smoke.yaml",
        "--set",
        "load.phases.0.constant.duration=60s",
    ];
    args.extend(FLOOD);
    let (code, took) = run.signal_after(&args, "[phase 1", 1, nix::sys::signal::Signal::SIGTERM);
    assert_eq!(code, Some(3));
    assert!(
        took < std::time::Duration::from_secs(1),
        "exited {took:?} after SIGTERM"
    );
    let result = run.result("smoke");
    assert_eq!(result["status"]["state"], "interrupted");
    assert!(result["load"]["sent"].as_u64().expect("sent") > 0);
    run.assert_no_leftovers();
}

#[test]
fn an_unwritable_output_is_found_before_the_load() {
    let run = Run::new("unwritable");
    std::fs::create_dir_all(&run.out).expect("output directory");
    // A path under a regular file: not writable whoever runs the test.
    let blocker = run.out.join("plain-file");
    std::fs::write(&blocker, "").expect("written");
    let junit = blocker.join("junit.xml");
    let output = run.run(&[
        "run",
        "scenarios/smoke.yaml",
        "--junit",
        &junit.display().to_string(),
    ]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let stderr = stderr(&output);
    assert!(
        stderr.contains(&format!("--junit {} cannot be written", junit.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{} is not a directory", blocker.display())),
        "{stderr}"
    );
    // Nothing was started or measured.
    assert!(!run.out.join("smoke").join("engine.log").exists());
    assert!(!run.out.join("smoke").join("result.json").exists());
    run.assert_no_leftovers();
}

#[test]
fn a_service_that_crashes_mid_run_ends_the_load_and_the_trace_wait_at_once() {
    let run = Run::new("crash");
    let started = std::time::Instant::now();
    // Without noticing the crash, the load would go on for a minute and the trace checks would
    // wait another minute for traces the engine can no longer send.
    let output = run.run(&[
        "run",
        "scenarios/verify.yaml",
        "--set",
        "system.managed.engine.args.0=--fault-crash-after=3s",
        "--set",
        "load.phases.0.constant.duration=60s",
        "--set",
        "verify.traces.timeout=60s",
    ]);
    let took = started.elapsed();
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let result = run.result("verify");
    assert_eq!(
        result["status"]["state"], "failed",
        "{:#}",
        result["status"]
    );
    let reason = result["status"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("the core engine exited during the run"),
        "{reason}"
    );
    let sending = result["load"]["send_duration_s"].as_f64().expect("seconds");
    assert!(sending < 4.0, "sent for {sending} s after a crash at 3 s");
    assert!(
        took < std::time::Duration::from_secs(20),
        "the run took {took:?}"
    );
    run.assert_no_leftovers();
}

#[test]
fn sigint_while_traces_are_awaited_interrupts_and_keeps_what_was_verified() {
    let run = Run::new("sigint-verify");
    // The gateway drops the trace context: no sampled trace completes, so the verifier would wait
    // its whole timeout for each.
    let code = run.interrupt_after(
        &[
            "run",
            "scenarios/verify.yaml",
            "--set",
            "system.managed.gateway.args.0=--calibration-drop-trace-context",
            "--set",
            "verify.traces.timeout=60s",
        ],
        "verifying:",
        1,
    );
    assert_eq!(code, Some(3), "interrupted, not failed");
    let result = run.result("verify");
    assert_eq!(
        result["status"]["state"], "interrupted",
        "{:#}",
        result["status"]
    );
    let traces = &result["verification"]["traces"];
    assert!(traces["sampled"].as_u64() > Some(0), "{traces:#}");
    run.assert_no_leftovers();
}

/// Latency percentile from result.json, in µs.
fn percentile(result: &Value, series: &str, p: &str) -> u64 {
    result["load"][series][p]
        .as_u64()
        .unwrap_or_else(|| panic!("load.{series}.{p} in {result}"))
}

#[test]
fn a_stall_shows_in_intended_time_latency_and_its_absence_does_not() {
    // The engine holds every request for 1 s in every 3 s; 100 requests/s for 6 s.
    let run = Run::new("stall");
    let output = run.run(&[
        "run",
        "scenarios/stall.yaml",
        "--set",
        "system.managed.engine.args.1=3s",
        "--set",
        "load.warmup=0s",
        "--set",
        "load.phases.0.constant.duration=6s",
    ]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "the stall fails p(99) < 100ms: {}",
        stderr(&output)
    );
    let stalled = run.result("stall");
    assert_eq!(stalled["load"]["dropped"], 0);
    // A third of the requests arrive during a stall and wait up to a second.
    assert!(
        percentile(&stalled, "latency", "p99") >= 500_000,
        "{}",
        stalled["load"]
    );
    assert!(
        percentile(&stalled, "latency", "p50") < 100_000,
        "{}",
        stalled["load"]
    );

    // The same load without the stall: nothing near it in the tail.
    let calm = Run::new("calm");
    let output = calm.run(&[
        "run",
        "scenarios/smoke.yaml",
        "--set",
        "load.warmup=0s",
        "--set",
        "load.phases.0.constant.rate=100",
        "--set",
        "load.phases.0.constant.duration=6s",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let result = calm.result("smoke");
    assert!(
        percentile(&result, "latency", "p99") < 200_000,
        "{}",
        result["load"]
    );
}

#[test]
fn grpc_straight_to_the_engine_counts_codes() {
    let run = Run::new("grpc");
    let output = run.run(&[
        "run",
        "scenarios/grpc-direct.yaml",
        "--set",
        "load.warmup=0s",
        "--set",
        "load.phases.0.constant.rate=200",
        "--set",
        "load.phases.0.constant.duration=2s",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let result = run.result("grpc-direct");
    assert_eq!(result["load"]["sent"], 400);
    assert_eq!(result["load"]["unexpected"], 0);
    let kinds = result["kinds"].as_array().expect("kinds");
    let outcomes = |name: &str| {
        kinds
            .iter()
            .find(|k| k["name"] == name)
            .map(|k| k["outcomes"].clone())
            .expect("kind")
    };
    let ok = outcomes("quote")["OK"].as_u64().expect("OK count");
    let invalid = outcomes("unknown_source")["INVALID_ARGUMENT"]
        .as_u64()
        .expect("INVALID_ARGUMENT count");
    assert_eq!(ok + invalid, 400);
    run.assert_no_leftovers();
}

#[test]
fn threshold_and_sweep_errors_name_the_file_line_and_column() {
    let run = Run::new("positions");
    let thresholds = run.write_scenario(
        "thresholds.yaml",
        &std::fs::read_to_string("scenarios/smoke.yaml")
            .expect("smoke")
            .replace(
                "  - \"error_rate < 1%\"",
                "  - \"error_rate < 1%\"\n  - \"p(99) < 5h\"",
            ),
    );
    let output = Command::new(HARNESS)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["validate", &thresholds])
        .output()
        .expect("harness runs");
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output).trim(),
        format!(
            "{thresholds}:31:5: thresholds[1]: \"p(99) < 5h\": unknown unit \"h\"; expected us, ms, s or m"
        )
    );
    // A value a --set supplies is the --set's.
    let output = run.run(&[
        "run",
        "scenarios/smoke.yaml",
        "--set",
        "thresholds.0=p(99) < 5h",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).starts_with("harness: --set thresholds.0: thresholds[0]: "),
        "{}",
        stderr(&output)
    );
    // A sweep value that makes its point invalid: where the value is written.
    let sweep = run.write_scenario(
        "sweep.yaml",
        &std::fs::read_to_string("scenarios/overhead-quick.yaml")
            .expect("overhead-quick")
            .replace(
                "overhead:\n",
                "overhead:\n  sweep: {set: requests.0.weight, values: [2, 0]}\n",
            ),
    );
    let output = Command::new(HARNESS)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["validate", &sweep])
        .output()
        .expect("harness runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains(": overhead.sweep.values[1]: requests.0.weight=0: requests[0].weight: expected an integer > 0, got 0"),
        "{}",
        stderr(&output)
    );
}
