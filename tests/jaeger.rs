//! Through a real Jaeger v2 (the binary `scripts/jaeger` builds, run with the compose stack's
//! `observability/jaeger.yaml`): `harness run scenarios/jaeger.yaml` passes through the v3 and
//! the v1 query API, each injected fault is caught at the right place, and what Jaeger answers
//! reads back as the same spans the harness's own OTLP receiver reads from the same export.

mod support;

use std::time::Duration;

use harness::trace::{
    JaegerApi, JaegerSource, Receiver, ReceiverConfig, Span, TraceId, TraceSource,
};
use serde_json::{Value, json};
use support::jaeger::{JaegerServer, binary};
use support::run::Run;

fn traces(result: &Value) -> &Value {
    &result["verification"]["traces"]
}

fn failed_checks(result: &Value) -> Vec<(String, String)> {
    traces(result)["failing"]
        .as_array()
        .expect("failing list")
        .iter()
        .flat_map(|t| t["failures"].as_array().expect("failures").iter())
        .map(|f| {
            (
                f["check"].as_str().unwrap_or_default().to_owned(),
                f["detail"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// `scenarios/jaeger.yaml` with `edits` applied to its text (each `from` must occur exactly once).
fn scenario(run: &Run, edits: &[(&str, &str)]) -> String {
    let mut text = include_str!("../scenarios/jaeger.yaml").to_owned();
    for (from, to) in edits {
        assert_eq!(text.matches(from).count(), 1, "{from:?} not unique");
        text = text.replace(from, to);
    }
    run.write_scenario("jaeger.yaml", &text)
}

/// Runs `path` with the launched Jaeger, giving each trace 2 s, expecting the checks to fail
/// (exit 1); its result.json.
fn failing_run(run: &Run, path: &str, jaeger: &std::path::Path) -> Value {
    let output = run.run(&[
        "run",
        path,
        "--jaeger-bin",
        &jaeger.display().to_string(),
        "--set",
        "verify.traces.timeout=2s",
    ]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    run.result("jaeger")
}

/// Every sampled trace complete and passing, looked up through `api`, with its visibility
/// percentiles measured through Jaeger.
fn assert_clean(run: &Run, output: &std::process::Output, api: &str) -> Value {
    let result = run.result("jaeger");
    let traces = traces(&result);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}{}\n{traces:#}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let source = traces["source"].as_str().expect("source");
    assert!(
        source.starts_with(&format!("jaeger {api} http://127.0.0.1:")),
        "{source}"
    );
    let sampled = traces["sampled"].as_u64().expect("sampled");
    // 20% of ~200 quotes and 50% of ~50 bad symbols.
    assert!((40..=90).contains(&sampled), "{sampled}");
    assert_eq!(traces["complete"], sampled, "{traces:#}");
    assert_eq!(traces["passed"], sampled, "{traces:#}");
    // In microseconds: the services export every 200 ms and Jaeger's batch processor waits up to
    // 200 ms more, so a trace is visible within a second on an idle machine.
    let visible = &traces["visible"];
    assert_eq!(visible["count"], sampled, "{visible}");
    let (p50, p99) = (
        visible["p50"].as_u64().expect("p50"),
        visible["p99"].as_u64().expect("p99"),
    );
    assert!(0 < p50 && p50 <= p99 && p99 < 5_000_000, "{visible}");
    assert_eq!(result["verification"]["metrics"]["reconciled"], true);
    result
}

#[test]
fn one_command_runs_the_whole_path_through_jaeger_v3() {
    let Some(jaeger) = binary("one_command_runs_the_whole_path_through_jaeger_v3") else {
        return;
    };
    let run = Run::new("jaeger-v3");
    let output = run.run(&[
        "run",
        "scenarios/jaeger.yaml",
        "--jaeger-bin",
        &jaeger.display().to_string(),
    ]);
    let result = assert_clean(&run, &output, "v3");
    // Jaeger's log and the configuration it ran sit beside the services' logs.
    let dir = run.out.join("jaeger");
    let config = std::fs::read_to_string(dir.join("jaeger.yaml")).expect("jaeger.yaml");
    assert_eq!(config, include_str!("../observability/jaeger.yaml"));
    let log = std::fs::read_to_string(dir.join("jaeger.log")).expect("jaeger.log");
    assert!(log.contains("Everything is ready"), "{log}");
    // It is gone once the run ends: the report links to no UI.
    assert_eq!(result["verification"]["traces"]["jaeger_ui"], Value::Null);
    // Jaeger was stopped with the services.
    run.assert_no_leftovers();
}

/// The v1 API, of a Jaeger the test runs itself: the harness loads services that export to it
/// and looks traces up at `--jaeger`, as it would in the compose stack.
#[tokio::test]
async fn a_clean_run_passes_through_the_v1_api_of_a_running_jaeger() {
    let Some(binary) = binary("a_clean_run_passes_through_the_v1_api_of_a_running_jaeger") else {
        return;
    };
    let jaeger = JaegerServer::start(&binary).await;
    let run = Run::new("jaeger-v1");
    // The same scenario with the services exporting to this Jaeger instead of launching one.
    let path = scenario(&run, &[("    jaeger: {}\n", "")]);
    let endpoint = jaeger.otlp_grpc_endpoint();
    let output = run.run(&[
        "run",
        &path,
        "--set",
        &format!("system.managed.engine.env.OTEL_EXPORTER_OTLP_ENDPOINT={endpoint}"),
        "--set",
        &format!("system.managed.gateway.env.OTEL_EXPORTER_OTLP_ENDPOINT={endpoint}"),
        "--jaeger",
        &jaeger.query_url(),
        "--jaeger-api",
        "v1",
    ]);
    assert_clean(&run, &output, "v1");
    run.assert_no_leftovers();
}

#[test]
fn a_hop_that_drops_the_trace_context_is_named_through_jaeger() {
    let Some(jaeger) = binary("a_hop_that_drops_the_trace_context_is_named_through_jaeger") else {
        return;
    };
    let run = Run::new("jaeger-drop");
    let path = scenario(
        &run,
        &[(
            "    gateway:\n      env:",
            "    gateway:\n      args: [--calibration-drop-trace-context]\n      env:",
        )],
    );
    let result = failing_run(&run, &path, &jaeger);
    let traces = traces(&result);
    assert_eq!(traces["complete"], 0, "{traces:#}");
    assert_eq!(
        traces["failed_checks"]["chain"], traces["sampled"],
        "{traces:#}"
    );
    let failures = failed_checks(&result);
    assert!(
        failures.iter().any(|(check, detail)| check == "chain"
            && detail.starts_with("broken at api-gateway client -> core-engine server")),
        "{failures:#?}"
    );
    // The gateway's own spans are intact: nothing above the broken hop fails.
    assert!(
        !failures
            .iter()
            .any(|(check, _)| check == "response_header" || check == "orphans"),
        "{failures:#?}"
    );
}

#[test]
fn an_engine_exporting_nowhere_fails_services_through_jaeger() {
    let Some(jaeger) = binary("an_engine_exporting_nowhere_fails_services_through_jaeger") else {
        return;
    };
    let run = Run::new("jaeger-nowhere");
    // Port 9 (discard) on loopback: nothing listens there.
    let path = scenario(
        &run,
        &[(
            "      env: {RUST_LOG: info, OTEL_BSP_SCHEDULE_DELAY: \"200\"}\n    gateway:",
            "      env: {RUST_LOG: info, OTEL_BSP_SCHEDULE_DELAY: \"200\", \
             OTEL_EXPORTER_OTLP_ENDPOINT: \"http://127.0.0.1:9\"}\n    gateway:",
        )],
    );
    let result = failing_run(&run, &path, &jaeger);
    let traces = traces(&result);
    assert_eq!(traces["complete"], 0, "{traces:#}");
    let failures = failed_checks(&result);
    assert!(
        failures
            .iter()
            .any(|(check, detail)| check == "services" && detail == "no spans from core-engine"),
        "{failures:#?}"
    );
    // The gateway's spans did reach Jaeger: the trace exists, only the engine's part is missing.
    assert!(
        !failures.iter().any(|(check, _)| check == "exists"),
        "{failures:#?}"
    );
}

#[test]
fn a_missing_jaeger_binary_stops_the_run_before_any_load() {
    let run = Run::new("jaeger-missing");
    let output = run.run(&[
        "run",
        "scenarios/jaeger.yaml",
        "--jaeger-bin",
        "/nonexistent/jaeger",
    ]);
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("/nonexistent/jaeger") && stderr.contains("--jaeger-bin"),
        "{stderr}"
    );
    run.assert_no_leftovers();
}

/// One OTLP/JSON export of a trace with every span kind, status and attribute type; times are
/// whole microseconds, which v1 (in microseconds) keeps exactly.
fn export(trace_id: &str, start_ns: u64) -> Value {
    let span = |id: &str, parent: &str, name: &str, kind: u8, offset_us: u64, extra: Value| {
        let start = start_ns + offset_us * 1000;
        let mut span = json!({
            "traceId": trace_id,
            "spanId": id,
            "name": name,
            "kind": kind,
            "startTimeUnixNano": start.to_string(),
            "endTimeUnixNano": (start + 250_000).to_string(),
        });
        if !parent.is_empty() {
            span["parentSpanId"] = json!(parent);
        }
        if let (Value::Object(span), Value::Object(extra)) = (&mut span, extra) {
            span.extend(extra);
        }
        span
    };
    let attributes = json!([
        {"key": "s", "value": {"stringValue": "text"}},
        {"key": "i", "value": {"intValue": "-42"}},
        {"key": "beyond_2_53", "value": {"intValue": "9007199254740993"}},
        {"key": "d", "value": {"doubleValue": 1.5}},
        {"key": "b", "value": {"boolValue": true}}
    ]);
    // v1 has no such types: it answers them as strings of their JSON, which read the same in the
    // checks (that compare values as text) but not as the same type.
    let structured = json!([
        {"key": "arr", "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "1"}]}}},
        {"key": "kv", "value": {"kvlistValue": {"values": [{"key": "k", "value": {"stringValue": "v"}}]}}}
    ]);
    let front = vec![
        span(
            "00000000000000a1",
            "",
            "front",
            2,
            0,
            json!({"attributes": attributes,
            "status": {"code": 2, "message": "boom"}}),
        ),
        span(
            "00000000000000a2",
            "00000000000000a1",
            "call",
            3,
            10,
            json!({"status": {"code": 1}}),
        ),
        span(
            "00000000000000a3",
            "00000000000000a1",
            "send",
            4,
            20,
            json!({}),
        ),
    ];
    let back = vec![
        span(
            "00000000000000b1",
            "00000000000000a2",
            "serve",
            2,
            30,
            json!({}),
        ),
        span(
            "00000000000000b2",
            "00000000000000b1",
            "work",
            1,
            40,
            json!({"attributes": structured}),
        ),
        span(
            "00000000000000b3",
            "00000000000000a3",
            "receive",
            5,
            50,
            json!({}),
        ),
        span(
            "00000000000000b4",
            "00000000000000b1",
            "unspecified",
            0,
            60,
            json!({}),
        ),
    ];
    let resource = |service: &str, spans: Vec<Value>| {
        json!({
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
            "scopeSpans": [{"scope": {"name": "probe", "version": "1.0"}, "spans": spans}]
        })
    };
    json!({"resourceSpans": [resource("probe-front", front), resource("probe-back", back)]})
}

async fn post(client: &reqwest::Client, url: &str, body: &Value) {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    assert!(
        response.status().is_success(),
        "POST {url}: {}",
        response.status()
    );
}

/// The spans of `id` once `count` of them are there, sorted by span id.
async fn spans_of(source: &impl TraceSource, id: TraceId, count: usize) -> Vec<Span> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let polled = harness::trace::wait_for(source, id, deadline, |t| t.spans.len() >= count).await;
    let mut spans = polled
        .trace
        .unwrap_or_else(|| {
            panic!(
                "{}: no trace {id} ({:?})",
                source.describe(),
                polled.last_error
            )
        })
        .spans;
    assert_eq!(spans.len(), count, "{}", source.describe());
    spans.sort_by_key(|span| span.span_id);
    spans
}

fn now_micros_in_ns() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    now.as_micros() as u64 * 1000
}

/// Every span kind, status and attribute type as Jaeger stores and encodes them, in both APIs,
/// against the same export read by the harness's own receiver.
#[tokio::test]
async fn jaeger_answers_read_back_as_the_spans_that_were_exported() {
    let Some(binary) = binary("jaeger_answers_read_back_as_the_spans_that_were_exported") else {
        return;
    };
    let jaeger = JaegerServer::start(&binary).await;
    let receiver = Receiver::start(ReceiverConfig::default()).expect("receiver");
    let client = reqwest::Client::new();
    // A W3C id, and one with its upper half zero, as 64-bit tracers make (v1 answers it in 16
    // digits).
    for id in [
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "00000000000000000000000000000abc",
    ] {
        let id: TraceId = id.parse().expect("id");
        receiver.want(id);
        let body = export(&id.to_string(), now_micros_in_ns());
        post(&client, &jaeger.otlp_http_traces(), &body).await;
        let receiver_url = format!("{}/v1/traces", receiver.http_endpoint());
        post(&client, &receiver_url, &body).await;

        let expected = spans_of(&receiver.handle(), id, 7).await;
        for api in [JaegerApi::V3, JaegerApi::V1] {
            let source = JaegerSource::new(&jaeger.query_url(), api, Duration::from_secs(5))
                .expect("source");
            let spans = spans_of(&source, id, 7).await;
            for (read, sent) in spans.iter().zip(&expected) {
                if api == JaegerApi::V1 && read.name == "work" {
                    let public = |s: &Span| (s.span_id, s.parent, s.service.clone(), s.kind);
                    assert_eq!(public(read), public(sent), "through {api}");
                    continue;
                }
                assert_eq!(read, sent, "{id} through {api}:\n{}", jaeger.log());
            }
        }
    }
}

/// A trace far bigger than the services make, whole through both APIs.
#[tokio::test]
async fn a_big_trace_comes_back_whole_through_both_apis() {
    let Some(binary) = binary("a_big_trace_comes_back_whole_through_both_apis") else {
        return;
    };
    let jaeger = JaegerServer::start(&binary).await;
    const SPANS: usize = 5000;
    let id: TraceId = "0af7651916cd43dd8448eb211c80319c".parse().expect("id");
    let start = now_micros_in_ns();
    let client = reqwest::Client::new();
    // In batches, as an SDK exports them.
    for batch in 0..SPANS / 500 {
        let spans: Vec<Value> = (batch * 500..(batch + 1) * 500)
            .map(|i| {
                json!({
                    "traceId": id.to_string(),
                    "spanId": format!("{:016x}", i + 1),
                    "parentSpanId": if i == 0 { String::new() } else { format!("{:016x}", 1) },
                    "name": format!("span {i}"),
                    "kind": if i == 0 { 2 } else { 1 },
                    "startTimeUnixNano": (start + i as u64 * 1000).to_string(),
                    "endTimeUnixNano": (start + i as u64 * 1000 + 500_000).to_string(),
                    "attributes": [{"key": "index", "value": {"intValue": i.to_string()}}],
                })
            })
            .collect();
        let body = json!({"resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "big"}}]},
            "scopeSpans": [{"scope": {"name": "probe"}, "spans": spans}]
        }]});
        post(&client, &jaeger.otlp_http_traces(), &body).await;
    }
    let mut by_api = Vec::new();
    for api in [JaegerApi::V3, JaegerApi::V1] {
        let source =
            JaegerSource::new(&jaeger.query_url(), api, Duration::from_secs(5)).expect("source");
        let spans = spans_of(&source, id, SPANS).await;
        assert!(
            spans
                .iter()
                .enumerate()
                .all(|(i, s)| s.span_id.0 == i as u64 + 1),
            "through {api}: span ids are not 1..={SPANS}"
        );
        assert!(spans[1..].iter().all(|s| s.parent.map(|p| p.0) == Some(1)));
        by_api.push(spans);
    }
    assert_eq!(by_api[0], by_api[1], "v3 and v1 read differently");
}

#[test]
fn flags_that_would_bypass_the_launched_jaeger_are_refused() {
    let run = Run::new("jaeger-flags");
    for (flag, url, expected) in [
        (
            "--jaeger",
            "http://127.0.0.1:16686",
            "launches its own Jaeger",
        ),
        ("--gateway", "http://127.0.0.1:8080", "give --jaeger URL"),
    ] {
        let output = run.run(&["run", "scenarios/jaeger.yaml", flag, url]);
        assert_eq!(output.status.code(), Some(2), "{flag}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{flag}: {stderr}");
    }
    run.assert_no_leftovers();
}
