//! The HTTP driver: any method, URL, headers and body, over HTTP/1.1 or HTTP/2 (h2c by prior
//! knowledge, h2 over TLS by ALPN), plain or TLS, on one keep-alive pool.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderMap, HeaderName};
use hyper::{Method, Uri};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::driver::{Driver, Reply, TRACEPARENT};
use super::outcome::Outcome;
use super::sample::TraceParent;

/// The most of a response body the driver reads; a larger one ends the request as a transport
/// failure rather than filling memory.
pub const MAX_RESPONSE_BYTES: usize = 16 << 20;

/// One HTTP request, rendered before the run: sending only clones it.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpRequest {
    /// Any method.
    pub method: Method,
    /// An absolute `http://` or `https://` URL, or a path relative to the driver's base.
    pub uri: Uri,
    /// Every header the request carries, `content-type` included.
    pub headers: HeaderMap,
    /// The body, possibly empty.
    pub body: Bytes,
}

impl HttpRequest {
    /// A request with a JSON body.
    pub fn json(method: Method, uri: Uri, body: Bytes) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
        HttpRequest {
            method,
            uri,
            headers,
            body,
        }
    }
}

/// A base URL without a scheme or host.
#[derive(Debug, thiserror::Error)]
#[error("{0}: expected an absolute http:// or https:// URL")]
pub struct BadBase(pub(super) String);

/// Which HTTP versions a connection may speak.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HttpVersion {
    /// HTTP/1.1 on plain connections; h2 or HTTP/1.1 over TLS, as the server picks by ALPN.
    #[default]
    Auto,
    /// HTTP/1.1 only.
    Http1,
    /// HTTP/2 only: h2c by prior knowledge on plain connections, h2 over TLS.
    Http2,
}

/// Sends prepared requests over a keep-alive pool, reading each response whole.
pub struct HttpDriver {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// Where relative request URLs go: scheme, authority and a path prefix (no trailing `/`).
    base: (
        hyper::http::uri::Scheme,
        hyper::http::uri::Authority,
        String,
    ),
    trace_header: HeaderName,
}

impl HttpDriver {
    /// Relative request URLs go to `base` (`http(s)://host[:port][/prefix]`). `tls` is used for
    /// `https://` URLs (ALPN is set here, by `version`). `connections` is how many idle
    /// keep-alive connections are kept between requests; HTTP/1.1 needs one connection per
    /// request in flight, so more open while more are in flight. No timeout: the load core
    /// gives up on a request itself.
    pub fn new(
        base: &Uri,
        tls: rustls::ClientConfig,
        version: HttpVersion,
        connections: usize,
    ) -> Result<Self, BadBase> {
        let (Some(scheme), Some(authority)) = (base.scheme(), base.authority()) else {
            return Err(BadBase(base.to_string()));
        };
        let prefix = base.path().trim_end_matches('/').to_owned();
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.enforce_http(false);
        let https = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http();
        let connector = match version {
            HttpVersion::Auto => https.enable_all_versions().wrap_connector(http),
            HttpVersion::Http1 => https.enable_http1().wrap_connector(http),
            HttpVersion::Http2 => https.enable_http2().wrap_connector(http),
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(connections)
            .pool_idle_timeout(Duration::from_secs(90))
            .http2_only(version == HttpVersion::Http2)
            .build(connector);
        Ok(HttpDriver {
            client,
            base: (scheme.clone(), authority.clone(), prefix),
            trace_header: HeaderName::from_static("x-trace-id"),
        })
    }

    /// `uri` itself if absolute, else under the base.
    fn resolve(&self, uri: &Uri) -> Uri {
        if uri.scheme().is_some() {
            return uri.clone();
        }
        let (scheme, authority, prefix) = &self.base;
        let mut parts = hyper::http::uri::Parts::default();
        parts.scheme = Some(scheme.clone());
        parts.authority = Some(authority.clone());
        parts.path_and_query = match uri.path_and_query() {
            Some(pq) if prefix.is_empty() => Some(pq.clone()),
            Some(pq) => format!("{prefix}{pq}").parse().ok(),
            None => prefix.parse().ok(),
        };
        Uri::from_parts(parts).unwrap_or_else(|_| uri.clone())
    }

    /// The response header that carries the trace id (default `X-Trace-ID`).
    pub fn with_trace_header(mut self, name: HeaderName) -> Self {
        self.trace_header = name;
        self
    }
}

impl Driver for HttpDriver {
    type Payload = std::sync::Arc<HttpRequest>;

    async fn send(&self, payload: &Self::Payload, trace: Option<&TraceParent>) -> Reply {
        let mut request = hyper::Request::new(Full::new(payload.body.clone()));
        *request.method_mut() = payload.method.clone();
        *request.uri_mut() = self.resolve(&payload.uri);
        *request.headers_mut() = payload.headers.clone();
        if let Some(trace) = trace
            && let Ok(value) = trace.header().parse()
        {
            request.headers_mut().insert(TRACEPARENT, value);
        }
        let exchange = async {
            let response = self.client.request(request).await?;
            let status = response.status().as_u16();
            let trace_header = trace
                .and_then(|_| response.headers().get(&self.trace_header))
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
            // Read the whole body: the exchange is not over (nor the connection reusable) before.
            Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((status, trace_header))
        };
        match exchange.await {
            Ok((status, trace_header)) => Reply {
                outcome: Outcome::Status(status),
                trace_header,
            },
            Err(error) => Outcome::Transport(chain(&*error)).into(),
        }
    }
}

/// An error with its sources, so that "client error (Connect)" says what failed to connect.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
