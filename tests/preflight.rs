//! Before any load, every trace and metrics source must answer as the API it is taken for: one
//! that is down or is some other server ends the run at once with exit 3, naming the URL and what
//! was expected, before the services are launched; a URL that is not http(s) is bad input (exit
//! 2). A source that answers as expected lets the run go on.

mod support;

use std::process::Output;

use axum::Router;
use axum::routing::get;
use support::run::Run;

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A loopback port with nothing listening (free when chosen).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Serves `app` on a loopback port in a thread of its own (the harness runs blocking beside it)
/// and returns its base URL.
fn serve(app: Router) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("non-blocking");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            axum::serve(listener, app).await.expect("serve");
        });
    });
    url
}

/// A web server that is no query API: an HTML page on every path.
fn not_an_api() -> String {
    serve(
        Router::new()
            .fallback(|| async { axum::response::Html("<html><body>It works!</body></html>") }),
    )
}

/// A Jaeger query service that speaks only v3 and knows no trace.
fn jaeger_v3_without_traces() -> String {
    serve(
        Router::new()
            .route(
                "/api/v3/services",
                get(|| async { axum::Json(serde_json::json!({"services": ["api-gateway"]})) }),
            )
            .route(
                "/api/v3/traces/{id}",
                get(|| async {
                    (
                        axum::http::StatusCode::NOT_FOUND,
                        axum::Json(serde_json::json!({
                            "error": {"httpCode": 404, "message": "trace not found"}
                        })),
                    )
                }),
            ),
    )
}

/// Exit 3, no load and no services launched, and a message naming `url` and `expected`.
fn assert_stopped_before_load(run: &Run, output: &Output, url: &str, expected: &str) {
    let message = stderr(output);
    assert_eq!(output.status.code(), Some(3), "{message}");
    assert!(message.contains(url), "{url} not named: {message}");
    assert!(
        message.contains(expected),
        "{expected:?} not said: {message}"
    );
    let result = run.result("smoke");
    assert_eq!(result["status"]["state"], "failed", "{result:#}");
    assert_eq!(result["load"]["sent"], 0, "{:#}", result["load"]);
    let dir = run.out.join("smoke");
    for log in ["engine.log", "gateway.log"] {
        assert!(!dir.join(log).exists(), "{log}: services were launched");
    }
    run.assert_no_leftovers();
}

#[test]
fn an_unreachable_prometheus_stops_the_run_before_any_load() {
    let run = Run::new("preflight-prometheus-down");
    let url = format!("http://127.0.0.1:{}", closed_port());
    let output = run.run(&["run", "scenarios/smoke.yaml", "--prometheus", &url]);
    assert_stopped_before_load(&run, &output, &url, "expected the Prometheus HTTP API");
    assert!(
        stderr(&output).contains("Connection refused"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_server_that_is_not_prometheus_stops_the_run_before_any_load() {
    let run = Run::new("preflight-prometheus-foreign");
    let url = not_an_api();
    let output = run.run(&["run", "scenarios/smoke.yaml", "--prometheus", &url]);
    assert_stopped_before_load(&run, &output, &url, "expected the Prometheus HTTP API");
    assert!(stderr(&output).contains("It works!"), "{}", stderr(&output));
}

#[test]
fn an_unreachable_jaeger_stops_the_run_before_any_load() {
    let run = Run::new("preflight-jaeger-down");
    let url = format!("http://127.0.0.1:{}", closed_port());
    let output = run.run(&["run", "scenarios/smoke.yaml", "--jaeger", &url]);
    assert_stopped_before_load(&run, &output, &url, "expected Jaeger's query API");
}

#[test]
fn a_server_that_is_not_jaeger_stops_the_run_naming_both_apis() {
    let run = Run::new("preflight-jaeger-foreign");
    let url = not_an_api();
    let output = run.run(&["run", "scenarios/smoke.yaml", "--jaeger", &url]);
    assert_stopped_before_load(&run, &output, &url, "not a Jaeger query API");
    let message = stderr(&output);
    assert!(
        message.contains(&format!("{url}/api/v3/services"))
            && message.contains(&format!("{url}/api/services")),
        "{message}"
    );
}

#[test]
fn unreachable_metrics_endpoints_of_an_external_system_stop_the_run_before_any_load() {
    let run = Run::new("preflight-scrape-down");
    let metrics = format!("http://127.0.0.1:{}/metrics", closed_port());
    let path = run.write_scenario(
        "smoke.yaml",
        &include_str!("../scenarios/smoke.yaml").replace(
            "system:\n  managed:\n    tracing: true\n",
            &format!(
                "system:\n  external: {{gateway: \"http://127.0.0.1:{}\"}}\n\
                 verify:\n  metrics:\n    gateway_metrics: \"{metrics}\"\n    \
                 engine_metrics: \"{metrics}\"\n",
                closed_port()
            ),
        ),
    );
    let output = run.run(&["run", &path]);
    assert_stopped_before_load(
        &run,
        &output,
        &metrics,
        "expected a Prometheus text exposition",
    );
}

/// No false alarm: a Jaeger that answers as Jaeger lets the run go on to its load, which then
/// fails on the traces it cannot find (exit 1, not 3).
#[test]
fn a_jaeger_that_answers_as_jaeger_lets_the_run_go_on() {
    let run = Run::new("preflight-jaeger-up");
    let url = jaeger_v3_without_traces();
    let output = run.run(&[
        "run",
        "scenarios/smoke.yaml",
        "--jaeger",
        &url,
        "--set",
        "load.phases.0.constant.duration=1s",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let result = run.result("smoke");
    assert!(
        result["load"]["sent"].as_u64() > Some(0),
        "{:#}",
        result["load"]
    );
    let traces = &result["verification"]["traces"];
    assert_eq!(traces["passed"], 0, "{traces:#}");
    run.assert_no_leftovers();
}

fn jaeger_scenario(run: &Run, url: &str) -> String {
    run.write_scenario(
        "smoke.yaml",
        &format!(
            "{}verify:\n  traces:\n    source: jaeger\n    jaeger: {{url: \"{url}\"}}\n    \
             timeout: 1s\n",
            include_str!("../scenarios/smoke.yaml")
        ),
    )
}

/// `--jaeger-api` picks the API of the Jaeger the scenario names: v3 is what this one speaks, so
/// the run goes on; v1 is not, so the preflight stops it, which shows the flag took effect.
#[test]
fn jaeger_api_applies_to_the_scenarios_jaeger() {
    let url = jaeger_v3_without_traces();
    let run = Run::new("preflight-jaeger-api-v3");
    let path = jaeger_scenario(&run, &url);
    let output = run.run(&["run", &path, "--jaeger-api", "v3"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let traces = &run.result("smoke")["verification"]["traces"];
    assert_eq!(traces["source"], format!("jaeger v3 {url}"), "{traces:#}");

    let run = Run::new("preflight-jaeger-api-v1");
    let path = jaeger_scenario(&run, &url);
    let output = run.run(&["run", &path, "--jaeger-api", "v1"]);
    assert_stopped_before_load(&run, &output, &format!("{url}/api/services"), "Jaeger v1");
}

#[test]
fn jaeger_api_without_any_jaeger_url_is_bad_input() {
    let run = Run::new("preflight-jaeger-api-alone");
    let output = run.run(&["run", "scenarios/smoke.yaml", "--jaeger-api", "v3"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("--jaeger-api v3") && message.contains("verify.traces.jaeger.url"),
        "{message}"
    );
}

#[test]
fn a_url_flag_outside_http_is_bad_input_naming_the_flag() {
    for (flag, url) in [
        ("--prometheus", "ftp://127.0.0.1:9090"),
        ("--jaeger", "ftp://127.0.0.1:16686"),
        ("--gateway", "ftp://127.0.0.1:8080"),
    ] {
        let run = Run::new("preflight-scheme");
        let output = run.run(&["run", "scenarios/smoke.yaml", flag, url]);
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{flag}: {message}");
        assert!(
            message.contains(&format!("{flag} {url}"))
                && message.contains("expected an http:// or https:// URL"),
            "{message}"
        );
    }
}

#[test]
fn a_scenario_url_outside_http_is_bad_input_naming_the_place() {
    let run = Run::new("preflight-scheme-file");
    let path = run.write_scenario(
        "smoke.yaml",
        &format!(
            "{}verify:\n  metrics:\n    prometheus: {{url: \"ftp://127.0.0.1:9090\"}}\n",
            include_str!("../scenarios/smoke.yaml")
        ),
    );
    let output = run.run(&["run", &path]);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(
        message.contains("smoke.yaml:") && message.contains("verify.metrics.prometheus.url"),
        "{message}"
    );
}
