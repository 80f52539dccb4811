use std::collections::BTreeMap;
use std::io::Write as _;

use opentelemetry::trace::{
    Span as _, SpanContext, Status, TraceContextExt as _, TraceFlags, TraceState, Tracer as _,
    TracerProvider as _,
};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1 as otlp;
use opentelemetry_sdk::Resource as SdkResource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use prost::Message as _;
use tonic::codec::CompressionEncoding;

use super::convert::{SpanIds, attr_value, service_name, span_kind, span_status};
use super::http::{RPC_INVALID_ARGUMENT, RpcStatus};
use super::*;
use crate::trace::{AttrValue, Span, SpanId, SpanKind, SpanStatus};

const WANTED: TraceId = TraceId(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736);
const OTHER: TraceId = TraceId(0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c);

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn otlp_span(trace: TraceId, id: u64, parent: Option<u64>, name: &str) -> otlp::Span {
    otlp::Span {
        trace_id: trace.0.to_be_bytes().to_vec(),
        span_id: id.to_be_bytes().to_vec(),
        parent_span_id: parent.map(|p| p.to_be_bytes().to_vec()).unwrap_or_default(),
        name: name.to_owned(),
        kind: 2,
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_000_001_000_000,
        attributes: vec![kv("http.route", any_value::Value::StringValue("/q".into()))],
        status: Some(otlp::Status {
            code: 1,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn request(service: &str, spans: Vec<otlp::Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![otlp::ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv(
                    "service.name",
                    any_value::Value::StringValue(service.to_owned()),
                )],
                ..Default::default()
            }),
            scope_spans: vec![otlp::ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// The model span that `otlp_span` turns into.
fn expected_span(trace: TraceId, id: u64, parent: Option<u64>, name: &str) -> Span {
    Span {
        trace_id: trace,
        span_id: SpanId(id),
        parent: parent.map(SpanId),
        service: "core-engine".to_owned(),
        name: name.to_owned(),
        kind: SpanKind::Server,
        status: SpanStatus::Ok,
        attributes: BTreeMap::from([("http.route".to_owned(), AttrValue::String("/q".to_owned()))]),
        start_unix_nanos: 1_700_000_000_000_000_000,
        end_unix_nanos: 1_700_000_000_001_000_000,
        links: Vec::new(),
        details: core_engine_resource(),
    }
}

/// The details of a span that the `core-engine` resource sent, with nothing else.
fn core_engine_resource() -> crate::trace::SpanDetails {
    crate::trace::SpanDetails {
        resource: vec![(
            "service.name".to_owned(),
            AttrValue::String("core-engine".to_owned()),
        )]
        .into(),
        ..Default::default()
    }
}

fn start(config: ReceiverConfig) -> Receiver {
    Receiver::start(config).expect("receiver starts")
}

async fn fetch(receiver: &Receiver, id: TraceId) -> Option<Trace> {
    receiver.fetch(id).await.expect("fetch")
}

async fn post(
    receiver: &Receiver,
    headers: &[(&str, &str)],
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    let mut builder = reqwest::Client::new()
        .post(format!("{}/v1/traces", receiver.http_endpoint()))
        .body(body);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.send().await.expect("POST reaches the receiver")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

fn assert_accounted(stats: ReceiverStats) {
    assert_eq!(
        stats.spans_received,
        stats.spans_kept + stats.spans_unwanted + stats.spans_over_limit + stats.spans_rejected,
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_from_the_sdk_exporter_arrive_linked_with_kinds_status_and_attributes() {
    let receiver = start(ReceiverConfig::default());
    assert!(receiver.want(WANTED));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(receiver.grpc_endpoint())
        .build()
        .expect("exporter");
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            SdkResource::builder_empty()
                .with_service_name("api-gateway")
                .build(),
        )
        .build();
    let tracer = provider.tracer("receiver-test");

    let remote_parent = 0x00f0_67aa_0ba9_02b7_u64;
    let incoming = opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
        opentelemetry::trace::TraceId::from(WANTED.0),
        opentelemetry::trace::SpanId::from(remote_parent),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    ));
    let server = tracer
        .span_builder("POST /api/v1/market-data/fetch")
        .with_kind(opentelemetry::trace::SpanKind::Server)
        .with_attributes([
            opentelemetry::KeyValue::new("http.request.method", "POST"),
            opentelemetry::KeyValue::new("http.response.status_code", 502_i64),
            opentelemetry::KeyValue::new("retried", true),
            opentelemetry::KeyValue::new("load", 0.25),
            opentelemetry::KeyValue::new(
                "symbols",
                opentelemetry::Value::Array(opentelemetry::Array::String(vec![
                    "AAPL".into(),
                    "MSFT".into(),
                ])),
            ),
        ])
        .start_with_context(&tracer, &incoming);
    let in_server = incoming.with_span(server);
    let mut client = tracer
        .span_builder("market.CoreEngine/Fetch")
        .with_kind(opentelemetry::trace::SpanKind::Client)
        .start_with_context(&tracer, &in_server);
    client.set_status(Status::error("upstream unavailable"));
    client.end();
    in_server.span().end();
    let mut stray = tracer.start_with_context("unrelated", &opentelemetry::Context::new());
    stray.end();

    let flusher = provider.clone();
    tokio::task::spawn_blocking(move || flusher.force_flush())
        .await
        .expect("flush task")
        .expect("flush");

    let trace = fetch(&receiver, WANTED).await.expect("the wanted trace");
    assert_eq!(trace.spans.len(), 2, "{trace:#?}");
    let by_name = |name: &str| {
        trace
            .spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no span {name} in {trace:#?}"))
    };
    let server = by_name("POST /api/v1/market-data/fetch");
    let client = by_name("market.CoreEngine/Fetch");
    assert_eq!(server.parent, Some(SpanId(remote_parent)));
    assert_eq!(client.parent, Some(server.span_id));
    assert_eq!(
        (server.kind, client.kind),
        (SpanKind::Server, SpanKind::Client)
    );
    assert_eq!(
        (server.status, client.status),
        (SpanStatus::Unset, SpanStatus::Error)
    );
    for span in [server, client] {
        assert_eq!(span.trace_id, WANTED);
        assert_eq!(span.service, "api-gateway");
        assert!(span.start_unix_nanos > 0 && span.start_unix_nanos <= span.end_unix_nanos);
    }
    let attr = |key: &str| server.attributes.get(key).cloned();
    assert_eq!(
        attr("http.request.method"),
        Some(AttrValue::String("POST".into()))
    );
    assert_eq!(attr("http.response.status_code"), Some(AttrValue::Int(502)));
    assert_eq!(attr("retried"), Some(AttrValue::Bool(true)));
    assert_eq!(attr("load"), Some(AttrValue::Double(0.25)));
    assert_eq!(
        attr("symbols"),
        Some(AttrValue::Other(r#"["AAPL","MSFT"]"#.into()))
    );

    let stats = receiver.stats();
    assert_eq!(
        (stats.spans_received, stats.spans_kept, stats.spans_unwanted),
        (3, 2, 1),
        "{stats:?}"
    );
    assert_accounted(stats);

    // The exporter's connection is still open: shutdown must not wait on it for ever.
    let (grpc, http) = (receiver.grpc_addr(), receiver.http_addr());
    receiver.shutdown().await.expect("clean shutdown");
    assert!(tokio::net::TcpStream::connect(grpc).await.is_err());
    assert!(tokio::net::TcpStream::connect(http).await.is_err());
    // Sending to a stopped receiver fails in the exporter, not here.
    let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
}

#[tokio::test]
async fn http_protobuf_export_is_stored_and_answered_in_protobuf() {
    let receiver = start(ReceiverConfig::default());
    receiver.want(WANTED);
    let body = request(
        "core-engine",
        vec![
            otlp_span(WANTED, 1, None, "root"),
            otlp_span(WANTED, 2, Some(1), "child"),
            otlp_span(OTHER, 3, None, "elsewhere"),
        ],
    )
    .encode_to_vec();
    let response = post(
        &receiver,
        &[("content-type", "application/x-protobuf")],
        body,
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-protobuf");
    let answer = ExportTraceServiceResponse::decode(response.bytes().await.expect("body"))
        .expect("a protobuf ExportTraceServiceResponse");
    assert_eq!(answer.partial_success, None);

    let trace = fetch(&receiver, WANTED).await.expect("stored");
    assert_eq!(
        trace.spans,
        vec![
            expected_span(WANTED, 1, None, "root"),
            expected_span(WANTED, 2, Some(1), "child"),
        ]
    );
    assert_eq!(fetch(&receiver, OTHER).await, None);
    let stats = receiver.stats();
    assert_eq!((stats.batches, stats.spans_unwanted), (1, 1), "{stats:?}");
    assert_accounted(stats);
}

#[tokio::test]
async fn http_json_export_is_stored() {
    let receiver = start(ReceiverConfig::default());
    let trace_id: TraceId = "5b8efff798038103d269b633813fc60c".parse().expect("hex");
    receiver.want(trace_id);
    let body = r#"{"resourceSpans":[{
        "resource":{"attributes":[{"key":"service.name","value":{"stringValue":"core-engine"}}]},
        "scopeSpans":[{"scope":{"name":"engine"},"spans":[{
            "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
            "parentSpanId":"eee19b7ec3c1b173","name":"market.CoreEngine/Fetch","kind":2,
            "startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000",
            "attributes":[{"key":"rpc.grpc.status_code","value":{"intValue":"0"}},
                          {"key":"rpc.system","value":{"stringValue":"grpc"}}],
            "status":{"code":2,"message":"boom"}}]}]}]}"#;
    let response = post(
        &receiver,
        &[("content-type", "application/json; charset=utf-8")],
        body,
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let answer: serde_json::Value = response.json().await.expect("JSON answer");
    assert!(answer.is_object(), "{answer}");

    let trace = fetch(&receiver, trace_id).await.expect("stored");
    assert_eq!(
        trace.spans,
        vec![Span {
            trace_id,
            span_id: "eee19b7ec3c1b174".parse().expect("hex"),
            parent: Some("eee19b7ec3c1b173".parse().expect("hex")),
            service: "core-engine".to_owned(),
            name: "market.CoreEngine/Fetch".to_owned(),
            kind: SpanKind::Server,
            status: SpanStatus::Error,
            attributes: BTreeMap::from([
                ("rpc.grpc.status_code".to_owned(), AttrValue::Int(0)),
                ("rpc.system".to_owned(), AttrValue::String("grpc".into())),
            ]),
            start_unix_nanos: 1_544_712_660_000_000_000,
            end_unix_nanos: 1_544_712_661_000_000_000,
            links: Vec::new(),
            // The status message and the resource are kept for the search for personal data.
            details: crate::trace::SpanDetails {
                status_message: "boom".to_owned(),
                ..core_engine_resource()
            },
        }]
    );
}

#[tokio::test]
async fn http_refuses_what_it_cannot_read() {
    let receiver = start(ReceiverConfig::default());
    let valid = request("core-engine", vec![otlp_span(WANTED, 1, None, "root")]).encode_to_vec();

    let response = post(&receiver, &[("content-type", "text/plain")], valid.clone()).await;
    assert_eq!(response.status(), 415);
    let text = response.text().await.expect("body");
    assert!(text.contains("application/x-protobuf"), "{text}");

    let response = post(
        &receiver,
        &[
            ("content-type", "application/x-protobuf"),
            ("content-encoding", "br"),
        ],
        valid,
    )
    .await;
    assert_eq!(response.status(), 415);

    let garbage = vec![0xff, 0xff, 0xff];
    assert!(ExportTraceServiceRequest::decode(garbage.as_slice()).is_err());
    let response = post(
        &receiver,
        &[("content-type", "application/x-protobuf")],
        garbage,
    )
    .await;
    assert_eq!(response.status(), 400);
    let status =
        RpcStatus::decode(response.bytes().await.expect("body")).expect("a google.rpc.Status body");
    assert_eq!(status.code, RPC_INVALID_ARGUMENT);
    assert!(status.message.contains("protobuf"), "{status:?}");

    let response = post(&receiver, &[("content-type", "application/json")], "{").await;
    assert_eq!(response.status(), 400);

    let client = reqwest::Client::new();
    let url = format!("{}/v1/traces", receiver.http_endpoint());
    let response = client.get(&url).send().await.expect("GET");
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    let response = client
        .post(format!("{}/v1/metrics", receiver.http_endpoint()))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 404);

    let stats = receiver.stats();
    assert_eq!(stats.rejected_requests, 6, "{stats:?}");
    assert_eq!(stats.batches, 0, "{stats:?}");
}

#[tokio::test]
async fn http_gzip_bodies_are_inflated_within_the_size_limit() {
    let limit = 64 * 1024;
    let receiver = start(ReceiverConfig {
        max_message_bytes: limit,
        ..ReceiverConfig::default()
    });
    receiver.want(WANTED);
    let headers = [
        ("content-type", "application/x-protobuf"),
        ("content-encoding", "gzip"),
    ];
    let body = request("core-engine", vec![otlp_span(WANTED, 1, None, "root")]);
    let response = post(&receiver, &headers, gzip(&body.encode_to_vec())).await;
    assert_eq!(response.status(), 200);
    let trace = fetch(&receiver, WANTED).await.expect("stored");
    assert_eq!(trace.spans, vec![expected_span(WANTED, 1, None, "root")]);

    // Small on the wire, four times the limit inflated.
    let bomb = gzip(&vec![0; 4 * limit]);
    assert!(bomb.len() < limit);
    let response = post(&receiver, &headers, bomb).await;
    assert_eq!(response.status(), 413);

    let response = post(
        &receiver,
        &[("content-type", "application/x-protobuf")],
        vec![0; limit + 1],
    )
    .await;
    assert_eq!(response.status(), 413);
    assert_eq!(receiver.stats().rejected_requests, 2);
}

#[tokio::test]
async fn http_bodies_held_at_once_are_bounded_and_the_rest_told_to_retry() {
    use tokio::io::AsyncWriteExt as _;

    let limit = 64 * 1024;
    let receiver = start(ReceiverConfig {
        max_message_bytes: limit,
        ..ReceiverConfig::default()
    });
    receiver.want(WANTED);
    let addr = receiver
        .http_endpoint()
        .trim_start_matches("http://")
        .to_owned();
    // Two bodies of the largest size, announced and half sent: the budget is taken.
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut stream = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connects");
        let head = format!(
            "POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\n\
             content-length: {limit}\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.expect("head");
        stream
            .write_all(&vec![0; limit / 2])
            .await
            .expect("half a body");
        slow.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let body = request("core-engine", vec![otlp_span(WANTED, 1, None, "root")]).encode_to_vec();
    let headers = [("content-type", "application/x-protobuf")];
    let response = post(&receiver, &headers, body.clone()).await;
    assert_eq!(response.status(), 429);
    assert_eq!(
        response.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    let status = RpcStatus::decode(response.bytes().await.expect("body")).expect("rpc status");
    assert_eq!(status.code, 8, "RESOURCE_EXHAUSTED");
    // Once they are gone, the same export is taken.
    drop(slow);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let response = post(&receiver, &headers, body).await;
    assert_eq!(response.status(), 200);
    assert!(fetch(&receiver, WANTED).await.is_some());
}

#[tokio::test]
async fn spans_beyond_the_trace_limit_and_malformed_ids_are_counted_not_kept() {
    let receiver = start(ReceiverConfig {
        max_spans_per_trace: 3,
        ..ReceiverConfig::default()
    });
    receiver.want(WANTED);
    let mut spans: Vec<_> = (1..=5)
        .map(|id| otlp_span(WANTED, id, None, "many"))
        .collect();
    let malformed = [
        otlp::Span {
            trace_id: vec![7; 15],
            ..otlp_span(WANTED, 6, None, "short trace id")
        },
        otlp::Span {
            span_id: vec![7; 9],
            ..otlp_span(WANTED, 7, None, "long span id")
        },
        otlp::Span {
            parent_span_id: vec![7; 4],
            ..otlp_span(WANTED, 8, None, "short parent id")
        },
        otlp_span(TraceId(0), 9, None, "zero trace id"),
    ];
    spans.extend(malformed);
    // Gzip as well, which collectors' exporters send by default.
    let mut client = TraceServiceClient::connect(receiver.grpc_endpoint())
        .await
        .expect("connect")
        .send_compressed(CompressionEncoding::Gzip);
    let answer = client
        .export(request("core-engine", spans))
        .await
        .expect("the batch is accepted")
        .into_inner();
    let partial = answer.partial_success.expect("partial success reported");
    assert_eq!(partial.rejected_spans, 4);

    let trace = fetch(&receiver, WANTED).await.expect("stored");
    let ids: Vec<_> = trace.spans.iter().map(|s| s.span_id.0).collect();
    assert_eq!(ids, vec![1, 2, 3]);
    let stats = receiver.stats();
    assert_eq!(
        (
            stats.spans_received,
            stats.spans_kept,
            stats.spans_over_limit,
            stats.spans_rejected
        ),
        (9, 3, 2, 4),
        "{stats:?}"
    );
    assert_accounted(stats);
}

#[tokio::test]
async fn wants_beyond_the_trace_limit_are_refused_and_their_spans_dropped() {
    let receiver = start(ReceiverConfig {
        max_traces: 2,
        ..ReceiverConfig::default()
    });
    let third = TraceId(3);
    assert!(receiver.want(WANTED));
    assert!(receiver.want(WANTED), "registering again is not refused");
    assert!(receiver.want(OTHER));
    assert!(!receiver.want(third));
    assert_eq!(receiver.stats().wants_refused, 1);
    assert_eq!(fetch(&receiver, WANTED).await, None, "wanted, nothing yet");

    let mut client = TraceServiceClient::connect(receiver.grpc_endpoint())
        .await
        .expect("connect");
    client
        .export(request(
            "core-engine",
            vec![otlp_span(third, 1, None, "late")],
        ))
        .await
        .expect("export");
    assert_eq!(fetch(&receiver, third).await, None);
    assert_eq!(receiver.stats().spans_unwanted, 1);
}

#[tokio::test]
async fn held_spans_are_kept_by_a_later_want_and_the_oldest_dropped() {
    let receiver = start(ReceiverConfig {
        held_unwanted_spans: 3,
        ..ReceiverConfig::default()
    });
    let mut client = TraceServiceClient::connect(receiver.grpc_endpoint())
        .await
        .expect("connect");
    let (first, second) = (TraceId(1), TraceId(2));
    let mut linked = otlp_span(WANTED, 3, None, "consumer");
    linked.links = vec![otlp::span::Link {
        trace_id: OTHER.0.to_be_bytes().to_vec(),
        span_id: 9_u64.to_be_bytes().to_vec(),
        ..Default::default()
    }];
    // Five spans before any want: only the last three (two traces) are held.
    client
        .export(request(
            "core-engine",
            vec![
                otlp_span(first, 1, None, "a"),
                otlp_span(first, 2, Some(1), "b"),
                otlp_span(second, 1, None, "c"),
                otlp_span(WANTED, 2, Some(3), "producer"),
                linked,
            ],
        ))
        .await
        .expect("export");
    assert_eq!(receiver.stats().spans_unwanted, 5);
    assert!(receiver.want(first));
    assert_eq!(fetch(&receiver, first).await, None, "dropped as the oldest");
    assert!(receiver.want(WANTED));
    let trace = fetch(&receiver, WANTED).await.expect("held, then kept");
    assert_eq!(trace.spans.len(), 2);
    let consumer = trace
        .spans
        .iter()
        .find(|s| s.name == "consumer")
        .expect("consumer");
    assert_eq!(consumer.links, [(OTHER, SpanId(9))]);
    let stats = receiver.stats();
    assert_eq!(
        (stats.spans_kept, stats.spans_unwanted),
        (2, 3),
        "{stats:?}"
    );
}

#[tokio::test]
async fn grpc_exports_larger_than_tonics_default_limit_are_accepted() {
    let padding = "x".repeat(1024);
    let spans: Vec<_> = (1..=5_000)
        .map(|id| otlp::Span {
            attributes: vec![kv(
                "padding",
                any_value::Value::StringValue(padding.clone()),
            )],
            ..otlp_span(OTHER, id, None, "big")
        })
        .collect();
    let batch = request("core-engine", spans);
    assert!(batch.encoded_len() > 4 * 1024 * 1024);

    let receiver = start(ReceiverConfig::default());
    let mut client = TraceServiceClient::connect(receiver.grpc_endpoint())
        .await
        .expect("connect");
    client.export(batch.clone()).await.expect("accepted");
    assert_eq!(receiver.stats().spans_received, 5_000);

    // The same batch against tonic's default limit: proves the batch is big enough to matter.
    let strict = start(ReceiverConfig {
        max_message_bytes: 4 * 1024 * 1024,
        ..ReceiverConfig::default()
    });
    let mut client = TraceServiceClient::connect(strict.grpc_endpoint())
        .await
        .expect("connect");
    assert!(client.export(batch).await.is_err());
    assert_eq!(strict.stats().batches, 0);
}

#[tokio::test]
async fn names_its_endpoints_and_stops_when_dropped() {
    let receiver = start(ReceiverConfig::default());
    let (grpc, http) = (receiver.grpc_addr(), receiver.http_addr());
    assert!(grpc.ip().is_loopback() && http.ip().is_loopback());
    assert_ne!(grpc.port(), 0);
    assert_eq!(
        receiver.grpc_endpoint(),
        format!("http://127.0.0.1:{}", grpc.port())
    );
    assert_eq!(
        receiver.describe(),
        format!(
            "embedded OTLP receiver (grpc 127.0.0.1:{}, http 127.0.0.1:{})",
            grpc.port(),
            http.port()
        )
    );

    drop(receiver);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(grpc).await.is_ok()
        || tokio::net::TcpStream::connect(http).await.is_ok()
    {
        assert!(tokio::time::Instant::now() < deadline, "still listening");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn a_taken_port_is_reported_at_start() {
    let first = start(ReceiverConfig::default());
    let clash = Receiver::start(ReceiverConfig {
        http_addr: first.http_addr(),
        ..ReceiverConfig::default()
    });
    assert!(
        matches!(
            clash,
            Err(ReceiverError::Bind {
                protocol: "HTTP",
                ..
            })
        ),
        "{:?}",
        clash.err()
    );
}

#[test]
fn proto_values_become_model_values() {
    use any_value::Value as V;
    let inner = |value| AnyValue { value: Some(value) };
    assert_eq!(
        attr_value(Some(V::StringValue("a".into()))),
        AttrValue::String("a".into())
    );
    assert_eq!(attr_value(Some(V::IntValue(-3))), AttrValue::Int(-3));
    assert_eq!(
        attr_value(Some(V::DoubleValue(1.5))),
        AttrValue::Double(1.5)
    );
    assert_eq!(
        attr_value(Some(V::BoolValue(false))),
        AttrValue::Bool(false)
    );
    assert_eq!(attr_value(None), AttrValue::Other("null".into()));
    assert_eq!(
        attr_value(Some(V::BytesValue(vec![1, 2, 3]))),
        AttrValue::Other(r#""AQID""#.into())
    );
    let nested = V::KvlistValue(opentelemetry_proto::tonic::common::v1::KeyValueList {
        values: vec![
            kv(
                "ids",
                V::ArrayValue(opentelemetry_proto::tonic::common::v1::ArrayValue {
                    values: vec![inner(V::IntValue(1)), inner(V::BoolValue(true))],
                }),
            ),
            KeyValue {
                key: "empty".into(),
                ..Default::default()
            },
        ],
    });
    assert_eq!(
        attr_value(Some(nested)),
        AttrValue::Other(r#"{"empty":null,"ids":[1,true]}"#.into())
    );

    let kinds: Vec<_> = (0..=6).map(span_kind).collect();
    assert_eq!(
        kinds,
        [
            SpanKind::Unspecified,
            SpanKind::Internal,
            SpanKind::Server,
            SpanKind::Client,
            SpanKind::Producer,
            SpanKind::Consumer,
            SpanKind::Unspecified,
        ]
    );
    let statuses: Vec<_> = (0..=3).map(span_status).collect();
    assert_eq!(
        statuses,
        [
            SpanStatus::Unset,
            SpanStatus::Ok,
            SpanStatus::Error,
            SpanStatus::Unset
        ]
    );
    assert_eq!(service_name(None), "");
    assert_eq!(
        service_name(Some(&Resource {
            attributes: vec![kv("service.name", V::StringValue("gw".into()))],
            ..Default::default()
        })),
        "gw"
    );
}

#[test]
fn a_zero_filled_parent_marks_a_root() {
    let span = otlp::Span {
        parent_span_id: vec![0; 8],
        ..otlp_span(WANTED, 1, None, "root")
    };
    let ids = SpanIds::of(&span).expect("valid ids");
    assert_eq!(ids.parent, None);
    let zero_span = otlp::Span {
        span_id: vec![0; 8],
        ..otlp_span(WANTED, 1, None, "root")
    };
    assert_eq!(SpanIds::of(&zero_span), None);
}

#[test]
fn released_traces_are_dropped_so_the_store_holds_only_those_awaited() {
    let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let store = Store::new(
        &ReceiverConfig {
            max_traces: 4,
            ..ReceiverConfig::default()
        },
        loopback,
        loopback,
    );
    // Far more traces than the limit, one after another as a long run's sample arrives: each is
    // kept while awaited and dropped once released, so none is refused and nothing accumulates.
    let traces = 10_000_u128;
    for n in 1..=traces {
        let id = TraceId(n);
        assert!(store.want(id), "trace {n} refused");
        store.ingest(request("core-engine", vec![otlp_span(id, 1, None, "q")]));
        assert!(store.lookup(id).is_some(), "trace {n} kept while awaited");
        store.forget(id);
        assert_eq!(store.lookup(id), None, "trace {n} dropped once released");
        assert!(store.registered() <= 1);
    }
    assert_eq!(store.registered(), 0);
    let stats = store.stats();
    assert_eq!((stats.spans_kept, stats.wants_refused), (10_000, 0));

    // A span arriving after its trace was released is counted, not kept.
    store.ingest(request(
        "core-engine",
        vec![otlp_span(TraceId(1), 2, Some(1), "late")],
    ));
    assert_eq!(store.lookup(TraceId(1)), None);
    assert_eq!(store.stats().spans_unwanted, 1);
    store.forget(TraceId(1));
    assert_eq!(
        store.registered(),
        0,
        "forgetting twice frees one place once"
    );
}
