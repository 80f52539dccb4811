//! The gRPC driver: any unary method, its request message already encoded, over several HTTP/2
//! connections (plain or TLS) used round robin. The response message is not decoded: only the
//! status counts.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Buf as _, BufMut as _, Bytes};
use hyper::http::uri::PathAndQuery;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use tonic::client::Grpc;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{Ascii, MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Channel, Endpoint};

use super::driver::{Driver, Reply, TRACEPARENT};
use super::outcome::Outcome;
use super::sample::TraceParent;

/// One unary call, rendered before the run.
#[derive(Clone, Debug)]
pub struct GrpcCall {
    /// `/package.Service/Method`.
    pub path: PathAndQuery,
    /// Request metadata (e.g. an API key).
    pub metadata: MetadataMap,
    /// The request message, protobuf-encoded.
    pub message: Bytes,
}

/// Calls unary methods over `connections` HTTP/2 connections, round robin.
pub struct GrpcDriver {
    clients: Vec<Grpc<Channel>>,
    next: AtomicUsize,
    timeout: Duration,
    /// The response metadata key that carries the trace id, read for sampled calls.
    trace_header: Option<MetadataKey<Ascii>>,
}

impl GrpcDriver {
    /// `tls` is used when `endpoint` is `https://` (ALPN h2).
    pub fn new(
        endpoint: &Endpoint,
        tls: rustls::ClientConfig,
        connections: usize,
        timeout: Duration,
    ) -> Self {
        let clients = (0..connections.max(1))
            .map(|_| Grpc::new(endpoint.connect_with_connector_lazy(connector(tls.clone()))))
            .collect();
        GrpcDriver {
            clients,
            next: AtomicUsize::new(0),
            timeout,
            trace_header: None,
        }
    }

    /// The response metadata key (e.g. `x-trace-id`) that carries the trace id; `None` (the
    /// default) reads none. A name that is no metadata key reads none either.
    pub fn with_trace_header(mut self, name: &str) -> Self {
        self.trace_header = MetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes()).ok();
        self
    }

    fn trace_id(&self, metadata: &MetadataMap) -> Option<String> {
        let value = metadata.get(self.trace_header.as_ref()?)?;
        Some(String::from_utf8_lossy(value.as_encoded_bytes()).into_owned())
    }
}

/// How every gRPC connection to the target is made: plain HTTP/2 for `http://`, TLS with ALPN h2
/// for `https://`, trusting what `tls` says.
pub(crate) fn connector(tls: rustls::ClientConfig) -> HttpsConnector<HttpConnector> {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.enforce_http(false);
    HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http2()
        .wrap_connector(http)
}

impl Driver for GrpcDriver {
    type Payload = Arc<GrpcCall>;

    async fn send(&self, call: &Arc<GrpcCall>, trace: Option<&TraceParent>) -> Reply {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.clients.len();
        let mut client = self.clients[i].clone();
        // No grpc-timeout header: the server would enforce it and answer CANCELLED, racing this
        // side's timeout and turning timeouts into answers.
        let mut request = tonic::Request::new(call.message.clone());
        *request.metadata_mut() = call.metadata.clone();
        if let Some(value) = trace.and_then(|t| MetadataValue::try_from(t.header()).ok()) {
            request.metadata_mut().insert(TRACEPARENT, value);
        }
        let exchange = async {
            client.ready().await.map_err(|e| {
                tonic::Status::from_error(Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
            })?;
            client.unary(request, call.path.clone(), Raw).await
        };
        let sampled = trace.is_some();
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(response)) => Reply {
                outcome: Outcome::Code(tonic::Code::Ok),
                trace_header: sampled
                    .then(|| self.trace_id(response.metadata()))
                    .flatten(),
            },
            // Transport failures surface as UNAVAILABLE (or UNKNOWN) statuses with a source.
            Ok(Err(status)) if std::error::Error::source(&status).is_some() => {
                Outcome::Transport(status.to_string()).into()
            }
            Ok(Err(status)) => Reply {
                outcome: Outcome::Code(status.code()),
                trace_header: sampled.then(|| self.trace_id(status.metadata())).flatten(),
            },
            Err(_) => Outcome::Timeout.into(),
        }
    }
}

/// Passes encoded messages through: requests are encoded before the run, and responses only
/// need their status.
#[derive(Clone, Copy, Debug, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Bytes;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}
