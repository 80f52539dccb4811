//! The embedded OTLP trace receiver: managed services export to the harness itself, over gRPC
//! (`TraceService/Export`) or HTTP (`POST /v1/traces`, protobuf or JSON), so a run needs no
//! collector or Jaeger.
//!
//! Memory stays bounded because only the traces the harness registered with [`ReceiverHandle::want`]
//! are stored, each up to a span limit; every other span is counted and dropped. The servers run on
//! their own thread and runtime: decoding a large batch must not stall the load generator's
//! workers, whose timers the latency figures depend on.

use std::collections::HashMap;
use std::future::Future;
use std::io::Read as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdTcpListener};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;
use serde::Serialize;
use tokio_util::sync::{CancellationToken, DropGuard};
use tonic::codec::CompressionEncoding;
use tonic::transport::server::TcpIncoming;

use super::{
    AttrValue, SourceError, Span, SpanId, SpanKind, SpanStatus, Trace, TraceId, TraceSource,
};

/// Default cap on spans stored per wanted trace; the traces checked here have a handful.
pub const DEFAULT_MAX_SPANS_PER_TRACE: usize = 256;
/// Default cap on traces registered at once.
pub const DEFAULT_MAX_TRACES: usize = 100_000;
/// Default cap on one export request, gRPC or HTTP: tonic's own 4 MiB refuses the large batches
/// an SDK sends after a stall.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 32 * 1024 * 1024;
/// How long in-flight exports may take to finish once shutdown is asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Lock shards for the trace store, so that registering traces from the load path and storing
/// exported spans rarely wait for each other.
const SHARDS: usize = 16;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";
/// `google.rpc.Code` values used in OTLP/HTTP error bodies.
const RPC_INVALID_ARGUMENT: i32 = 3;
const RPC_RESOURCE_EXHAUSTED: i32 = 8;

/// Where to listen and how much to keep.
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    /// The gRPC listener; port 0 picks a free one (read it back with [`Receiver::grpc_addr`]).
    pub grpc_addr: SocketAddr,
    /// The OTLP/HTTP listener; port 0 picks a free one.
    pub http_addr: SocketAddr,
    /// Spans beyond this many in one wanted trace are counted in `spans_over_limit` and dropped,
    /// so that a runaway trace cannot exhaust memory.
    pub max_spans_per_trace: usize,
    /// Registrations beyond this many traces are refused (`want` returns false and
    /// `wants_refused` counts them); spans of those traces are then counted as unwanted.
    pub max_traces: usize,
    /// The largest export request accepted, decompressed, on either listener.
    pub max_message_bytes: usize,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        ReceiverConfig {
            grpc_addr: loopback,
            http_addr: loopback,
            max_spans_per_trace: DEFAULT_MAX_SPANS_PER_TRACE,
            max_traces: DEFAULT_MAX_TRACES,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

/// Counters for the report: they show whether the receiver, rather than the system under test,
/// lost spans. `spans_received` = `spans_kept` + `spans_unwanted` + `spans_over_limit` +
/// `spans_rejected`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReceiverStats {
    /// Export requests decoded, over either protocol.
    pub batches: u64,
    pub spans_received: u64,
    pub spans_kept: u64,
    /// Spans of traces nobody registered.
    pub spans_unwanted: u64,
    /// Spans dropped because their trace already held `max_spans_per_trace`.
    pub spans_over_limit: u64,
    /// Spans with a trace, span or parent id of the wrong length (or all zeroes).
    pub spans_rejected: u64,
    /// `want` calls refused because `max_traces` traces were already registered.
    pub wants_refused: u64,
    /// HTTP requests answered with an error status. Requests that tonic refuses before decoding
    /// (oversized, wrong content type) are not seen here; the exporter reports those.
    pub rejected_requests: u64,
}

/// Why the receiver could not start, or did not stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    #[error("binding the OTLP {protocol} listener on {addr}: {source}")]
    Bind {
        protocol: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("starting the OTLP receiver's runtime: {0}")]
    Runtime(std::io::Error),
    #[error("the OTLP {protocol} server failed: {reason}")]
    Serve {
        protocol: &'static str,
        reason: String,
    },
    #[error("the OTLP receiver did not stop within {0:?}; open connections were dropped")]
    ShutdownTimeout(Duration),
    #[error("the OTLP receiver's thread ended without reporting how it stopped")]
    Vanished,
}

/// A running receiver. Dropping it stops the servers too, without waiting for them.
pub struct Receiver {
    handle: ReceiverHandle,
    cancel: DropGuard,
    stopped: tokio::sync::oneshot::Receiver<Result<(), ReceiverError>>,
}

/// What the rest of the harness holds: cheap to clone, usable from any thread, and the
/// [`TraceSource`] the verifier reads.
#[derive(Clone)]
pub struct ReceiverHandle {
    store: Arc<Store>,
}

impl Receiver {
    /// Binds both listeners (errors come back here, not later) and serves them on a thread of
    /// their own; needs no Tokio runtime from the caller.
    pub fn start(config: ReceiverConfig) -> Result<Receiver, ReceiverError> {
        let bind = |protocol, addr| {
            StdTcpListener::bind(addr)
                .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
                .map_err(|source| ReceiverError::Bind {
                    protocol,
                    addr,
                    source,
                })
        };
        let grpc_listener = bind("gRPC", config.grpc_addr)?;
        let http_listener = bind("HTTP", config.http_addr)?;
        let local = |protocol, listener: &StdTcpListener, addr| {
            listener.local_addr().map_err(|source| ReceiverError::Bind {
                protocol,
                addr,
                source,
            })
        };
        let grpc_addr = local("gRPC", &grpc_listener, config.grpc_addr)?;
        let http_addr = local("HTTP", &http_listener, config.http_addr)?;

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ReceiverError::Runtime)?;
        let (grpc_listener, http_listener) = {
            let _context = runtime.enter();
            let convert = |protocol, listener, addr| {
                tokio::net::TcpListener::from_std(listener).map_err(|source| ReceiverError::Bind {
                    protocol,
                    addr,
                    source,
                })
            };
            (
                convert("gRPC", grpc_listener, grpc_addr)?,
                convert("HTTP", http_listener, http_addr)?,
            )
        };

        let store = Arc::new(Store::new(&config, grpc_addr, http_addr));
        let token = CancellationToken::new();
        let (report, stopped) = tokio::sync::oneshot::channel();
        let servers = serve(
            Arc::clone(&store),
            grpc_listener,
            http_listener,
            config.max_message_bytes,
            token.clone(),
        );
        std::thread::Builder::new()
            .name("otlp-receiver".to_owned())
            .spawn(move || {
                let outcome = runtime.block_on(servers);
                // Connections still open after the grace period die with the runtime.
                drop(runtime);
                // Nobody may be waiting: the receiver was dropped rather than shut down.
                let _ = report.send(outcome);
            })
            .map_err(ReceiverError::Runtime)?;

        Ok(Receiver {
            handle: ReceiverHandle { store },
            cancel: token.drop_guard(),
            stopped,
        })
    }

    /// A cloneable handle for the load path (`want`) and the verifier (`fetch`).
    pub fn handle(&self) -> ReceiverHandle {
        self.handle.clone()
    }

    /// See [`ReceiverHandle::want`].
    pub fn want(&self, id: TraceId) -> bool {
        self.handle.want(id)
    }

    /// See [`ReceiverHandle::stats`].
    pub fn stats(&self) -> ReceiverStats {
        self.handle.stats()
    }

    /// The bound gRPC address: with port 0 in the config, only known after start.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.handle.store.grpc_addr
    }

    /// The bound OTLP/HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.handle.store.http_addr
    }

    /// The value for a service's `OTEL_EXPORTER_OTLP_ENDPOINT` (the SDK needs the scheme).
    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", connectable(self.grpc_addr()))
    }

    /// The base URL of the OTLP/HTTP listener; exporters append `/v1/traces`.
    pub fn http_endpoint(&self) -> String {
        format!("http://{}", connectable(self.http_addr()))
    }

    /// Stops accepting, lets exports in flight finish (for a few seconds at most), and reports
    /// whether both servers ended cleanly. Stored traces stay readable through handles.
    pub async fn shutdown(self) -> Result<(), ReceiverError> {
        let Receiver {
            handle: _,
            cancel,
            stopped,
        } = self;
        drop(cancel);
        stopped.await.unwrap_or(Err(ReceiverError::Vanished))
    }
}

/// A wildcard bind address is not one a client can dial; loopback reaches it.
fn connectable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::from((Ipv4Addr::LOCALHOST, addr.port()))
    } else {
        addr
    }
}

impl ReceiverHandle {
    /// Registers a trace whose spans are to be kept. Call it before the request that starts the
    /// trace is sent: spans that arrive earlier are counted as unwanted. Returns false (and counts
    /// the refusal) when `max_traces` traces are already registered; registering twice is a no-op.
    pub fn want(&self, id: TraceId) -> bool {
        self.store.want(id)
    }

    /// A snapshot for `result.json`; counters are read one by one, so a batch being stored
    /// meanwhile may show in some and not yet in others.
    pub fn stats(&self) -> ReceiverStats {
        self.store.counters.snapshot()
    }

    fn lookup(&self, id: TraceId) -> Option<Trace> {
        let shard = self.store.shard(id);
        shard
            .get(&id)
            .filter(|spans| !spans.is_empty())
            .map(|spans| Trace {
                spans: spans.clone(),
            })
    }
}

impl TraceSource for ReceiverHandle {
    fn describe(&self) -> String {
        format!(
            "embedded OTLP receiver (grpc {}, http {})",
            self.store.grpc_addr, self.store.http_addr
        )
    }

    /// Duplicated spans (an exporter's retry, or a service emitting one twice) are all returned:
    /// checks should see what was sent.
    fn fetch(
        &self,
        id: TraceId,
    ) -> impl Future<Output = Result<Option<Trace>, SourceError>> + Send {
        std::future::ready(Ok(self.lookup(id)))
    }
}

impl TraceSource for Receiver {
    fn describe(&self) -> String {
        self.handle.describe()
    }

    fn fetch(
        &self,
        id: TraceId,
    ) -> impl Future<Output = Result<Option<Trace>, SourceError>> + Send {
        self.handle.fetch(id)
    }
}

#[derive(Default)]
struct Counters {
    batches: AtomicU64,
    spans_received: AtomicU64,
    spans_kept: AtomicU64,
    spans_unwanted: AtomicU64,
    spans_over_limit: AtomicU64,
    spans_rejected: AtomicU64,
    wants_refused: AtomicU64,
    rejected_requests: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> ReceiverStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ReceiverStats {
            batches: read(&self.batches),
            spans_received: read(&self.spans_received),
            spans_kept: read(&self.spans_kept),
            spans_unwanted: read(&self.spans_unwanted),
            spans_over_limit: read(&self.spans_over_limit),
            spans_rejected: read(&self.spans_rejected),
            wants_refused: read(&self.wants_refused),
            rejected_requests: read(&self.rejected_requests),
        }
    }
}

/// What one export request amounted to, added to the counters once per batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct BatchTally {
    received: u64,
    kept: u64,
    unwanted: u64,
    over_limit: u64,
    rejected: u64,
}

/// The spans kept so far per wanted trace; an empty list marks a trace wanted but not yet seen.
type Shard = HashMap<TraceId, Vec<Span>>;

struct Store {
    shards: Box<[Mutex<Shard>]>,
    registered: AtomicUsize,
    max_traces: usize,
    max_spans_per_trace: usize,
    counters: Counters,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
}

impl Store {
    fn new(config: &ReceiverConfig, grpc_addr: SocketAddr, http_addr: SocketAddr) -> Self {
        Store {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            registered: AtomicUsize::new(0),
            max_traces: config.max_traces,
            max_spans_per_trace: config.max_spans_per_trace,
            counters: Counters::default(),
            grpc_addr,
            http_addr,
        }
    }

    /// A panic while holding a shard leaves plain data behind, still consistent enough to read.
    fn shard(&self, id: TraceId) -> MutexGuard<'_, Shard> {
        // The low bits of a trace id are random, so they spread traces evenly.
        let index = (id.0 % SHARDS as u128) as usize;
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn want(&self, id: TraceId) -> bool {
        let mut shard = self.shard(id);
        if shard.contains_key(&id) {
            return true;
        }
        let reserved = self
            .registered
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.max_traces).then_some(n + 1)
            })
            .is_ok();
        if reserved {
            shard.insert(id, Vec::new());
        } else {
            self.counters.wants_refused.fetch_add(1, Ordering::Relaxed);
        }
        reserved
    }

    fn ingest(&self, request: ExportTraceServiceRequest) -> BatchTally {
        let mut tally = BatchTally::default();
        for resource_spans in request.resource_spans {
            let service = service_name(resource_spans.resource.as_ref());
            for scope_spans in resource_spans.scope_spans {
                for span in scope_spans.spans {
                    tally.received += 1;
                    self.ingest_span(span, &service, &mut tally);
                }
            }
        }
        let add = |counter: &AtomicU64, n| counter.fetch_add(n, Ordering::Relaxed);
        let counters = &self.counters;
        add(&counters.batches, 1);
        add(&counters.spans_received, tally.received);
        add(&counters.spans_kept, tally.kept);
        add(&counters.spans_unwanted, tally.unwanted);
        add(&counters.spans_over_limit, tally.over_limit);
        add(&counters.spans_rejected, tally.rejected);
        tally
    }

    fn ingest_span(
        &self,
        span: opentelemetry_proto::tonic::trace::v1::Span,
        service: &str,
        tally: &mut BatchTally,
    ) {
        let Some(ids) = SpanIds::of(&span) else {
            tally.rejected += 1;
            return;
        };
        let mut shard = self.shard(ids.trace);
        match shard.get_mut(&ids.trace) {
            None => tally.unwanted += 1,
            Some(spans) if spans.len() >= self.max_spans_per_trace => tally.over_limit += 1,
            Some(spans) => {
                spans.push(convert(span, ids, service));
                tally.kept += 1;
            }
        }
    }
}

/// The ids of a span, validated as OTLP defines them: exact lengths, not all zeroes. An empty
/// parent marks a root; some exporters send eight zero bytes for it instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SpanIds {
    trace: TraceId,
    span: SpanId,
    parent: Option<SpanId>,
}

impl SpanIds {
    fn of(span: &opentelemetry_proto::tonic::trace::v1::Span) -> Option<SpanIds> {
        let trace = TraceId::from_bytes(&span.trace_id).filter(|id| id.0 != 0)?;
        let id = SpanId::from_bytes(&span.span_id).filter(|id| id.0 != 0)?;
        let parent = if span.parent_span_id.is_empty() {
            None
        } else {
            Some(SpanId::from_bytes(&span.parent_span_id)?).filter(|id| id.0 != 0)
        };
        Some(SpanIds {
            trace,
            span: id,
            parent,
        })
    }
}

fn service_name(resource: Option<&Resource>) -> String {
    resource
        .into_iter()
        .flat_map(|r| &r.attributes)
        .find(|kv| kv.key == "service.name")
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
        .map(|value| match value {
            any_value::Value::StringValue(name) => name.clone(),
            other => attr_value(Some(other.clone())).to_string(),
        })
        .unwrap_or_default()
}

fn convert(span: opentelemetry_proto::tonic::trace::v1::Span, ids: SpanIds, service: &str) -> Span {
    Span {
        trace_id: ids.trace,
        span_id: ids.span,
        parent: ids.parent,
        service: service.to_owned(),
        name: span.name,
        kind: span_kind(span.kind),
        status: span_status(span.status.map_or(0, |status| status.code)),
        attributes: span
            .attributes
            .into_iter()
            .map(|kv| (kv.key, attr_value(kv.value.and_then(|v| v.value))))
            .collect(),
        start_unix_nanos: span.start_time_unix_nano,
        end_unix_nanos: span.end_time_unix_nano,
    }
}

/// Numbers from `opentelemetry.proto.trace.v1.Span.SpanKind`; unknown values read as unspecified.
fn span_kind(kind: i32) -> SpanKind {
    match kind {
        1 => SpanKind::Internal,
        2 => SpanKind::Server,
        3 => SpanKind::Client,
        4 => SpanKind::Producer,
        5 => SpanKind::Consumer,
        _ => SpanKind::Unspecified,
    }
}

/// Numbers from `opentelemetry.proto.trace.v1.Status.StatusCode`.
fn span_status(code: i32) -> SpanStatus {
    match code {
        1 => SpanStatus::Ok,
        2 => SpanStatus::Error,
        _ => SpanStatus::Unset,
    }
}

fn attr_value(value: Option<any_value::Value>) -> AttrValue {
    match value {
        Some(any_value::Value::StringValue(s)) => AttrValue::String(s),
        Some(any_value::Value::BoolValue(b)) => AttrValue::Bool(b),
        Some(any_value::Value::IntValue(i)) => AttrValue::Int(i),
        Some(any_value::Value::DoubleValue(d)) => AttrValue::Double(d),
        other => AttrValue::Other(json_text(other.as_ref()).to_string()),
    }
}

/// Composite values as JSON, the way OTLP/JSON spells their leaves (bytes in base64).
fn json_text(value: Option<&any_value::Value>) -> serde_json::Value {
    use serde_json::Value as J;
    let nested = |any: &AnyValue| json_text(any.value.as_ref());
    match value {
        None => J::Null,
        Some(any_value::Value::StringValue(s)) => J::from(s.as_str()),
        Some(any_value::Value::BoolValue(b)) => J::from(*b),
        Some(any_value::Value::IntValue(i)) => J::from(*i),
        Some(any_value::Value::DoubleValue(d)) => J::from(*d),
        Some(any_value::Value::ArrayValue(array)) => array.values.iter().map(nested).collect(),
        Some(any_value::Value::KvlistValue(list)) => J::Object(
            list.values
                .iter()
                .map(|kv: &KeyValue| {
                    let value = kv.value.as_ref().map_or(J::Null, nested);
                    (kv.key.clone(), value)
                })
                .collect(),
        ),
        Some(any_value::Value::BytesValue(bytes)) => {
            J::from(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        Some(any_value::Value::StringValueStrindex(index)) => {
            serde_json::json!({ "stringValueStrindex": index })
        }
    }
}

/// Both servers until `token` is cancelled, then at most [`SHUTDOWN_GRACE`] for exports in flight.
async fn serve(
    store: Arc<Store>,
    grpc_listener: tokio::net::TcpListener,
    http_listener: tokio::net::TcpListener,
    max_message_bytes: usize,
    token: CancellationToken,
) -> Result<(), ReceiverError> {
    let grpc_service = TraceServiceServer::new(GrpcIngest(Arc::clone(&store)))
        .max_decoding_message_size(max_message_bytes)
        .accept_compressed(CompressionEncoding::Gzip);
    let grpc = tonic::transport::Server::builder()
        .add_service(grpc_service)
        .serve_with_incoming_shutdown(
            TcpIncoming::from(grpc_listener).with_nodelay(Some(true)),
            token.clone().cancelled_owned(),
        );
    let router = Router::new()
        .route("/v1/traces", post(http_export).fallback(method_not_allowed))
        .fallback(not_found)
        .with_state(HttpState {
            store,
            max_message_bytes,
        });
    let http = axum::serve(http_listener, router)
        .with_graceful_shutdown(token.clone().cancelled_owned())
        .into_future();

    let both = async { tokio::join!(grpc, http) };
    let deadline = async {
        token.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        (grpc, http) = both => {
            grpc.map_err(|e| ReceiverError::Serve { protocol: "gRPC", reason: e.to_string() })?;
            http.map_err(|e| ReceiverError::Serve { protocol: "HTTP", reason: e.to_string() })
        }
        () = deadline => Err(ReceiverError::ShutdownTimeout(SHUTDOWN_GRACE)),
    }
}

struct GrpcIngest(Arc<Store>);

#[tonic::async_trait]
impl TraceService for GrpcIngest {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let tally = self.0.ingest(request.into_inner());
        Ok(tonic::Response::new(export_response(tally)))
    }
}

/// OTLP's partial success tells the exporter about spans it must not retry.
fn export_response(tally: BatchTally) -> ExportTraceServiceResponse {
    let partial_success = (tally.rejected > 0).then(|| ExportTracePartialSuccess {
        rejected_spans: i64::try_from(tally.rejected).unwrap_or(i64::MAX),
        error_message: format!(
            "{} spans had a trace, span or parent id of the wrong length or all zeroes",
            tally.rejected
        ),
    });
    ExportTraceServiceResponse { partial_success }
}

#[derive(Clone)]
struct HttpState {
    store: Arc<Store>,
    max_message_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

/// `google.rpc.Status`, the body OTLP/HTTP prescribes for errors.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => PROTOBUF,
            Encoding::Json => JSON,
        }
    }

    fn decode(self, body: &[u8]) -> Result<ExportTraceServiceRequest, String> {
        match self {
            Encoding::Protobuf => {
                ExportTraceServiceRequest::decode(body).map_err(|e| format!("bad protobuf: {e}"))
            }
            Encoding::Json => {
                serde_json::from_slice(body).map_err(|e| format!("bad OTLP/JSON: {e}"))
            }
        }
    }

    fn response(self, status: StatusCode, body: Vec<u8>) -> Response {
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type()),
        );
        response
    }

    fn success(self, message: &ExportTraceServiceResponse) -> Response {
        let body = match self {
            Encoding::Protobuf => message.encode_to_vec(),
            // Serializing a derived struct into memory has no failure mode left.
            Encoding::Json => serde_json::to_vec(message).unwrap_or_default(),
        };
        self.response(StatusCode::OK, body)
    }

    fn error(self, status: StatusCode, message: String) -> Response {
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            RPC_RESOURCE_EXHAUSTED
        } else {
            RPC_INVALID_ARGUMENT
        };
        let body = match self {
            Encoding::Protobuf => RpcStatus { code, message }.encode_to_vec(),
            Encoding::Json => serde_json::json!({ "code": code, "message": message })
                .to_string()
                .into_bytes(),
        };
        self.response(status, body)
    }
}

async fn http_export(State(state): State<HttpState>, headers: HeaderMap, body: Body) -> Response {
    let reject = || {
        state
            .store
            .counters
            .rejected_requests
            .fetch_add(1, Ordering::Relaxed)
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let encoding = match media_type(content_type).as_str() {
        PROTOBUF => Encoding::Protobuf,
        JSON => Encoding::Json,
        _ => {
            reject();
            return plain(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("unsupported content type {content_type:?}; send {PROTOBUF} or {JSON}\n"),
            );
        }
    };
    let gzip = match headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().map(|s| s.trim().to_ascii_lowercase()))
    {
        None => false,
        Some(Ok(value)) if value.is_empty() || value == "identity" => false,
        Some(Ok(value)) if value == "gzip" => true,
        Some(other) => {
            reject();
            let named = other.unwrap_or_else(|_| "(not text)".to_owned());
            return plain(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("unsupported content encoding {named:?}; send gzip or none\n"),
            );
        }
    };

    let limit = state.max_message_bytes;
    let body = match read_body(body, limit, gzip).await {
        Ok(body) => body,
        Err((status, message)) => {
            reject();
            return encoding.error(status, message);
        }
    };
    match encoding.decode(&body) {
        Ok(request) => encoding.success(&export_response(state.store.ingest(request))),
        Err(message) => {
            reject();
            encoding.error(StatusCode::BAD_REQUEST, message)
        }
    }
}

/// The body, decompressed, refused past `limit` bytes either way so that a small gzip bomb
/// cannot inflate into memory.
async fn read_body(body: Body, limit: usize, gzip: bool) -> Result<Vec<u8>, (StatusCode, String)> {
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request larger than {limit} bytes"),
        )
    };
    let raw: Bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => return Err(too_large()),
        Err(e) => {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("reading the request body: {e}"),
            ));
        }
    };
    if !gzip {
        return Ok(raw.to_vec());
    }
    let mut inflated = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::GzDecoder::new(raw.as_ref())
        .take(cap)
        .read_to_end(&mut inflated)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("bad gzip body: {e}")))?;
    if inflated.len() > limit {
        return Err(too_large());
    }
    Ok(inflated)
}

/// `Application/JSON; charset=utf-8` -> `application/json`.
fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn plain(status: StatusCode, message: String) -> Response {
    (status, message).into_response()
}

async fn method_not_allowed(State(state): State<HttpState>) -> Response {
    state
        .store
        .counters
        .rejected_requests
        .fetch_add(1, Ordering::Relaxed);
    let mut response = plain(
        StatusCode::METHOD_NOT_ALLOWED,
        "OTLP/HTTP traces are POSTed\n".to_owned(),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

async fn not_found(State(state): State<HttpState>) -> Response {
    state
        .store
        .counters
        .rejected_requests
        .fetch_add(1, Ordering::Relaxed);
    plain(
        StatusCode::NOT_FOUND,
        "this receiver takes traces only, at POST /v1/traces\n".to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Write as _;

    use opentelemetry::trace::{
        Span as _, SpanContext, Status, TraceContextExt as _, TraceFlags, TraceState, Tracer as _,
        TracerProvider as _,
    };
    use opentelemetry_otlp::WithExportConfig as _;
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
    use opentelemetry_proto::tonic::trace::v1 as otlp;
    use opentelemetry_sdk::Resource as SdkResource;
    use opentelemetry_sdk::trace::SdkTracerProvider;

    use super::*;

    const WANTED: TraceId = TraceId(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736);
    const OTHER: TraceId = TraceId(0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c);

    fn kv(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn otlp_span(trace: TraceId, id: u64, parent: Option<u64>, name: &str) -> otlp::Span {
        otlp::Span {
            trace_id: trace.0.to_be_bytes().to_vec(),
            span_id: id.to_be_bytes().to_vec(),
            parent_span_id: parent.map(|p| p.to_be_bytes().to_vec()).unwrap_or_default(),
            name: name.to_owned(),
            kind: 2,
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_000_001_000_000,
            attributes: vec![kv("http.route", any_value::Value::StringValue("/q".into()))],
            status: Some(otlp::Status {
                code: 1,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn request(service: &str, spans: Vec<otlp::Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![otlp::ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv(
                        "service.name",
                        any_value::Value::StringValue(service.to_owned()),
                    )],
                    ..Default::default()
                }),
                scope_spans: vec![otlp::ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    /// The model span that `otlp_span` turns into.
    fn expected_span(trace: TraceId, id: u64, parent: Option<u64>, name: &str) -> Span {
        Span {
            trace_id: trace,
            span_id: SpanId(id),
            parent: parent.map(SpanId),
            service: "core-engine".to_owned(),
            name: name.to_owned(),
            kind: SpanKind::Server,
            status: SpanStatus::Ok,
            attributes: BTreeMap::from([(
                "http.route".to_owned(),
                AttrValue::String("/q".to_owned()),
            )]),
            start_unix_nanos: 1_700_000_000_000_000_000,
            end_unix_nanos: 1_700_000_000_001_000_000,
        }
    }

    fn start(config: ReceiverConfig) -> Receiver {
        Receiver::start(config).expect("receiver starts")
    }

    async fn fetch(receiver: &Receiver, id: TraceId) -> Option<Trace> {
        receiver.fetch(id).await.expect("fetch")
    }

    async fn post(
        receiver: &Receiver,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut builder = reqwest::Client::new()
            .post(format!("{}/v1/traces", receiver.http_endpoint()))
            .body(body);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.send().await.expect("POST reaches the receiver")
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).expect("gzip");
        encoder.finish().expect("gzip")
    }

    fn assert_accounted(stats: ReceiverStats) {
        assert_eq!(
            stats.spans_received,
            stats.spans_kept + stats.spans_unwanted + stats.spans_over_limit + stats.spans_rejected,
            "{stats:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn spans_from_the_sdk_exporter_arrive_linked_with_kinds_status_and_attributes() {
        let receiver = start(ReceiverConfig::default());
        assert!(receiver.want(WANTED));
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(receiver.grpc_endpoint())
            .build()
            .expect("exporter");
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                SdkResource::builder_empty()
                    .with_service_name("api-gateway")
                    .build(),
            )
            .build();
        let tracer = provider.tracer("receiver-test");

        let remote_parent = 0x00f0_67aa_0ba9_02b7_u64;
        let incoming = opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
            opentelemetry::trace::TraceId::from(WANTED.0),
            opentelemetry::trace::SpanId::from(remote_parent),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        ));
        let server = tracer
            .span_builder("POST /api/v1/market-data/fetch")
            .with_kind(opentelemetry::trace::SpanKind::Server)
            .with_attributes([
                opentelemetry::KeyValue::new("http.request.method", "POST"),
                opentelemetry::KeyValue::new("http.response.status_code", 502_i64),
                opentelemetry::KeyValue::new("retried", true),
                opentelemetry::KeyValue::new("load", 0.25),
                opentelemetry::KeyValue::new(
                    "symbols",
                    opentelemetry::Value::Array(opentelemetry::Array::String(vec![
                        "AAPL".into(),
                        "MSFT".into(),
                    ])),
                ),
            ])
            .start_with_context(&tracer, &incoming);
        let in_server = incoming.with_span(server);
        let mut client = tracer
            .span_builder("market.CoreEngine/Fetch")
            .with_kind(opentelemetry::trace::SpanKind::Client)
            .start_with_context(&tracer, &in_server);
        client.set_status(Status::error("upstream unavailable"));
        client.end();
        in_server.span().end();
        let mut stray = tracer.start_with_context("unrelated", &opentelemetry::Context::new());
        stray.end();

        let flusher = provider.clone();
        tokio::task::spawn_blocking(move || flusher.force_flush())
            .await
            .expect("flush task")
            .expect("flush");

        let trace = fetch(&receiver, WANTED).await.expect("the wanted trace");
        assert_eq!(trace.spans.len(), 2, "{trace:#?}");
        let by_name = |name: &str| {
            trace
                .spans
                .iter()
                .find(|s| s.name == name)
                .unwrap_or_else(|| panic!("no span {name} in {trace:#?}"))
        };
        let server = by_name("POST /api/v1/market-data/fetch");
        let client = by_name("market.CoreEngine/Fetch");
        assert_eq!(server.parent, Some(SpanId(remote_parent)));
        assert_eq!(client.parent, Some(server.span_id));
        assert_eq!(
            (server.kind, client.kind),
            (SpanKind::Server, SpanKind::Client)
        );
        assert_eq!(
            (server.status, client.status),
            (SpanStatus::Unset, SpanStatus::Error)
        );
        for span in [server, client] {
            assert_eq!(span.trace_id, WANTED);
            assert_eq!(span.service, "api-gateway");
            assert!(span.start_unix_nanos > 0 && span.start_unix_nanos <= span.end_unix_nanos);
        }
        let attr = |key: &str| server.attributes.get(key).cloned();
        assert_eq!(
            attr("http.request.method"),
            Some(AttrValue::String("POST".into()))
        );
        assert_eq!(attr("http.response.status_code"), Some(AttrValue::Int(502)));
        assert_eq!(attr("retried"), Some(AttrValue::Bool(true)));
        assert_eq!(attr("load"), Some(AttrValue::Double(0.25)));
        assert_eq!(
            attr("symbols"),
            Some(AttrValue::Other(r#"["AAPL","MSFT"]"#.into()))
        );

        let stats = receiver.stats();
        assert_eq!(
            (stats.spans_received, stats.spans_kept, stats.spans_unwanted),
            (3, 2, 1),
            "{stats:?}"
        );
        assert_accounted(stats);

        // The exporter's connection is still open: shutdown must not wait on it for ever.
        let (grpc, http) = (receiver.grpc_addr(), receiver.http_addr());
        receiver.shutdown().await.expect("clean shutdown");
        assert!(tokio::net::TcpStream::connect(grpc).await.is_err());
        assert!(tokio::net::TcpStream::connect(http).await.is_err());
        // Sending to a stopped receiver fails in the exporter, not here.
        let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
    }

    #[tokio::test]
    async fn http_protobuf_export_is_stored_and_answered_in_protobuf() {
        let receiver = start(ReceiverConfig::default());
        receiver.want(WANTED);
        let body = request(
            "core-engine",
            vec![
                otlp_span(WANTED, 1, None, "root"),
                otlp_span(WANTED, 2, Some(1), "child"),
                otlp_span(OTHER, 3, None, "elsewhere"),
            ],
        )
        .encode_to_vec();
        let response = post(
            &receiver,
            &[("content-type", "application/x-protobuf")],
            body,
        )
        .await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/x-protobuf");
        let answer = ExportTraceServiceResponse::decode(response.bytes().await.expect("body"))
            .expect("a protobuf ExportTraceServiceResponse");
        assert_eq!(answer.partial_success, None);

        let trace = fetch(&receiver, WANTED).await.expect("stored");
        assert_eq!(
            trace.spans,
            vec![
                expected_span(WANTED, 1, None, "root"),
                expected_span(WANTED, 2, Some(1), "child"),
            ]
        );
        assert_eq!(fetch(&receiver, OTHER).await, None);
        let stats = receiver.stats();
        assert_eq!((stats.batches, stats.spans_unwanted), (1, 1), "{stats:?}");
        assert_accounted(stats);
    }

    #[tokio::test]
    async fn http_json_export_is_stored() {
        let receiver = start(ReceiverConfig::default());
        let trace_id: TraceId = "5b8efff798038103d269b633813fc60c".parse().expect("hex");
        receiver.want(trace_id);
        let body = r#"{"resourceSpans":[{
            "resource":{"attributes":[{"key":"service.name","value":{"stringValue":"core-engine"}}]},
            "scopeSpans":[{"scope":{"name":"engine"},"spans":[{
                "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
                "parentSpanId":"eee19b7ec3c1b173","name":"market.CoreEngine/Fetch","kind":2,
                "startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000",
                "attributes":[{"key":"rpc.grpc.status_code","value":{"intValue":"0"}},
                              {"key":"rpc.system","value":{"stringValue":"grpc"}}],
                "status":{"code":2,"message":"boom"}}]}]}]}"#;
        let response = post(
            &receiver,
            &[("content-type", "application/json; charset=utf-8")],
            body,
        )
        .await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/json");
        let answer: serde_json::Value = response.json().await.expect("JSON answer");
        assert!(answer.is_object(), "{answer}");

        let trace = fetch(&receiver, trace_id).await.expect("stored");
        assert_eq!(
            trace.spans,
            vec![Span {
                trace_id,
                span_id: "eee19b7ec3c1b174".parse().expect("hex"),
                parent: Some("eee19b7ec3c1b173".parse().expect("hex")),
                service: "core-engine".to_owned(),
                name: "market.CoreEngine/Fetch".to_owned(),
                kind: SpanKind::Server,
                status: SpanStatus::Error,
                attributes: BTreeMap::from([
                    ("rpc.grpc.status_code".to_owned(), AttrValue::Int(0)),
                    ("rpc.system".to_owned(), AttrValue::String("grpc".into())),
                ]),
                start_unix_nanos: 1_544_712_660_000_000_000,
                end_unix_nanos: 1_544_712_661_000_000_000,
            }]
        );
    }

    #[tokio::test]
    async fn http_refuses_what_it_cannot_read() {
        let receiver = start(ReceiverConfig::default());
        let valid =
            request("core-engine", vec![otlp_span(WANTED, 1, None, "root")]).encode_to_vec();

        let response = post(&receiver, &[("content-type", "text/plain")], valid.clone()).await;
        assert_eq!(response.status(), 415);
        let text = response.text().await.expect("body");
        assert!(text.contains("application/x-protobuf"), "{text}");

        let response = post(
            &receiver,
            &[
                ("content-type", "application/x-protobuf"),
                ("content-encoding", "br"),
            ],
            valid,
        )
        .await;
        assert_eq!(response.status(), 415);

        let garbage = vec![0xff, 0xff, 0xff];
        assert!(ExportTraceServiceRequest::decode(garbage.as_slice()).is_err());
        let response = post(
            &receiver,
            &[("content-type", "application/x-protobuf")],
            garbage,
        )
        .await;
        assert_eq!(response.status(), 400);
        let status = RpcStatus::decode(response.bytes().await.expect("body"))
            .expect("a google.rpc.Status body");
        assert_eq!(status.code, RPC_INVALID_ARGUMENT);
        assert!(status.message.contains("protobuf"), "{status:?}");

        let response = post(&receiver, &[("content-type", "application/json")], "{").await;
        assert_eq!(response.status(), 400);

        let client = reqwest::Client::new();
        let url = format!("{}/v1/traces", receiver.http_endpoint());
        let response = client.get(&url).send().await.expect("GET");
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers()["allow"], "POST");
        let response = client
            .post(format!("{}/v1/metrics", receiver.http_endpoint()))
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status(), 404);

        let stats = receiver.stats();
        assert_eq!(stats.rejected_requests, 6, "{stats:?}");
        assert_eq!(stats.batches, 0, "{stats:?}");
    }

    #[tokio::test]
    async fn http_gzip_bodies_are_inflated_within_the_size_limit() {
        let limit = 64 * 1024;
        let receiver = start(ReceiverConfig {
            max_message_bytes: limit,
            ..ReceiverConfig::default()
        });
        receiver.want(WANTED);
        let headers = [
            ("content-type", "application/x-protobuf"),
            ("content-encoding", "gzip"),
        ];
        let body = request("core-engine", vec![otlp_span(WANTED, 1, None, "root")]);
        let response = post(&receiver, &headers, gzip(&body.encode_to_vec())).await;
        assert_eq!(response.status(), 200);
        let trace = fetch(&receiver, WANTED).await.expect("stored");
        assert_eq!(trace.spans, vec![expected_span(WANTED, 1, None, "root")]);

        // Small on the wire, four times the limit inflated.
        let bomb = gzip(&vec![0; 4 * limit]);
        assert!(bomb.len() < limit);
        let response = post(&receiver, &headers, bomb).await;
        assert_eq!(response.status(), 413);

        let response = post(
            &receiver,
            &[("content-type", "application/x-protobuf")],
            vec![0; limit + 1],
        )
        .await;
        assert_eq!(response.status(), 413);
        assert_eq!(receiver.stats().rejected_requests, 2);
    }

    #[tokio::test]
    async fn spans_beyond_the_trace_limit_and_malformed_ids_are_counted_not_kept() {
        let receiver = start(ReceiverConfig {
            max_spans_per_trace: 3,
            ..ReceiverConfig::default()
        });
        receiver.want(WANTED);
        let mut spans: Vec<_> = (1..=5)
            .map(|id| otlp_span(WANTED, id, None, "many"))
            .collect();
        let malformed = [
            otlp::Span {
                trace_id: vec![7; 15],
                ..otlp_span(WANTED, 6, None, "short trace id")
            },
            otlp::Span {
                span_id: vec![7; 9],
                ..otlp_span(WANTED, 7, None, "long span id")
            },
            otlp::Span {
                parent_span_id: vec![7; 4],
                ..otlp_span(WANTED, 8, None, "short parent id")
            },
            otlp_span(TraceId(0), 9, None, "zero trace id"),
        ];
        spans.extend(malformed);
        // Gzip as well, which collectors' exporters send by default.
        let mut client = TraceServiceClient::connect(receiver.grpc_endpoint())
            .await
            .expect("connect")
            .send_compressed(CompressionEncoding::Gzip);
        let answer = client
            .export(request("core-engine", spans))
            .await
            .expect("the batch is accepted")
            .into_inner();
        let partial = answer.partial_success.expect("partial success reported");
        assert_eq!(partial.rejected_spans, 4);

        let trace = fetch(&receiver, WANTED).await.expect("stored");
        let ids: Vec<_> = trace.spans.iter().map(|s| s.span_id.0).collect();
        assert_eq!(ids, vec![1, 2, 3]);
        let stats = receiver.stats();
        assert_eq!(
            (
                stats.spans_received,
                stats.spans_kept,
                stats.spans_over_limit,
                stats.spans_rejected
            ),
            (9, 3, 2, 4),
            "{stats:?}"
        );
        assert_accounted(stats);
    }

    #[tokio::test]
    async fn wants_beyond_the_trace_limit_are_refused_and_their_spans_dropped() {
        let receiver = start(ReceiverConfig {
            max_traces: 2,
            ..ReceiverConfig::default()
        });
        let third = TraceId(3);
        assert!(receiver.want(WANTED));
        assert!(receiver.want(WANTED), "registering again is not refused");
        assert!(receiver.want(OTHER));
        assert!(!receiver.want(third));
        assert_eq!(receiver.stats().wants_refused, 1);
        assert_eq!(fetch(&receiver, WANTED).await, None, "wanted, nothing yet");

        let mut client = TraceServiceClient::connect(receiver.grpc_endpoint())
            .await
            .expect("connect");
        client
            .export(request(
                "core-engine",
                vec![otlp_span(third, 1, None, "late")],
            ))
            .await
            .expect("export");
        assert_eq!(fetch(&receiver, third).await, None);
        assert_eq!(receiver.stats().spans_unwanted, 1);
    }

    #[tokio::test]
    async fn grpc_exports_larger_than_tonics_default_limit_are_accepted() {
        let padding = "x".repeat(1024);
        let spans: Vec<_> = (1..=5_000)
            .map(|id| otlp::Span {
                attributes: vec![kv(
                    "padding",
                    any_value::Value::StringValue(padding.clone()),
                )],
                ..otlp_span(OTHER, id, None, "big")
            })
            .collect();
        let batch = request("core-engine", spans);
        assert!(batch.encoded_len() > 4 * 1024 * 1024);

        let receiver = start(ReceiverConfig::default());
        let mut client = TraceServiceClient::connect(receiver.grpc_endpoint())
            .await
            .expect("connect");
        client.export(batch.clone()).await.expect("accepted");
        assert_eq!(receiver.stats().spans_received, 5_000);

        // The same batch against tonic's default limit: proves the batch is big enough to matter.
        let strict = start(ReceiverConfig {
            max_message_bytes: 4 * 1024 * 1024,
            ..ReceiverConfig::default()
        });
        let mut client = TraceServiceClient::connect(strict.grpc_endpoint())
            .await
            .expect("connect");
        assert!(client.export(batch).await.is_err());
        assert_eq!(strict.stats().batches, 0);
    }

    #[tokio::test]
    async fn names_its_endpoints_and_stops_when_dropped() {
        let receiver = start(ReceiverConfig::default());
        let (grpc, http) = (receiver.grpc_addr(), receiver.http_addr());
        assert!(grpc.ip().is_loopback() && http.ip().is_loopback());
        assert_ne!(grpc.port(), 0);
        assert_eq!(
            receiver.grpc_endpoint(),
            format!("http://127.0.0.1:{}", grpc.port())
        );
        assert_eq!(
            receiver.describe(),
            format!(
                "embedded OTLP receiver (grpc 127.0.0.1:{}, http 127.0.0.1:{})",
                grpc.port(),
                http.port()
            )
        );

        drop(receiver);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::net::TcpStream::connect(grpc).await.is_ok()
            || tokio::net::TcpStream::connect(http).await.is_ok()
        {
            assert!(tokio::time::Instant::now() < deadline, "still listening");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[test]
    fn a_taken_port_is_reported_at_start() {
        let first = start(ReceiverConfig::default());
        let clash = Receiver::start(ReceiverConfig {
            http_addr: first.http_addr(),
            ..ReceiverConfig::default()
        });
        assert!(
            matches!(
                clash,
                Err(ReceiverError::Bind {
                    protocol: "HTTP",
                    ..
                })
            ),
            "{:?}",
            clash.err()
        );
    }

    #[test]
    fn proto_values_become_model_values() {
        use any_value::Value as V;
        let inner = |value| AnyValue { value: Some(value) };
        assert_eq!(
            attr_value(Some(V::StringValue("a".into()))),
            AttrValue::String("a".into())
        );
        assert_eq!(attr_value(Some(V::IntValue(-3))), AttrValue::Int(-3));
        assert_eq!(
            attr_value(Some(V::DoubleValue(1.5))),
            AttrValue::Double(1.5)
        );
        assert_eq!(
            attr_value(Some(V::BoolValue(false))),
            AttrValue::Bool(false)
        );
        assert_eq!(attr_value(None), AttrValue::Other("null".into()));
        assert_eq!(
            attr_value(Some(V::BytesValue(vec![1, 2, 3]))),
            AttrValue::Other(r#""AQID""#.into())
        );
        let nested = V::KvlistValue(opentelemetry_proto::tonic::common::v1::KeyValueList {
            values: vec![
                kv(
                    "ids",
                    V::ArrayValue(opentelemetry_proto::tonic::common::v1::ArrayValue {
                        values: vec![inner(V::IntValue(1)), inner(V::BoolValue(true))],
                    }),
                ),
                KeyValue {
                    key: "empty".into(),
                    ..Default::default()
                },
            ],
        });
        assert_eq!(
            attr_value(Some(nested)),
            AttrValue::Other(r#"{"empty":null,"ids":[1,true]}"#.into())
        );

        let kinds: Vec<_> = (0..=6).map(span_kind).collect();
        assert_eq!(
            kinds,
            [
                SpanKind::Unspecified,
                SpanKind::Internal,
                SpanKind::Server,
                SpanKind::Client,
                SpanKind::Producer,
                SpanKind::Consumer,
                SpanKind::Unspecified,
            ]
        );
        let statuses: Vec<_> = (0..=3).map(span_status).collect();
        assert_eq!(
            statuses,
            [
                SpanStatus::Unset,
                SpanStatus::Ok,
                SpanStatus::Error,
                SpanStatus::Unset
            ]
        );
        assert_eq!(service_name(None), "");
        assert_eq!(
            service_name(Some(&Resource {
                attributes: vec![kv("service.name", V::StringValue("gw".into()))],
                ..Default::default()
            })),
            "gw"
        );
    }

    #[test]
    fn a_zero_filled_parent_marks_a_root() {
        let span = otlp::Span {
            parent_span_id: vec![0; 8],
            ..otlp_span(WANTED, 1, None, "root")
        };
        let ids = SpanIds::of(&span).expect("valid ids");
        assert_eq!(ids.parent, None);
        let zero_span = otlp::Span {
            span_id: vec![0; 8],
            ..otlp_span(WANTED, 1, None, "root")
        };
        assert_eq!(SpanIds::of(&zero_span), None);
    }

    #[test]
    fn media_types_ignore_parameters_and_case() {
        assert_eq!(media_type("Application/JSON; charset=utf-8"), JSON);
        assert_eq!(media_type(" application/x-protobuf "), PROTOBUF);
        assert_eq!(media_type(""), "");
    }
}
