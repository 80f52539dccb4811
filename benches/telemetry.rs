//! What the engine's tracing costs: one span (started with attributes, ended with one more) under
//! the SDK's batch processor, the engine's whole per-request telemetry, and W3C `traceparent`
//! extraction and injection over HTTP headers and gRPC metadata.
//!
//! Tracers are built as `Telemetry::from_env` builds them (batch processor, resource with the
//! service name), with two exporters: one that discards every batch (the SDK's floor) and the real
//! OTLP/gRPC exporter sending to a counting sink that this binary starts as a child process on
//! 127.0.0.1 (so that the sink's CPU is not counted as ours). "off" is `Telemetry::disabled()`.
//!
//! Two kinds of figure:
//! - `span/*`, `engine_request/*`: wall time of the calling thread, which is what criterion
//!   measures. Most of the export work (batching, encoding, the gRPC call) happens on the batch
//!   processor's thread and the Tokio workers, where this does not see it.
//! - `*_process_cpu/*`: CPU time of the whole process (`CLOCK_PROCESS_CPUTIME_ID`) per iteration,
//!   export included: the figure that counts (DESIGN.md, measurement rules).
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
use engine::core_engine::{FETCH_METHOD, FETCH_SPAN_NAME, SERVICE_NAME};
use engine::telemetry::{self, MetadataExtractor, MetadataInjector, Telemetry, semconv};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanBuilder, SpanKind, Status, TraceContextExt, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, SpanData, SpanExporter};
use tonic::metadata::MetadataMap;

/// Set in the environment of the child process that runs the OTLP sink.
const SINK_ENV: &str = "TELEMETRY_BENCH_OTLP_SINK";

/// The SDK's default export batch size: one chunk of spans between flushes.
const SPANS_PER_FLUSH: u64 = 512;

/// The engine makes three spans per request (SERVER, `market_data.load`, `analytics.compute`).
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
    let discard = Pipeline::discarding();
    let otlp = Pipeline::otlp(&format!("http://127.0.0.1:{}", sink.port));
    let off = Telemetry::disabled();

    let mut c = Criterion::default().configure_from_args();
    spans(&mut c, &off, &discard, &otlp);
    engine_requests(&mut c, &off, &discard, &otlp);
    propagation(&mut c);

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

/// The subset of `Telemetry`'s API the engine's request path uses, so that the engine's own
/// `Telemetry` and the bench's pipelines run the same code.
trait Spans {
    fn extract(&self, carrier: &dyn Extractor) -> Option<Context>;
    fn start_span(
        &self,
        parent: &Context,
        name: &'static str,
        kind: SpanKind,
        attributes: Vec<KeyValue>,
    ) -> Option<Context>;
    /// Waits until every span ended so far has been exported.
    fn flush(&self) {}
}

impl Spans for Telemetry {
    fn extract(&self, carrier: &dyn Extractor) -> Option<Context> {
        Telemetry::extract(self, carrier)
    }

    fn start_span(
        &self,
        parent: &Context,
        name: &'static str,
        kind: SpanKind,
        attributes: Vec<KeyValue>,
    ) -> Option<Context> {
        Telemetry::start_span(self, parent, name, kind, attributes)
    }
}

/// A tracer provider as `Telemetry::from_env` builds one, with the exporter chosen here (the
/// engine's constructor takes its exporter from the environment and offers no flush).
struct Pipeline {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    propagator: TraceContextPropagator,
    created: AtomicU64,
    /// Spans the discarding exporter was given; the OTLP sink counts its own.
    exported: Option<Arc<AtomicU64>>,
}

impl Pipeline {
    fn with_exporter(exporter: impl SpanExporter + 'static) -> Self {
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                Resource::builder()
                    .with_service_name(engine::core_engine::DEFAULT_SERVICE_NAME)
                    .build(),
            )
            .build();
        let tracer = provider.tracer(engine::core_engine::DEFAULT_SERVICE_NAME);
        Pipeline {
            provider,
            tracer,
            propagator: TraceContextPropagator::new(),
            created: AtomicU64::new(0),
            exported: None,
        }
    }

    fn discarding() -> Self {
        let exported = Arc::new(AtomicU64::new(0));
        let mut pipeline = Pipeline::with_exporter(Discard(Arc::clone(&exported)));
        pipeline.exported = Some(exported);
        pipeline
    }

    /// Must be called inside the Tokio runtime, as the engine's exporter is.
    fn otlp(endpoint: &str) -> Self {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .expect("the OTLP exporter builds for a valid loopback URL");
        Pipeline::with_exporter(exporter)
    }

    /// Stops the batch thread; returns the spans created and (discarding exporter) exported.
    fn shutdown(self) -> (u64, u64) {
        if let Err(error) = self.provider.shutdown() {
            eprintln!("tracer provider shutdown: {error}");
        }
        let exported = self
            .exported
            .map_or(0, |exported| exported.load(Ordering::Relaxed));
        (self.created.load(Ordering::Relaxed), exported)
    }
}

impl Spans for Pipeline {
    fn extract(&self, carrier: &dyn Extractor) -> Option<Context> {
        Some(self.propagator.extract(carrier))
    }

    /// `Telemetry::start_span`'s body.
    fn start_span(
        &self,
        parent: &Context,
        name: &'static str,
        kind: SpanKind,
        attributes: Vec<KeyValue>,
    ) -> Option<Context> {
        self.created.fetch_add(1, Ordering::Relaxed);
        let span = SpanBuilder::from_name(name)
            .with_kind(kind)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, parent);
        Some(parent.with_span(span))
    }

    fn flush(&self) {
        self.provider
            .force_flush()
            .expect("the batch processor flushes to a live exporter");
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

/// The engine's SERVER span: three attributes at the start, the status code at the end.
fn one_span(spans: &impl Spans, parent: &Context) {
    let span = spans.start_span(
        parent,
        FETCH_SPAN_NAME,
        SpanKind::Server,
        vec![
            KeyValue::new(semconv::RPC_SYSTEM, "grpc"),
            KeyValue::new(semconv::RPC_SERVICE, SERVICE_NAME),
            KeyValue::new(semconv::RPC_METHOD, FETCH_METHOD),
        ],
    );
    if let Some(cx) = span {
        telemetry::end_span(
            &cx,
            [KeyValue::new(semconv::RPC_GRPC_STATUS_CODE, 0_i64)],
            Status::Unset,
        );
    }
}

/// The engine's telemetry for one request, as `core_engine/service.rs` does it: extract the
/// caller's context from the gRPC metadata, a SERVER span, two INTERNAL stage spans (whose
/// attributes are built whether or not tracing is on, as the engine builds them), end all three.
fn engine_request(spans: &impl Spans, metadata: &MetadataMap) {
    let server = spans
        .extract(&MetadataExtractor(metadata))
        .and_then(|parent| {
            spans.start_span(
                &parent,
                FETCH_SPAN_NAME,
                SpanKind::Server,
                vec![
                    KeyValue::new(semconv::RPC_SYSTEM, "grpc"),
                    KeyValue::new(semconv::RPC_SERVICE, SERVICE_NAME),
                    KeyValue::new(semconv::RPC_METHOD, FETCH_METHOD),
                ],
            )
        });
    let stage = |name, attributes| {
        server
            .as_ref()
            .and_then(|cx| spans.start_span(cx, name, SpanKind::Internal, attributes))
    };
    let end_stage = |stage: Option<Context>| {
        if let Some(cx) = stage {
            telemetry::end_span(&cx, [], Status::Unset);
        }
    };
    end_stage(stage(
        "market_data.load",
        vec![
            KeyValue::new("market.source_id", black_box("yahoo_finance")),
            KeyValue::new("market.symbol_count", black_box(1_i64)),
            KeyValue::new("market.window", black_box(1_000_i64)),
        ],
    ));
    end_stage(stage(
        "analytics.compute",
        vec![KeyValue::new("market.ma_period_count", black_box(2_i64))],
    ));
    if let Some(cx) = &server {
        telemetry::end_span(
            cx,
            [KeyValue::new(semconv::RPC_GRPC_STATUS_CODE, 0_i64)],
            Status::Unset,
        );
    }
}

/// CPU time used by every thread of this process so far.
fn process_cpu() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .expect("the process CPU clock is readable on Linux")
        .into()
}

/// Runs `routine` `iters` times in chunks of `chunk`, flushing after each, and returns the
/// calling thread's wall time spent in `routine` (flushes excluded).
fn wall_time(spans: &impl Spans, iters: u64, chunk: u64, mut routine: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = chunk.min(iters - done);
        let start = Instant::now();
        for _ in 0..n {
            routine();
        }
        total += start.elapsed();
        spans.flush();
        done += n;
    }
    total
}

/// As [`wall_time`], but returns the whole process's CPU time, flushes and export included.
fn cpu_time(spans: &impl Spans, iters: u64, chunk: u64, mut routine: impl FnMut()) -> Duration {
    let start = process_cpu();
    let mut done = 0;
    while done < iters {
        let n = chunk.min(iters - done);
        for _ in 0..n {
            routine();
        }
        spans.flush();
        done += n;
    }
    process_cpu().saturating_sub(start)
}

/// The calling thread's wall time of `work` under each pipeline in `group` (after an `off` bench
/// the caller adds), and the whole process's CPU, export included, in `<group>_process_cpu`.
/// `chunk` iterations run between flushes.
fn under_pipelines(
    c: &mut Criterion,
    group: &str,
    chunk: u64,
    mut off: impl FnMut(),
    pipelines: [(&str, &Pipeline); 2],
    work: impl Fn(&Pipeline),
) {
    let mut wall = c.benchmark_group(group);
    wall.bench_function("off", |b| b.iter(&mut off));
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

fn spans(c: &mut Criterion, off: &Telemetry, discard: &Pipeline, otlp: &Pipeline) {
    let parent = remote_parent();
    under_pipelines(
        c,
        "span",
        SPANS_PER_FLUSH,
        || one_span(off, black_box(&parent)),
        [("discard", discard), ("otlp", otlp)],
        |pipeline| one_span(pipeline, black_box(&parent)),
    );
}

fn engine_requests(c: &mut Criterion, off: &Telemetry, discard: &Pipeline, otlp: &Pipeline) {
    let metadata = grpc_metadata();
    under_pipelines(
        c,
        "engine_request",
        SPANS_PER_FLUSH / SPANS_PER_REQUEST,
        || engine_request(off, black_box(&metadata)),
        [("discard", discard), ("otlp", otlp)],
        |pipeline| engine_request(pipeline, black_box(&metadata)),
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

/// Extraction and injection through the engine's own `Telemetry` (as `from_env` builds it; no span
/// is made, so its exporter never sends anything) and the carriers the services use.
fn propagation(c: &mut Criterion) {
    let Ok(telemetry) = Telemetry::from_env(engine::core_engine::DEFAULT_SERVICE_NAME) else {
        eprintln!("propagation: the engine's telemetry could not be built; skipped");
        return;
    };
    if !telemetry.is_enabled() {
        eprintln!("propagation: OTEL_SDK_DISABLED is set; skipped");
        return;
    }
    let headers = http_headers();
    let metadata = grpc_metadata();
    let cx = remote_parent();
    let mut group = c.benchmark_group("propagation");
    group.bench_function("extract/http_headers", |b| {
        b.iter(|| telemetry.extract(&HeaderExtractor(black_box(&headers))));
    });
    group.bench_function("extract/grpc_metadata", |b| {
        b.iter(|| telemetry.extract(&MetadataExtractor(black_box(&metadata))));
    });
    // A fresh map each time, as each outgoing request has; its drop is not timed.
    group.bench_function("inject/http_headers", |b| {
        b.iter_batched(
            HeaderMap::new,
            |mut headers| {
                telemetry.inject(black_box(&cx), &mut HeaderInjector(&mut headers));
                headers
            },
            BatchSize::SmallInput,
        );
    });
    group.bench_function("inject/grpc_metadata", |b| {
        b.iter_batched(
            MetadataMap::new,
            |mut metadata| {
                telemetry.inject(black_box(&cx), &mut MetadataInjector(&mut metadata));
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
    pub fn run() {
        let receiver =
            Receiver::start(ReceiverConfig::default()).expect("the OTLP receiver binds loopback");
        println!("{}", receiver.grpc_addr().port());
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        println!("{}", receiver.stats().spans_received);
    }

    /// The parent's handle on the sink process.
    pub struct Child {
        process: std::process::Child,
        stdin: Option<ChildStdin>,
        stdout: BufReader<ChildStdout>,
        pub port: u16,
    }

    impl Child {
        pub fn start() -> Self {
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
        pub fn stop(mut self) -> Option<u64> {
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
