//! Prometheus metrics of both services, with the names the platform's dashboards and alerts use.
//!
//! Durations are histograms in seconds. Label values come from closed sets (gRPC code names, route
//! templates, standard HTTP methods), so cardinality stays bounded whatever clients send. Both
//! services also export the standard `process_*` metrics, for the resource alerts.

mod process;
mod stream;

pub use stream::{
    ActiveGuard, DropReason, EngineStreamMetrics, MAX_SYMBOL_SERIES, OTHER_SYMBOLS, WsMetrics,
};

use std::sync::atomic::AtomicI64;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tonic::Code;

use crate::status::code_name;
use crate::telemetry::SpanCounts;
use crate::telemetry::counting::SpanCountsCollector;

/// Bucket bounds in seconds: fine below 10 ms, where these services live, up to 10 s for stalls.
pub const LATENCY_BUCKETS: [f64; 18] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5, 1.0, 2.5, 5.0, 10.0,
];

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

fn histogram_family<L: Clone + std::hash::Hash + Eq>() -> HistogramFamily<L> {
    Family::new_with_constructor(latency_histogram)
}

/// The exposition as an HTTP response in Prometheus text format 0.0.4.
fn exposition(registry: &Registry) -> Response {
    let mut body = String::with_capacity(8 * 1024);
    match prometheus_text::encode(&mut body, registry) {
        Ok(()) => ([(CONTENT_TYPE, prometheus_text::CONTENT_TYPE)], body).into_response(),
        Err(_) => (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "encoding metrics failed",
        )
            .into_response(),
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrpcLabels {
    method: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrpcErrorLabels {
    method: &'static str,
    error_type: &'static str,
}

/// The core engine's metrics.
pub struct EngineMetrics {
    registry: Registry,
    requests: Counter,
    errors: Counter,
    duration: Histogram,
    in_flight: Gauge<i64, AtomicI64>,
    grpc_requests: Family<GrpcLabels, Counter>,
    grpc_duration: HistogramFamily<MethodLabels>,
    grpc_errors: Family<GrpcErrorLabels, Counter>,
    stream: EngineStreamMetrics,
}

impl Default for EngineMetrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Counter::default();
        let errors = Counter::default();
        let duration = latency_histogram();
        let in_flight = Gauge::default();
        let grpc_requests = Family::default();
        let grpc_duration = histogram_family();
        let grpc_errors = Family::default();
        registry.register_collector(Box::new(process::ProcessCollector));
        registry.register("requests", "RPCs handled", requests.clone());
        registry.register(
            "errors",
            "RPCs answered with a status other than OK",
            errors.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time to handle an RPC",
            duration.clone(),
        );
        registry.register(
            "requests_in_flight",
            "RPCs being handled now",
            in_flight.clone(),
        );
        registry.register(
            "grpc_requests",
            "RPCs handled, by method and status code",
            grpc_requests.clone(),
        );
        registry.register(
            "grpc_request_duration_seconds",
            "Time to handle an RPC, by method",
            grpc_duration.clone(),
        );
        registry.register(
            "grpc_errors",
            "RPCs answered with a status other than OK, by method and error type",
            grpc_errors.clone(),
        );
        let stream = EngineStreamMetrics::register(&mut registry);
        EngineMetrics {
            stream,
            registry,
            requests,
            errors,
            duration,
            in_flight,
            grpc_requests,
            grpc_duration,
            grpc_errors,
        }
    }
}

impl EngineMetrics {
    /// Adds the `otel_spans_*` metrics of the engine's span exporter.
    pub fn expose_span_counts(&mut self, counts: Arc<SpanCounts>) {
        self.registry
            .register_collector(Box::new(SpanCountsCollector(counts)));
    }

    /// Handles for one RPC method, so that the request path touches atomics only.
    pub fn rpc(self: &Arc<Self>, method: &'static str) -> RpcMetrics {
        RpcMetrics {
            method,
            duration: self
                .grpc_duration
                .get_or_create(&MethodLabels { method })
                .clone(),
            by_code: std::array::from_fn(|_| OnceLock::new()),
            errors_by_code: std::array::from_fn(|_| OnceLock::new()),
            all: Arc::clone(self),
        }
    }

    /// The streaming metrics.
    pub fn stream(&self) -> &EngineStreamMetrics {
        &self.stream
    }

    pub fn response(&self) -> Response {
        exposition(&self.registry)
    }
}

const GRPC_CODES: usize = 17;

/// One method's metric handles, created on first use per status code and cached.
pub struct RpcMetrics {
    method: &'static str,
    duration: Histogram,
    by_code: [OnceLock<Counter>; GRPC_CODES],
    errors_by_code: [OnceLock<Counter>; GRPC_CODES],
    all: Arc<EngineMetrics>,
}

impl RpcMetrics {
    /// Counts an RPC as in flight until [`RpcMetrics::finished`].
    pub fn started(&self) {
        self.all.in_flight.inc();
    }

    pub fn finished(&self, code: Code, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        self.all.in_flight.dec();
        self.all.duration.observe(seconds);
        self.duration.observe(seconds);
        self.count(code);
    }

    /// Counts a server stream that ended with `code`, in the request and error counters only:
    /// its lifetime is up to its caller and says nothing of the engine's speed, so it stays out
    /// of the duration histograms (and the latency alerts over them), and it is in flight in
    /// `grpc_streams_active` rather than `requests_in_flight` (docs/streaming.md, "Metrics").
    pub fn stream_ended(&self, code: Code) {
        self.count(code);
    }

    fn count(&self, code: Code) {
        let all = &self.all;
        all.requests.inc();
        let index = (code as usize).min(GRPC_CODES - 1);
        self.by_code[index]
            .get_or_init(|| {
                all.grpc_requests
                    .get_or_create(&GrpcLabels {
                        method: self.method,
                        status: code_name(code),
                    })
                    .clone()
            })
            .inc();
        if code != Code::Ok {
            all.errors.inc();
            self.errors_by_code[index]
                .get_or_init(|| {
                    all.grpc_errors
                        .get_or_create(&GrpcErrorLabels {
                            method: self.method,
                            error_type: error_type(code),
                        })
                        .clone()
                })
                .inc();
        }
    }
}

/// The `error_type` label: the code name in lower case.
fn error_type(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "cancelled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    path: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    path: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    reason: &'static str,
}

/// Why the gateway refused a connection or a request before a handler could answer it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A request's headers did not arrive within the header read timeout.
    HeaderTimeout,
    /// A request's body did not arrive within the body read timeout (answered 408).
    BodyTimeout,
    /// A body over the limit, declared or read (answered 413).
    TooLarge,
    /// A connection past the connection limit, closed at once.
    ConnectionLimit,
}

impl Refusal {
    const ALL: [Refusal; 4] = [
        Refusal::HeaderTimeout,
        Refusal::BodyTimeout,
        Refusal::TooLarge,
        Refusal::ConnectionLimit,
    ];

    /// The `reason` label.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::HeaderTimeout => "header_timeout",
            Refusal::BodyTimeout => "body_timeout",
            Refusal::TooLarge => "too_large",
            Refusal::ConnectionLimit => "connection_limit",
        }
    }
}

/// The API gateway's metrics.
pub struct GatewayMetrics {
    registry: Registry,
    requests: Counter,
    errors: Counter,
    duration: Histogram,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: HistogramFamily<RouteLabels>,
    http_errors: Family<HttpLabels, Counter>,
    connections_active: Gauge<i64, AtomicI64>,
    /// `http_requests_refused_total`, one series per [`Refusal`] in [`Refusal::ALL`]'s order,
    /// created at zero so that a rate over them starts with the first refusal.
    refused: [Counter; 4],
    /// Calibration only: the route whose requests `http_requests_total` counts twice.
    double_counted_route: Option<&'static str>,
    ws: Arc<WsMetrics>,
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Counter::default();
        let errors = Counter::default();
        let duration = latency_histogram();
        let http_requests = Family::default();
        let http_duration = histogram_family();
        let http_errors = Family::default();
        let connections_active = Gauge::default();
        registry.register_collector(Box::new(process::ProcessCollector));
        registry.register("requests", "API requests handled", requests.clone());
        registry.register(
            "errors",
            "API requests answered with status 400 or above",
            errors.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time to handle an API request",
            duration.clone(),
        );
        registry.register(
            "http_requests",
            "API requests handled, by method, route template and status",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to handle an API request, by method and route template",
            http_duration.clone(),
        );
        registry.register(
            "http_errors",
            "API requests answered with status 400 or above, by method, route template and status",
            http_errors.clone(),
        );
        registry.register(
            "http_connections_active",
            "Open client connections to the API port",
            connections_active.clone(),
        );
        let refused_family = Family::<RefusalLabels, Counter>::default();
        let refused = Refusal::ALL.map(|reason| {
            refused_family
                .get_or_create(&RefusalLabels {
                    reason: reason.label(),
                })
                .clone()
        });
        registry.register(
            "http_requests_refused",
            "Connections and requests refused before a handler answered, by reason",
            refused_family,
        );
        let ws = Arc::new(WsMetrics::register(&mut registry));
        GatewayMetrics {
            ws,
            registry,
            requests,
            errors,
            duration,
            http_requests,
            http_duration,
            http_errors,
            connections_active,
            refused,
            double_counted_route: None,
        }
    }
}

impl GatewayMetrics {
    /// Adds the `otel_spans_*` metrics of the gateway's span exporter.
    pub fn expose_span_counts(&mut self, counts: Arc<SpanCounts>) {
        self.registry
            .register_collector(Box::new(SpanCountsCollector(counts)));
    }

    /// Calibration only: metrics that count every request to `route` twice in
    /// `http_requests_total` (and nowhere else), a known fault for the harness's metrics
    /// reconciliation to catch.
    pub fn double_counting(route: &'static str) -> Self {
        GatewayMetrics {
            double_counted_route: Some(route),
            ..GatewayMetrics::default()
        }
    }

    /// `method` and `path` must come from closed sets: see [`http_method_label`] and the router's
    /// route templates.
    pub fn observe(
        &self,
        method: &'static str,
        path: &'static str,
        status: u16,
        elapsed: Duration,
    ) {
        let seconds = elapsed.as_secs_f64();
        self.requests.inc();
        self.duration.observe(seconds);
        let labels = HttpLabels {
            method,
            path,
            status,
        };
        let requests = self.http_requests.get_or_create(&labels);
        requests.inc();
        if self.double_counted_route == Some(path) {
            requests.inc();
        }
        drop(requests);
        self.http_duration
            .get_or_create(&RouteLabels { method, path })
            .observe(seconds);
        if status >= 400 {
            self.errors.inc();
            self.http_errors.get_or_create(&labels).inc();
        }
    }

    /// Counts a connection as open until the returned guard drops.
    pub fn connection_opened(&self) -> ConnectionGuard {
        self.connections_active.inc();
        ConnectionGuard(self.connections_active.clone())
    }

    /// The WebSocket metrics.
    pub fn ws(&self) -> &Arc<WsMetrics> {
        &self.ws
    }

    /// Counts one refusal in `http_requests_refused_total`.
    pub fn refused(&self, reason: Refusal) {
        self.refused[reason as usize].inc();
    }

    pub fn response(&self) -> Response {
        exposition(&self.registry)
    }
}

/// Decrements `http_connections_active` when the connection it belongs to closes.
pub struct ConnectionGuard(Gauge<i64, AtomicI64>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The method as a label: the standard methods by name, anything else as `_OTHER` (as the HTTP
/// semantic conventions do), so that clients cannot grow the label set.
pub fn http_method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "_OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    #[tokio::test]
    async fn engine_exposes_the_report_names() {
        let metrics = Arc::new(EngineMetrics::default());
        let rpc = metrics.rpc("FetchMarketData");
        for code in [Code::Ok, Code::InvalidArgument] {
            rpc.started();
            rpc.finished(code, Duration::from_micros(50));
        }
        let text = body(metrics.response()).await;
        for line in [
            "requests_total 2",
            "errors_total 1",
            "request_duration_seconds_count 2",
            "grpc_requests_total{method=\"FetchMarketData\",status=\"OK\"} 1",
            "grpc_requests_total{method=\"FetchMarketData\",status=\"INVALID_ARGUMENT\"} 1",
            "grpc_request_duration_seconds_count{method=\"FetchMarketData\"} 2",
            "grpc_errors_total{method=\"FetchMarketData\",error_type=\"invalid_argument\"} 1",
            "requests_in_flight 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(
            !text.contains("UNAVAILABLE"),
            "no series for codes never seen"
        );
    }

    #[test]
    fn error_types_are_the_lower_case_code_names() {
        for i in 0..GRPC_CODES as i32 {
            let code = Code::from_i32(i);
            assert_eq!(error_type(code), code_name(code).to_ascii_lowercase());
        }
    }

    #[tokio::test]
    async fn gateway_exposes_the_report_names() {
        let metrics = GatewayMetrics::default();
        let path = "/api/v1/market-data/fetch";
        metrics.observe("POST", path, 200, Duration::from_millis(3));
        metrics.observe("POST", path, 503, Duration::from_millis(1));
        let guard = metrics.connection_opened();
        metrics.refused(Refusal::TooLarge);
        metrics.refused(Refusal::TooLarge);
        metrics.refused(Refusal::ConnectionLimit);
        let text = body(metrics.response()).await;
        for line in [
            "requests_total 2",
            "errors_total 1",
            "request_duration_seconds_count 2",
            "http_requests_total{method=\"POST\",path=\"/api/v1/market-data/fetch\",status=\"200\"} 1",
            "http_errors_total{method=\"POST\",path=\"/api/v1/market-data/fetch\",status=\"503\"} 1",
            "http_request_duration_seconds_count{method=\"POST\",path=\"/api/v1/market-data/fetch\"} 2",
            "http_connections_active 1",
            "http_requests_refused_total{reason=\"header_timeout\"} 0",
            "http_requests_refused_total{reason=\"body_timeout\"} 0",
            "http_requests_refused_total{reason=\"too_large\"} 2",
            "http_requests_refused_total{reason=\"connection_limit\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        drop(guard);
        assert!(
            body(metrics.response())
                .await
                .lines()
                .any(|l| l == "http_connections_active 0")
        );
    }

    #[tokio::test]
    async fn double_counting_touches_only_http_requests_total_of_its_route() {
        let fetch = "/api/v1/market-data/fetch";
        let metrics = GatewayMetrics::double_counting(fetch);
        metrics.observe("POST", fetch, 200, Duration::from_millis(1));
        metrics.observe("POST", fetch, 400, Duration::from_millis(1));
        metrics.observe("GET", "unmatched", 404, Duration::from_millis(1));
        let text = body(metrics.response()).await;
        for line in [
            "http_requests_total{method=\"POST\",path=\"/api/v1/market-data/fetch\",status=\"200\"} 2",
            "http_requests_total{method=\"POST\",path=\"/api/v1/market-data/fetch\",status=\"400\"} 2",
            "http_requests_total{method=\"GET\",path=\"unmatched\",status=\"404\"} 1",
            "http_errors_total{method=\"POST\",path=\"/api/v1/market-data/fetch\",status=\"400\"} 1",
            "http_request_duration_seconds_count{method=\"POST\",path=\"/api/v1/market-data/fetch\"} 2",
            "requests_total 3",
            "errors_total 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn refusals_index_their_own_series() {
        for (i, reason) in Refusal::ALL.into_iter().enumerate() {
            assert_eq!(reason as usize, i, "{reason:?}");
        }
    }

    #[test]
    fn unknown_methods_share_one_label() {
        let odd = axum::http::Method::from_bytes(b"BREW").expect("token");
        assert_eq!(http_method_label(&odd), "_OTHER");
        assert_eq!(http_method_label(&axum::http::Method::POST), "POST");
    }
}
