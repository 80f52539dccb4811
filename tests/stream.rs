//! Calibration of the stream load against the real managed services: `harness run` with
//! `websocket:` kinds, each short, shows a clean system passing and each injected fault caught by
//! the check made for it.

mod support;

use serde_json::Value;
use support::run::Run;

/// A short stream scenario on the managed system: six subscribers, connected over 3 s, each on
/// two symbols every 20 ms and held 3 s. `ENGINE` and `GATEWAY` are the services' extra flags,
/// `THRESHOLDS` the scenario's.
const SCENARIO: &str = "name: stream-check
system:
  managed:
    tracing: true
    engine: {args: [ENGINE], env: {OTEL_BSP_SCHEDULE_DELAY: \"200\"}}
    gateway: {args: [GATEWAY], env: {OTEL_BSP_SCHEDULE_DELAY: \"200\"}}
load:
  phases:
    - constant: {rate: 2, duration: 3s}
  max_in_flight: 100
  timeout: 5s
requests:
  - name: sub
    weight: 1
    websocket:
      url: /api/v1/market-data/stream
      subscribe: {type: subscribe, symbols: [AAPL, MSFT], source_id: yahoo_finance, interval_ms: 20}
      unsubscribe: {type: unsubscribe}
      hold: 3s
thresholds: [THRESHOLDS]
VERIFY";

/// The scenario with the services' flags and the thresholds filled in.
fn scenario(engine: &str, gateway: &str, thresholds: &str) -> String {
    SCENARIO
        .replace("ENGINE", engine)
        .replace("GATEWAY", gateway)
        .replace("THRESHOLDS", thresholds)
        .replace("VERIFY", "verify: {metrics: {}}\n")
}

/// As [`scenario`], with the trace checks of the updates on.
fn verified(gateway: &str) -> String {
    SCENARIO
        .replace("ENGINE", "")
        .replace("GATEWAY", gateway)
        .replace("THRESHOLDS", CLEAN)
        .replace("VERIFY", "verify: {streams: {sample: 50, timeout: 10s}}\n")
}

/// The thresholds of a clean run: nothing lost, in order, every connect upgraded, and a latency
/// bound far above a loopback stream's (so only a stall breaks it).
const CLEAN: &str = "\"stream.lost_rate == 0\", \"stream.sequence_error_rate == 0\", \
                     \"stream.connect_error_rate == 0\", \"stream.p(99) < 1s\"";

/// Runs `text` as scenario `stream-check`; returns the exit code and the result.
fn run(run: &Run, text: &str) -> (Option<i32>, Value, String) {
    let path = run.write_scenario("stream-check.yaml", text);
    let output = run.run(&["run", &path]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let result = run.result("stream-check");
    (output.status.code(), result, stdout)
}

/// The threshold whose expression is `expression` in `scope`.
fn threshold<'a>(result: &'a Value, scope: &str, expression: &str) -> &'a Value {
    result["thresholds"]
        .as_array()
        .expect("thresholds")
        .iter()
        .find(|t| t["scope"] == scope && t["expression"] == expression)
        .unwrap_or_else(|| panic!("no threshold {expression} in {scope}: {result:#}"))
}

/// The thresholds that failed, as `scope: expression`.
fn failed(result: &Value) -> Vec<String> {
    result["thresholds"]
        .as_array()
        .expect("thresholds")
        .iter()
        .filter(|t| t["passed"] == false)
        .map(|t| format!("{}: {}", t["scope"].as_str().unwrap_or(""), t["expression"]))
        .collect()
}

#[test]
fn a_clean_stream_passes() {
    let r = Run::new("stream-clean");
    let (code, result, stdout) = run(&r, &scenario("", "", CLEAN));
    assert_eq!(code, Some(0), "{stdout}");
    let total = &result["stream"]["total"];
    assert_eq!(total["connected"], 6, "{total:#}");
    // Two symbols every 20 ms for about 3 s on each of six connections.
    let updates = total["updates"].as_u64().expect("updates");
    assert!(updates >= 6 * 200, "{total:#}");
    assert_eq!(total["lost"], 0, "{total:#}");
    assert_eq!(total["closes"]["1000"], 6, "{total:#}");
    // The services' counters agree: upgrades, updates written, none dropped.
    let metrics = &result["verification"]["metrics"];
    assert_eq!(metrics["reconciled"], true, "{metrics:#}");
    let checks = metrics["sources"][0]["checks"].as_array().expect("checks");
    let sent = checks
        .iter()
        .find(|c| c["metric"] == "ws_messages_sent_total")
        .expect("the stream rules ran");
    assert_eq!(
        sent["observed"],
        total["updates"].as_f64().expect("updates")
    );
    // One update in ten is traced by default.
    assert!(total["traced"].as_u64() >= Some(updates / 20), "{total:#}");
    r.assert_no_leftovers();
}

#[test]
fn updates_dropped_silently_are_caught_as_lost() {
    let r = Run::new("stream-drop");
    let (code, result, stdout) = run(
        &r,
        &scenario("", "--calibration-drop-every-nth-update, \"25\"", CLEAN),
    );
    assert_eq!(code, Some(1), "{stdout}");
    assert_eq!(
        failed(&result),
        [
            "overall: \"stream.lost_rate == 0\"",
            "overall: \"metrics.reconciled\""
        ]
    );
    // Missing, yet not counted as dropped by the gateway: the reconciliation says so.
    let checks = result["verification"]["metrics"]["sources"][0]["checks"]
        .as_array()
        .expect("checks");
    let failing: Vec<&str> = checks
        .iter()
        .filter(|c| c["passed"] == false)
        .filter_map(|c| c["metric"].as_str())
        .collect();
    assert_eq!(failing, ["ws_messages_dropped_total"], "{checks:#?}");
    // One in 25 dropped: about 4% lost, whatever the connection.
    let lost = threshold(&result, "overall", "stream.lost_rate == 0")["measured"]
        .as_f64()
        .expect("measured");
    assert!((0.03..0.05).contains(&lost), "{lost}");
    assert!(stdout.contains("stream.lost_rate == 0"), "{stdout}");
}

#[test]
fn a_stalled_stream_is_caught_by_its_latency() {
    let r = Run::new("stream-stall");
    // Every stream held for the last 1.5 s of every 2 s: the updates due then arrive up to 1.5 s
    // late, far past the 1 s bound.
    let (code, result, stdout) = run(
        &r,
        &scenario(
            "--fault-stream-stall-every, 2s, --fault-stream-stall-for, 1500ms",
            "",
            CLEAN,
        ),
    );
    assert_eq!(code, Some(1), "{stdout}");
    assert_eq!(failed(&result), ["overall: \"stream.p(99) < 1s\""]);
    assert_eq!(result["verification"]["metrics"]["reconciled"], true);
    let p99 = threshold(&result, "overall", "stream.p(99) < 1s")["measured"]
        .as_f64()
        .expect("measured");
    assert!(p99 > 1.0, "{p99}");
    // Held, not lost: every update arrives, late.
    assert_eq!(result["stream"]["total"]["lost"], 0);
}

#[test]
fn slow_consumers_lose_updates_and_fast_ones_do_not() {
    let r = Run::new("stream-slow");
    // The bundled scenario, shortened: five subscribers over 5 s, each held to the end.
    let output = r.run(&[
        "run",
        "scenarios/stream-slow-consumer.yaml",
        "--set",
        "load.phases.0.constant.rate=1",
        "--set",
        "load.phases.0.constant.duration=5s",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let result = r.result("stream-slow-consumer");
    let kinds = result["stream"]["kinds"].as_array().expect("kinds");
    let kind = |name: &str| {
        kinds
            .iter()
            .find(|k| k["name"] == name)
            .unwrap_or_else(|| panic!("no kind {name}"))
    };
    let (fast, slow) = (kind("fast"), kind("slow"));
    assert!(fast["connected"].as_u64() >= Some(1), "{fast:#}");
    assert!(slow["connected"].as_u64() >= Some(1), "{slow:#}");
    assert_eq!(fast["lost"], 0, "{fast:#}");
    // Its own `[slow] stream.lost_rate > 10%` held (exit 0): the gaps show.
    assert!(slow["lost"].as_u64() > Some(0), "{slow:#}");
    assert_eq!(result["stream"]["total"]["sequence_errors"], 0);
    // The gateway counted its drops: at least every gap the slow readers saw.
    let checks = result["verification"]["metrics"]["sources"][0]["checks"]
        .as_array()
        .expect("checks");
    let dropped = checks
        .iter()
        .find(|c| c["metric"] == "ws_messages_dropped_total")
        .expect("the stream rules ran");
    assert!(
        dropped["observed"].as_f64() >= slow["lost"].as_f64(),
        "{dropped}"
    );
    assert!(dropped["observed"].as_f64() > Some(0.0), "{dropped}");
    r.assert_no_leftovers();
}

#[test]
fn traced_updates_are_traced_end_to_end() {
    let r = Run::new("stream-traced");
    let (code, result, stdout) = run(&r, &verified(""));
    assert_eq!(code, Some(0), "{stdout}");
    let streams = &result["verification"]["streams"];
    assert_eq!(streams["sampled"], 50, "{streams:#}");
    assert_eq!(streams["found"], 50, "{streams:#}");
    assert_eq!(streams["passed"], 50, "{streams:#}");
    assert!(stdout.contains("50 traced end to end"), "{stdout}");
    r.assert_no_leftovers();
}

#[test]
fn an_update_span_that_starts_its_own_trace_fails_the_check() {
    let r = Run::new("stream-context");
    let (code, result, stdout) = run(&r, &verified("--calibration-drop-update-context"));
    assert_eq!(code, Some(1), "{stdout}");
    assert_eq!(
        failed(&result),
        ["overall: \"stream.traces.passed >= 100%\""]
    );
    let streams = &result["verification"]["streams"];
    assert_eq!(streams["passed"], 0, "{streams:#}");
    // Every sampled update's CONSUMER span is a root: no PRODUCER parent.
    assert_eq!(streams["failed_checks"]["producer"], 50, "{streams:#}");
    let detail = streams["failing"][0]["failures"][0][1]
        .as_str()
        .unwrap_or("");
    assert!(detail.contains("is a root"), "{streams:#}");
}
