//! `GET /api/v1/market-data/stream`: one market-data subscription per WebSocket, relayed from the
//! engine's `StreamMarketData` (docs/streaming.md).
//!
//! The upgrade is an HTTP request like the others in the metrics (`http_requests_total` with status
//! 101, its duration the time to upgrade), but its SERVER span lasts as long as the subscription,
//! with the CLIENT span of the engine call under it. A session ends on `unsubscribe` (1000), when
//! the engine stream ends (1000 with OK, 1011 otherwise), on a bad first message (1008), when the
//! gateway shuts down (1001), or when the client goes away; each way the engine call is cancelled.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::extract::ws::{
    CloseFrame, Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection,
};
use axum::http::{HeaderMap, HeaderValue, Version};
use axum::response::{IntoResponse, Response};
use opentelemetry::trace::{SpanKind, Status as SpanStatus};
use opentelemetry::{Context, KeyValue};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc;
use tonic::Code;

use super::api::ApiError;
use super::relay::{ClientMessage, ClientSpan, Outgoing, Relay, RelayFaults, ServerMessage};
use super::{Gateway, STREAM_ROUTE, X_TRACE_ID};
use crate::core_engine::{SERVICE_NAME, STREAM_METHOD, STREAM_SPAN_NAME};
use crate::status::code_name;
use crate::telemetry::{self, semconv};

/// The SERVER span's name, `{method} {route}`.
const SERVER_SPAN_NAME: &str = "GET /api/v1/market-data/stream";
/// The largest message a client may send: a subscribe with 50 symbols takes under 1 KiB.
const MAX_CLIENT_MESSAGE_BYTES: usize = 16 * 1024;
/// How long a closing handshake may take before the connection is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Close text is at most 123 bytes (RFC 6455, 5.5: a control frame's payload is 125 bytes).
const MAX_CLOSE_REASON_BYTES: usize = 123;

pub const CLOSE_NORMAL: u16 = 1000;
pub const CLOSE_GOING_AWAY: u16 = 1001;
pub const CLOSE_POLICY: u16 = 1008;
pub const CLOSE_ERROR: u16 = 1011;

/// The streaming settings of the gateway.
#[derive(Debug, Clone, Copy)]
pub struct StreamSettings {
    /// Updates each connection may hold waiting to be written (`--ws-send-queue`).
    pub send_queue: usize,
    /// How long a new connection may take to send its `subscribe`.
    pub subscribe_timeout: Duration,
    pub faults: RelayFaults,
}

/// The upgrade handler. What is not a WebSocket upgrade is answered as axum refuses it (400, 426).
pub async fn subscribe(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    version: Version,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let started = Instant::now();
    let span = start_server_span(&gateway, &headers, version);
    let trace_id = span.as_ref().and_then(telemetry::trace_id);
    let mut response = match upgrade {
        Err(rejection) => {
            let response = rejection.into_response();
            let status = response.status().as_u16();
            end_server_span(span.as_ref(), status, None);
            response
        }
        Ok(upgrade) => {
            // Taken now, while the connection is still being served: shutdown waits for it.
            let session = gateway.sessions.token();
            let session_gateway = Arc::clone(&gateway);
            upgrade
                .max_message_size(MAX_CLIENT_MESSAGE_BYTES)
                .max_frame_size(MAX_CLIENT_MESSAGE_BYTES)
                .on_failed_upgrade(|error| tracing::debug!(%error, "WebSocket upgrade failed"))
                .on_upgrade(move |socket| async move {
                    let _session = session;
                    Session::new(session_gateway, span).run(socket).await;
                })
        }
    };
    if let Some(id) = trace_id.and_then(|id| HeaderValue::from_bytes(id.as_bytes()).ok()) {
        response.headers_mut().insert(X_TRACE_ID.clone(), id);
    }
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    gateway
        .metrics
        .observe("GET", STREAM_ROUTE, status, elapsed);
    tracing::info!(
        http.method = "GET",
        http.route = STREAM_ROUTE,
        http.status = status,
        elapsed_us = elapsed.as_micros() as u64,
        "request completed"
    );
    response
}

fn start_server_span(gateway: &Gateway, headers: &HeaderMap, version: Version) -> Option<Context> {
    let parent = gateway.telemetry.extract(headers)?;
    let mut attributes = vec![
        KeyValue::new(semconv::HTTP_REQUEST_METHOD, "GET"),
        KeyValue::new(semconv::URL_PATH, STREAM_ROUTE),
        KeyValue::new(semconv::URL_SCHEME, "http"),
        KeyValue::new(semconv::HTTP_ROUTE, STREAM_ROUTE),
        KeyValue::new(
            semconv::NETWORK_PROTOCOL_VERSION,
            super::observe::protocol_version(version),
        ),
    ];
    if let Some(agent) = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
    {
        attributes.push(KeyValue::new(
            semconv::USER_AGENT_ORIGINAL,
            agent.to_owned(),
        ));
    }
    gateway
        .telemetry
        .start_span(&parent, SERVER_SPAN_NAME, SpanKind::Server, attributes)
}

/// Ends the SERVER span: with the HTTP status, and the close code when the WebSocket was open.
/// Only 1011 (the engine stream failed) is the gateway's error; 1008 is the client's.
fn end_server_span(span: Option<&Context>, status: u16, close: Option<u16>) {
    let Some(cx) = span else { return };
    let mut attributes = vec![KeyValue::new(
        semconv::HTTP_RESPONSE_STATUS_CODE,
        i64::from(status),
    )];
    if let Some(code) = close {
        attributes.push(KeyValue::new("websocket.close.code", i64::from(code)));
    }
    let span_status = match close {
        Some(CLOSE_ERROR) => SpanStatus::error("the engine stream failed"),
        _ if status >= 500 => SpanStatus::error(format!("HTTP {status}")),
        _ => SpanStatus::Unset,
    };
    telemetry::end_span(cx, attributes, span_status);
}

/// How a session ends: a close frame to send, or nothing when the client has gone.
type Close = Option<(u16, String)>;

fn close(code: u16, reason: impl Into<String>) -> Close {
    Some((code, reason.into()))
}

/// `text` cut to the close frame's limit, on a character boundary.
fn close_reason(text: &str) -> &str {
    if text.len() <= MAX_CLOSE_REASON_BYTES {
        return text;
    }
    let mut cut = MAX_CLOSE_REASON_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}

/// The close for an engine status: 1008 for what the engine refused, 1011 for anything else.
fn status_close(status: &tonic::Status) -> Close {
    match status.code() {
        Code::InvalidArgument => close(CLOSE_POLICY, status.message()),
        code => close(
            CLOSE_ERROR,
            format!("{}: {}", code_name(code), status.message()),
        ),
    }
}

/// One WebSocket's subscription.
struct Session {
    gateway: Arc<Gateway>,
    /// The SERVER span of the upgrade, current for the whole subscription.
    span: Option<Context>,
    /// `ws_messages_sent_total` by symbol, looked up once per symbol.
    sent: HashMap<String, Counter>,
}

impl Session {
    fn new(gateway: Arc<Gateway>, span: Option<Context>) -> Self {
        Session {
            gateway,
            span,
            sent: HashMap::new(),
        }
    }

    async fn run(mut self, mut socket: WebSocket) {
        let _active = self.gateway.metrics.ws().opened();
        let outcome = self.serve(&mut socket).await;
        let code = match &outcome {
            Some((code, reason)) => {
                send_close(&mut socket, *code, reason).await;
                Some(*code)
            }
            None => None,
        };
        let _attached = self.span.clone().map(Context::attach);
        tracing::info!(
            http.route = STREAM_ROUTE,
            websocket.close_code = code,
            reason = outcome
                .as_ref()
                .map_or("client went away", |(_, r)| r.as_str()),
            "subscription ended"
        );
        end_server_span(self.span.as_ref(), 101, code);
    }

    async fn serve(&mut self, socket: &mut WebSocket) -> Close {
        let settings = self.gateway.stream;
        let subscribe = match self.first_message(socket, settings.subscribe_timeout).await {
            Ok(subscribe) => subscribe,
            Err(close) => return close,
        };
        let mut client_span = ClientSpan::new(self.start_client_span());
        let mut request = tonic::Request::new(subscribe.into());
        if let Some(cx) = client_span.context() {
            self.gateway.telemetry.inject(cx, request.metadata_mut());
        }
        let mut engine = self.gateway.engine.clone();
        let timeout = self.gateway.engine_timeout;
        let updates = match tokio::time::timeout(timeout, engine.stream_market_data(request)).await
        {
            Ok(Ok(response)) => response.into_inner(),
            Ok(Err(status)) => {
                client_span.end(status.code(), status.message());
                return status_close(&status);
            }
            Err(_) => {
                let status = tonic::Status::deadline_exceeded(format!(
                    "the engine did not open the stream within {timeout:?}"
                ));
                client_span.end(status.code(), status.message());
                return status_close(&status);
            }
        };
        let trace_id = self.span.as_ref().and_then(telemetry::trace_id);
        let subscribed = ServerMessage::Subscribed {
            trace_id: trace_id.as_ref().map_or("", |id| id.as_str()),
        };
        let subscribed = serde_json::to_string(&subscribed).unwrap_or_default();
        if socket.send(Message::text(subscribed)).await.is_err() {
            return None;
        }

        let (queue, mut waiting) = mpsc::channel(settings.send_queue);
        let relay = Relay {
            gateway: Arc::clone(&self.gateway),
            updates,
            queue,
            client_span,
            subscription: self.span.as_ref().map(telemetry::span_context),
            faults: settings.faults,
        };
        let mut relay = AbortOnDrop(tokio::spawn(relay.run()));
        let stop = self.gateway.stop.clone();
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => {
                    return close(CLOSE_GOING_AWAY, "the gateway is shutting down");
                }
                message = socket.recv() => {
                    if let Some(close) = later_message(message) {
                        return close;
                    }
                }
                outgoing = waiting.recv() => {
                    let Some(outgoing) = outgoing else {
                        // The relay has ended and every update it queued is written.
                        return match (&mut relay.0).await {
                            Ok(Ok(())) => close(CLOSE_NORMAL, "the stream ended"),
                            Ok(Err(status)) => status_close(&status),
                            Err(error) => close(CLOSE_ERROR, format!("INTERNAL: the relay failed: {error}")),
                        };
                    };
                    tokio::select! {
                        written = self.write(socket, outgoing) => {
                            if !written {
                                return None;
                            }
                        }
                        () = stop.cancelled() => {
                            return close(CLOSE_GOING_AWAY, "the gateway is shutting down");
                        }
                    }
                }
            }
        }
    }

    /// The `subscribe` that must come first, or the close that answers anything else.
    async fn first_message(
        &self,
        socket: &mut WebSocket,
        timeout: Duration,
    ) -> Result<super::relay::Subscribe, Close> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let message = tokio::select! {
                message = tokio::time::timeout_at(deadline, socket.recv()) => message,
                () = self.gateway.stop.cancelled() => {
                    return Err(close(CLOSE_GOING_AWAY, "the gateway is shutting down"));
                }
            };
            let text = match message {
                Err(_) => {
                    return Err(close(
                        CLOSE_POLICY,
                        format!("no subscribe within {timeout:?}"),
                    ));
                }
                Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return Err(None),
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(Some(Ok(Message::Binary(_)))) => {
                    return Err(close(CLOSE_POLICY, "expected a text frame"));
                }
                Ok(Some(Ok(Message::Text(text)))) => text,
            };
            return match serde_json::from_str::<ClientMessage>(text.as_str()) {
                Ok(ClientMessage::Subscribe(subscribe)) => Ok(subscribe),
                Ok(ClientMessage::Unsubscribe) => {
                    Err(close(CLOSE_POLICY, "the first message must be a subscribe"))
                }
                Err(error) => Err(close(CLOSE_POLICY, format!("invalid subscribe: {error}"))),
            };
        }
    }

    /// Writes one update; `false` when the client has gone.
    async fn write(&mut self, socket: &mut WebSocket, outgoing: Outgoing) -> bool {
        let written = socket.send(Message::text(outgoing.frame)).await.is_ok();
        if let Some(cx) = &outgoing.consumer {
            let status = if written {
                SpanStatus::Unset
            } else {
                SpanStatus::error("the client went away")
            };
            telemetry::end_span(cx, [], status);
        }
        if written {
            let ws = self.gateway.metrics.ws();
            self.sent
                .entry(outgoing.symbol)
                .or_insert_with_key(|symbol| ws.sent(symbol))
                .inc();
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos() as i64;
            let delay = now.saturating_sub(outgoing.event_time_unix_nanos).max(0);
            ws.delivered(delay as f64 / 1e9);
        }
        written
    }

    /// The CLIENT span of the engine call, under the subscription's SERVER span.
    fn start_client_span(&self) -> Option<Context> {
        let parent = self.span.as_ref()?;
        let mut attributes = vec![
            KeyValue::new(semconv::RPC_SYSTEM, "grpc"),
            KeyValue::new(semconv::RPC_SERVICE, SERVICE_NAME),
            KeyValue::new(semconv::RPC_METHOD, STREAM_METHOD),
        ];
        attributes.extend(self.gateway.engine_peer.iter().cloned());
        self.gateway
            .telemetry
            .start_span(parent, STREAM_SPAN_NAME, SpanKind::Client, attributes)
    }
}

/// Any method but GET on the stream route.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "this route takes GET, as a WebSocket upgrade",
    )
}

/// What a message after the `subscribe` asks for: `None` to carry on.
fn later_message(message: Option<Result<Message, axum::Error>>) -> Option<Close> {
    match message {
        None | Some(Err(_)) | Some(Ok(Message::Close(_))) => Some(None),
        Some(Ok(Message::Ping(_) | Message::Pong(_))) => None,
        Some(Ok(Message::Binary(_))) => Some(close(CLOSE_POLICY, "expected a text frame")),
        Some(Ok(Message::Text(text))) => match serde_json::from_str::<ClientMessage>(&text) {
            Ok(ClientMessage::Unsubscribe) => Some(close(CLOSE_NORMAL, "unsubscribed")),
            Ok(ClientMessage::Subscribe(_)) => Some(close(
                CLOSE_POLICY,
                "already subscribed: one subscription per connection",
            )),
            Err(error) => Some(close(CLOSE_POLICY, format!("invalid message: {error}"))),
        },
    }
}

/// Sends the close frame and waits, briefly, for the client's answer, so that the connection
/// closes cleanly; a client that does not answer is dropped after [`CLOSE_TIMEOUT`].
async fn send_close(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: close_reason(reason).into(),
    };
    let closing = async {
        if socket.send(Message::Close(Some(frame))).await.is_err() {
            return;
        }
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, closing).await;
}

/// Aborts the relay, and with it the engine call, when the session ends first.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_fit_a_control_frame() {
        assert_eq!(close_reason("short"), "short");
        let long = "é".repeat(100);
        let cut = close_reason(&long);
        assert!(cut.len() <= MAX_CLOSE_REASON_BYTES && cut.len() >= MAX_CLOSE_REASON_BYTES - 1);
        assert!(long.starts_with(cut));
    }

    #[test]
    fn engine_statuses_map_to_close_codes() {
        let refused = status_close(&tonic::Status::invalid_argument("symbols: at least one"));
        assert_eq!(refused, close(CLOSE_POLICY, "symbols: at least one"));
        let failed = status_close(&tonic::Status::unavailable("connection refused"));
        assert_eq!(
            failed,
            close(CLOSE_ERROR, "UNAVAILABLE: connection refused")
        );
    }

    #[test]
    fn later_messages_end_or_carry_on() {
        let text = |t: &str| Some(Ok(Message::text(t.to_owned())));
        assert_eq!(
            later_message(text(r#"{"type":"unsubscribe"}"#)),
            Some(close(CLOSE_NORMAL, "unsubscribed"))
        );
        assert!(matches!(
            later_message(text(r#"{"type":"subscribe","symbols":["V"]}"#)),
            Some(Some((CLOSE_POLICY, _)))
        ));
        assert!(matches!(
            later_message(text("{")),
            Some(Some((CLOSE_POLICY, _)))
        ));
        assert_eq!(
            later_message(Some(Ok(Message::Ping(Default::default())))),
            None
        );
        assert_eq!(later_message(None), Some(None));
    }
}
