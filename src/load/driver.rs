//! Protocol drivers: send one prepared request and report how it ended. Two implementations, HTTP
//! through the gateway and gRPC straight to the engine; the load core is generic over them.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Uri;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

use super::outcome::Outcome;
use super::sample::TraceParent;
use engine::proto::FetchMarketDataRequest;
use engine::proto::core_engine_service_client::CoreEngineServiceClient;

/// Sends one request of the load and reports how it ended.
pub trait Driver: Send + Sync + 'static {
    /// A request ready to send, prepared before the run so that sending does no rendering.
    type Payload: Send + Sync + 'static;

    /// Sends `payload`, with a `traceparent` when the request is sampled.
    fn send(
        &self,
        payload: &Self::Payload,
        trace: Option<&TraceParent>,
    ) -> impl Future<Output = Reply> + Send;
}

/// What came back for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub outcome: Outcome,
    /// The trace id response header, read only for sampled requests.
    pub trace_header: Option<String>,
}

impl From<Outcome> for Reply {
    fn from(outcome: Outcome) -> Self {
        Reply {
            outcome,
            trace_header: None,
        }
    }
}

/// The W3C trace context header, in HTTP headers and gRPC metadata alike.
const TRACEPARENT: &str = "traceparent";

/// `POST`s JSON bodies to one URL over a keep-alive HTTP/1.1 pool.
pub struct HttpDriver {
    client: Client<HttpConnector, Full<Bytes>>,
    url: Uri,
    timeout: Duration,
    trace_header: HeaderName,
}

impl HttpDriver {
    /// `connections` is how many idle keep-alive connections are kept between requests; HTTP/1.1
    /// needs one connection per request in flight, so more open while more are in flight.
    pub fn new(url: Uri, connections: usize, timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(connections)
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        HttpDriver {
            client,
            url,
            timeout,
            trace_header: HeaderName::from_static("x-trace-id"),
        }
    }

    /// The response header that carries the trace id (default `X-Trace-ID`).
    pub fn with_trace_header(mut self, name: HeaderName) -> Self {
        self.trace_header = name;
        self
    }
}

impl Driver for HttpDriver {
    type Payload = Bytes;

    async fn send(&self, body: &Bytes, trace: Option<&TraceParent>) -> Reply {
        let mut request = hyper::Request::post(self.url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(trace) = trace {
            request = request.header(TRACEPARENT, trace.header());
        }
        let request = match request.body(Full::new(body.clone())) {
            Ok(request) => request,
            Err(error) => return Outcome::Transport(error.to_string()).into(),
        };
        let exchange = async {
            let response = self.client.request(request).await?;
            let status = response.status().as_u16();
            let trace_header = trace
                .and_then(|_| response.headers().get(&self.trace_header))
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
            // Read the whole body: the exchange is not over (nor the connection reusable) before.
            response.into_body().collect().await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((status, trace_header))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok((status, trace_header))) => Reply {
                outcome: Outcome::Status(status),
                trace_header,
            },
            Ok(Err(error)) => Outcome::Transport(error.to_string()).into(),
            Err(_) => Outcome::Timeout.into(),
        }
    }
}

/// Calls `FetchMarketData` over several HTTP/2 connections, round robin.
pub struct GrpcDriver {
    clients: Vec<CoreEngineServiceClient<Channel>>,
    next: AtomicUsize,
    timeout: Duration,
}

impl GrpcDriver {
    pub fn new(endpoint: Endpoint, connections: usize, timeout: Duration) -> Self {
        let clients = (0..connections.max(1))
            .map(|_| {
                CoreEngineServiceClient::new(endpoint.clone().tcp_nodelay(true).connect_lazy())
            })
            .collect();
        GrpcDriver {
            clients,
            next: AtomicUsize::new(0),
            timeout,
        }
    }
}

impl Driver for GrpcDriver {
    type Payload = Arc<FetchMarketDataRequest>;

    async fn send(
        &self,
        payload: &Arc<FetchMarketDataRequest>,
        trace: Option<&TraceParent>,
    ) -> Reply {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.clients.len();
        let mut client = self.clients[i].clone();
        // No grpc-timeout header: the server would enforce it and answer CANCELLED, racing this
        // side's timeout and turning timeouts into answers.
        let mut request = tonic::Request::new(FetchMarketDataRequest::clone(payload));
        if let Some(value) = trace.and_then(|t| MetadataValue::try_from(t.header()).ok()) {
            request.metadata_mut().insert(TRACEPARENT, value);
        }
        let outcome =
            match tokio::time::timeout(self.timeout, client.fetch_market_data(request)).await {
                Ok(Ok(_)) => Outcome::Code(tonic::Code::Ok),
                // Transport failures surface as UNAVAILABLE (or UNKNOWN) statuses with a source.
                Ok(Err(status)) if std::error::Error::source(&status).is_some() => {
                    Outcome::Transport(status.to_string())
                }
                Ok(Err(status)) => Outcome::Code(status.code()),
                Err(_) => Outcome::Timeout,
            };
        outcome.into()
    }
}
