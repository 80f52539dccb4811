//! The engine side of a WebSocket subscription: the engine stream read into the connection's
//! bounded send queue, each update turned into its JSON frame, traced when it carries a sampled
//! `traceparent` (docs/streaming.md).
//!
//! The relay runs as a task of its own, so that it keeps reading the engine stream while the
//! socket writer waits on a slow client: the queue fills and further updates are dropped and
//! counted, rather than held in the gateway or pushed back onto the engine. Dropping the task
//! drops the gRPC stream, which cancels the engine call.

use std::sync::Arc;

use opentelemetry::trace::{SpanContext, SpanKind, Status as SpanStatus, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::{self, error::TrySendError};
use tonic::{Code, Status, Streaming};

use super::Gateway;
use crate::core_engine::{CONSUMER_SPAN_NAME, MESSAGING_DESTINATION, MESSAGING_SYSTEM};
use crate::metrics::DropReason;
use crate::proto::{MarketDataUpdate, StreamMarketDataRequest};
use crate::telemetry::{self, semconv};

/// What a client sends.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ClientMessage {
    Subscribe(Subscribe),
    Unsubscribe,
}

/// The fields of a `subscribe`; those left out take the engine's defaults.
/// Unknown fields are ignored, as in the fetch route's body.
#[derive(Debug, Deserialize)]
pub struct Subscribe {
    #[serde(default)]
    pub symbols: Vec<String>,
    #[serde(default)]
    pub source_id: String,
    #[serde(default)]
    pub interval_ms: u32,
    #[serde(default)]
    pub max_updates: u32,
}

impl From<Subscribe> for StreamMarketDataRequest {
    fn from(subscribe: Subscribe) -> Self {
        StreamMarketDataRequest {
            symbols: subscribe.symbols,
            source_id: subscribe.source_id,
            interval_ms: subscribe.interval_ms,
            max_updates: subscribe.max_updates,
        }
    }
}

/// What the gateway sends.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerMessage<'a> {
    Subscribed { trace_id: &'a str },
    Update(UpdateFrame<'a>),
}

#[derive(Debug, Serialize)]
pub struct UpdateFrame<'a> {
    pub symbol: &'a str,
    pub sequence: u64,
    pub event_time_unix_nanos: i64,
    pub last: f64,
    pub bid: f64,
    pub ask: f64,
    pub volume: u64,
    /// The CONSUMER span's context when the update is traced; empty otherwise.
    pub traceparent: &'a str,
}

/// One update waiting in the send queue.
pub struct Outgoing {
    pub frame: String,
    pub symbol: String,
    pub event_time_unix_nanos: i64,
    /// The update's CONSUMER span, ended once the frame is written (or dropped).
    pub consumer: Option<Context>,
}

/// The calibration faults of the relay (docs/streaming.md, "Faults").
#[derive(Debug, Clone, Copy, Default)]
pub struct RelayFaults {
    /// Drop one update in this many, silently: no metric, no span.
    pub drop_every_nth: Option<u64>,
    /// Start each CONSUMER span in a trace of its own instead of under the update's PRODUCER.
    pub drop_update_context: bool,
}

/// The CLIENT span of the engine call, ended exactly once: with the stream's status, or, when the
/// relay is dropped first (the subscription ended at the gateway), as CANCELLED.
pub struct ClientSpan(Option<Context>);

impl ClientSpan {
    pub fn new(cx: Option<Context>) -> Self {
        ClientSpan(cx)
    }

    /// The span's context while it is open, to propagate to the engine.
    pub fn context(&self) -> Option<&Context> {
        self.0.as_ref()
    }

    /// Ends the span with `code`; an error for every code but OK, as the RPC conventions have it
    /// for a client, except a cancellation the gateway made itself.
    pub fn end(&mut self, code: Code, message: &str) {
        if let Some(cx) = self.0.take() {
            let status = match code {
                Code::Ok | Code::Cancelled => SpanStatus::Unset,
                _ => SpanStatus::error(message.to_owned()),
            };
            telemetry::end_span(
                &cx,
                [KeyValue::new(semconv::RPC_GRPC_STATUS_CODE, code as i64)],
                status,
            );
        }
    }
}

impl Drop for ClientSpan {
    fn drop(&mut self) {
        self.end(Code::Cancelled, "cancelled by the gateway");
    }
}

/// Reads the engine stream into the send queue until the stream ends.
pub struct Relay {
    pub gateway: Arc<Gateway>,
    pub updates: Streaming<MarketDataUpdate>,
    pub queue: mpsc::Sender<Outgoing>,
    pub client_span: ClientSpan,
    /// The subscription's SERVER span, which every CONSUMER span links to.
    pub subscription: Option<SpanContext>,
    pub faults: RelayFaults,
}

impl Relay {
    /// The engine stream's outcome: `Ok` when it ended with OK (or the session went away).
    pub async fn run(mut self) -> Result<(), Status> {
        let mut received: u64 = 0;
        loop {
            let update = match self.updates.message().await {
                Ok(Some(update)) => update,
                Ok(None) => {
                    self.client_span.end(Code::Ok, "");
                    return Ok(());
                }
                Err(status) => {
                    self.client_span.end(status.code(), status.message());
                    return Err(status);
                }
            };
            received += 1;
            if self
                .faults
                .drop_every_nth
                .is_some_and(|n| received.is_multiple_of(n))
            {
                continue;
            }
            let outgoing = self.outgoing(update);
            match self.queue.try_send(outgoing) {
                Ok(()) => {}
                Err(TrySendError::Full(dropped)) => {
                    self.gateway.metrics.ws().dropped(DropReason::SlowClient);
                    if let Some(cx) = &dropped.consumer {
                        telemetry::end_span(cx, [], SpanStatus::error("dropped: slow client"));
                    }
                }
                // The session has ended; it cancels the call by dropping this task.
                Err(TrySendError::Closed(_)) => return Ok(()),
            }
        }
    }

    fn outgoing(&self, update: MarketDataUpdate) -> Outgoing {
        let consumer = self.start_consumer_span(&update);
        let traceparent = consumer.as_ref().and_then(telemetry::traceparent);
        let frame = ServerMessage::Update(UpdateFrame {
            symbol: &update.symbol,
            sequence: update.sequence,
            event_time_unix_nanos: update.event_time_unix_nanos,
            last: update.last,
            bid: update.bid,
            ask: update.ask,
            volume: update.volume,
            traceparent: traceparent.as_ref().map_or("", |tp| tp.as_str()),
        });
        Outgoing {
            // Strings, integers and floats only: serializing cannot fail (a NaN becomes null).
            frame: serde_json::to_string(&frame).unwrap_or_default(),
            symbol: update.symbol,
            event_time_unix_nanos: update.event_time_unix_nanos,
            consumer,
        }
    }

    /// The CONSUMER span of an update that carries a sampled `traceparent`: the child of its
    /// PRODUCER span, linked to the subscription. `None` when tracing is off.
    fn start_consumer_span(&self, update: &MarketDataUpdate) -> Option<Context> {
        if update.traceparent.is_empty() {
            return None;
        }
        let telemetry = &self.gateway.telemetry;
        let producer = telemetry.remote_parent(&update.traceparent)?;
        if !producer.is_sampled() {
            return None;
        }
        let parent = if self.faults.drop_update_context {
            Context::new()
        } else {
            Context::new().with_remote_span_context(producer)
        };
        let linked = self.subscription.as_slice();
        telemetry.start_linked_span(
            &parent,
            CONSUMER_SPAN_NAME,
            SpanKind::Consumer,
            vec![
                KeyValue::new(semconv::MESSAGING_SYSTEM, MESSAGING_SYSTEM),
                KeyValue::new(semconv::MESSAGING_OPERATION_TYPE, "process"),
                KeyValue::new(semconv::MESSAGING_DESTINATION_NAME, MESSAGING_DESTINATION),
                KeyValue::new(semconv::MESSAGING_MESSAGE_ID, update.sequence.to_string()),
                KeyValue::new("market.symbol", update.symbol.clone()),
            ],
            linked,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_parse_as_the_contract_writes_them() {
        let parsed: ClientMessage = serde_json::from_str(
            r#"{"type":"subscribe","symbols":["AAPL"],"source_id":"yahoo_finance","interval_ms":100,"max_updates":0}"#,
        )
        .expect("a subscribe");
        let ClientMessage::Subscribe(subscribe) = parsed else {
            panic!("not a subscribe: {parsed:?}");
        };
        assert_eq!(subscribe.symbols, ["AAPL"]);
        assert_eq!(subscribe.interval_ms, 100);
        assert!(matches!(
            serde_json::from_str(r#"{"type":"unsubscribe"}"#),
            Ok(ClientMessage::Unsubscribe)
        ));
        for bad in [
            r#"{"type":"subscribed"}"#,
            r#"{"symbols":["AAPL"]}"#,
            r#"{"type":"subscribe","symbols":"AAPL"}"#,
            "not json",
        ] {
            assert!(serde_json::from_str::<ClientMessage>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn frames_are_written_as_the_contract_reads_them() {
        let frame = serde_json::to_value(ServerMessage::Update(UpdateFrame {
            symbol: "AAPL",
            sequence: 7,
            event_time_unix_nanos: 1_733_000_000_000_000_000,
            last: 1.5,
            bid: 1.25,
            ask: 1.75,
            volume: 10,
            traceparent: "",
        }))
        .expect("serializes");
        assert_eq!(
            frame,
            serde_json::json!({"type": "update", "symbol": "AAPL", "sequence": 7,
                "event_time_unix_nanos": 1_733_000_000_000_000_000_i64, "last": 1.5,
                "bid": 1.25, "ask": 1.75, "volume": 10, "traceparent": ""})
        );
        let subscribed =
            serde_json::to_string(&ServerMessage::Subscribed { trace_id: "" }).expect("serializes");
        assert_eq!(subscribed, r#"{"type":"subscribed","trace_id":""}"#);
    }
}
