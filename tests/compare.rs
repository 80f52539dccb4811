//! `harness compare` on real runs: two runs of the same scenario do not regress, a run with an
//! injected engine latency does (and the other way round it is an improvement, not a failure),
//! a run that measured nothing exits 3 rather than passing, and bad input exits 2 naming the file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use harness::load::recorder::new_histogram;
use harness::result::encode_histogram;
use serde_json::Value;

mod support;

use support::run::{HARNESS, Run};

/// One kind, 100 requests/s for 4 s: four seconds of timeline, so that the comparison sees how
/// each run wandered, and about 400 requests, enough for the p50 and p90.
const SCENARIO: &str = "
name: small
system:
  managed:
    tracing: false
    engine: {args: [ENGINE_ARGS]}
load:
  protocol: http
  warmup: 1s
  phases:
    - constant: {rate: 100, duration: 4s}
requests:
  - name: quote
    weight: 1
    body: {symbols: [AAPL], source_id: yahoo_finance, window: 100}
";

/// Two single runs on a shared two-core machine differ by up to about 30% (one process against
/// another, which two results cannot show); the injected 20 ms is seven times the p50.
const TOLERANCE: &str = "100%";

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs the scenario with these engine flags and keeps its result as `OUT/<name>/result.json`.
fn run_as(run: &Run, name: &str, engine_args: &str) -> PathBuf {
    let scenario = run.write_scenario(
        &format!("{name}.yaml"),
        &SCENARIO.replace("ENGINE_ARGS", engine_args),
    );
    let output = run.run(&["run", &scenario]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let kept = run.out.join(name);
    std::fs::rename(run.out.join("small"), &kept).expect("result directory renamed");
    kept.join("result.json")
}

fn compare(base: &Path, new: &Path, extra: &[&str]) -> Output {
    Command::new(HARNESS)
        .arg("compare")
        .args([base, new])
        .args(["--max-regression", TOLERANCE])
        .args(extra)
        .output()
        .expect("harness runs")
}

/// The decision word at the end of a kind's percentile row in the text output.
fn decision<'a>(text: &'a str, percentile: &str) -> &'a str {
    let row = text
        .lines()
        .find(|line| line.trim_start().starts_with(&format!("{percentile} ")))
        .unwrap_or_else(|| panic!("no {percentile} row in {text}"));
    [
        "regression",
        "improvement",
        "unchanged",
        "within noise",
        "not enough data",
    ]
    .into_iter()
    .find(|word| row.contains(word))
    .unwrap_or_else(|| panic!("no decision in {row:?}"))
}

#[test]
fn an_injected_latency_is_a_regression_and_a_rerun_is_not() {
    let run = Run::new("compare");
    let first = run_as(&run, "first", "");
    let second = run_as(&run, "second", "");
    let slow = run_as(&run, "slow", r#""--fault-latency", "20ms""#);
    run.assert_no_leftovers();

    // The same scenario twice.
    let output = compare(&first, &second, &[]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}{}", stderr(&output));
    for percentile in ["p50", "p90", "p99", "p99.9"] {
        assert_ne!(decision(&text, percentile), "regression", "{text}");
    }
    assert!(text.contains("NO REGRESSION"), "{text}");
    assert!(
        text.contains("widened by how the runs wandered second to second"),
        "{text}"
    );
    let html = run.out.join("second/comparison.html");
    assert!(
        text.contains(&format!("report: {}", html.display())),
        "{text}"
    );
    let page = std::fs::read_to_string(&html).expect("the HTML report beside the new result");
    assert!(page.contains("NO REGRESSION"), "{page}");

    // The engine 20 ms slower.
    let html = run.out.join("slower.html");
    let json = run.out.join("slower.json");
    let output = compare(
        &first,
        &slow,
        &[
            "--html",
            &html.display().to_string(),
            "--json",
            &json.display().to_string(),
        ],
    );
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}{}", stderr(&output));
    assert_eq!(decision(&text, "p50"), "regression", "{text}");
    assert!(text.contains("REGRESSION: quote p50"), "{text}");
    let page = std::fs::read_to_string(&html).expect("the HTML report where asked");
    assert!(
        page.contains(r#"<div id="verdict" class="verdict fail">"#),
        "{page}"
    );
    assert!(
        page.contains(r#"<span class="decision regression">regression</span>"#),
        "{page}"
    );
    let comparison: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON where asked"))
            .expect("JSON");
    let p50 = &comparison["kinds"][0]["percentiles"][0];
    assert_eq!(p50["percentile"], "p50");
    assert_eq!(p50["decision"], "regression");
    assert!(
        p50["change"]["low"].as_f64().expect("a change") > 1.0,
        "{p50}"
    );

    // The other way round: faster is not a failure.
    let output = compare(&slow, &first, &["--html", &html.display().to_string()]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}{}", stderr(&output));
    assert_eq!(decision(&text, "p50"), "improvement", "{text}");
    let page = std::fs::read_to_string(&html).expect("rewritten");
    assert!(
        page.contains(r#"<span class="decision improvement">improvement</span>"#),
        "{page}"
    );
}

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/results/smoke.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON")
}

#[test]
fn bad_input_exits_2_naming_the_file() {
    let scratch = Run::new("compare-bad-input");
    std::fs::create_dir_all(&scratch.out).expect("scratch directory");
    let write = |name: &str, text: &str| {
        let path = scratch.out.join(name);
        std::fs::write(&path, text).expect("written");
        path
    };
    let good = write("good.json", &fixture().to_string());
    let refused = |base: &Path, new: &Path, extra: &[&str]| {
        let output = Command::new(HARNESS)
            .arg("compare")
            .args([base, new])
            .args(extra)
            .output()
            .expect("harness runs");
        assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
        stderr(&output)
    };

    // Whole lines: each cause is said once.
    let missing = scratch.out.join("missing.json");
    let message = refused(&good, &missing, &[]);
    assert_eq!(
        message,
        format!(
            "harness: {}: cannot read: No such file or directory (os error 2)\n",
            missing.display()
        )
    );

    let foreign = write(
        "package.json",
        r#"{"name": "left-pad", "version": "1.3.0"}"#,
    );
    let message = refused(&foreign, &good, &[]);
    assert!(
        message.contains(&format!(
            "{}: not a harness result: no schema_version field",
            foreign.display()
        )),
        "{message}"
    );

    let broken = write(
        "broken.json",
        "{\n  \"schema_version\": 1,\n  \"kinds\": [\n}",
    );
    let message = refused(&good, &broken, &[]);
    assert_eq!(
        message,
        format!(
            "harness: {}: not JSON: expected value at line 4 column 1\n",
            broken.display()
        )
    );

    let mut unexpected = fixture();
    unexpected["kinds"][0]["unexpected"] = u64::MAX.into();
    unexpected["kinds"][0]["sent"] = 100.into();
    let unexpected = write("unexpected.json", &unexpected.to_string());
    let message = refused(&unexpected, &unexpected, &[]);
    assert!(
        message.starts_with(&format!(
            "harness: {}: kinds[0] (quote).unexpected: 18446744073709551615 is more than \
             completed",
            unexpected.display()
        )),
        "{message}"
    );

    let mut newer = fixture();
    newer["schema_version"] = 99.into();
    let newer = write("newer.json", &newer.to_string());
    let message = refused(&good, &newer, &[]);
    assert!(
        message.contains(&format!(
            "{}: schema_version 99 is not one this harness reads",
            newer.display()
        )),
        "{message}"
    );

    let mut other = fixture();
    for (i, kind) in other["kinds"]
        .as_array_mut()
        .expect("kinds")
        .iter_mut()
        .enumerate()
    {
        kind["name"] = format!("other_{i}").into();
    }
    let other = write("other.json", &other.to_string());
    let message = refused(&good, &other, &[]);
    assert!(message.contains("no request kind in common"), "{message}");
    assert!(message.contains("has quote, bad_symbol"), "{message}");

    let message = refused(&good, &good, &["--max-regression", "5"]);
    assert!(
        message.contains("write a percentage (e.g. 150%)"),
        "{message}"
    );
    let message = refused(&good, &good, &["--max-regression", "0%"]);
    assert!(message.contains("more than 0%"), "{message}");

    let html = scratch.out.join("no/such/dir/x.html");
    let message = refused(&good, &good, &["--html", &html.display().to_string()]);
    assert_eq!(
        message,
        format!(
            "harness: writing {}: No such file or directory (os error 2)\n",
            html.display()
        )
    );
}

#[test]
fn a_run_that_measured_nothing_exits_3() {
    let scratch = Run::new("compare-nothing");
    std::fs::create_dir_all(&scratch.out).expect("scratch directory");
    let good = scratch.out.join("good.json");
    std::fs::write(&good, fixture().to_string()).expect("written");

    // Interrupted before a single request: no counts, empty histograms, no timeline.
    let mut empty = fixture();
    empty["status"] = serde_json::json!({
        "state": "interrupted",
        "reason": "interrupted (SIGINT or SIGTERM)",
    });
    empty["timeline"] = serde_json::json!([]);
    for field in ["sent", "completed", "unexpected", "dropped"] {
        empty["load"][field] = 0.into();
    }
    empty["load"]["achieved_rate"] = 0.0.into();
    let nothing = encode_histogram(&new_histogram());
    for kind in empty["kinds"].as_array_mut().expect("kinds") {
        for field in ["sent", "completed", "unexpected", "dropped"] {
            kind[field] = 0.into();
        }
        kind["outcomes"] = serde_json::json!({});
        kind["latency_histogram"] = nothing.clone().into();
        kind["service_time_histogram"] = nothing.clone().into();
    }
    let dir = scratch.out.join("empty");
    std::fs::create_dir_all(&dir).expect("result directory");
    let empty_path = dir.join("result.json");
    std::fs::write(&empty_path, empty.to_string()).expect("written");

    let output = Command::new(HARNESS)
        .arg("compare")
        .args([&good, &empty_path])
        .output()
        .expect("harness runs");
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(3), "{text}{}", stderr(&output));
    assert!(
        text.lines().any(|line| line
            == "WARNING: the new run did not complete (interrupted (SIGINT or SIGTERM)): it \
                measured only part of its load"),
        "{text}"
    );
    assert_eq!(
        text.lines().rev().nth(1),
        Some(
            "COULD NOT JUDGE: too few requests in the base run (bad_symbol 13 completed) and the \
             new run (quote 0, bad_symbol 0 completed): a percentile needs at least 20 completed \
             requests of its kind in each run"
        ),
        "{text}"
    );
    let page =
        std::fs::read_to_string(dir.join("comparison.html")).expect("the report all the same");
    assert!(
        page.contains(r#"<div id="verdict" class="verdict inconclusive">"#),
        "{page}"
    );
}
