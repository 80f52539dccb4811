//! Streaming end to end (docs/streaming.md): the gateway's WebSocket route relaying the engine's
//! `StreamMarketData`, against real service processes: the frames and their sequences, every
//! close code, cancellation, backpressure, the traces, and the calibration faults.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use support::otlp::{self, Receiver, Span};
use support::{Metrics, System, SystemOptions, new_trace_id, strings, traceparent};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(15);
const STREAM_METHOD: &str = "StreamMarketData";

fn stream_url(system: &System) -> String {
    format!(
        "ws://{}/api/v1/market-data/stream",
        system.gateway.addr("http")
    )
}

async fn connect(system: &System, traceparent: Option<&str>) -> Ws {
    let mut request = stream_url(system).into_client_request().expect("a URL");
    if let Some(tp) = traceparent {
        request
            .headers_mut()
            .insert("traceparent", tp.parse().expect("ascii"));
    }
    let (ws, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the gateway upgrades");
    assert_eq!(response.status(), 101);
    ws
}

async fn send(ws: &mut Ws, message: Value) {
    ws.send(Message::text(message.to_string()))
        .await
        .expect("sent");
}

fn subscribe(symbols: &[&str], interval_ms: u32, max_updates: u32) -> Value {
    json!({"type": "subscribe", "symbols": symbols, "source_id": "yahoo_finance",
           "interval_ms": interval_ms, "max_updates": max_updates})
}

/// The next text frame as JSON; panics on a close or after [`WAIT`].
async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("the connection is open")
            .expect("a frame");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).expect("JSON"),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => continue,
        }
    }
}

/// Reads until the close frame, and returns its code and reason.
async fn close_of(ws: &mut Ws) -> (u16, String) {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a close in time");
        match message {
            Some(Ok(Message::Close(Some(frame)))) => {
                return (u16::from(frame.code), frame.reason.to_string());
            }
            Some(Ok(Message::Close(None))) => return (1005, String::new()),
            Some(Ok(_)) => continue,
            other => panic!("connection ended without a close frame: {other:?}"),
        }
    }
}

/// Subscribes and returns the `subscribed` frame.
async fn subscribed(ws: &mut Ws, request: Value) -> Value {
    send(ws, request).await;
    let frame = next_json(ws).await;
    assert_eq!(frame["type"], "subscribed", "{frame}");
    frame
}

async fn updates(ws: &mut Ws, n: usize) -> Vec<Value> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let frame = next_json(ws).await;
        assert_eq!(frame["type"], "update", "{frame}");
        out.push(frame);
    }
    out
}

fn sequences(updates: &[Value]) -> Vec<u64> {
    updates
        .iter()
        .map(|u| u["sequence"].as_u64().expect("a sequence"))
        .collect()
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos() as i64
}

fn stream_series(status: &str) -> String {
    format!("grpc_requests_total{{method=\"{STREAM_METHOD}\",status=\"{status}\"}}")
}

async fn wait_engine(system: &System, series: &str, value: f64) {
    Metrics::wait_for(
        &system.http,
        &system.engine_metrics_url(),
        series,
        value,
        WAIT,
    )
    .await;
}

async fn wait_gateway(system: &System, series: &str, value: f64) {
    let url = format!("http://{}/api/v1/metrics", system.gateway.addr("http"));
    Metrics::wait_for(&system.http, &url, series, value, WAIT).await;
}

async fn untraced(engine_args: &[&str], gateway_args: &[&str]) -> System {
    System::start(SystemOptions {
        engine_args: strings(engine_args),
        gateway_args: strings(gateway_args),
        ..SystemOptions::default()
    })
    .await
}

async fn traced(receiver: &Receiver, engine_args: &[&str], gateway_args: &[&str]) -> System {
    System::start(SystemOptions {
        tracing: true,
        otlp_endpoint: Some(receiver.endpoint()),
        engine_args: strings(engine_args),
        gateway_args: strings(gateway_args),
    })
    .await
}

#[tokio::test]
async fn a_subscription_streams_consecutive_updates_until_unsubscribed() {
    let system = untraced(&[], &[]).await;
    let mut ws = connect(&system, None).await;
    let before = now_nanos();
    let frame = subscribed(&mut ws, subscribe(&["aapl", "MSFT"], 20, 0)).await;
    assert_eq!(frame["trace_id"], "", "tracing is off");
    let got = updates(&mut ws, 10).await;
    let after = now_nanos();
    assert_eq!(sequences(&got), (1..=10).collect::<Vec<_>>());
    for (i, update) in got.iter().enumerate() {
        assert_eq!(update["symbol"], ["AAPL", "MSFT"][i % 2], "{update}");
        assert_eq!(update["traceparent"], "", "tracing is off: {update}");
        let time = update["event_time_unix_nanos"].as_i64().expect("a time");
        assert!((before..=after).contains(&time), "{update}");
        let (last, bid, ask) = (&update["last"], &update["bid"], &update["ask"]);
        let (last, bid, ask) = (last.as_f64(), bid.as_f64(), ask.as_f64());
        assert!(bid < last && last < ask && bid > Some(0.0), "{update}");
        assert!(
            update["volume"].as_u64().is_some_and(|v| v >= 100),
            "{update}"
        );
    }
    // One event time per round, rounds one interval apart.
    let times: Vec<i64> = got
        .iter()
        .map(|u| u["event_time_unix_nanos"].as_i64().unwrap_or(0))
        .collect();
    for round in times.chunks(2) {
        assert_eq!(round[0], round[1]);
    }
    assert_eq!(times[2] - times[0], 20_000_000);

    let engine_metrics = system.engine_metrics().await;
    assert_eq!(engine_metrics.get("grpc_streams_active"), 1.0);
    send(&mut ws, json!({"type": "unsubscribe"})).await;
    assert_eq!(close_of(&mut ws).await, (1000, "unsubscribed".to_owned()));

    wait_engine(&system, "grpc_streams_active", 0.0).await;
    wait_engine(&system, &stream_series("CANCELLED"), 1.0).await;
    wait_gateway(&system, "ws_connections_active", 0.0).await;
    let gateway = system.gateway_metrics().await;
    assert!(gateway.get("ws_messages_sent_total{symbol=\"AAPL\"}") >= 5.0);
    assert_eq!(
        gateway.get("ws_messages_dropped_total{reason=\"slow_client\"}"),
        0.0
    );
    assert_eq!(
        gateway.get("ws_message_delivery_seconds_count"),
        gateway.get("ws_messages_sent_total{symbol=\"AAPL\"}")
            + gateway.get("ws_messages_sent_total{symbol=\"MSFT\"}")
    );
    let upgrade =
        "http_requests_total{method=\"GET\",path=\"/api/v1/market-data/stream\",status=\"101\"}";
    assert_eq!(gateway.get(upgrade), 1.0);
    let engine = system.engine_metrics().await;
    assert!(engine.get("stream_updates_sent_total{symbol=\"MSFT\"}") >= 5.0);
    assert_eq!(engine.get("requests_in_flight"), 0.0);
    system.stop().await;
}

#[tokio::test]
async fn max_updates_ends_the_stream_with_1000_after_every_update() {
    let system = untraced(&[], &[]).await;
    let mut ws = connect(&system, None).await;
    subscribed(&mut ws, subscribe(&["AAPL", "V"], 10, 3)).await;
    let got = updates(&mut ws, 6).await;
    assert_eq!(sequences(&got), (1..=6).collect::<Vec<_>>());
    assert_eq!(
        close_of(&mut ws).await,
        (1000, "the stream ended".to_owned())
    );
    wait_engine(&system, &stream_series("OK"), 1.0).await;
    wait_engine(&system, "grpc_streams_active", 0.0).await;
    let engine = system.engine_metrics().await;
    assert_eq!(engine.get("stream_updates_sent_total{symbol=\"V\"}"), 3.0);
    system.stop().await;
}

#[tokio::test]
async fn a_bad_subscribe_is_closed_with_1008_and_the_reason() {
    let system = untraced(&[], &[]).await;
    let cases: [(Value, &str); 5] = [
        (json!("not an object"), "invalid subscribe:"),
        (
            json!({"type": "unsubscribe"}),
            "the first message must be a subscribe",
        ),
        (
            json!({"type": "publish"}),
            "invalid subscribe: unknown variant `publish`",
        ),
        (
            subscribe(&[], 100, 0),
            "symbols: at least one symbol is required",
        ),
        (
            subscribe(&["AAPL"], 5, 0),
            "interval_ms: must be between 10 and 60000, got 5",
        ),
    ];
    for (message, reason) in cases {
        let mut ws = connect(&system, None).await;
        send(&mut ws, message.clone()).await;
        let (code, text) = close_of(&mut ws).await;
        assert_eq!(code, 1008, "{message}: {text}");
        assert!(text.starts_with(reason), "{message}: {text:?}");
    }
    let mut ws = connect(&system, None).await;
    subscribed(&mut ws, subscribe(&["AAPL"], 50, 0)).await;
    send(&mut ws, subscribe(&["MSFT"], 50, 0)).await;
    let (code, text) = close_of(&mut ws).await;
    assert_eq!(
        (code, text.as_str()),
        (1008, "already subscribed: one subscription per connection")
    );
    wait_engine(&system, &stream_series("INVALID_ARGUMENT"), 2.0).await;
    wait_engine(&system, "grpc_streams_active", 0.0).await;
    system.stop().await;
}

#[tokio::test]
async fn the_engine_killed_mid_stream_closes_with_1011() {
    let system = untraced(&[], &[]).await;
    let mut ws = connect(&system, None).await;
    subscribed(&mut ws, subscribe(&["AAPL"], 10, 0)).await;
    updates(&mut ws, 3).await;
    system.engine.signal(Signal::SIGKILL);
    let (code, text) = close_of(&mut ws).await;
    assert_eq!(code, 1011, "{text}");
    let name = text.split(':').next().unwrap_or_default();
    assert!(
        ["UNAVAILABLE", "UNKNOWN", "INTERNAL", "CANCELLED"].contains(&name),
        "the gRPC status as close text: {text:?}"
    );
    let System {
        gateway, engine, ..
    } = system;
    let (status, _) = gateway.stop(Duration::from_secs(20)).await;
    assert!(status.success(), "{status}");
    drop(engine);
}

#[tokio::test]
async fn a_client_that_disconnects_ends_the_engine_stream() {
    let system = untraced(&[], &[]).await;
    let mut ws = connect(&system, None).await;
    subscribed(&mut ws, subscribe(&["AAPL"], 10, 0)).await;
    updates(&mut ws, 2).await;
    assert_eq!(
        system.engine_metrics().await.get("grpc_streams_active"),
        1.0
    );
    // No close handshake: the socket just goes.
    drop(ws);
    wait_engine(&system, "grpc_streams_active", 0.0).await;
    wait_engine(&system, &stream_series("CANCELLED"), 1.0).await;
    wait_gateway(&system, "ws_connections_active", 0.0).await;
    system.stop().await;
}

#[tokio::test]
async fn a_slow_client_costs_its_queue_and_its_drops_are_counted() {
    let system = untraced(&[], &["--ws-send-queue", "4"]).await;
    let symbols: Vec<String> = (0..50).map(|i| format!("S{i}")).collect();
    let symbols: Vec<&str> = symbols.iter().map(String::as_str).collect();
    let mut ws = connect(&system, None).await;
    subscribed(&mut ws, subscribe(&symbols, 10, 0)).await;
    // Stop reading: the socket's buffers fill, then the gateway's queue, then updates drop.
    let dropped = "ws_messages_dropped_total{reason=\"slow_client\"}";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let engine_before = system
        .engine_metrics()
        .await
        .get("stream_updates_sent_total{symbol=\"S0\"}");
    loop {
        let seen = system.gateway_metrics().await.get(dropped);
        if seen >= 100.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{seen} drops after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The engine was not held back by the stalled client: the gateway kept reading its stream.
    let engine_after = system
        .engine_metrics()
        .await
        .get("stream_updates_sent_total{symbol=\"S0\"}");
    assert!(
        engine_after > engine_before,
        "{engine_before} → {engine_after}"
    );
    // Reading again, the client sees the drops as gaps in sequence.
    let got = sequences(&updates(&mut ws, 2_000).await);
    assert!(got.windows(2).all(|w| w[0] < w[1]), "in order");
    assert!(
        got.windows(2).any(|w| w[1] > w[0] + 1),
        "gaps where updates dropped"
    );
    send(&mut ws, json!({"type": "unsubscribe"})).await;
    assert_eq!(close_of(&mut ws).await.0, 1000);
    wait_engine(&system, "grpc_streams_active", 0.0).await;
    system.stop().await;
}

#[tokio::test]
async fn sigterm_closes_websockets_with_1001_and_the_gateway_drains() {
    let system = untraced(&[], &[]).await;
    let mut ws = connect(&system, None).await;
    subscribed(&mut ws, subscribe(&["AAPL"], 10, 0)).await;
    updates(&mut ws, 2).await;
    system.gateway.signal(Signal::SIGTERM);
    assert_eq!(
        close_of(&mut ws).await,
        (1001, "the gateway is shutting down".to_owned())
    );
    wait_engine(&system, "grpc_streams_active", 0.0).await;
    let System {
        gateway, engine, ..
    } = system;
    let (status, logs) = gateway.stop(Duration::from_secs(20)).await;
    assert!(status.success(), "{status}");
    assert!(
        logs.iter().any(|l| l["websocket.close_code"] == 1001),
        "{logs:#?}"
    );
    let (status, _) = engine.stop(Duration::from_secs(20)).await;
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn a_stream_stall_delivers_late_with_the_original_event_times() {
    let system = untraced(
        &[
            "--fault-stream-stall-every",
            "1s",
            "--fault-stream-stall-for",
            "400ms",
        ],
        &[],
    )
    .await;
    let mut ws = connect(&system, None).await;
    subscribed(&mut ws, subscribe(&["AAPL"], 20, 0)).await;
    let mut late = Vec::new();
    for _ in 0..75 {
        let update = next_json(&mut ws).await;
        late.push((update, now_nanos()));
    }
    let got: Vec<Value> = late.iter().map(|(u, _)| u.clone()).collect();
    assert_eq!(
        sequences(&got),
        (1..=75).collect::<Vec<_>>(),
        "held, not dropped"
    );
    let times: Vec<i64> = got
        .iter()
        .map(|u| u["event_time_unix_nanos"].as_i64().unwrap_or(0))
        .collect();
    assert!(
        times.windows(2).all(|w| w[1] - w[0] == 20_000_000),
        "event times keep the schedule"
    );
    let worst = late
        .iter()
        .map(|(u, at)| at - u["event_time_unix_nanos"].as_i64().unwrap_or(0))
        .max()
        .unwrap_or(0);
    // 75 rounds of 20 ms span a whole stall period: some update waited out most of a stall.
    assert!(
        worst >= 300_000_000,
        "the stall shows as latency: worst {worst} ns"
    );
    system.stop().await;
}

#[tokio::test]
async fn dropping_every_nth_update_shows_as_uncounted_gaps() {
    let system = untraced(&[], &["--calibration-drop-every-nth-update", "3"]).await;
    let mut ws = connect(&system, None).await;
    subscribed(&mut ws, subscribe(&["AAPL"], 10, 0)).await;
    let got = sequences(&updates(&mut ws, 8).await);
    assert_eq!(got, [1, 2, 4, 5, 7, 8, 10, 11]);
    let gateway = system.gateway_metrics().await;
    assert_eq!(
        gateway.get("ws_messages_dropped_total{reason=\"slow_client\"}"),
        0.0
    );
    system.stop().await;
}

fn find<'a>(spans: &'a [Span], service: &str, kind: i32, name: &str) -> Vec<&'a Span> {
    spans
        .iter()
        .filter(|s| s.service == service && s.kind == kind && s.name == name)
        .collect()
}

/// The (trace id, span id) of a `traceparent`.
fn ids_of(traceparent: &str) -> (String, String) {
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    (parts[1].to_owned(), parts[2].to_owned())
}

#[tokio::test]
async fn the_subscription_is_one_trace_and_each_traced_update_another() {
    let receiver = Receiver::start().await;
    let system = traced(&receiver, &["--stream-trace-every", "3"], &[]).await;
    let trace_id = new_trace_id();
    let mut ws = connect(&system, Some(&traceparent(&trace_id))).await;
    let frame = subscribed(&mut ws, subscribe(&["AAPL", "MSFT"], 20, 0)).await;
    assert_eq!(frame["trace_id"], trace_id.as_str());
    let got = updates(&mut ws, 6).await;
    let traced: Vec<&Value> = got.iter().filter(|u| u["traceparent"] != "").collect();
    assert_eq!(
        sequences(&traced.iter().map(|u| (*u).clone()).collect::<Vec<_>>()),
        [1, 4]
    );
    send(&mut ws, json!({"type": "unsubscribe"})).await;
    assert_eq!(close_of(&mut ws).await.0, 1000);

    let spans = receiver
        .wait_for(WAIT, |spans| {
            spans.iter().filter(|s| s.trace_id == trace_id).count() >= 3
                && spans
                    .iter()
                    .filter(|s| s.kind == otlp::KIND_CONSUMER)
                    .count()
                    >= 2
        })
        .await;
    let server = find(
        &spans,
        "api-gateway",
        otlp::KIND_SERVER,
        "GET /api/v1/market-data/stream",
    );
    let client = find(
        &spans,
        "api-gateway",
        otlp::KIND_CLIENT,
        "core_engine.v1.CoreEngineService/StreamMarketData",
    );
    let engine = find(
        &spans,
        "core-engine",
        otlp::KIND_SERVER,
        "core_engine.v1.CoreEngineService/StreamMarketData",
    );
    let (server, client, engine) = (server[0], client[0], engine[0]);
    assert_eq!(server.trace_id, trace_id);
    assert_eq!(server.parent_span_id, support::TRACEPARENT_SPAN_ID);
    assert_eq!(server.attr("http.response.status_code"), Some(&json!(101)));
    assert_eq!(
        (client.trace_id.as_str(), client.parent_span_id.as_str()),
        (trace_id.as_str(), server.span_id.as_str())
    );
    assert_eq!(
        (engine.trace_id.as_str(), engine.parent_span_id.as_str()),
        (trace_id.as_str(), client.span_id.as_str())
    );
    assert_eq!(
        engine.attr("rpc.grpc.status_code"),
        Some(&json!(1)),
        "cancelled by the caller"
    );

    for update in traced {
        let (update_trace, consumer_id) =
            ids_of(update["traceparent"].as_str().unwrap_or_default());
        let consumer = spans
            .iter()
            .find(|s| s.span_id == consumer_id)
            .expect("the CONSUMER span");
        assert_eq!(
            (consumer.service.as_str(), consumer.kind),
            ("api-gateway", otlp::KIND_CONSUMER)
        );
        assert_eq!(consumer.name, "process market_data");
        assert_eq!(consumer.trace_id, update_trace);
        let producer = spans
            .iter()
            .find(|s| s.span_id == consumer.parent_span_id)
            .expect("the PRODUCER span is its parent");
        assert_eq!(
            (producer.service.as_str(), producer.kind),
            ("core-engine", otlp::KIND_PRODUCER)
        );
        assert_eq!(producer.name, "send market_data");
        assert_eq!(producer.trace_id, update_trace);
        assert_ne!(update_trace, trace_id, "a trace of its own");
        let sequence = update["sequence"].as_u64().unwrap_or(0).to_string();
        for (span, operation) in [(producer, "send"), (consumer, "process")] {
            assert_eq!(span.attr("messaging.system"), Some(&json!("core_engine")));
            assert_eq!(
                span.attr("messaging.operation.type"),
                Some(&json!(operation))
            );
            assert_eq!(
                span.attr("messaging.destination.name"),
                Some(&json!("market_data"))
            );
            assert_eq!(span.attr("messaging.message.id"), Some(&json!(sequence)));
            assert_eq!(span.attr("market.symbol"), Some(&update["symbol"]));
        }
        assert_eq!(producer.links, [(trace_id.clone(), engine.span_id.clone())]);
        assert_eq!(consumer.links, [(trace_id.clone(), server.span_id.clone())]);
    }
    system.stop().await;
}

/// The CONSUMER spans of `updates`, each with whether it is the child of its PRODUCER span.
fn consumers_continue_producers(spans: &[Span], updates: &[Value]) -> Vec<bool> {
    updates
        .iter()
        .map(|update| {
            let (_, consumer_id) = ids_of(update["traceparent"].as_str().unwrap_or_default());
            let consumer = spans
                .iter()
                .find(|s| s.span_id == consumer_id)
                .expect("the CONSUMER span");
            spans.iter().any(|p| {
                p.kind == otlp::KIND_PRODUCER
                    && p.span_id == consumer.parent_span_id
                    && p.trace_id == consumer.trace_id
            })
        })
        .collect()
}

#[tokio::test]
async fn every_update_is_traced_with_trace_every_1_and_the_context_drop_fault_shows() {
    for drop_context in [false, true] {
        let receiver = Receiver::start().await;
        let gateway_args: &[&str] = if drop_context {
            &["--calibration-drop-update-context"]
        } else {
            &[]
        };
        let system = traced(&receiver, &["--stream-trace-every", "1"], gateway_args).await;
        let mut ws = connect(&system, None).await;
        subscribed(&mut ws, subscribe(&["AAPL"], 10, 5)).await;
        let got = updates(&mut ws, 5).await;
        assert!(
            got.iter()
                .all(|u| u["traceparent"].as_str().is_some_and(|t| t.len() == 55)),
            "{got:#?}"
        );
        assert_eq!(close_of(&mut ws).await.0, 1000);
        let spans = receiver
            .wait_for(WAIT, |spans| {
                spans
                    .iter()
                    .filter(|s| s.kind == otlp::KIND_CONSUMER)
                    .count()
                    >= 5
                    && spans
                        .iter()
                        .filter(|s| s.kind == otlp::KIND_PRODUCER)
                        .count()
                        >= 5
            })
            .await;
        let continued = consumers_continue_producers(&spans, &got);
        assert_eq!(
            continued, [!drop_context; 5],
            "drop_context = {drop_context}"
        );
        system.stop().await;
    }
}

#[tokio::test]
async fn with_tracing_off_updates_and_subscriptions_carry_no_context() {
    let system = untraced(&["--stream-trace-every", "1"], &[]).await;
    let mut ws = connect(&system, Some(&traceparent(&new_trace_id()))).await;
    let frame = subscribed(&mut ws, subscribe(&["AAPL"], 10, 4)).await;
    assert_eq!(frame["trace_id"], "");
    let got = updates(&mut ws, 4).await;
    assert!(got.iter().all(|u| u["traceparent"] == ""), "{got:#?}");
    assert_eq!(close_of(&mut ws).await.0, 1000);
    system.stop().await;
}
