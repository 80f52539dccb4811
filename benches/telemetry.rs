//! What tracing costs the services, measured on their own code: the engine's gRPC handler
//! (`CoreEngine::fetch_market_data`, its spans, metrics and business stages) called directly with
//! tracing off and on; one span through the services' `Telemetry`; and W3C extraction and injection
//! through the functions the services call.
//!
//! `Telemetry` is built by the services' own constructor (`Telemetry::exporting`, the batch
//! processor and resource that `from_env` sets up) with two exporters: one that discards every
//! batch (the SDK's floor) and the real OTLP/gRPC exporter sending to a counting sink that this
//! binary starts as a child process on 127.0.0.1 (so that the sink's CPU is not counted as ours).
//! "off" is `Telemetry::disabled()`, what `OTEL_SDK_DISABLED=true` gives.
//!
//! Two kinds of figure:
//! - `span/*`, `engine_request/*`: wall time of the calling thread, which is what criterion
//!   measures. Most of the export work (batching, encoding, the gRPC call) happens on the batch
//!   processor's thread and the Tokio workers, where this does not see it.
//! - `*_process_cpu/*`: CPU time of the whole process (`CLOCK_PROCESS_CPUTIME_ID`) per iteration,
//!   export included: the figure that counts (DESIGN.md, measurement rules).
//!
//! An `engine_request` does the engine's whole work for the smallest request (one symbol, a
//! window of one tick), so tracing's cost is the difference between a pipeline and `off`, not the
//! figure itself. These are hot-loop figures: the same instructions take several times longer in a
//! service that waits milliseconds between requests (docs/measurements.md, "Tracing overhead").
//!
//! Spans are created in chunks of one export batch and flushed after each chunk, untimed in the
//! wall-time figures and counted in the CPU ones, so that the batch queue never fills: a full queue
//! drops spans silently and would make tracing look cheaper than it is. The created and exported
//! span counts are printed at the end to show that nothing was dropped.

use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue};
use criterion::{BatchSize, Criterion};
use engine::core_engine::{CoreEngine, DEFAULT_SERVICE_NAME};
use engine::faults::Faults;
use engine::market::Limits;
use engine::metrics::EngineMetrics;
use engine::proto::FetchMarketDataRequest;
use engine::proto::core_engine_service_server::CoreEngineService;
use engine::telemetry::{self, Telemetry};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use tokio::runtime::Runtime;
use tonic::metadata::MetadataMap;

/// The services' allocator, so that allocation costs here what it costs them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Set in the environment of the child process that runs the OTLP sink.
const SINK_ENV: &str = "TELEMETRY_BENCH_OTLP_SINK";

/// The SDK's default export batch size: one chunk of spans between flushes.
const SPANS_PER_FLUSH: u64 = 512;

/// The engine makes three spans per valid request (SERVER, `market_data.load`,
/// `analytics.compute`).
const SPANS_PER_REQUEST: u64 = 3;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn main() {
    if std::env::var_os(SINK_ENV).is_some() {
        sink::run();
        return;
    }
    let sink = sink::Child::start();
    // Two workers, as on the reference machine; the OTLP exporter's connection lives on them.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime can be built");
    let _entered = runtime.enter();
    let off = Pipeline::new(Telemetry::disabled(), None);
    let discard = Pipeline::discarding();
    let otlp = Pipeline::otlp(&format!("http://127.0.0.1:{}", sink.port));

    let mut c = Criterion::default().configure_from_args();
    spans(&mut c, &off, &discard, &otlp);
    engine_requests(&mut c, &runtime, &off, &discard, &otlp);
    propagation(&mut c, &discard.telemetry);

    let discard_counts = discard.shutdown();
    let otlp_created = otlp.created.load(Ordering::Relaxed);
    otlp.shutdown();
    let received = sink.stop();
    println!(
        "spans: discarding exporter {} created, {} exported; OTLP {} created, {} received by the sink",
        discard_counts.0,
        discard_counts.1,
        otlp_created,
        received.map_or_else(|| "?".to_owned(), |n| n.to_string())
    );
    if discard_counts.0 != discard_counts.1 || received != Some(otlp_created) {
        println!("warning: spans were dropped; the figures above undercount the export work");
    }
    c.final_summary();
}

/// The services' `Telemetry`, the engine's handler built on it, and the spans asked for so far,
/// so that the end can tell whether every one of them was exported.
struct Pipeline {
    telemetry: Arc<Telemetry>,
    engine: CoreEngine,
    created: AtomicU64,
    /// Spans the discarding exporter was given; the OTLP sink counts its own.
    exported: Option<Arc<AtomicU64>>,
}

impl Pipeline {
    fn new(telemetry: Telemetry, exported: Option<Arc<AtomicU64>>) -> Self {
        let telemetry = Arc::new(telemetry);
        let engine = CoreEngine::new(
            Arc::clone(&telemetry),
            &Arc::new(EngineMetrics::default()),
            Faults::default(),
            Limits::default(),
        );
        Pipeline {
            telemetry,
            engine,
            created: AtomicU64::new(0),
            exported,
        }
    }

    fn discarding() -> Self {
        let exported = Arc::new(AtomicU64::new(0));
        let telemetry = Telemetry::exporting(DEFAULT_SERVICE_NAME, Discard(Arc::clone(&exported)));
        Pipeline::new(telemetry, Some(exported))
    }

    /// Must be called inside the Tokio runtime, as the engine's exporter is.
    fn otlp(endpoint: &str) -> Self {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .expect("the OTLP exporter builds for a valid loopback URL");
        Pipeline::new(Telemetry::exporting(DEFAULT_SERVICE_NAME, exporter), None)
    }

    fn made(&self, spans: u64) {
        if self.telemetry.is_enabled() {
            self.created.fetch_add(spans, Ordering::Relaxed);
        }
    }

    /// Waits until every span ended so far has been exported.
    fn flush(&self) {
        self.telemetry
            .force_flush()
            .expect("the batch processor flushes to a live exporter");
    }

    /// Exports what is still queued; returns the spans created and (discarding exporter) exported.
    fn shutdown(self) -> (u64, u64) {
        if let Err(error) = self.telemetry.force_flush() {
            eprintln!("tracer provider flush: {error}");
        }
        let exported = self
            .exported
            .map_or(0, |exported| exported.load(Ordering::Relaxed));
        (self.created.load(Ordering::Relaxed), exported)
    }
}

/// Counts and drops every batch: what remains is the SDK's own cost.
#[derive(Debug)]
struct Discard(Arc<AtomicU64>);

impl SpanExporter for Discard {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// A sampled remote parent, as the engine receives from the gateway.
fn remote_parent() -> Context {
    let propagator = TraceContextPropagator::new();
    let carrier =
        std::collections::HashMap::from([("traceparent".to_owned(), TRACEPARENT.to_owned())]);
    let cx = propagator.extract(&carrier);
    assert!(
        cx.span().span_context().is_sampled(),
        "the parent is sampled"
    );
    cx
}

/// One span with three attributes at its start and one at its end, through the services'
/// `start_span` and `end_span`.
fn one_span(pipeline: &Pipeline, parent: &Context) {
    pipeline.made(1);
    let span = pipeline.telemetry.start_span(
        parent,
        "bench.span",
        SpanKind::Server,
        vec![
            KeyValue::new("bench.system", "grpc"),
            KeyValue::new("bench.service", "bench.v1.Service"),
            KeyValue::new("bench.method", "Method"),
        ],
    );
    if let Some(cx) = span {
        telemetry::end_span(&cx, [KeyValue::new("bench.code", 0_i64)], Status::Unset);
    }
}

/// One request through the engine's own gRPC handler, as tonic would call it once the message is
/// decoded: the gateway's context in the metadata, the smallest valid query.
fn engine_request(runtime: &Runtime, pipeline: &Pipeline, metadata: &MetadataMap) {
    pipeline.made(SPANS_PER_REQUEST);
    let mut request = tonic::Request::new(FetchMarketDataRequest {
        symbols: vec!["AAPL".to_owned()],
        source_id: "yahoo_finance".to_owned(),
        window: 1,
        ..FetchMarketDataRequest::default()
    });
    *request.metadata_mut() = metadata.clone();
    let response = runtime.block_on(pipeline.engine.fetch_market_data(request));
    assert!(response.is_ok(), "the bench's request is valid");
    black_box(response.ok());
}

/// CPU time used by every thread of this process so far.
fn process_cpu() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .expect("the process CPU clock is readable on Linux")
        .into()
}

/// Runs `routine` `iters` times in chunks of `chunk`, flushing after each, and returns the
/// calling thread's wall time spent in `routine` (flushes excluded).
fn wall_time(pipeline: &Pipeline, iters: u64, chunk: u64, mut routine: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = chunk.min(iters - done);
        let start = Instant::now();
        for _ in 0..n {
            routine();
        }
        total += start.elapsed();
        pipeline.flush();
        done += n;
    }
    total
}

/// As [`wall_time`], but returns the whole process's CPU time, flushes and export included.
fn cpu_time(pipeline: &Pipeline, iters: u64, chunk: u64, mut routine: impl FnMut()) -> Duration {
    let start = process_cpu();
    let mut done = 0;
    while done < iters {
        let n = chunk.min(iters - done);
        for _ in 0..n {
            routine();
        }
        pipeline.flush();
        done += n;
    }
    process_cpu().saturating_sub(start)
}

/// The calling thread's wall time of `work` under each pipeline (`off` first), and the whole
/// process's CPU, export included, in `<group>_process_cpu`. `chunk` iterations run between
/// flushes.
fn under_pipelines(
    c: &mut Criterion,
    group: &str,
    chunk: u64,
    pipelines: [(&str, &Pipeline); 3],
    work: impl Fn(&Pipeline),
) {
    let mut wall = c.benchmark_group(group);
    for (name, pipeline) in pipelines {
        wall.bench_function(name, |b| {
            b.iter_custom(|iters| wall_time(pipeline, iters, chunk, || work(pipeline)))
        });
    }
    wall.finish();

    let mut cpu = c.benchmark_group(format!("{group}_process_cpu"));
    for (name, pipeline) in pipelines {
        cpu.bench_function(name, |b| {
            b.iter_custom(|iters| cpu_time(pipeline, iters, chunk, || work(pipeline)))
        });
    }
    cpu.finish();
}

fn spans(c: &mut Criterion, off: &Pipeline, discard: &Pipeline, otlp: &Pipeline) {
    let parent = remote_parent();
    under_pipelines(
        c,
        "span",
        SPANS_PER_FLUSH,
        [("off", off), ("discard", discard), ("otlp", otlp)],
        |pipeline| one_span(pipeline, black_box(&parent)),
    );
}

fn engine_requests(
    c: &mut Criterion,
    runtime: &Runtime,
    off: &Pipeline,
    discard: &Pipeline,
    otlp: &Pipeline,
) {
    let metadata = grpc_metadata();
    under_pipelines(
        c,
        "engine_request",
        SPANS_PER_FLUSH / SPANS_PER_REQUEST,
        [("off", off), ("discard", discard), ("otlp", otlp)],
        |pipeline| engine_request(runtime, pipeline, black_box(&metadata)),
    );
}

/// Incoming gRPC metadata as tonic hands it to the engine: the gateway's context and the usual
/// few entries around it.
fn grpc_metadata() -> MetadataMap {
    let mut metadata = MetadataMap::new();
    metadata.insert("traceparent", TRACEPARENT.parse().expect("ASCII value"));
    metadata.insert("user-agent", "tonic/0.14".parse().expect("ASCII value"));
    metadata.insert("grpc-accept-encoding", "gzip".parse().expect("ASCII value"));
    metadata
}

/// Incoming HTTP headers as the gateway sees them, with a caller's `traceparent`.
fn http_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("host", "127.0.0.1:8080"),
        ("content-type", "application/json"),
        ("content-length", "55"),
        ("user-agent", "harness/0.1"),
        ("accept", "*/*"),
        ("traceparent", TRACEPARENT),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
}

/// Extraction (the gateway's from HTTP headers, the engine's from gRPC metadata) and the gateway's
/// injection into gRPC metadata, through the services' `Telemetry`.
fn propagation(c: &mut Criterion, telemetry: &Telemetry) {
    let headers = http_headers();
    let metadata = grpc_metadata();
    let cx = remote_parent();
    let mut group = c.benchmark_group("propagation");
    group.bench_function("extract/http_headers", |b| {
        b.iter(|| telemetry.extract(black_box(&headers)));
    });
    group.bench_function("extract/grpc_metadata", |b| {
        b.iter(|| telemetry.extract(black_box(&metadata)));
    });
    // A fresh map each time, as each outgoing request has; its drop is not timed.
    group.bench_function("inject/grpc_metadata", |b| {
        b.iter_batched(
            MetadataMap::new,
            |mut metadata| {
                telemetry.inject(black_box(&cx), &mut metadata);
                metadata
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

/// The OTLP/gRPC sink: the harness's own receiver, run in a child process of this benchmark (the
/// same executable, with [`SINK_ENV`] set) so that receiving and decoding spans is not charged to
/// the exporter. It wants no trace, so it counts every span and keeps none.
mod sink {
    use super::*;

    use harness::trace::receiver::{Receiver, ReceiverConfig};

    /// In the child: listens on an ephemeral loopback port, prints the port, and stops when its
    /// standard input closes (the benchmark finished or died), printing the spans it received.
    pub(crate) fn run() {
        let receiver =
            Receiver::start(ReceiverConfig::default()).expect("the OTLP receiver binds loopback");
        println!("{}", receiver.grpc_addr().port());
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        println!("{}", receiver.stats().spans_received);
    }

    /// The parent's handle on the sink process.
    pub(crate) struct Child {
        process: std::process::Child,
        stdin: Option<ChildStdin>,
        stdout: BufReader<ChildStdout>,
        pub port: u16,
    }

    impl Child {
        pub(crate) fn start() -> Self {
            let exe = std::env::current_exe().expect("the benchmark knows its own path");
            let mut process = Command::new(exe)
                .env(SINK_ENV, "1")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("the benchmark can start itself as the OTLP sink");
            let stdin = process.stdin.take();
            let mut stdout = BufReader::new(process.stdout.take().expect("stdout is piped"));
            let port = read_number(&mut stdout)
                .and_then(|port| u16::try_from(port).ok())
                .expect("the OTLP sink prints its port");
            Child {
                process,
                stdin,
                stdout,
                port,
            }
        }

        /// Stops the sink; returns the spans it received.
        pub(crate) fn stop(mut self) -> Option<u64> {
            if let Some(mut stdin) = self.stdin.take() {
                let _ = stdin.flush();
            }
            let received = read_number(&mut self.stdout);
            let _ = self.process.wait();
            received
        }
    }

    impl Drop for Child {
        /// On an early exit (a panic in a benchmark), the sink must not outlive us.
        fn drop(&mut self) {
            if self.stdin.take().is_some() {
                let _ = self.process.kill();
                let _ = self.process.wait();
            }
        }
    }

    fn read_number(reader: &mut impl BufRead) -> Option<u64> {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        line.trim().parse().ok()
    }
}
