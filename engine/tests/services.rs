//! The engine and gateway as real processes on ephemeral ports, exporting OTLP to an in-test
//! receiver: trace linkage, error mapping, metrics, tracing off, the drop-context switch, bad input
//! and shutdown.

mod support;

use std::time::Duration;

use engine::proto::FetchMarketDataRequest;
use engine::proto::core_engine_service_client::CoreEngineServiceClient;
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use support::otlp::{
    KIND_CLIENT, KIND_INTERNAL, KIND_SERVER, Receiver, STATUS_ERROR, STATUS_UNSET, Span,
};
use support::{
    Metrics, System, SystemOptions, TRACEPARENT_SPAN_ID, new_trace_id, strings, traceparent,
};

const WAIT: Duration = Duration::from_secs(15);

fn aapl() -> Value {
    json!({"symbols": ["AAPL"], "source_id": "yahoo_finance"})
}

fn traced(receiver: &Receiver) -> SystemOptions {
    SystemOptions {
        tracing: true,
        otlp_endpoint: Some(receiver.endpoint()),
        ..SystemOptions::default()
    }
}

/// The one span of `trace` from `service` with `kind`; panics unless there is exactly one.
fn only<'a>(trace: &'a [Span], service: &str, kind: i32) -> &'a Span {
    let found: Vec<_> = trace
        .iter()
        .filter(|s| s.service == service && s.kind == kind)
        .collect();
    assert_eq!(found.len(), 1, "{service} kind {kind} in {trace:#?}");
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traced_request_yields_one_linked_trace() {
    let receiver = Receiver::start().await;
    let system = System::start(traced(&receiver)).await;
    assert!(system.engine.ready.tracing && system.gateway.ready.tracing);
    let trace_id = new_trace_id();

    let response = system.fetch(aapl(), Some(&traceparent(&trace_id))).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-trace-id"], trace_id.as_str());
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(body["quotes"][0]["symbol"], "AAPL");
    assert_eq!(body["quotes"][0]["tick_count"], 1000);

    receiver
        .wait_for(WAIT, |spans| {
            spans.iter().filter(|s| s.trace_id == trace_id).count() >= 5
        })
        .await;
    let trace = receiver.trace(&trace_id);
    assert_eq!(trace.len(), 5, "{trace:#?}");

    let gw_server = only(&trace, "api-gateway", KIND_SERVER);
    assert_eq!(gw_server.parent_span_id, TRACEPARENT_SPAN_ID);
    assert_eq!(gw_server.name, "POST /api/v1/market-data/fetch");
    assert_eq!(gw_server.attr("http.request.method"), Some(&json!("POST")));
    assert_eq!(
        gw_server.attr("http.route"),
        Some(&json!("/api/v1/market-data/fetch"))
    );
    assert_eq!(
        gw_server.attr("url.path"),
        Some(&json!("/api/v1/market-data/fetch"))
    );
    assert_eq!(
        gw_server.attr("http.response.status_code"),
        Some(&json!(200))
    );

    let gw_client = only(&trace, "api-gateway", KIND_CLIENT);
    assert_eq!(gw_client.parent_span_id, gw_server.span_id);
    assert_eq!(
        gw_client.name,
        "core_engine.v1.CoreEngineService/FetchMarketData"
    );

    let engine_server = only(&trace, "core-engine", KIND_SERVER);
    assert_eq!(engine_server.parent_span_id, gw_client.span_id);
    assert_eq!(
        engine_server.name,
        "core_engine.v1.CoreEngineService/FetchMarketData"
    );
    for rpc in [gw_client, engine_server] {
        assert_eq!(rpc.attr("rpc.system"), Some(&json!("grpc")));
        assert_eq!(
            rpc.attr("rpc.service"),
            Some(&json!("core_engine.v1.CoreEngineService"))
        );
        assert_eq!(rpc.attr("rpc.method"), Some(&json!("FetchMarketData")));
        assert_eq!(rpc.attr("rpc.grpc.status_code"), Some(&json!(0)));
    }

    let mut stages: Vec<_> = trace
        .iter()
        .filter(|s| s.kind == KIND_INTERNAL)
        .inspect(|s| {
            assert_eq!(s.service, "core-engine");
            assert_eq!(s.parent_span_id, engine_server.span_id);
        })
        .map(|s| s.name.as_str())
        .collect();
    stages.sort_unstable();
    assert_eq!(stages, ["analytics.compute", "market_data.load"]);
    assert!(trace.iter().all(|s| s.status == STATUS_UNSET), "{trace:#?}");

    for service in [&system.gateway, &system.engine] {
        service
            .wait_for_log(WAIT, |line| {
                line["trace_id"] == trace_id.as_str() && line["span_id"].is_string()
            })
            .await;
    }
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_errors_map_to_http_status_and_error_spans() {
    let receiver = Receiver::start().await;
    let system = System::start(SystemOptions {
        engine_args: strings(&[
            "--fault-error-ratio",
            "1",
            "--fault-error-code",
            "UNAVAILABLE",
        ]),
        ..traced(&receiver)
    })
    .await;

    let failed = new_trace_id();
    let response = system.fetch(aapl(), Some(&traceparent(&failed))).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["x-trace-id"], failed.as_str());
    let body: Value = response.json().await.expect("JSON error body");
    assert_eq!(
        body,
        json!({"error": {"code": "UNAVAILABLE", "message": "injected fault"}})
    );

    // Validation comes before fault injection: a bad request is still the caller's error.
    let rejected = new_trace_id();
    let response = system
        .fetch(
            json!({"symbols": [], "source_id": "polygon"}),
            Some(&traceparent(&rejected)),
        )
        .await;
    assert_eq!(response.status(), 400);

    receiver
        .wait_for(WAIT, |spans| {
            [&failed, &rejected]
                .iter()
                .all(|id| spans.iter().filter(|s| &&s.trace_id == id).count() >= 3)
        })
        .await;

    // A server failure (UNAVAILABLE, 503) is an error on every span of the hop chain.
    let trace = receiver.trace(&failed);
    let gw_server = only(&trace, "api-gateway", KIND_SERVER);
    assert_eq!(gw_server.status, STATUS_ERROR);
    assert_eq!(
        gw_server.attr("http.response.status_code"),
        Some(&json!(503))
    );
    let gw_client = only(&trace, "api-gateway", KIND_CLIENT);
    assert_eq!(gw_client.status, STATUS_ERROR);
    assert_eq!(gw_client.attr("rpc.grpc.status_code"), Some(&json!(14)));
    let engine_server = only(&trace, "core-engine", KIND_SERVER);
    assert_eq!(engine_server.status, STATUS_ERROR);
    assert_eq!(engine_server.attr("rpc.grpc.status_code"), Some(&json!(14)));

    // A caller's error (INVALID_ARGUMENT, 400): an error for the client span only, as the HTTP and
    // RPC conventions say for server spans.
    let trace = receiver.trace(&rejected);
    let gw_server = only(&trace, "api-gateway", KIND_SERVER);
    assert_eq!(gw_server.status, STATUS_UNSET);
    assert_eq!(
        gw_server.attr("http.response.status_code"),
        Some(&json!(400))
    );
    let gw_client = only(&trace, "api-gateway", KIND_CLIENT);
    assert_eq!(gw_client.status, STATUS_ERROR);
    assert_eq!(gw_client.attr("rpc.grpc.status_code"), Some(&json!(3)));
    let engine_server = only(&trace, "core-engine", KIND_SERVER);
    assert_eq!(engine_server.status, STATUS_UNSET);
    assert_eq!(engine_server.attr("rpc.grpc.status_code"), Some(&json!(3)));
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_by_exactly_the_requests_sent() {
    // Tracing off: metrics must not depend on it.
    let system = System::start(SystemOptions {
        engine_args: strings(&[
            "--fault-error-ratio",
            "0.5",
            "--fault-error-code",
            "INTERNAL",
        ]),
        ..SystemOptions::default()
    })
    .await;
    let gateway_before = system.gateway_metrics().await;
    let engine_before = system.engine_metrics().await;

    for _ in 0..6 {
        system.fetch(aapl(), None).await;
    }
    for _ in 0..2 {
        let response = system
            .fetch(json!({"symbols": ["AAPL"], "source_id": "nope"}), None)
            .await;
        assert_eq!(response.status(), 400);
    }

    let gateway_after = system.gateway_metrics().await;
    let engine_after = system.engine_metrics().await;
    let route = r#"method="POST",path="/api/v1/market-data/fetch""#;
    for (series, delta) in [
        ("requests_total".to_owned(), 8.0),
        ("errors_total".to_owned(), 5.0),
        ("request_duration_seconds_count".to_owned(), 8.0),
        (
            format!("http_requests_total{{{route},status=\"200\"}}"),
            3.0,
        ),
        (
            format!("http_requests_total{{{route},status=\"500\"}}"),
            3.0,
        ),
        (
            format!("http_requests_total{{{route},status=\"400\"}}"),
            2.0,
        ),
        (format!("http_errors_total{{{route},status=\"500\"}}"), 3.0),
        (format!("http_errors_total{{{route},status=\"400\"}}"), 2.0),
        (
            format!("http_request_duration_seconds_count{{{route}}}"),
            8.0,
        ),
    ] {
        assert_eq!(
            gateway_after.get(&series) - gateway_before.get(&series),
            delta,
            "gateway {series}"
        );
    }
    let method = r#"method="FetchMarketData""#;
    for (series, delta) in [
        ("requests_total".to_owned(), 8.0),
        ("errors_total".to_owned(), 5.0),
        ("request_duration_seconds_count".to_owned(), 8.0),
        (
            format!("grpc_requests_total{{{method},status=\"OK\"}}"),
            3.0,
        ),
        (
            format!("grpc_requests_total{{{method},status=\"INTERNAL\"}}"),
            3.0,
        ),
        (
            format!("grpc_requests_total{{{method},status=\"INVALID_ARGUMENT\"}}"),
            2.0,
        ),
        (
            format!("grpc_errors_total{{{method},error_type=\"internal\"}}"),
            3.0,
        ),
        (
            format!("grpc_errors_total{{{method},error_type=\"invalid_argument\"}}"),
            2.0,
        ),
        (
            format!("grpc_request_duration_seconds_count{{{method}}}"),
            8.0,
        ),
    ] {
        assert_eq!(
            engine_after.get(&series) - engine_before.get(&series),
            delta,
            "engine {series}"
        );
    }

    for name in [
        "requests_total",
        "errors_total",
        "request_duration_seconds_bucket",
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "http_errors_total",
        "http_connections_active",
        "http_requests_refused_total",
    ] {
        assert!(gateway_after.has_family(name), "gateway lacks {name}");
    }
    for name in [
        "requests_total",
        "errors_total",
        "request_duration_seconds_bucket",
        "grpc_requests_total",
        "grpc_request_duration_seconds_bucket",
        "grpc_errors_total",
    ] {
        assert!(engine_after.has_family(name), "engine lacks {name}");
    }
    // The test's own keep-alive connection is open while it scrapes.
    assert!(gateway_after.get("http_connections_active") >= 1.0);
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracing_off_sends_no_span_and_no_trace_header() {
    let receiver = Receiver::start().await;
    // An endpoint is configured, so only OTEL_SDK_DISABLED stands between the services and export.
    let system = System::start(SystemOptions {
        tracing: false,
        ..traced(&receiver)
    })
    .await;
    assert!(!system.engine.ready.tracing && !system.gateway.ready.tracing);
    for _ in 0..5 {
        let response = system
            .fetch(aapl(), Some(&traceparent(&new_trace_id())))
            .await;
        assert_eq!(response.status(), 200);
        assert!(response.headers().get("x-trace-id").is_none());
    }
    // Shutdown would flush any queued span: after it, nothing can still be on its way.
    let (gateway_logs, engine_logs) = system.stop().await;
    assert!(!gateway_logs.is_empty() && !engine_logs.is_empty());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.spans().is_empty(), "{:#?}", receiver.spans());
    for line in gateway_logs.iter().chain(&engine_logs) {
        assert!(line.get("trace_id").is_none(), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drop_context_switch_breaks_the_trace_at_the_engine_hop() {
    let receiver = Receiver::start().await;
    let system = System::start(SystemOptions {
        gateway_args: strings(&["--calibration-drop-trace-context"]),
        ..traced(&receiver)
    })
    .await;
    let trace_id = new_trace_id();
    let response = system.fetch(aapl(), Some(&traceparent(&trace_id))).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-trace-id"], trace_id.as_str());

    let spans = receiver
        .wait_for(WAIT, |spans| {
            spans.iter().filter(|s| s.trace_id == trace_id).count() >= 2
                && spans.iter().filter(|s| s.service == "core-engine").count() >= 3
        })
        .await;
    let trace = receiver.trace(&trace_id);
    let gw_server = only(&trace, "api-gateway", KIND_SERVER);
    let gw_client = only(&trace, "api-gateway", KIND_CLIENT);
    assert_eq!(gw_server.parent_span_id, TRACEPARENT_SPAN_ID);
    assert_eq!(gw_client.parent_span_id, gw_server.span_id);
    assert!(
        trace.iter().all(|s| s.service == "api-gateway"),
        "{trace:#?}"
    );

    // The engine started a trace of its own, with a root span: the link is broken exactly there.
    let engine_server = only(&spans, "core-engine", KIND_SERVER);
    assert_ne!(engine_server.trace_id, trace_id);
    assert_eq!(engine_server.parent_span_id, "");
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_the_exact_status_and_message() {
    let system = System::start(SystemOptions::default()).await;
    let many: Vec<String> = (0..51).map(|i| format!("S{i}")).collect();
    let cases = [
        (
            json!({"symbols": ["AAPL"], "source_id": "bloomberg"}),
            "source_id: unknown source \"bloomberg\"; known sources: yahoo_finance, alpha_vantage, polygon, iex_cloud",
        ),
        (json!({"symbols": ["AAPL"]}), "source_id: is required"),
        (
            json!({"symbols": [], "source_id": "yahoo_finance"}),
            "symbols: at least one symbol is required",
        ),
        (
            json!({"symbols": ["AAPL", ""], "source_id": "yahoo_finance"}),
            "symbols[1]: must not be empty",
        ),
        (
            json!({"symbols": ["ABCDEFGHIJKLM"], "source_id": "yahoo_finance"}),
            "symbols[0]: \"ABCDEFGHIJKLM\" is longer than 12 characters",
        ),
        (
            json!({"symbols": ["AA$L"], "source_id": "yahoo_finance"}),
            "symbols[0]: \"AA$L\" contains '$'; allowed are A-Z, 0-9, '.', '-', '^' and '='",
        ),
        (
            json!({"symbols": many, "source_id": "yahoo_finance"}),
            "symbols: at most 50 symbols are allowed, got 51",
        ),
        (
            json!({"symbols": ["AAPL"], "source_id": "polygon", "window": 100_001}),
            "window: at most 100000 ticks, got 100001",
        ),
    ];
    for (body, message) in cases {
        let response = system.fetch(body.clone(), None).await;
        assert_eq!(response.status(), 400, "{body}");
        let error: Value = response.json().await.expect("JSON error body");
        assert_eq!(
            error,
            json!({"error": {"code": "INVALID_ARGUMENT", "message": message}}),
            "{body}"
        );
    }

    let raw = |body: &'static str, content_type: Option<&'static str>| {
        let mut request = system.http.post(system.fetch_url()).body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        request.send()
    };
    let response = raw(r#"{"symbols": ["#, Some("application/json"))
        .await
        .expect("reachable");
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.expect("JSON error body");
    assert_eq!(error["error"]["code"], "INVALID_JSON");
    let message = error["error"]["message"].as_str().expect("message");
    assert!(
        message.starts_with("Failed to parse the request body as JSON")
            && message.ends_with("at line 1 column 13"),
        "{message}"
    );

    let response = raw(r#"{"symbols": "AAPL"}"#, Some("application/json"))
        .await
        .expect("reachable");
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.expect("JSON error body");
    assert_eq!(error["error"]["code"], "INVALID_JSON");
    let message = error["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("symbols: invalid type: string \"AAPL\", expected a sequence"),
        "{message}"
    );

    let response = raw(r#"{"symbols": ["AAPL"]}"#, None)
        .await
        .expect("reachable");
    assert_eq!(response.status(), 415);
    let error: Value = response.json().await.expect("JSON error body");
    assert_eq!(error["error"]["code"], "UNSUPPORTED_MEDIA_TYPE");

    let huge = json!({"symbols": ["AAPL"], "source_id": "x".repeat(70 * 1024)});
    let response = system.fetch(huge, None).await;
    assert_eq!(response.status(), 413);
    let error: Value = response.json().await.expect("JSON error body");
    assert_eq!(error["error"]["code"], "PAYLOAD_TOO_LARGE");

    let response = system
        .http
        .post(format!(
            "http://{}/api/v1/nope",
            system.gateway.addr("http")
        ))
        .send()
        .await
        .expect("reachable");
    assert_eq!(response.status(), 404);
    let error: Value = response.json().await.expect("JSON error body");
    assert_eq!(
        error,
        json!({"error": {"code": "NOT_FOUND", "message": "no such route"}})
    );

    let response = system
        .http
        .get(system.fetch_url())
        .send()
        .await
        .expect("reachable");
    assert_eq!(response.status(), 405);
    let error: Value = response.json().await.expect("JSON error body");
    assert_eq!(error["error"]["code"], "METHOD_NOT_ALLOWED");

    // Straight to the engine: a message over the size limit is refused before any work.
    let mut client =
        CoreEngineServiceClient::connect(format!("http://{}", system.engine.addr("grpc")))
            .await
            .expect("engine reachable");
    let status = client
        .fetch_market_data(FetchMarketDataRequest {
            symbols: vec!["A".repeat(100 * 1024)],
            source_id: "polygon".into(),
            ..Default::default()
        })
        .await
        .expect_err("oversized message");
    assert_eq!(status.code(), tonic::Code::OutOfRange, "{status:?}");
    let status = client
        .fetch_market_data(FetchMarketDataRequest {
            symbols: vec!["AAPL".into()],
            source_id: "polygon".into(),
            ma_periods: vec![0],
            ..Default::default()
        })
        .await
        .expect_err("invalid period");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "ma_periods[0]: must be between 1 and the window (1000), got 0"
    );
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_results_are_served() {
    let system = System::start(SystemOptions::default()).await;
    let health = system
        .http
        .get(format!("http://{}/health", system.gateway.addr("http")))
        .send()
        .await
        .expect("reachable");
    assert_eq!(health.status(), 200);

    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{}", system.engine.addr("grpc")))
            .expect("url")
            .connect()
            .await
            .expect("engine reachable");
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "core_engine.v1.CoreEngineService".into(),
        })
        .await
        .expect("health check")
        .into_inner();
    assert_eq!(
        serving.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    // Results are a pure function of the request: the same body gives the same numbers.
    let body = json!({"symbols": ["MSFT", "brk.b"], "source_id": "polygon", "window": 500, "ma_periods": [10, 50]});
    let first: Value = system
        .fetch(body.clone(), None)
        .await
        .json()
        .await
        .expect("JSON");
    let second: Value = system.fetch(body, None).await.json().await.expect("JSON");
    assert_eq!(first, second);
    let quote = &first["quotes"][1];
    assert_eq!(quote["symbol"], "BRK.B");
    assert_eq!(quote["tick_count"], 500);
    assert_eq!(quote["moving_averages"][1]["period"], 50);
    let number = |field: &str| {
        quote[field]
            .as_f64()
            .unwrap_or_else(|| panic!("{field} in {quote}"))
    };
    let (low, high, vwap) = (number("low"), number("high"), number("vwap"));
    assert!(0.0 < low && low <= vwap && vwap <= high, "{quote}");
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_engine_gets_504_and_the_abandoned_call_is_still_counted() {
    let system = System::start(SystemOptions {
        engine_args: strings(&["--fault-latency", "3s"]),
        gateway_args: strings(&["--engine-timeout", "300ms"]),
        ..SystemOptions::default()
    })
    .await;
    let response = system.fetch(aapl(), None).await;
    assert_eq!(response.status(), 504);
    let error: Value = response.json().await.expect("JSON error body");
    assert_eq!(error["error"]["code"], "DEADLINE_EXCEEDED");

    // The engine dropped the call when its deadline passed; it counts it, as CANCELLED.
    let url = system.engine_metrics_url();
    let cancelled = r#"grpc_requests_total{method="FetchMarketData",status="CANCELLED"}"#;
    Metrics::wait_for(&system.http, &url, cancelled, 1.0, WAIT).await;
    Metrics::wait_for(&system.http, &url, "requests_in_flight", 0.0, WAIT).await;
    let gateway = system.gateway_metrics().await;
    assert_eq!(
        gateway.get(
            r#"http_requests_total{method="POST",path="/api/v1/market-data/fetch",status="504"}"#
        ),
        1.0
    );
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_and_flushes_spans() {
    let receiver = Receiver::start().await;
    let system = System::start(SystemOptions {
        engine_args: strings(&["--fault-latency", "3s"]),
        ..traced(&receiver)
    })
    .await;
    // Open the gateway's engine connection first: the request under test must not need a new one.
    system
        .http
        .get(format!("http://{}/health", system.gateway.addr("http")))
        .send()
        .await
        .expect("reachable");
    let trace_id = new_trace_id();
    let in_flight = {
        let (http, url, tp) = (
            system.http.clone(),
            system.fetch_url(),
            traceparent(&trace_id),
        );
        tokio::spawn(async move {
            http.post(url)
                .header("traceparent", tp)
                .json(&aapl())
                .send()
                .await
        })
    };
    Metrics::wait_for(
        &system.http,
        &system.engine_metrics_url(),
        "requests_in_flight",
        1.0,
        WAIT,
    )
    .await;
    let gateway_addr = system.gateway.addr("http");
    system.gateway.signal(Signal::SIGTERM);
    system.engine.signal(Signal::SIGTERM);

    // New connections are refused while the in-flight request is still being served.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::net::TcpStream::connect(gateway_addr).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gateway still accepting after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !in_flight.is_finished(),
        "the slow request should still be running"
    );

    let response = in_flight
        .await
        .expect("task")
        .expect("in-flight request completes");
    assert_eq!(response.status(), 200);
    system.stop().await;
    // Spans still queued at SIGTERM were flushed on the way out: the whole trace arrived.
    assert_eq!(
        receiver.trace(&trace_id).len(),
        5,
        "{:#?}",
        receiver.spans()
    );
}
