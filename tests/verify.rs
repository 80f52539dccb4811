//! Trace and metrics verification end to end, through `harness run` as users run it: a clean run
//! passes every check, and each injected fault is caught and named (calibration).

mod support;

use serde_json::Value;
use support::run::Run;

/// `scenarios/verify.yaml` with `edit` applied to its text (each `from` must occur exactly once).
fn scenario(run: &Run, edits: &[(&str, &str)]) -> String {
    let base = include_str!("../scenarios/verify.yaml");
    let mut text = base.to_owned();
    for (from, to) in edits {
        assert_eq!(text.matches(from).count(), 1, "{from:?} not unique");
        text = text.replace(from, to);
    }
    run.write_scenario("verify.yaml", &text)
}

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

#[test]
fn a_clean_run_passes_every_check() {
    let run = Run::new("verify-clean");
    let output = run.run(&["run", "scenarios/verify.yaml"]);
    let result = run.result("verify");
    let traces = traces(&result);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}\n{traces:#}",
        String::from_utf8_lossy(&output.stdout)
    );
    let sampled = traces["sampled"].as_u64().expect("sampled");
    // 20% of ~200 quotes and 50% of ~50 bad symbols.
    assert!((50..=80).contains(&sampled), "{sampled}");
    assert_eq!(traces["complete"], sampled);
    assert_eq!(traces["passed"], sampled);
    assert_eq!(traces["failing"], Value::Array(Vec::new()));
    let stats = &traces["source_stats"];
    assert!(stats["spans_kept"].as_u64() >= Some(sampled * 3), "{stats}");
    let metrics = &result["verification"]["metrics"];
    assert_eq!(metrics["reconciled"], true, "{metrics:#}");
    let checks = metrics["sources"][0]["checks"].as_array().expect("checks");
    assert!(checks.len() >= 10, "{metrics:#}");
    run.assert_no_leftovers();
}

#[test]
fn a_hop_that_drops_the_trace_context_is_named() {
    let run = Run::new("verify-drop");
    let path = scenario(
        &run,
        &[(
            "    gateway:\n      env:",
            "    gateway:\n      args: [--calibration-drop-trace-context]\n      env:",
        )],
    );
    let output = run.run(&["run", &path, "--set", "verify.traces.timeout=2s"]);
    assert_eq!(output.status.code(), Some(1));
    let result = run.result("verify");
    let traces = traces(&result);
    assert_eq!(traces["complete"], 0, "{traces:#}");
    // Every sampled trace is broken there, not just some.
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
    // Everything above the broken hop is fine: no failure names the gateway's own spans.
    assert!(
        !failures
            .iter()
            .any(|(check, _)| check == "response_header" || check == "orphans"),
        "{failures:#?}"
    );
}

#[test]
fn a_service_exporting_nowhere_lowers_completeness_and_is_named() {
    let run = Run::new("verify-nowhere");
    let path = scenario(
        &run,
        &[(
            "      env: {RUST_LOG: info, OTEL_BSP_SCHEDULE_DELAY: \"200\"}\n    gateway:",
            "      env: {RUST_LOG: info, OTEL_BSP_SCHEDULE_DELAY: \"200\", OTEL_EXPORTER_OTLP_ENDPOINT: \"http://127.0.0.1:9\"}\n    gateway:",
        )],
    );
    let output = run.run(&["run", &path, "--set", "verify.traces.timeout=2s"]);
    assert_eq!(output.status.code(), Some(1));
    let result = run.result("verify");
    let completeness = traces(&result)["completeness"]
        .as_f64()
        .expect("completeness");
    assert!(completeness < 1.0, "{completeness}");
    let failures = failed_checks(&result);
    assert!(
        failures
            .iter()
            .any(|(check, detail)| check == "services" && detail == "no spans from core-engine"),
        "{failures:#?}"
    );
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(summary.contains("traces.complete >= 100%"), "{summary}");
}

#[test]
fn a_double_counting_metric_fails_reconciliation_naming_it() {
    let run = Run::new("verify-double");
    let path = scenario(
        &run,
        &[(
            "    gateway:\n      env:",
            "    gateway:\n      args: [--calibration-double-count]\n      env:",
        )],
    );
    let junit = run.out.join("junit.xml");
    let output = run.run(&["run", &path, "--junit", &junit.display().to_string()]);
    assert_eq!(output.status.code(), Some(1));
    let result = run.result("verify");
    let metrics = &result["verification"]["metrics"];
    assert_eq!(metrics["reconciled"], false);
    let failed: Vec<&str> = metrics["sources"][0]["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["passed"] == false)
        .filter_map(|c| c["metric"].as_str())
        .collect();
    assert!(failed.contains(&"http_requests_total"), "{metrics:#}");
    // Every printer says what was expected and what was observed: twice the responses received.
    let doubled = metrics["sources"][0]["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| {
            c["metric"] == "http_requests_total"
                && c["labels"]
                    .as_str()
                    .is_some_and(|l| l.contains("status=\"200\""))
        })
        .expect("the 200s are checked");
    let expected = doubled["expected"].as_f64().expect("expected");
    assert!(expected > 0.0, "{doubled:#}");
    assert_eq!(
        doubled["observed"].as_f64(),
        Some(2.0 * expected),
        "{doubled:#}"
    );
    let line = format!(
        "expected {expected} (fetch responses the harness received with status 200), observed {}",
        2.0 * expected
    );
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        summary.contains("api-gateway http_requests_total{") && summary.contains(&line),
        "{line:?} not in\n{summary}"
    );
    let junit = std::fs::read_to_string(&junit).expect("junit written");
    assert!(junit.contains(&line), "{junit}");
    let html = std::fs::read_to_string(run.out.join("verify").join("report.html"))
        .expect("report written");
    assert!(html.contains(&line), "{line:?} not in the report");
    // The traces are untouched by the fault.
    assert_eq!(traces(&result)["failing"], Value::Array(Vec::new()));
}

/// A free loopback port (free when chosen).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_reconcile_through_a_real_prometheus() {
    let Some(binary) = support::prometheus::binary("metrics_reconcile_through_a_real_prometheus")
    else {
        return;
    };
    // Prometheus must know the targets before the harness launches them: fixed ports.
    let (gateway_port, engine_metrics_port) = (free_port(), free_port());
    let localhost = |port| std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let targets = [
        support::prometheus::ScrapeTarget {
            job: "api-gateway",
            address: localhost(gateway_port),
            metrics_path: engine::gateway::METRICS_ROUTE,
            credentials_file: None,
        },
        support::prometheus::ScrapeTarget {
            job: "core-engine",
            address: localhost(engine_metrics_port),
            metrics_path: "/metrics",
            credentials_file: None,
        },
    ];
    let prometheus = support::prometheus::PrometheusServer::launch(&binary, &targets).await;
    let run = Run::new("verify-prometheus");
    let path = scenario(
        &run,
        &[
            (
                "    engine:\n      # Export",
                &format!(
                    "    engine:\n      args: [--metrics-listen, \"127.0.0.1:{engine_metrics_port}\"]\n      # Export"
                ),
            ),
            (
                "    gateway:\n      env:",
                &format!(
                    "    gateway:\n      args: [--listen, \"127.0.0.1:{gateway_port}\"]\n      env:"
                ),
            ),
        ],
    );
    let output = tokio::task::spawn_blocking(move || {
        let output = run.run(&["run", &path, "--prometheus", &prometheus.url]);
        (output, run.result("verify"), prometheus)
    })
    .await
    .expect("run");
    let (output, result, _prometheus) = output;
    let metrics = &result["verification"]["metrics"];
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}{}\n{metrics:#}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let sources: Vec<&str> = metrics["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .filter_map(|s| s["source"].as_str())
        .collect();
    // The direct scrape, Prometheus, and the span accounting (read through the direct scrape).
    assert_eq!(sources.len(), 3, "{metrics:#}");
    assert!(sources[1].starts_with("Prometheus at"), "{sources:?}");
    assert!(sources[2].starts_with("span counts"), "{sources:?}");
    assert_eq!(metrics["sources"][1]["passed"], true, "{metrics:#}");
}

/// `--gateway` on a scenario written for the managed system: the harness loads the running
/// services, receives their spans on the standard OTLP port, and says which metrics it cannot
/// reach rather than checking nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_system_exports_to_the_receiver_on_the_standard_port() {
    let logs = Run::new("verify-external-services");
    std::fs::create_dir_all(&logs.out).expect("log directory");
    let env = std::collections::BTreeMap::from([
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
            "http://127.0.0.1:4317".to_owned(),
        ),
        ("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "200".to_owned()),
        ("HARNESS_TEST_MARKER".to_owned(), logs.marker.clone()),
    ]);
    let system = harness::system::ManagedSystem::start(
        std::path::Path::new(support::run::HARNESS),
        &env,
        &harness::system::ServiceLaunch::default(),
        &harness::system::ServiceLaunch::default(),
        &logs.out,
    )
    .await
    .expect("services start");
    let gateway = system.gateway.address("http").expect("gateway address");

    let run = Run::new("verify-external");
    let output = tokio::task::spawn_blocking(move || {
        run.run(&[
            "run",
            "scenarios/verify.yaml",
            "--gateway",
            &format!("http://{gateway}"),
        ]);
        run
    })
    .await
    .expect("harness ran");
    let result = output.result("verify");
    system.stop().await;
    let traces = traces(&result);
    let sampled = traces["sampled"].as_u64().expect("sampled");
    assert!(sampled > 0, "{traces:#}");
    assert_eq!(traces["passed"], sampled, "{traces:#}");
    assert!(
        traces["source"]
            .as_str()
            .is_some_and(|s| s.contains("127.0.0.1:4317")),
        "{traces:#}"
    );
    let metrics = &result["verification"]["metrics"];
    assert_eq!(metrics["reconciled"], false);
    let error = metrics["sources"][0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("metrics URLs are not known"), "{metrics:#}");
}
