//! The API gateway: JSON over HTTP in front of the core engine's gRPC.

mod api;
mod calibration;
mod limits;
mod listener;
mod observe;
mod relay;
mod serve;
mod stream;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::Uri;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::transport::{Channel, Endpoint};

pub use api::FetchRequest;
pub use observe::X_TRACE_ID;

use crate::core_engine::SPAN_FLUSH_TIMEOUT;
use crate::duration::{parse_duration, parse_positive_duration, parse_timeout};
use crate::metrics::GatewayMetrics;
use crate::metrics_token::{self, MetricsToken};
use crate::proto::core_engine_service_client::CoreEngineServiceClient;
use crate::ready::Ready;
use crate::shutdown::{Signals, drain, unexpected_stop};
use crate::telemetry::Telemetry;

/// The name the gateway reports as `service.name` unless `OTEL_SERVICE_NAME` says otherwise.
pub const DEFAULT_SERVICE_NAME: &str = "api-gateway";
/// The default addresses, named so that deployment files can be checked against them.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_ENGINE_URL: &str = "http://127.0.0.1:50051";
pub const FETCH_ROUTE: &str = "/api/v1/market-data/fetch";
/// The WebSocket route of market-data subscriptions (docs/streaming.md).
pub const STREAM_ROUTE: &str = "/api/v1/market-data/stream";
pub const METRICS_ROUTE: &str = "/api/v1/metrics";
pub const HEALTH_ROUTE: &str = "/health";
/// A traced, measured route.
struct Route {
    /// The `path` label and `http.route`; the routes take no parameters, so it is also the path.
    template: &'static str,
    method: axum::http::Method,
    /// `{method} {template}`, kept here so that naming a span allocates nothing.
    span_name: &'static str,
}

/// The only values the `path` label and `http.route` take (besides `unmatched`).
const ROUTES: &[Route] = &[
    Route {
        template: FETCH_ROUTE,
        method: axum::http::Method::POST,
        span_name: "POST /api/v1/market-data/fetch",
    },
    Route {
        template: STREAM_ROUTE,
        method: axum::http::Method::GET,
        span_name: "GET /api/v1/market-data/stream",
    },
];

/// The listening socket; with `send_buffer`, set on it before it listens, so that every accepted
/// connection inherits it (and the kernel's autotuning of it is off).
fn bind(addr: SocketAddr, send_buffer: Option<u32>) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    if let Some(bytes) = send_buffer {
        socket.set_send_buffer_size(bytes)?;
    }
    socket.bind(addr)?;
    socket.listen(1024)
}

#[derive(Debug, Clone, clap::Args)]
pub struct GatewayArgs {
    /// Address for the HTTP API and its metrics; port 0 picks a free port (reported on the ready line)
    #[arg(long, env = "GATEWAY_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// The core engine's gRPC URL
    #[arg(long, env = "GATEWAY_ENGINE_URL", default_value = DEFAULT_ENGINE_URL)]
    pub engine_url: Uri,
    /// Deadline for each engine call; past it the gateway gives up and answers 504
    #[arg(long, env = "GATEWAY_ENGINE_TIMEOUT", value_parser = parse_positive_duration, default_value = "5s")]
    pub engine_timeout: Duration,
    /// Largest request body accepted, in bytes; larger ones get 413, before any of the body is
    /// read when its Content-Length says so
    #[arg(long, env = "GATEWAY_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,
    /// Longest wait for a request's headers; past it the connection is closed. It also closes a
    /// keep-alive connection left idle that long
    #[arg(long, env = "GATEWAY_HEADER_READ_TIMEOUT", value_parser = parse_timeout, default_value = "10s")]
    pub header_read_timeout: Duration,
    /// Longest time a request body may take to arrive whole, from the end of its headers; past it
    /// the gateway answers 408 and closes the connection
    #[arg(long, env = "GATEWAY_BODY_READ_TIMEOUT", value_parser = parse_timeout, default_value = "30s")]
    pub body_read_timeout: Duration,
    /// Most client connections open at once; past it a new connection is closed at once (and
    /// counted in http_requests_refused_total)
    #[arg(long, env = "GATEWAY_MAX_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..), default_value_t = 10_000)]
    pub max_connections: u32,
    /// On SIGTERM/SIGINT, how long in-flight requests may take to finish
    #[arg(long, env = "GATEWAY_SHUTDOWN_TIMEOUT", value_parser = parse_duration, default_value = "10s")]
    pub shutdown_timeout: Duration,
    /// A file holding a token that GET /api/v1/metrics then requires as `Authorization: Bearer
    /// <token>` (/health and the API stay open)
    #[arg(long, env = "GATEWAY_METRICS_TOKEN_FILE")]
    pub metrics_token_file: Option<PathBuf>,
    /// Updates each WebSocket may hold waiting to be written; past it the newest are dropped (and
    /// counted in ws_messages_dropped_total{reason="slow_client"})
    #[arg(long, env = "GATEWAY_WS_SEND_QUEUE", value_parser = clap::value_parser!(u32).range(1..=65_536), default_value_t = 256)]
    pub ws_send_queue: u32,
    /// The kernel send buffer of each client connection, in bytes (Linux doubles it); default:
    /// the kernel's, which grows to MBs per connection and so holds a slow WebSocket reader's
    /// backlog before the send queue ever fills
    #[arg(long, env = "GATEWAY_SOCKET_SEND_BUFFER", value_parser = clap::value_parser!(u32).range(1024..=(64 << 20)))]
    pub socket_send_buffer: Option<u32>,
    /// Calibration only: drop one streamed update in N silently (no metric), so that the
    /// client sees gaps in sequence
    #[arg(
        long,
        env = "GATEWAY_CALIBRATION_DROP_EVERY_NTH_UPDATE",
        value_parser = clap::value_parser!(u64).range(2..),
        help_heading = "Fault injection (for scenarios and tests)"
    )]
    pub calibration_drop_every_nth_update: Option<u64>,
    /// Calibration only: start each streamed update's CONSUMER span in a trace of its own rather
    /// than under the engine's PRODUCER span
    #[arg(
        long,
        env = "GATEWAY_CALIBRATION_DROP_UPDATE_CONTEXT",
        help_heading = "Fault injection (for scenarios and tests)"
    )]
    pub calibration_drop_update_context: bool,
    /// Calibration only: do not pass the trace context to the engine, breaking the trace at that hop
    #[arg(
        long,
        env = "GATEWAY_CALIBRATION_DROP_TRACE_CONTEXT",
        help_heading = "Fault injection (for scenarios and tests)"
    )]
    pub calibration_drop_trace_context: bool,
    /// Calibration only: count every fetch request twice in http_requests_total (no other metric),
    /// so that a metrics reconciliation must fail
    #[arg(
        long,
        env = "GATEWAY_CALIBRATION_DOUBLE_COUNT",
        help_heading = "Fault injection (for scenarios and tests)"
    )]
    pub calibration_double_count: bool,
    /// Calibration only: copy this request header's value into the SERVER span as
    /// `http.request.header.<name>`, leaking it (a bearer token, a client id) into the traces
    #[arg(
        long,
        env = "GATEWAY_CALIBRATION_COPY_HEADER_TO_SPAN",
        value_name = "NAME",
        help_heading = "Fault injection (for scenarios and tests)"
    )]
    pub calibration_copy_header_to_span: Option<axum::http::HeaderName>,
    /// Calibration only: log every API request's body at info, leaking its fields into the logs
    #[arg(
        long,
        env = "GATEWAY_CALIBRATION_LOG_REQUEST_BODY",
        help_heading = "Fault injection (for scenarios and tests)"
    )]
    pub calibration_log_request_body: bool,
}

/// What every request handler shares.
pub struct Gateway {
    telemetry: Arc<Telemetry>,
    metrics: Arc<GatewayMetrics>,
    engine: CoreEngineServiceClient<Channel>,
    /// `server.address` and `server.port` of the engine, for every CLIENT span.
    engine_peer: Vec<opentelemetry::KeyValue>,
    engine_timeout: Duration,
    body_limits: limits::BodyLimits,
    drop_trace_context: bool,
    /// A request header copied into the SERVER span (calibration).
    copy_header_to_span: Option<axum::http::HeaderName>,
    /// Whether request bodies are logged (calibration).
    log_request_body: bool,
    stream: stream::StreamSettings,
    /// Open WebSocket sessions (and connections): shutdown waits for them.
    sessions: TaskTracker,
    /// Cancelled on shutdown: sessions then close with 1001.
    stop: CancellationToken,
}

fn router(gateway: Arc<Gateway>, metrics_token: Option<Arc<MetricsToken>>) -> Router {
    let max_body_bytes = gateway.body_limits.max_bytes;
    let mut api = Router::new()
        .route(
            FETCH_ROUTE,
            post(api::fetch_market_data).fallback(api::method_not_allowed),
        )
        .route(
            STREAM_ROUTE,
            get(stream::subscribe).fallback(stream::method_not_allowed),
        )
        .fallback(api::not_found);
    if gateway.log_request_body {
        api = api.layer(axum::middleware::from_fn_with_state(
            Arc::clone(&gateway),
            calibration::log_request_body,
        ));
    }
    let api = api
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&gateway),
            limits::enforce,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&gateway),
            observe::observe,
        ))
        .layer(DefaultBodyLimit::max(max_body_bytes));
    Router::new()
        .route(
            METRICS_ROUTE,
            metrics_token::guard(
                get(
                    |State(gateway): State<Arc<Gateway>>| async move { gateway.metrics.response() },
                ),
                metrics_token,
            ),
        )
        .route(
            HEALTH_ROUTE,
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .merge(api)
        .with_state(gateway)
}

/// Serves until SIGTERM or SIGINT, then drains and flushes within the shutdown timeout.
pub async fn run(args: GatewayArgs) -> anyhow::Result<()> {
    let metrics_token = metrics_token::load(args.metrics_token_file.as_deref())?;
    let metrics_auth = metrics_token.is_some();
    let telemetry = Arc::new(Telemetry::from_env(DEFAULT_SERVICE_NAME)?);
    let mut metrics = if args.calibration_double_count {
        tracing::warn!("calibration: every fetch request counts twice in http_requests_total");
        GatewayMetrics::double_counting(FETCH_ROUTE)
    } else {
        GatewayMetrics::default()
    };
    if let Some(counts) = telemetry.span_counts() {
        metrics.expose_span_counts(counts);
    }
    let metrics = Arc::new(metrics);
    let channel = Endpoint::from(args.engine_url.clone())
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .connect_lazy();
    let sessions = TaskTracker::new();
    let stop = CancellationToken::new();
    let gateway = Arc::new(Gateway {
        telemetry: Arc::clone(&telemetry),
        metrics: Arc::clone(&metrics),
        engine: CoreEngineServiceClient::new(channel),
        engine_peer: api::peer_attributes(&args.engine_url),
        engine_timeout: args.engine_timeout,
        body_limits: limits::BodyLimits {
            max_bytes: args.max_body_bytes,
            read_timeout: args.body_read_timeout,
        },
        drop_trace_context: args.calibration_drop_trace_context,
        copy_header_to_span: args.calibration_copy_header_to_span.clone(),
        log_request_body: args.calibration_log_request_body,
        stream: stream::StreamSettings {
            send_queue: args.ws_send_queue as usize,
            subscribe_timeout: args.header_read_timeout,
            faults: relay::RelayFaults {
                drop_every_nth: args.calibration_drop_every_nth_update,
                drop_update_context: args.calibration_drop_update_context,
            },
        },
        sessions: sessions.clone(),
        stop: stop.clone(),
    });
    if let Some(n) = args.calibration_drop_every_nth_update {
        tracing::warn!(
            n,
            "calibration: one streamed update in n is dropped silently"
        );
    }
    if let Some(name) = &args.calibration_copy_header_to_span {
        tracing::warn!(header = %name, "calibration: a request header is copied into the spans");
    }
    if args.calibration_log_request_body {
        tracing::warn!("calibration: request bodies are logged");
    }
    if args.calibration_drop_update_context {
        tracing::warn!("calibration: streamed updates' CONSUMER spans start traces of their own");
    }

    let listener = bind(args.listen, args.socket_send_buffer)
        .with_context(|| format!("binding the HTTP address {}", args.listen))?;
    let addr = listener.local_addr()?;
    let mut signals = Signals::install().context("installing the SIGTERM and SIGINT handlers")?;
    let http = serve::serve(
        listener::LimitedListener::new(listener, args.max_connections, Arc::clone(&metrics)),
        router(gateway, metrics_token),
        args.header_read_timeout,
        metrics,
        serve::Stop {
            token: stop.clone(),
            tracker: sessions,
        },
    );
    let mut server = tokio::spawn(async move {
        http.await;
        Ok(())
    });

    Ready::new(
        DEFAULT_SERVICE_NAME,
        telemetry.is_enabled(),
        &[("http", addr)],
    )
    .announce()
    .context("writing the ready line to stdout")?;
    tracing::info!(%addr, engine = %args.engine_url, tracing = telemetry.is_enabled(), metrics_auth, "api gateway ready");

    let outcome = tokio::select! {
        signal = signals.recv() => {
            tracing::info!(signal, "shutting down");
            Ok(())
        }
        ended = &mut server => Err(unexpected_stop(ended)),
    };
    stop.cancel();
    drain(args.shutdown_timeout, [server]).await;
    telemetry.shutdown(SPAN_FLUSH_TIMEOUT).await;
    outcome
}

#[cfg(test)]
mod args_tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        gateway: GatewayArgs,
    }

    fn parse(args: &[&str]) -> Result<GatewayArgs, String> {
        Cli::try_parse_from(std::iter::once("api-gateway").chain(args.iter().copied()))
            .map(|cli| cli.gateway)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_zero_engine_timeout_is_refused_with_the_flag_named() {
        let err = parse(&["--engine-timeout", "0s"]).expect_err("refused");
        assert!(
            err.contains("--engine-timeout") && err.contains("must be longer than zero"),
            "{err}"
        );
        let args = parse(&["--engine-timeout", "1ms"]).expect("a short one is fine");
        assert_eq!(args.engine_timeout, Duration::from_millis(1));
    }

    #[test]
    fn bad_read_timeouts_and_connection_limits_are_refused_with_the_flag_named() {
        for (flag, bad) in [
            ("--header-read-timeout", "0s"),
            ("--body-read-timeout", "0ms"),
            ("--header-read-timeout", "1441m"),
            ("--body-read-timeout", "1441m"),
            ("--max-connections", "0"),
        ] {
            let err = parse(&[flag, bad]).expect_err("refused");
            assert!(err.contains(flag), "{err}");
        }
        let args = parse(&[
            "--header-read-timeout",
            "300ms",
            "--body-read-timeout",
            "1s",
            "--max-connections",
            "3",
        ])
        .expect("parses");
        assert_eq!(
            (
                args.header_read_timeout,
                args.body_read_timeout,
                args.max_connections
            ),
            (Duration::from_millis(300), Duration::from_secs(1), 3)
        );
        let defaults = parse(&[]).expect("defaults");
        assert_eq!(
            (
                defaults.header_read_timeout,
                defaults.body_read_timeout,
                defaults.max_connections
            ),
            (Duration::from_secs(10), Duration::from_secs(30), 10_000)
        );
    }
}

#[cfg(test)]
mod listener_tests {
    use super::*;

    /// The kernel's send buffer of an accepted connection, as the gateway's writes see it.
    async fn accepted_send_buffer(send_buffer: Option<u32>) -> u32 {
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0)), send_buffer).expect("bound");
        let addr = listener.local_addr().expect("address");
        let client = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connects");
        let (accepted, _) = listener.accept().await.expect("accepted");
        let std = accepted.into_std().expect("std stream");
        let size = tokio::net::TcpSocket::from_std_stream(std)
            .send_buffer_size()
            .expect("SO_SNDBUF");
        drop(client);
        size
    }

    #[tokio::test]
    async fn accepted_connections_inherit_a_fixed_send_buffer() {
        // Linux doubles what is set, for its own bookkeeping.
        let fixed = accepted_send_buffer(Some(16_384)).await;
        assert!((16_384..=32_768).contains(&fixed), "{fixed}");
        assert!(
            accepted_send_buffer(None).await > 0,
            "the kernel's own when none is set"
        );
        let err = args_parse(&["--socket-send-buffer", "100"]).expect_err("below 1 KiB");
        assert!(err.contains("--socket-send-buffer"), "{err}");
    }

    fn args_parse(args: &[&str]) -> Result<GatewayArgs, String> {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            gateway: GatewayArgs,
        }
        Cli::try_parse_from(std::iter::once("api-gateway").chain(args.iter().copied()))
            .map(|cli| cli.gateway)
            .map_err(|e| e.to_string())
    }
}
