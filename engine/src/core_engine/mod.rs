//! The core engine: `CoreEngineService` over gRPC, the standard gRPC health service, and Prometheus
//! metrics on a separate HTTP port.

mod service;
mod stream;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

pub use service::{CoreEngine, FETCH_METHOD, FETCH_SPAN_NAME, SERVICE_NAME};
pub use stream::{
    CONSUMER_SPAN_NAME, DEFAULT_TRACE_EVERY, MESSAGING_DESTINATION, MESSAGING_SYSTEM,
    PRODUCER_SPAN_NAME, STREAM_METHOD, STREAM_SPAN_NAME, UpdateStream,
};

use crate::duration::parse_duration;
use crate::faults::{FaultArgs, Faults};
use crate::market::Limits;
use crate::metrics::EngineMetrics;
use crate::metrics_token;
use crate::proto::core_engine_service_server::CoreEngineServiceServer;
use crate::ready::Ready;
use crate::shutdown::{Signals, drain, unexpected_stop};
use crate::telemetry::Telemetry;

/// The name the engine reports as `service.name` unless `OTEL_SERVICE_NAME` says otherwise.
pub const DEFAULT_SERVICE_NAME: &str = "core-engine";
/// The default addresses and the metrics path, named so that deployment files can be checked
/// against them (`tests/observability`).
pub const DEFAULT_GRPC_LISTEN: &str = "127.0.0.1:50051";
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:50052";
pub const METRICS_ROUTE: &str = "/metrics";

#[derive(Debug, Clone, clap::Args)]
pub struct EngineArgs {
    /// Address for gRPC; port 0 picks a free port (reported on the ready line)
    #[arg(long, env = "ENGINE_GRPC_LISTEN", default_value = DEFAULT_GRPC_LISTEN)]
    pub grpc_listen: SocketAddr,
    /// Address for the Prometheus endpoint GET /metrics; port 0 picks a free port
    #[arg(long, env = "ENGINE_METRICS_LISTEN", default_value = DEFAULT_METRICS_LISTEN)]
    pub metrics_listen: SocketAddr,
    /// Largest request message accepted, in bytes; larger ones fail with OUT_OF_RANGE
    #[arg(long, env = "ENGINE_MAX_REQUEST_BYTES", default_value_t = 64 * 1024)]
    pub max_request_bytes: usize,
    /// On SIGTERM/SIGINT, how long in-flight requests may take to finish
    #[arg(long, env = "ENGINE_SHUTDOWN_TIMEOUT", value_parser = parse_duration, default_value = "10s")]
    pub shutdown_timeout: Duration,
    /// A file holding a token that GET /metrics then requires as `Authorization: Bearer <token>`
    /// (gRPC and its health service stay open)
    #[arg(long, env = "ENGINE_METRICS_TOKEN_FILE")]
    pub metrics_token_file: Option<PathBuf>,
    /// Trace one streamed update in this many (1: every one), so that a fast stream does not
    /// flood the exporter
    #[arg(long, env = "ENGINE_STREAM_TRACE_EVERY", value_parser = clap::value_parser!(u64).range(1..), default_value_t = DEFAULT_TRACE_EVERY)]
    pub stream_trace_every: u64,
    #[command(flatten)]
    pub faults: FaultArgs,
}

/// How long queued spans may take to reach the exporter's endpoint at shutdown.
pub(crate) const SPAN_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves until SIGTERM or SIGINT, then drains and flushes within the shutdown timeout.
pub async fn run(args: EngineArgs) -> anyhow::Result<()> {
    let faults = Faults::new(&args.faults).map_err(anyhow::Error::msg)?;
    let metrics_token = metrics_token::load(args.metrics_token_file.as_deref())?;
    let metrics_auth = metrics_token.is_some();
    let telemetry = Arc::new(Telemetry::from_env(DEFAULT_SERVICE_NAME)?);
    let mut metrics = EngineMetrics::default();
    if let Some(counts) = telemetry.span_counts() {
        metrics.expose_span_counts(counts);
    }
    let metrics = Arc::new(metrics);

    let grpc_listener = TcpListener::bind(args.grpc_listen)
        .await
        .with_context(|| format!("binding the gRPC address {}", args.grpc_listen))?;
    let metrics_listener = TcpListener::bind(args.metrics_listen)
        .await
        .with_context(|| format!("binding the metrics address {}", args.metrics_listen))?;
    let grpc_addr = grpc_listener.local_addr()?;
    let metrics_addr = metrics_listener.local_addr()?;

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<CoreEngineServiceServer<CoreEngine>>()
        .await;
    let stop = CancellationToken::new();
    let engine = CoreEngine::new(Arc::clone(&telemetry), &metrics, faults, Limits::default())
        .with_streams(args.stream_trace_every, stop.clone());
    let mut signals = Signals::install().context("installing the SIGTERM and SIGINT handlers")?;
    let grpc_server = Server::builder()
        .add_service(health_service)
        .add_service(
            CoreEngineServiceServer::new(engine).max_decoding_message_size(args.max_request_bytes),
        )
        .serve_with_incoming_shutdown(
            TcpIncoming::from(grpc_listener).with_nodelay(Some(true)),
            stop.clone().cancelled_owned(),
        );
    let mut grpc = tokio::spawn(async move { grpc_server.await.context("gRPC server") });
    let metrics_app = Router::new().route(
        METRICS_ROUTE,
        metrics_token::guard(
            get(move || {
                let metrics = Arc::clone(&metrics);
                async move { metrics.response() }
            }),
            metrics_token,
        ),
    );
    let metrics_http = axum::serve(metrics_listener, metrics_app)
        .with_graceful_shutdown(stop.clone().cancelled_owned());
    let mut metrics_server =
        tokio::spawn(async move { metrics_http.await.context("metrics server") });

    Ready::new(
        DEFAULT_SERVICE_NAME,
        telemetry.is_enabled(),
        &[("grpc", grpc_addr), ("metrics", metrics_addr)],
    )
    .announce()
    .context("writing the ready line to stdout")?;
    tracing::info!(%grpc_addr, %metrics_addr, tracing = telemetry.is_enabled(), metrics_auth, "core engine ready");
    if let Some(after) = args.faults.fault_crash_after {
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            tracing::error!(?after, "crashing, as --fault-crash-after asks");
            std::process::abort();
        });
    }

    let outcome = tokio::select! {
        signal = signals.recv() => {
            tracing::info!(signal, "shutting down");
            Ok(())
        }
        ended = &mut grpc => Err(unexpected_stop(ended)),
        ended = &mut metrics_server => Err(unexpected_stop(ended)),
    };
    health
        .set_not_serving::<CoreEngineServiceServer<CoreEngine>>()
        .await;
    stop.cancel();
    drain(args.shutdown_timeout, [grpc, metrics_server]).await;
    telemetry.shutdown(SPAN_FLUSH_TIMEOUT).await;
    outcome
}
