//! `--summary-json FILE`: the run's outcome as a small JSON document for scripts and CI, as k6's
//! `--summary-export` gives one. `result.json` holds everything (histograms, timeline, every
//! check); this holds the few numbers a pipeline acts on, under names that stay put: a field is
//! only ever added, and anything else bumps [`SCHEMA_VERSION`]. The schema is in the README
//! ("Read the result").

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::exit::{EXIT_FAILED, EXIT_PASSED};
use crate::result::{Evaluation, Percentiles, RunResult, RunStatus, Unit};

/// Bumped on any change other than an added field.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// The path that means standard output.
pub(crate) const STDOUT: &str = "-";

/// The whole document.
#[derive(Debug, Serialize)]
struct Summary<'a> {
    schema_version: u32,
    scenario: &'a str,
    /// `passed` (exit 0), `failed` (exit 1) or `incomplete` (exit 3: interrupted, or the run or
    /// the system failed); what `exit_code` says, in words.
    verdict: &'static str,
    exit_code: u8,
    /// `completed`, `interrupted` or `failed`.
    status: &'static str,
    /// Why the run did not complete; `null` when it did.
    reason: Option<&'a str>,
    requests: Requests,
    rate: Rate,
    /// Latency from each request's intended send time, over all kinds.
    latency_ms: Latency,
    kinds: Vec<Kind<'a>>,
    thresholds: Vec<Threshold<'a>>,
    /// `null` when the scenario verifies no traces.
    traces: Option<Traces>,
    /// `null` when the scenario checks no metrics.
    metrics: Option<Metrics>,
    /// The overhead experiment's verdict on its claim; `null` for a plain run.
    overhead: Option<Overhead>,
}

#[derive(Debug, Serialize)]
struct Requests {
    sent: u64,
    /// Sent and answered as the kind expects.
    ok: u64,
    /// Sent and not `ok`: unexpected outcomes, timeouts, transport errors, never answered (what
    /// `error_rate` counts).
    errors: u64,
    /// Due while `max_in_flight` requests were outstanding, so never sent.
    dropped: u64,
}

impl Requests {
    fn new(sent: u64, errors: u64, dropped: u64) -> Self {
        Requests {
            sent,
            ok: sent.saturating_sub(errors),
            errors,
            dropped,
        }
    }
}

#[derive(Debug, Serialize)]
struct Rate {
    /// Requests per second the load profile asked for (its mean).
    target: f64,
    /// Requests per second sent, from the first send to the last.
    achieved: f64,
    /// Seconds from the first send to the last.
    duration_s: f64,
}

/// Milliseconds; every field `null` when nothing completed (`p95` also in a result written
/// before it was recorded).
#[derive(Debug, Serialize)]
struct Latency {
    count: u64,
    p50: Option<f64>,
    p90: Option<f64>,
    p95: Option<f64>,
    p99: Option<f64>,
    /// p99.9.
    p999: Option<f64>,
    max: Option<f64>,
}

impl Latency {
    fn of(p: &Percentiles) -> Self {
        let ms = |us: Option<u64>| us.filter(|_| p.count > 0).map(|us| us as f64 / 1e3);
        Latency {
            count: p.count,
            p50: ms(Some(p.p50)),
            p90: ms(Some(p.p90)),
            p95: ms(p.p95),
            p99: ms(Some(p.p99)),
            p999: ms(Some(p.p999)),
            max: ms(Some(p.max)),
        }
    }
}

#[derive(Debug, Serialize)]
struct Kind<'a> {
    name: &'a str,
    requests: Requests,
    latency_ms: Latency,
}

#[derive(Debug, Serialize)]
struct Threshold<'a> {
    /// `overall`, or the request kind it is declared on.
    scope: &'a str,
    expression: &'a str,
    /// In `unit`; `null` when nothing was measured (which never passes).
    observed: Option<Observed>,
    bound: Observed,
    /// `ms`, `ratio` (0.01 is 1%), `req/s` or `bool`.
    unit: &'static str,
    passed: bool,
}

/// A number in the threshold's unit, or true/false for `metrics.reconciled`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Observed {
    Number(f64),
    Bool(bool),
}

impl<'a> Threshold<'a> {
    fn of(scope: &'a str, e: &'a Evaluation) -> Self {
        let (unit, value): (&'static str, fn(f64) -> Observed) = match e.unit {
            Unit::Micros => ("ms", |us| Observed::Number(us / 1e3)),
            Unit::Ratio => ("ratio", Observed::Number),
            Unit::PerSecond => ("req/s", Observed::Number),
            Unit::BytesPerSecond => ("B/s", Observed::Number),
            Unit::Bool => ("bool", |x| Observed::Bool(x == 1.0)),
        };
        Threshold {
            scope,
            expression: &e.expression,
            observed: e.measured.map(value),
            bound: value(e.bound),
            unit,
            passed: e.is_pass(),
        }
    }
}

#[derive(Debug, Serialize)]
struct Traces {
    /// Sampled requests whose trace was judged.
    sampled: u64,
    /// Traces that arrived with every expected service and the whole chain.
    complete: u64,
    /// Traces that passed every check.
    passed: u64,
    /// `sampled - passed`.
    failed: u64,
}

#[derive(Debug, Serialize)]
struct Metrics {
    /// Every source agreed with the harness's counts (and could be read).
    reconciled: bool,
    /// Checks that held, over all sources.
    passed: usize,
    total: usize,
}

#[derive(Debug, Serialize)]
struct Overhead {
    /// `PASS`, `FAIL` or `INCONCLUSIVE`.
    verdict: crate::result::overhead::Verdict,
}

/// The summary of `result`, as pretty JSON ending in a newline.
pub(crate) fn render(result: &RunResult) -> String {
    let load = &result.load;
    let exit_code = result.exit_code();
    let (status, reason) = match &result.status {
        RunStatus::Completed => ("completed", None),
        RunStatus::Interrupted { reason } => ("interrupted", Some(reason.as_str())),
        RunStatus::Failed { reason } => ("failed", Some(reason.as_str())),
    };
    let summary = Summary {
        schema_version: SCHEMA_VERSION,
        scenario: &result.scenario.name,
        verdict: match exit_code {
            EXIT_PASSED => "passed",
            EXIT_FAILED => "failed",
            _ => "incomplete",
        },
        exit_code,
        status,
        reason,
        requests: Requests::new(load.sent, load.unexpected + load.abandoned, load.dropped),
        rate: Rate {
            target: load.target_rate,
            achieved: load.achieved_rate,
            duration_s: load.send_duration_s,
        },
        latency_ms: Latency::of(&load.latency),
        kinds: result
            .kinds
            .iter()
            .map(|kind| Kind {
                name: &kind.name,
                // Never answered counts as an error, as for the whole run.
                requests: Requests::new(
                    kind.sent,
                    kind.unexpected + kind.sent.saturating_sub(kind.completed),
                    kind.dropped,
                ),
                latency_ms: Latency::of(&kind.latency),
            })
            .collect(),
        thresholds: result
            .thresholds
            .iter()
            .map(|t| Threshold::of(&t.scope, &t.evaluation))
            .collect(),
        traces: result.verification.traces.as_ref().map(|t| Traces {
            sampled: t.sampled,
            complete: t.complete,
            passed: t.passed,
            failed: t.sampled.saturating_sub(t.passed),
        }),
        metrics: result.verification.metrics.as_ref().map(|m| {
            let checks = m.sources.iter().flat_map(|s| &s.checks);
            Metrics {
                reconciled: m.reconciled,
                passed: checks.clone().filter(|c| c.passed).count(),
                total: checks.count(),
            }
        }),
        overhead: result
            .overhead
            .as_ref()
            .map(|o| Overhead { verdict: o.verdict }),
    };
    let mut json = serde_json::to_string_pretty(&summary)
        .expect("the summary holds only strings, numbers and booleans");
    json.push('\n');
    json
}

/// Why the summary could not be written; names the file.
#[derive(Debug, thiserror::Error)]
#[error("writing the summary to {path}: {source}")]
pub(crate) struct WriteError {
    path: String,
    #[source]
    source: std::io::Error,
}

/// Writes the summary of `result` to `path`, or to standard output for `-`. A file is written
/// whole or not at all (`FILE.partial`, then a rename), so a pipeline never reads half of one.
pub(crate) fn write(path: &Path, result: &RunResult) -> Result<(), WriteError> {
    let fail = |source| WriteError {
        path: path.display().to_string(),
        source,
    };
    let json = render(result);
    if path == Path::new(STDOUT) {
        let mut stdout = std::io::stdout().lock();
        return stdout
            .write_all(json.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(fail);
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    std::fs::write(&partial, json).map_err(fail)?;
    std::fs::rename(&partial, path).map_err(|error| {
        let _ = std::fs::remove_file(&partial);
        fail(error)
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn stored(name: &str) -> RunResult {
        let text = match name {
            "smoke" => include_str!("../tests/fixtures/results/smoke.json"),
            "stall" => include_str!("../tests/fixtures/results/stall.json"),
            "verify" => include_str!("../tests/fixtures/results/verify.json"),
            _ => include_str!("../tests/fixtures/results/overhead-quick.json"),
        };
        serde_json::from_str(text).expect("a stored result")
    }

    fn summary(result: &RunResult) -> Value {
        serde_json::from_str(&render(result)).expect("the summary is JSON")
    }

    #[test]
    fn the_schema_keeps_its_names() {
        let s = summary(&stored("verify"));
        let keys = |v: &Value| {
            let mut keys: Vec<String> = v.as_object().expect("an object").keys().cloned().collect();
            keys.sort();
            keys
        };
        let sorted = |names: &[&str]| {
            let mut names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
            names.sort();
            names
        };
        assert_eq!(
            keys(&s),
            sorted(&[
                "schema_version",
                "scenario",
                "verdict",
                "exit_code",
                "status",
                "reason",
                "requests",
                "rate",
                "latency_ms",
                "kinds",
                "thresholds",
                "traces",
                "metrics",
                "overhead",
            ])
        );
        assert_eq!(s["schema_version"], SCHEMA_VERSION);
        let latency = sorted(&["count", "p50", "p90", "p95", "p99", "p999", "max"]);
        assert_eq!(keys(&s["latency_ms"]), latency);
        assert_eq!(keys(&s["kinds"][0]["latency_ms"]), latency);
        let requests = sorted(&["sent", "ok", "errors", "dropped"]);
        assert_eq!(keys(&s["requests"]), requests);
        assert_eq!(keys(&s["kinds"][0]["requests"]), requests);
        assert_eq!(
            keys(&s["rate"]),
            sorted(&["target", "achieved", "duration_s"])
        );
        assert_eq!(
            keys(&s["thresholds"][0]),
            sorted(&["scope", "expression", "observed", "bound", "unit", "passed"])
        );
        assert_eq!(
            keys(&s["traces"]),
            sorted(&["sampled", "complete", "passed", "failed"])
        );
        assert_eq!(
            keys(&s["metrics"]),
            sorted(&["reconciled", "passed", "total"])
        );
    }

    #[test]
    fn a_passing_run_reads_as_passed_with_its_numbers() {
        let result = stored("smoke");
        assert_eq!(result.exit_code(), EXIT_PASSED);
        let s = summary(&result);
        assert_eq!(
            (
                &s["scenario"],
                &s["verdict"],
                &s["exit_code"],
                &s["status"],
                &s["reason"]
            ),
            (
                &json!("smoke"),
                &json!("passed"),
                &json!(0),
                &json!("completed"),
                &Value::Null
            )
        );
        let load = &result.load;
        let errors = load.unexpected + load.abandoned;
        assert_eq!(
            s["requests"],
            json!({"sent": load.sent, "ok": load.sent - errors, "errors": errors, "dropped": load.dropped})
        );
        assert_eq!(s["rate"]["achieved"], load.achieved_rate);
        assert_eq!(s["latency_ms"]["p99"], load.latency.p99 as f64 / 1e3);
        assert_eq!(s["latency_ms"]["max"], load.latency.max as f64 / 1e3);
        // Written before p95 was recorded: unknown, not 0.
        assert_eq!(s["latency_ms"]["p95"], Value::Null);
        let kinds = s["kinds"].as_array().expect("kinds");
        assert_eq!(kinds.len(), result.kinds.len());
        for (shown, kind) in kinds.iter().zip(&result.kinds) {
            assert_eq!(shown["name"], kind.name.as_str());
            assert_eq!(shown["requests"]["sent"], kind.sent);
            assert_eq!(shown["latency_ms"]["p50"], kind.latency.p50 as f64 / 1e3);
        }
        assert_eq!(
            (&s["traces"], &s["metrics"], &s["overhead"]),
            (&Value::Null, &Value::Null, &Value::Null)
        );
    }

    #[test]
    fn a_failed_threshold_reads_as_failed_with_what_was_observed() {
        let result = stored("stall");
        let s = summary(&result);
        assert_eq!(
            (&s["verdict"], &s["exit_code"]),
            (&json!("failed"), &json!(1))
        );
        let thresholds = s["thresholds"].as_array().expect("thresholds");
        assert_eq!(thresholds.len(), result.thresholds.len());
        let failed: Vec<&Value> = thresholds.iter().filter(|t| t["passed"] == false).collect();
        assert!(!failed.is_empty());
        for (shown, t) in thresholds.iter().zip(&result.thresholds) {
            assert_eq!(shown["expression"], t.evaluation.expression.as_str());
            assert_eq!(shown["passed"], t.evaluation.is_pass());
            if t.evaluation.unit == Unit::Micros {
                assert_eq!(shown["unit"], "ms");
                assert_eq!(shown["bound"], t.evaluation.bound / 1e3);
                let observed = t.evaluation.measured.map(|us| us / 1e3);
                assert_eq!(shown["observed"], json!(observed));
            }
        }
    }

    #[test]
    fn an_interrupted_run_reads_as_incomplete_with_its_reason() {
        let mut result = stored("smoke");
        result.status = RunStatus::Interrupted {
            reason: "interrupted (SIGINT or SIGTERM)".to_owned(),
        };
        let s = summary(&result);
        assert_eq!(
            (&s["verdict"], &s["exit_code"], &s["status"], &s["reason"]),
            (
                &json!("incomplete"),
                &json!(3),
                &json!("interrupted"),
                &json!("interrupted (SIGINT or SIGTERM)")
            )
        );
        // What was measured is still there.
        assert_eq!(s["requests"]["sent"], result.load.sent);
    }

    #[test]
    fn checks_are_counted() {
        let result = stored("verify");
        let s = summary(&result);
        let traces = result.verification.traces.as_ref().expect("traces");
        assert_eq!(
            s["traces"],
            json!({"sampled": traces.sampled, "complete": traces.complete, "passed": traces.passed,
                   "failed": traces.sampled - traces.passed})
        );
        let metrics = result.verification.metrics.as_ref().expect("metrics");
        let total: usize = metrics.sources.iter().map(|s| s.checks.len()).sum();
        assert!(total > 0);
        assert_eq!(s["metrics"]["total"], total);
        assert_eq!(s["metrics"]["reconciled"], metrics.reconciled);
        // A failed metrics check is counted as one.
        let mut broken = result.clone();
        if let Some(m) = broken.verification.metrics.as_mut() {
            m.sources[0].checks[0].passed = false;
        }
        let passed = summary(&result)["metrics"]["passed"].as_u64();
        let fewer = summary(&broken)["metrics"]["passed"].as_u64();
        assert_eq!(fewer.map(|n| n + 1), passed);
        let reconciled = result
            .thresholds
            .iter()
            .find(|t| t.evaluation.unit == Unit::Bool);
        if let Some(t) = reconciled {
            let shown = s["thresholds"]
                .as_array()
                .and_then(|ts| ts.iter().find(|x| x["unit"] == "bool"))
                .expect("shown");
            assert_eq!(shown["observed"], json!(t.evaluation.measured == Some(1.0)));
        }
    }

    #[test]
    fn an_experiment_gives_its_verdict() {
        let result = stored("overhead-quick");
        let verdict = result.overhead.as_ref().expect("an experiment").verdict;
        assert_eq!(summary(&result)["overhead"]["verdict"], json!(verdict));
    }

    #[test]
    fn a_file_is_written_whole_and_a_failure_names_it() {
        let dir = std::env::temp_dir().join(format!("harness-summary-json-{}", std::process::id()));
        let path = dir.join("nested/summary.json");
        let result = stored("smoke");
        write(&path, &result).expect("written");
        let text = std::fs::read_to_string(&path).expect("read back");
        assert_eq!(text, render(&result));
        assert!(!dir.join("nested/summary.json.partial").exists());
        // A directory in the way: the error names the file.
        let error = write(&dir.join("nested"), &result).expect_err("a directory");
        assert!(error.to_string().contains("nested"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
