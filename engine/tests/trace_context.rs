//! W3C Trace Context at both services, as real processes: a `traceparent` the specification
//! refuses, or one sent twice, is ignored and a new trace starts; a valid one is continued.

mod support;

use std::time::Duration;

use engine::proto::FetchMarketDataRequest;
use engine::proto::core_engine_service_client::CoreEngineServiceClient;
use serde_json::json;
use support::otlp::{KIND_SERVER, Receiver, Span};
use support::{System, SystemOptions, TRACEPARENT_SPAN_ID, new_trace_id, traceparent};

const WAIT: Duration = Duration::from_secs(15);

/// The trace id every malformed header below is built around.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// Headers the OpenTelemetry SDK's own propagator continues (it pads short ids, takes a sign,
/// one-digit flags and version), or that break a rule it checks too; the specification says each
/// must be ignored.
const MALFORMED: &[&str] = &[
    "00-1-00f067aa0ba902b7-01",
    "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
    "00-+4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-1-01",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
    "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
    "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
];

/// Two headers, each valid alone.
const TWICE: [&str; 2] = [
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "00-4bf92f3577b34da6a3ce929d0e0e4737-00f067aa0ba902b7-01",
];

/// Trace ids a lax reader would continue from the headers above.
const CONTINUED_BY_A_LAX_READER: &[&str] = &[
    TRACE_ID,
    "4bf92f3577b34da6a3ce929d0e0e4737",
    "00000000000000000000000000000001",
    "04bf92f3577b34da6a3ce929d0e0e473",
];

/// Server spans of `service` that start a trace of their own.
fn roots<'a>(spans: &'a [Span], service: &str) -> Vec<&'a Span> {
    spans
        .iter()
        .filter(|s| s.service == service && s.kind == KIND_SERVER && s.parent_span_id.is_empty())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_or_repeated_traceparents_start_new_traces_at_both_services() {
    let receiver = Receiver::start().await;
    let system = System::start(SystemOptions {
        tracing: true,
        otlp_endpoint: Some(receiver.endpoint()),
        ..SystemOptions::default()
    })
    .await;
    let body = json!({"symbols": ["AAPL"], "source_id": "yahoo_finance"});

    // The gateway, over HTTP.
    let mut cases: Vec<Vec<&str>> = MALFORMED.iter().map(|h| vec![*h]).collect();
    cases.push(TWICE.to_vec());
    for headers in &cases {
        let mut request = system.http.post(system.fetch_url()).json(&body);
        for value in headers {
            request = request.header("traceparent", *value);
        }
        let response = request.send().await.expect("gateway reachable");
        assert_eq!(response.status(), 200, "{headers:?}");
        let used = response.headers()["x-trace-id"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(
            !CONTINUED_BY_A_LAX_READER.contains(&used.as_str()),
            "{headers:?} was continued as {used}"
        );
    }
    let control = new_trace_id();
    let response = system
        .fetch(body.clone(), Some(&traceparent(&control)))
        .await;
    assert_eq!(response.headers()["x-trace-id"], control.as_str());

    // The engine, over gRPC.
    let mut client =
        CoreEngineServiceClient::connect(format!("http://{}", system.engine.addr("grpc")))
            .await
            .expect("engine reachable");
    let call = |headers: Vec<String>| {
        let mut request = tonic::Request::new(FetchMarketDataRequest {
            symbols: vec!["AAPL".into()],
            source_id: "yahoo_finance".into(),
            ..Default::default()
        });
        for value in headers {
            request
                .metadata_mut()
                .append("traceparent", value.parse().expect("ascii"));
        }
        request
    };
    for headers in &cases {
        let owned = headers.iter().map(|h| (*h).to_owned()).collect();
        client
            .fetch_market_data(call(owned))
            .await
            .unwrap_or_else(|status| panic!("{headers:?}: {status:?}"));
    }
    let engine_control = new_trace_id();
    client
        .fetch_market_data(call(vec![traceparent(&engine_control)]))
        .await
        .expect("a valid parent");

    let spans = receiver
        .wait_for(WAIT, |spans| {
            roots(spans, "api-gateway").len() >= cases.len()
                && roots(spans, "core-engine").len() >= cases.len()
                && spans.iter().any(|s| s.trace_id == engine_control)
        })
        .await;
    for service in ["api-gateway", "core-engine"] {
        assert_eq!(roots(&spans, service).len(), cases.len(), "{service}");
    }
    assert!(
        spans
            .iter()
            .all(|s| !CONTINUED_BY_A_LAX_READER.contains(&s.trace_id.as_str())),
        "a malformed parent was continued: {spans:#?}"
    );
    // The valid parents were continued, at each service.
    for (service, trace_id) in [("api-gateway", &control), ("core-engine", &engine_control)] {
        let server = spans
            .iter()
            .find(|s| s.service == service && s.kind == KIND_SERVER && s.trace_id == *trace_id)
            .unwrap_or_else(|| panic!("no {service} server span in trace {trace_id}"));
        assert_eq!(server.parent_span_id, TRACEPARENT_SPAN_ID, "{service}");
    }
    system.stop().await;
}
