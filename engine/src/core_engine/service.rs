//! The `CoreEngineService` implementation: validation, fault injection, the business stages, and the
//! telemetry around them (one SERVER span per RPC, an INTERNAL span per stage, metrics, a log line).

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use opentelemetry::trace::{FutureExt, SpanKind, Status as SpanStatus};
use opentelemetry::{Context, KeyValue};
use tonic::{Code, Request, Response, Status};

use crate::faults::Faults;
use crate::market::{self, Limits, MarketDataQuery, TICK_INTERVAL_MS};
use crate::metrics::{EngineMetrics, RpcMetrics};
use crate::proto::core_engine_service_server::CoreEngineService;
use crate::proto::{
    self, FetchMarketDataRequest, FetchMarketDataResponse, StreamMarketDataRequest,
};
use crate::status::{code_name, is_server_error};
use crate::telemetry::{self, Telemetry, semconv};

use super::stream::{DEFAULT_TRACE_EVERY, STREAM_METHOD, Streams, UpdateStream};

pub const SERVICE_NAME: &str = "core_engine.v1.CoreEngineService";
pub const FETCH_METHOD: &str = "FetchMarketData";
/// The RPC span name, `{service}/{method}` as the RPC conventions have it.
pub const FETCH_SPAN_NAME: &str = "core_engine.v1.CoreEngineService/FetchMarketData";

/// Requests loading more ticks than this run on the blocking pool, so that a multi-millisecond
/// computation does not hold one of the few async workers (and, with it, other requests, health
/// checks and scrapes). Smaller ones run inline, where a thread hand-off would cost more than the work.
const INLINE_WORK_MAX_TICKS: u64 = 100_000;

pub struct CoreEngine {
    telemetry: Arc<Telemetry>,
    metrics: RpcMetrics,
    faults: Arc<Faults>,
    limits: Limits,
    streams: Streams,
}

impl CoreEngine {
    pub fn new(
        telemetry: Arc<Telemetry>,
        metrics: &Arc<EngineMetrics>,
        faults: Faults,
        limits: Limits,
    ) -> Self {
        let faults = Arc::new(faults);
        CoreEngine {
            streams: Streams {
                telemetry: Arc::clone(&telemetry),
                metrics: Arc::clone(metrics),
                rpc: Arc::new(metrics.rpc(STREAM_METHOD)),
                faults: Arc::clone(&faults),
                limits,
                trace_every: DEFAULT_TRACE_EVERY,
                stop: tokio_util::sync::CancellationToken::new(),
            },
            telemetry,
            metrics: metrics.rpc(FETCH_METHOD),
            faults,
            limits,
        }
    }

    /// Streams trace one update in `trace_every` (at least 1) and end, with UNAVAILABLE, when
    /// `stop` is cancelled.
    pub fn with_streams(
        mut self,
        trace_every: u64,
        stop: tokio_util::sync::CancellationToken,
    ) -> Self {
        self.streams.trace_every = trace_every.max(1);
        self.streams.stop = stop;
        self
    }

    /// Everything after span creation; runs with the server span as the current context.
    async fn serve(
        &self,
        request: FetchMarketDataRequest,
        span: Option<&Context>,
        received: Instant,
    ) -> Result<FetchMarketDataResponse, Status> {
        let result = self.fetch(request, span).await;
        let code = result.as_ref().map_or_else(Status::code, |_| Code::Ok);
        let elapsed_us = received.elapsed().as_micros() as u64;
        match &result {
            Ok(_) => tracing::info!(
                rpc.method = FETCH_METHOD,
                rpc.grpc.status = code_name(code),
                elapsed_us,
                "rpc completed"
            ),
            Err(status) => tracing::warn!(
                rpc.method = FETCH_METHOD,
                rpc.grpc.status = code_name(code),
                elapsed_us,
                error = status.message(),
                "rpc failed"
            ),
        }
        result
    }

    async fn fetch(
        &self,
        request: FetchMarketDataRequest,
        span: Option<&Context>,
    ) -> Result<FetchMarketDataResponse, Status> {
        self.faults.leak();
        let delay = self.faults.delay(Instant::now());
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let query = MarketDataQuery::from_request(&request, &self.limits)
            .map_err(|invalid| Status::invalid_argument(invalid.to_string()))?;
        if let Some(code) = self.faults.injected_error() {
            return Err(Status::new(code, "injected fault"));
        }
        if span.is_some_and(telemetry::is_recording) {
            self.faults.burn_traced_cpu();
        }

        let (source_id, window) = (query.source.id().to_owned(), query.window);
        let work = Work {
            telemetry: Arc::clone(&self.telemetry),
            span: span.cloned(),
            query,
            max_kept_ticks: self.limits.max_total_ticks,
        };
        let quotes = if work.query.total_ticks() <= INLINE_WORK_MAX_TICKS {
            work.run()
        } else {
            tokio::task::spawn_blocking(move || work.run())
                .await
                .map_err(|error| Status::internal(format!("computation failed: {error}")))?
        };
        Ok(FetchMarketDataResponse {
            quotes,
            source_id,
            window,
            request_id: request.request_id,
        })
    }
}

thread_local! {
    /// Each thread's tick buffers, kept from one request to the next. A request may hold a million
    /// ticks (16 MB); allocated afresh each time, such blocks go back to the kernel between
    /// requests and cost a page fault per page on the next, a CPU cost that moves with the
    /// allocator's state rather than the work (docs/overhead.md, "Page faults"). They live as long
    /// as the thread: a blocking-pool thread exits after 10 s without work, and with it its buffers.
    static TICKS: RefCell<Vec<Vec<market::Tick>>> = const { RefCell::new(Vec::new()) };
}

/// The business stages of one request, each under its own INTERNAL span.
struct Work {
    telemetry: Arc<Telemetry>,
    span: Option<Context>,
    query: MarketDataQuery,
    /// The most ticks a thread keeps buffers for between requests: what one request may hold.
    max_kept_ticks: u64,
}

impl Work {
    fn run(self) -> Vec<proto::Quote> {
        let query = &self.query;
        let stage = self.stage_span(
            "market_data.load",
            vec![
                KeyValue::new("market.source_id", query.source.id()),
                KeyValue::new("market.symbol_count", query.symbols.len() as i64),
                KeyValue::new("market.window", i64::from(query.window)),
            ],
        );
        let mut series = TICKS.take();
        series.resize_with(query.symbols.len(), Vec::new);
        for (symbol, ticks) in query.symbols.iter().zip(series.iter_mut()) {
            market::load_ticks(
                query.source,
                symbol,
                query.window,
                query.as_of_unix_ms,
                ticks,
            );
        }
        end_stage(stage);

        let stage = self.stage_span(
            "analytics.compute",
            vec![KeyValue::new(
                "market.ma_period_count",
                query.ma_periods.len() as i64,
            )],
        );
        let quotes = query
            .symbols
            .iter()
            .zip(&series)
            .map(|(symbol, ticks)| quote(query, symbol, ticks))
            .collect();
        end_stage(stage);
        let kept: usize = series.iter().map(Vec::capacity).sum();
        if kept as u64 <= self.max_kept_ticks {
            TICKS.set(series);
        }
        quotes
    }

    fn stage_span(&self, name: &'static str, attributes: Vec<KeyValue>) -> Option<Context> {
        self.telemetry
            .start_span(self.span.as_ref()?, name, SpanKind::Internal, attributes)
    }
}

fn end_stage(stage: Option<Context>) {
    if let Some(cx) = stage {
        telemetry::end_span(&cx, [], SpanStatus::Unset);
    }
}

fn quote(query: &MarketDataQuery, symbol: &str, ticks: &[market::Tick]) -> proto::Quote {
    let analysis = market::analyse(ticks, &query.ma_periods);
    let half_spread = analysis.close * query.source.half_spread();
    proto::Quote {
        symbol: symbol.to_owned(),
        currency: "USD".into(),
        last: analysis.close,
        bid: analysis.close - half_spread,
        ask: analysis.close + half_spread,
        ohlc: Some(proto::Ohlc {
            open: analysis.open,
            high: analysis.high,
            low: analysis.low,
            close: analysis.close,
        }),
        vwap: analysis.vwap,
        volume: analysis.volume,
        moving_averages: analysis
            .moving_averages
            .iter()
            .map(|ma| proto::MovingAverage {
                period: ma.period,
                sma: ma.sma,
                ema: ma.ema,
            })
            .collect(),
        tick_count: ticks.len() as u32,
        window_start_unix_ms: query.as_of_unix_ms - i64::from(query.window) * TICK_INTERVAL_MS,
        window_end_unix_ms: query.as_of_unix_ms,
        change_percent: if analysis.open == 0.0 {
            0.0
        } else {
            (analysis.close / analysis.open - 1.0) * 100.0
        },
    }
}

#[tonic::async_trait]
impl CoreEngineService for CoreEngine {
    async fn fetch_market_data(
        &self,
        request: Request<FetchMarketDataRequest>,
    ) -> Result<Response<FetchMarketDataResponse>, Status> {
        let received = Instant::now();
        let mut rpc = RpcObservation::start(
            &self.metrics,
            start_server_span(
                &self.telemetry,
                request.metadata(),
                FETCH_SPAN_NAME,
                FETCH_METHOD,
            ),
            received,
        );
        let request = request.into_inner();
        let result = match &rpc.span {
            Some(cx) => {
                self.serve(request, Some(cx), received)
                    .with_context(cx.clone())
                    .await
            }
            None => self.serve(request, None, received).await,
        };
        rpc.finish(&result);
        result.map(Response::new)
    }

    type StreamMarketDataStream = UpdateStream;

    async fn stream_market_data(
        &self,
        request: Request<StreamMarketDataRequest>,
    ) -> Result<Response<UpdateStream>, Status> {
        self.streams.open(request)
    }
}

/// Records an RPC's metrics and ends its span exactly once: when it completes, or, if its future
/// is dropped first (the caller's deadline passed, the connection reset), as CANCELLED, so that
/// abandoned requests are counted too.
struct RpcObservation<'a> {
    metrics: &'a RpcMetrics,
    span: Option<Context>,
    received: Instant,
    finished: bool,
}

impl<'a> RpcObservation<'a> {
    fn start(metrics: &'a RpcMetrics, span: Option<Context>, received: Instant) -> Self {
        metrics.started();
        RpcObservation {
            metrics,
            span,
            received,
            finished: false,
        }
    }

    fn finish<T>(&mut self, result: &Result<T, Status>) {
        match result {
            Ok(_) => self.record(Code::Ok, None),
            Err(status) => self.record(status.code(), Some(status.message())),
        }
    }

    fn record(&mut self, code: Code, message: Option<&str>) {
        self.finished = true;
        end_server_span(self.span.as_ref(), code, message);
        self.metrics.finished(code, self.received.elapsed());
    }
}

impl Drop for RpcObservation<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let _attached = self.span.clone().map(Context::attach);
            tracing::warn!(rpc.method = FETCH_METHOD, "rpc abandoned before completion");
            self.record(Code::Cancelled, Some("abandoned before completion"));
        }
    }
}

/// Ends a call's SERVER span with its gRPC status: ERROR, with the message, for a server error
/// only, as the RPC conventions say.
pub(super) fn end_server_span(span: Option<&Context>, code: Code, message: Option<&str>) {
    if let Some(cx) = span {
        let status = match message {
            Some(message) if is_server_error(code) => SpanStatus::error(message.to_owned()),
            _ => SpanStatus::Unset,
        };
        telemetry::end_span(
            cx,
            [KeyValue::new(semconv::RPC_GRPC_STATUS_CODE, code as i64)],
            status,
        );
    }
}

/// The SERVER span of a call to `method`, under the caller's context carried in `metadata`, with
/// the RPC attributes every method of the service shares. `None` when tracing is off.
pub(super) fn start_server_span(
    telemetry: &Telemetry,
    metadata: &tonic::metadata::MetadataMap,
    span_name: &'static str,
    method: &'static str,
) -> Option<Context> {
    let parent = telemetry.extract(metadata)?;
    telemetry.start_span(
        &parent,
        span_name,
        SpanKind::Server,
        vec![
            KeyValue::new(semconv::RPC_SYSTEM, "grpc"),
            KeyValue::new(semconv::RPC_SERVICE, SERVICE_NAME),
            KeyValue::new(semconv::RPC_METHOD, method),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn work(symbols: &[&str], window: u32) -> Work {
        let request = FetchMarketDataRequest {
            symbols: symbols.iter().map(|s| (*s).to_owned()).collect(),
            source_id: "polygon".to_owned(),
            window,
            ma_periods: vec![5, 20],
            as_of_unix_ms: 1_700_000_000_000,
            request_id: String::new(),
        };
        let limits = Limits::default();
        Work {
            telemetry: Arc::new(Telemetry::disabled()),
            span: None,
            query: MarketDataQuery::from_request(&request, &limits).expect("a valid request"),
            max_kept_ticks: limits.max_total_ticks,
        }
    }

    /// The kept buffers change nothing: a request answers the same after larger and smaller ones
    /// on the same thread as on a thread of its own.
    #[test]
    fn kept_tick_buffers_give_the_same_quotes() {
        let large = || work(&["AAPL", "MSFT", "GOOG"], 2000);
        let small = || work(&["V"], 300);
        let alone = std::thread::spawn(move || (small().run(), large().run()))
            .join()
            .expect("a thread of its own");
        let first = large().run();
        let after_large = small().run();
        let after_small = large().run();
        assert_eq!(after_large, alone.0);
        assert_eq!(after_small, first);
        assert_eq!(first, alone.1);
        assert_eq!(first.len(), 3);
        assert_eq!(after_large[0].tick_count, 300);
    }
}
