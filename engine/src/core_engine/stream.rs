//! `StreamMarketData`: a server stream of quotes from the synthetic series (docs/streaming.md).
//!
//! Each stream is a task of its own that sends into a one-slot channel which tonic drains into
//! the HTTP/2 stream: when the caller reads slowly, flow control fills the window, the channel
//! holds, and the task waits, so updates that fall due meanwhile go out late with their original
//! event time. The task ends when the caller cancels (the channel closes), when `max_updates`
//! have been sent, or when the engine shuts down.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanContext, SpanKind, Status as SpanStatus};
use opentelemetry::{Context, KeyValue};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Response, Status};

use super::service::{end_server_span, start_server_span};
use crate::faults::Faults;
use crate::market::{Limits, Series, StreamQuery};
use crate::metrics::{ActiveGuard, EngineMetrics, RpcMetrics};
use crate::proto::{MarketDataUpdate, StreamMarketDataRequest};
use crate::status::code_name;
use crate::telemetry::{self, Telemetry, semconv};

pub const STREAM_METHOD: &str = "StreamMarketData";
pub const STREAM_SPAN_NAME: &str = "core_engine.v1.CoreEngineService/StreamMarketData";
/// The messaging conventions' names for a streamed update (docs/streaming.md, "Tracing").
pub const MESSAGING_SYSTEM: &str = "core_engine";
pub const MESSAGING_DESTINATION: &str = "market_data";
pub const PRODUCER_SPAN_NAME: &str = "send market_data";
pub const CONSUMER_SPAN_NAME: &str = "process market_data";
/// One update in this many is traced unless `--stream-trace-every` says otherwise.
pub const DEFAULT_TRACE_EVERY: u64 = 10;

/// What tonic sends: the updates of one stream, or the status that ends it.
pub type UpdateStream = ReceiverStream<Result<MarketDataUpdate, Status>>;

/// What every stream shares.
pub(super) struct Streams {
    pub telemetry: Arc<Telemetry>,
    pub metrics: Arc<EngineMetrics>,
    pub rpc: Arc<RpcMetrics>,
    pub faults: Arc<Faults>,
    pub limits: Limits,
    pub trace_every: u64,
    /// Cancelled when the engine shuts down: every stream then ends with UNAVAILABLE.
    pub stop: CancellationToken,
}

impl Streams {
    /// Validates the request and starts its stream; a refused request is answered
    /// INVALID_ARGUMENT before any update.
    pub fn open(
        &self,
        request: Request<StreamMarketDataRequest>,
    ) -> Result<Response<UpdateStream>, Status> {
        let span = start_server_span(
            &self.telemetry,
            request.metadata(),
            STREAM_SPAN_NAME,
            STREAM_METHOD,
        );
        let query = match StreamQuery::from_request(request.get_ref(), &self.limits) {
            Ok(query) => query,
            Err(invalid) => {
                let status = Status::invalid_argument(invalid.to_string());
                let _attached = span.clone().map(Context::attach);
                tracing::warn!(
                    rpc.method = STREAM_METHOD,
                    rpc.grpc.status = code_name(status.code()),
                    error = status.message(),
                    "stream refused"
                );
                end_server_span(span.as_ref(), status.code(), Some(status.message()));
                self.rpc.stream_ended(status.code());
                return Err(status);
            }
        };
        let (tx, rx) = mpsc::channel(1);
        let stream = self.metrics.stream();
        let producer = Producer {
            counters: query
                .symbols
                .iter()
                .map(|s| stream.updates_sent(s))
                .collect(),
            _active: stream.opened(),
            query,
            tx,
            link: span.as_ref().map(telemetry::span_context),
            span,
            telemetry: Arc::clone(&self.telemetry),
            rpc: Arc::clone(&self.rpc),
            faults: Arc::clone(&self.faults),
            trace_every: self.trace_every,
            stop: self.stop.clone(),
            sent: 0,
        };
        tokio::spawn(producer.run());
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// One stream's task.
struct Producer {
    query: StreamQuery,
    tx: mpsc::Sender<Result<MarketDataUpdate, Status>>,
    /// The subscription's SERVER span, ended when the stream ends.
    span: Option<Context>,
    /// Its context, which every PRODUCER span links to.
    link: Option<SpanContext>,
    telemetry: Arc<Telemetry>,
    rpc: Arc<RpcMetrics>,
    faults: Arc<Faults>,
    /// `stream_updates_sent_total`, one counter per symbol of the query, in its order.
    counters: Vec<Counter>,
    _active: ActiveGuard,
    trace_every: u64,
    stop: CancellationToken,
    sent: u64,
}

/// How a stream ended.
enum End {
    Done,
    Cancelled,
    ShuttingDown,
}

impl Producer {
    async fn run(mut self) {
        let started = std::time::Instant::now();
        let (code, message) = match self.produce().await {
            End::Done => (Code::Ok, None),
            End::Cancelled => (Code::Cancelled, Some("cancelled by the caller")),
            End::ShuttingDown => {
                let status = Status::unavailable("the engine is shutting down");
                // The caller may already be gone; then there is no one to tell.
                let _ = self.tx.try_send(Err(status));
                (Code::Unavailable, Some("the engine is shutting down"))
            }
        };
        let _attached = self.span.clone().map(Context::attach);
        tracing::info!(
            rpc.method = STREAM_METHOD,
            rpc.grpc.status = code_name(code),
            updates = self.sent,
            elapsed_us = started.elapsed().as_micros() as u64,
            "stream ended"
        );
        end_server_span(self.span.as_ref(), code, message);
        self.rpc.stream_ended(code);
    }

    /// Sends round after round until the stream is done or abandoned.
    async fn produce(&mut self) -> End {
        let start = Instant::now();
        let start_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let query = &self.query;
        let mut series: Vec<Series> = query
            .symbols
            .iter()
            .map(|symbol| Series::new(query.source, symbol, start_unix.as_millis() as i64))
            .collect();
        let half_spread = query.source.half_spread();
        let mut since_start = Duration::ZERO;
        let mut round: u32 = 0;
        loop {
            if self.query.max_updates.is_some_and(|max| round >= max) {
                return End::Done;
            }
            if let Some(end) = self.wait_until(start + since_start).await {
                return end;
            }
            let hold = self.faults.stream_hold(Instant::now().into_std());
            if !hold.is_zero()
                && let Some(end) = self.wait_until(Instant::now() + hold).await
            {
                return end;
            }
            let event_time = (start_unix + since_start).as_nanos() as i64;
            for (i, ticks) in series.iter_mut().enumerate() {
                let tick = ticks.next_tick();
                let sequence = self.sent + 1;
                let symbol = &self.query.symbols[i];
                let producer = self.start_producer_span(sequence, symbol);
                let update = MarketDataUpdate {
                    symbol: symbol.clone(),
                    sequence,
                    event_time_unix_nanos: event_time,
                    last: tick.price,
                    bid: tick.price * (1.0 - half_spread),
                    ask: tick.price * (1.0 + half_spread),
                    volume: u64::from(tick.volume),
                    traceparent: producer
                        .as_ref()
                        .and_then(telemetry::traceparent)
                        .map(|tp| tp.as_str().to_owned())
                        .unwrap_or_default(),
                };
                let sent = tokio::select! {
                    sent = self.tx.send(Ok(update)) => sent.is_ok(),
                    () = self.stop.cancelled() => {
                        if let Some(cx) = &producer {
                            telemetry::end_span(cx, [], SpanStatus::error("the engine is shutting down"));
                        }
                        return End::ShuttingDown;
                    }
                };
                if let Some(cx) = &producer {
                    let status = if sent {
                        SpanStatus::Unset
                    } else {
                        SpanStatus::error("the stream was cancelled")
                    };
                    telemetry::end_span(cx, [], status);
                }
                if !sent {
                    return End::Cancelled;
                }
                self.sent = sequence;
                self.counters[i].inc();
            }
            round += 1;
            since_start += self.query.interval;
        }
    }

    /// Sleeps until `deadline`, unless the caller cancels or the engine stops first.
    async fn wait_until(&self, deadline: Instant) -> Option<End> {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => None,
            () = self.tx.closed() => Some(End::Cancelled),
            () = self.stop.cancelled() => Some(End::ShuttingDown),
        }
    }

    /// The PRODUCER span of update `sequence`, when it is one of the traced one in N: the root
    /// of a trace of its own, linked to the subscription.
    fn start_producer_span(&self, sequence: u64, symbol: &str) -> Option<Context> {
        let link = self.link.as_ref()?;
        if !(sequence - 1).is_multiple_of(self.trace_every) {
            return None;
        }
        self.telemetry.start_linked_span(
            &Context::new(),
            PRODUCER_SPAN_NAME,
            SpanKind::Producer,
            vec![
                KeyValue::new(semconv::MESSAGING_SYSTEM, MESSAGING_SYSTEM),
                KeyValue::new(semconv::MESSAGING_OPERATION_TYPE, "send"),
                KeyValue::new(semconv::MESSAGING_DESTINATION_NAME, MESSAGING_DESTINATION),
                KeyValue::new(semconv::MESSAGING_MESSAGE_ID, sequence.to_string()),
                KeyValue::new("market.symbol", symbol.to_owned()),
            ],
            std::slice::from_ref(link),
        )
    }
}
