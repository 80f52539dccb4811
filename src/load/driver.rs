//! Protocol drivers: send one prepared request and report how it ended. Two implementations, HTTP
//! through the gateway and gRPC straight to the engine; the load core is generic over them.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Uri;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tonic::transport::{Channel, Endpoint};

use super::recorder::Outcome;
use engine::proto::FetchMarketDataRequest;
use engine::proto::core_engine_service_client::CoreEngineServiceClient;

/// Sends one request of the load and reports how it ended.
pub trait Driver: Send + Sync + 'static {
    /// A request ready to send, prepared before the run so that sending does no rendering.
    type Payload: Send + Sync + 'static;

    fn send(&self, payload: &Self::Payload) -> impl Future<Output = Outcome> + Send;
}

/// `POST`s JSON bodies to one URL over a keep-alive HTTP/1.1 pool.
pub struct HttpDriver {
    client: Client<HttpConnector, Full<Bytes>>,
    url: Uri,
    timeout: Duration,
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
        }
    }
}

impl Driver for HttpDriver {
    type Payload = Bytes;

    async fn send(&self, body: &Bytes) -> Outcome {
        let request = hyper::Request::post(self.url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(Full::new(body.clone()));
        let request = match request {
            Ok(request) => request,
            Err(error) => return Outcome::Transport(error.to_string()),
        };
        let exchange = async {
            let response = self.client.request(request).await?;
            let status = response.status().as_u16();
            // Read the whole body: the exchange is not over (nor the connection reusable) before.
            response.into_body().collect().await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(status)
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(status)) => Outcome::Status(status),
            Ok(Err(error)) => Outcome::Transport(error.to_string()),
            Err(_) => Outcome::Timeout,
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

    async fn send(&self, payload: &Arc<FetchMarketDataRequest>) -> Outcome {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.clients.len();
        let mut client = self.clients[i].clone();
        // No grpc-timeout header: the server would enforce it and answer CANCELLED, racing this
        // side's timeout and turning timeouts into answers.
        let request = tonic::Request::new(FetchMarketDataRequest::clone(payload));
        match tokio::time::timeout(self.timeout, client.fetch_market_data(request)).await {
            Ok(Ok(_)) => Outcome::Code(tonic::Code::Ok),
            // Transport failures surface as UNAVAILABLE (or UNKNOWN) statuses with a source.
            Ok(Err(status)) if std::error::Error::source(&status).is_some() => {
                Outcome::Transport(status.to_string())
            }
            Ok(Err(status)) => Outcome::Code(status.code()),
            Err(_) => Outcome::Timeout,
        }
    }
}
