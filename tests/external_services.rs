//! The servers this project did not write, on their own: the quote service built on the
//! OpenTelemetry Python SDK, and nginx proxying to it over HTTP/1.1, h2c and TLS (h2 and
//! http/1.1 by ALPN). The harness's end-to-end tests against "any service" stand on these.

mod support;

use std::net::SocketAddr;

use harness::trace::{
    Receiver, ReceiverConfig, ReceiverStats, Span, SpanId, SpanKind, TraceId, TraceSource,
};
use hyper::Version;
use support::client::{
    Answer, Protocol, TIMEOUT, TestCert, labels, plain, request, samples, send, tls,
};
use support::nginx::{NginxConfig, NginxServer};
use support::python::{QuoteOptions, QuoteServices};
use tokio::net::TcpStream;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

const KEY: &str = "quote-test-key";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const QUOTE: &str = r#"{"symbol":"ACME"}"#;
const QUOTE_ROUTE: &str = "/v2/quote";
const PRICE_METHOD: &str = "quotes.v1.Prices/GetPrice";
const QUOTE_METHOD: &str = "quotes.v1.Quotes/GetQuote";

async fn http_count(services: &QuoteServices, route: &str, status: &str) -> f64 {
    let all = samples(&services.front.metrics_url(), "http_requests_total").await;
    let key = labels(&[("method", "POST"), ("route", route), ("status", status)]);
    all.get(&key).copied().unwrap_or(0.0)
}

async fn prices_answered(services: &QuoteServices) -> f64 {
    let all = samples(&services.back.metrics_url(), "grpc_server_handled_total").await;
    let key = labels(&[("grpc_method", PRICE_METHOD), ("grpc_code", "OK")]);
    all.get(&key).copied().unwrap_or(0.0)
}

fn start_services(test: &str, options: QuoteOptions) -> Option<QuoteServices> {
    let python = support::python::python(test)?;
    Some(QuoteServices::start(&python, &options))
}

fn assert_quote(answer: &Answer, via: &str) {
    assert_eq!(answer.status, 200, "{via}: {answer:?}");
    assert_eq!(
        answer.header("x-trace-id"),
        Some(TRACE_ID),
        "{via}: {answer:?}"
    );
    let body = answer.json();
    assert_eq!(body["symbol"], "ACME", "{via}: {body}");
    assert!(
        body["price"].as_f64().is_some_and(|p| p > 0.0),
        "{via}: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_proxies_quotes_over_http1_h2c_and_tls() {
    const TEST: &str = "nginx_proxies_quotes_over_http1_h2c_and_tls";
    let Some(nginx_binary) = support::nginx::binary(TEST) else {
        return;
    };
    let options = QuoteOptions {
        api_key: Some(KEY.to_owned()),
        ..QuoteOptions::default()
    };
    let Some(services) = start_services(TEST, options) else {
        return;
    };
    let cert = TestCert::new();
    let nginx = NginxServer::start(
        &nginx_binary,
        &NginxConfig {
            upstream: services.front_http(),
            grpc_upstream: None,
            cert_pem: &cert.cert(),
            key_pem: &cert.key(),
        },
    );
    let quote_headers = [("x-api-key", KEY), ("traceparent", TRACEPARENT)];
    let quote = |protocol, scheme, addr: SocketAddr| {
        request(
            protocol,
            scheme,
            &addr.to_string(),
            "POST",
            QUOTE_ROUTE,
            &quote_headers,
            QUOTE,
        )
    };
    let tls_authority = format!("localhost:{}", nginx.tls.port());
    let tls_quote = |protocol| {
        request(
            protocol,
            "https",
            &tls_authority,
            "POST",
            QUOTE_ROUTE,
            &quote_headers,
            QUOTE,
        )
    };

    let answers = [
        (
            "HTTP/1.1",
            Version::HTTP_11,
            plain(
                nginx.http,
                Protocol::Http1,
                quote(Protocol::Http1, "http", nginx.http),
            )
            .await,
        ),
        (
            "h2c",
            Version::HTTP_2,
            plain(
                nginx.h2c,
                Protocol::Http2,
                quote(Protocol::Http2, "http", nginx.h2c),
            )
            .await,
        ),
        (
            "TLS h2",
            Version::HTTP_2,
            tls(
                nginx.tls,
                &cert.roots,
                Protocol::Http2,
                tls_quote(Protocol::Http2),
            )
            .await,
        ),
        (
            "TLS HTTP/1.1",
            Version::HTTP_11,
            tls(
                nginx.tls,
                &cert.roots,
                Protocol::Http1,
                tls_quote(Protocol::Http1),
            )
            .await,
        ),
    ];
    for (via, version, answer) in &answers {
        assert_quote(answer, via);
        assert_eq!(answer.version, *version, "{via}");
    }

    // nginx answers this itself, on every listener.
    let statics = [
        plain(
            nginx.http,
            Protocol::Http1,
            request(
                Protocol::Http1,
                "http",
                &nginx.http.to_string(),
                "GET",
                "/static.json",
                &[],
                "",
            ),
        )
        .await,
        plain(
            nginx.h2c,
            Protocol::Http2,
            request(
                Protocol::Http2,
                "http",
                &nginx.h2c.to_string(),
                "GET",
                "/static.json",
                &[],
                "",
            ),
        )
        .await,
        tls(
            nginx.tls,
            &cert.roots,
            Protocol::Http2,
            request(
                Protocol::Http2,
                "https",
                &tls_authority,
                "GET",
                "/static.json",
                &[],
                "",
            ),
        )
        .await,
    ];
    for answer in &statics {
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.header("content-type"), Some("application/json"));
        assert_eq!(answer.json(), serde_json::json!({"ok": true}));
    }

    // Exactly the quotes sent reached the front, and each asked the back once.
    let sent = answers.len() as f64;
    assert_eq!(
        http_count(&services, QUOTE_ROUTE, "200").await,
        sent,
        "{}",
        nginx.log()
    );
    assert_eq!(prices_answered(&services).await, sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn front_wants_its_key_and_counts_what_it_answers() {
    let options = QuoteOptions {
        api_key: Some(KEY.to_owned()),
        ..QuoteOptions::default()
    };
    let Some(services) = start_services("front_wants_its_key", options) else {
        return;
    };
    let front = services.front_http();
    let post = |headers: &[(&str, &str)]| {
        request(
            Protocol::Http1,
            "http",
            &front.to_string(),
            "POST",
            QUOTE_ROUTE,
            headers,
            QUOTE,
        )
    };
    let wrong = plain(
        front,
        Protocol::Http1,
        post(&[("x-api-key", "not-the-key")]),
    )
    .await;
    assert_eq!(wrong.status, 401, "{wrong:?}");
    let missing = plain(front, Protocol::Http1, post(&[])).await;
    assert_eq!(missing.status, 401, "{missing:?}");
    let right = plain(
        front,
        Protocol::Http1,
        post(&[("x-api-key", KEY), ("traceparent", TRACEPARENT)]),
    )
    .await;
    assert_quote(&right, "front");
    // Without a traceparent the front starts a trace of its own, and names it.
    let fresh = plain(front, Protocol::Http1, post(&[("x-api-key", KEY)])).await;
    assert_eq!(fresh.status, 200, "{fresh:?}");
    let fresh_id = fresh.header("x-trace-id").unwrap_or_default();
    assert!(
        fresh_id.len() == 32
            && fresh_id != TRACE_ID
            && fresh_id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{fresh:?}"
    );

    assert_eq!(http_count(&services, QUOTE_ROUTE, "401").await, 2.0);
    assert_eq!(http_count(&services, QUOTE_ROUTE, "200").await, 2.0);
    // Refused quotes never reach the back.
    assert_eq!(prices_answered(&services).await, 2.0);
    let durations = samples(
        &services.front.metrics_url(),
        "http_request_duration_seconds_count",
    )
    .await;
    let key = labels(&[("method", "POST"), ("route", QUOTE_ROUTE)]);
    assert_eq!(durations.get(&key).copied(), Some(4.0), "{durations:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn front_faults_show_in_what_a_client_sees() {
    let options = QuoteOptions {
        faults: vec!["count-twice".to_owned(), "reset-traced-half".to_owned()],
        ..QuoteOptions::default()
    };
    let Some(services) = start_services("front_faults", options) else {
        return;
    };
    let front = services.front_http();
    let post = |headers: &[(&str, &str)]| {
        request(
            Protocol::Http1,
            "http",
            &front.to_string(),
            "POST",
            QUOTE_ROUTE,
            headers,
            QUOTE,
        )
    };
    // reset-traced-half: of four traced requests, the second and fourth get a reset.
    let mut outcomes = Vec::new();
    for _ in 0..4 {
        let stream = TcpStream::connect(front).await.expect("connect");
        let sent = tokio::time::timeout(
            TIMEOUT,
            send(
                stream,
                Protocol::Http1,
                post(&[("traceparent", TRACEPARENT)]),
            ),
        )
        .await
        .expect("answered or reset in time");
        outcomes.push(sent.map(|a| a.status).map_err(|e| e.to_string()));
    }
    assert!(
        matches!(outcomes.as_slice(), [Ok(200), Err(_), Ok(200), Err(_)]),
        "{outcomes:?}"
    );
    // Untraced requests are never reset.
    for _ in 0..2 {
        let answer = plain(front, Protocol::Http1, post(&[])).await;
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    // count-twice: four answered requests, counted as eight.
    assert_eq!(http_count(&services, QUOTE_ROUTE, "200").await, 8.0);

    // Over gRPC (alternating on its own) the second traced call is cancelled with RST_STREAM.
    let traced = [("traceparent", TRACEPARENT)];
    let first = get_quote(services.front.grpc, &traced).await;
    assert!(first.is_ok(), "{first:?}");
    let second = get_quote(services.front.grpc, &traced).await;
    assert_eq!(
        second.as_ref().map_err(|s| s.code()).err(),
        Some(tonic::Code::Cancelled),
        "{second:?}"
    );
    assert_eq!(prices_answered(&services).await, 5.0);
}

#[test]
fn reads_the_version_nginx_prints() {
    use support::nginx::parse_version;
    assert_eq!(
        parse_version("nginx version: nginx/1.22.1\n"),
        Some((1, 22, 1))
    );
    assert_eq!(
        parse_version("nginx version: nginx/1.27.4 (Ubuntu)"),
        Some((1, 27, 4))
    );
    assert_eq!(parse_version("nginx version: nginx/1.25"), Some((1, 25, 0)));
    assert_eq!(parse_version("openresty/1.21"), None);
}

/// The three spans of one quote as the harness's receiver got them, once both services have
/// stopped (and so flushed everything they had), with the receiver's counters.
async fn quote_trace(faults: Vec<String>) -> Option<(Vec<Span>, ReceiverStats)> {
    let receiver = Receiver::start(ReceiverConfig::default()).expect("receiver starts");
    let trace_id: TraceId = TRACE_ID.parse().expect("a trace id");
    assert!(receiver.want(trace_id));
    let options = QuoteOptions {
        otlp_endpoint: Some(receiver.grpc_endpoint()),
        faults,
        ..QuoteOptions::default()
    };
    let services = tokio::task::spawn_blocking(move || start_services("quote_trace", options))
        .await
        .expect("services start")?;
    let front = services.front_http();
    let answer = plain(
        front,
        Protocol::Http1,
        request(
            Protocol::Http1,
            "http",
            &front.to_string(),
            "POST",
            QUOTE_ROUTE,
            &[("traceparent", TRACEPARENT)],
            QUOTE,
        ),
    )
    .await;
    assert_quote(&answer, "front");
    tokio::task::spawn_blocking(move || drop(services))
        .await
        .expect("services stop");
    let trace = receiver
        .fetch(trace_id)
        .await
        .expect("the receiver answers")
        .unwrap_or_default();
    let stats = receiver.stats();
    receiver.shutdown().await.expect("receiver stops");
    Some((trace.spans, stats))
}

fn only<'a>(spans: &'a [Span], service: &str, kind: SpanKind) -> &'a Span {
    let found: Vec<&Span> = spans
        .iter()
        .filter(|s| s.service == service && s.kind == kind)
        .collect();
    assert_eq!(found.len(), 1, "one {kind:?} span of {service}: {spans:#?}");
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quote_continues_the_callers_trace_through_front_and_back() {
    let Some((spans, _)) = quote_trace(vec![]).await else {
        return;
    };
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let server = only(&spans, "quote-front", SpanKind::Server);
    let client = only(&spans, "quote-front", SpanKind::Client);
    let back = only(&spans, "quote-back", SpanKind::Server);
    let caller: SpanId = TRACEPARENT[36..52].parse().expect("the caller's span id");
    assert_eq!(server.parent, Some(caller), "{server:#?}");
    assert_eq!(server.name, "POST /v2/quote");
    assert_eq!(client.parent, Some(server.span_id), "{client:#?}");
    assert_eq!(back.parent, Some(client.span_id), "{back:#?}");
    assert_eq!(back.name, PRICE_METHOD);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_context_leaves_the_back_span_out_of_the_trace() {
    let Some((spans, stats)) = quote_trace(vec!["drop-context".to_owned()]).await else {
        return;
    };
    assert_eq!(spans.len(), 2, "{spans:#?}");
    only(&spans, "quote-front", SpanKind::Server);
    only(&spans, "quote-front", SpanKind::Client);
    // The back did export its span, in a trace of its own that nobody asked for.
    assert_eq!(stats.spans_unwanted, 1, "{stats:?}");
}

/// `quotes.v1.QuoteRequest`, written out: the test speaks to the service as any gRPC client
/// would, from its .proto alone.
#[derive(Clone, PartialEq, prost::Message)]
struct QuoteRequest {
    #[prost(string, tag = "1")]
    symbol: String,
}

/// `quotes.v1.QuoteReply`.
#[derive(Clone, PartialEq, prost::Message)]
struct QuoteReply {
    #[prost(string, tag = "1")]
    symbol: String,
    #[prost(double, tag = "2")]
    price: f64,
}

/// Protobuf for the one method this test calls.
struct QuoteCodec;

impl Codec for QuoteCodec {
    type Encode = QuoteRequest;
    type Decode = QuoteReply;
    type Encoder = QuoteCodec;
    type Decoder = QuoteCodec;

    fn encoder(&mut self) -> QuoteCodec {
        QuoteCodec
    }

    fn decoder(&mut self) -> QuoteCodec {
        QuoteCodec
    }
}

impl Encoder for QuoteCodec {
    type Item = QuoteRequest;
    type Error = tonic::Status;

    fn encode(&mut self, item: QuoteRequest, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        prost::Message::encode(&item, dst).map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

impl Decoder for QuoteCodec {
    type Item = QuoteReply;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<QuoteReply>, tonic::Status> {
        <QuoteReply as prost::Message>::decode(src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

async fn get_quote(
    addr: SocketAddr,
    metadata: &[(&'static str, &str)],
) -> Result<tonic::Response<QuoteReply>, tonic::Status> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("an endpoint")
        .connect_timeout(TIMEOUT)
        .timeout(TIMEOUT)
        .connect()
        .await
        .expect("connects to the front's gRPC port");
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("the channel is ready");
    let mut request = tonic::Request::new(QuoteRequest {
        symbol: "ACME".to_owned(),
    });
    for (name, value) in metadata {
        request
            .metadata_mut()
            .insert(*name, value.parse().expect("ASCII metadata"));
    }
    let path = hyper::http::uri::PathAndQuery::from_static("/quotes.v1.Quotes/GetQuote");
    grpc.unary(request, path, QuoteCodec).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn front_answers_quotes_over_grpc_and_wants_its_key() {
    let options = QuoteOptions {
        api_key: Some(KEY.to_owned()),
        ..QuoteOptions::default()
    };
    let Some(services) = start_services("front_answers_quotes_over_grpc", options) else {
        return;
    };
    let front = services.front.grpc;
    let answer = get_quote(front, &[("x-api-key", KEY), ("traceparent", TRACEPARENT)])
        .await
        .expect("a quote");
    assert_eq!(
        answer
            .metadata()
            .get("x-trace-id")
            .and_then(|v| v.to_str().ok()),
        Some(TRACE_ID)
    );
    let reply = answer.into_inner();
    assert_eq!(reply.symbol, "ACME");
    assert!(reply.price > 0.0, "{reply:?}");

    let refused = get_quote(front, &[("x-api-key", "not-the-key")])
        .await
        .expect_err("a wrong key is refused");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");

    let handled = samples(&services.front.metrics_url(), "grpc_server_handled_total").await;
    let count = |code: &str| {
        handled
            .get(&labels(&[
                ("grpc_method", QUOTE_METHOD),
                ("grpc_code", code),
            ]))
            .copied()
    };
    assert_eq!(count("OK"), Some(1.0), "{handled:?}");
    assert_eq!(count("UNAUTHENTICATED"), Some(1.0), "{handled:?}");
    assert_eq!(prices_answered(&services).await, 1.0);
}
