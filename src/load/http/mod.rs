//! The HTTP driver: any method, URL, headers and body, over HTTP/1.1 or HTTP/2 (h2c by prior
//! knowledge, h2 over TLS by ALPN), plain or TLS, with its own keep-alive pool. HTTP/1.1 is
//! written for the load ([`http1`]): each request's bytes rendered once ([`wire`]), written and
//! its answer read ([`response`]) from the request's own future; an HTTP/1.1 connection is taken
//! for one exchange and put back. HTTP/2 runs over hyper's connection API ([`h2`]), one
//! connection shared by every request. Nothing runs per request beside the request itself (no
//! pool task, no connector service, no per-request timer).

mod h2;
mod http1;
mod pool;
mod response;
#[cfg(test)]
mod tests;
mod wire;

#[cfg(fuzzing)]
pub(crate) use response::fuzz_answer;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderName};
use hyper::http::uri::PathAndQuery;
use hyper::{Method, Uri};
use tokio_rustls::TlsConnector;

use super::connect::tls_connector;
use super::driver::{Driver, Reply};
use super::outcome::Outcome;
use super::prepared::PreparedCache;
use super::sample::TraceParent;
use pool::{Connection, Opener, Origin, Pool};
use wire::Wire;

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

/// Sends prepared requests over keep-alive connections, reading each response whole.
pub struct HttpDriver {
    /// Where relative request URLs go, and the path prefix they go under (no trailing `/`).
    base: Origin,
    prefix: String,
    version: HttpVersion,
    /// For `https://` origins, ALPN set by `version`.
    tls: TlsConnector,
    /// Idle HTTP/1.1 connections kept per origin.
    connections: usize,
    /// One pool per origin requests went to: the base's, and any absolute URL's.
    pools: Mutex<Vec<Arc<Pool>>>,
    /// Each request of the plan as sent: its pool, path and HTTP/1.1 bytes.
    prepared: PreparedCache<HttpRequest, Arc<Prepared>>,
    trace_header: HeaderName,
}

/// A request ready for its origin: worked out once, however many times it is sent.
struct Prepared {
    pool: Arc<Pool>,
    path: PathAndQuery,
    wire: Wire,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

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
        let alpn: &[&[u8]] = match version {
            HttpVersion::Auto => &[b"h2", b"http/1.1"],
            HttpVersion::Http1 => &[b"http/1.1"],
            HttpVersion::Http2 => &[b"h2"],
        };
        Ok(HttpDriver {
            base: Origin {
                scheme: scheme.clone(),
                authority: authority.clone(),
            },
            prefix: base.path().trim_end_matches('/').to_owned(),
            version,
            tls: tls_connector(tls, alpn),
            connections,
            pools: Mutex::new(Vec::new()),
            prepared: PreparedCache::new(),
            trace_header: HeaderName::from_static("x-trace-id"),
        })
    }

    /// The response header that carries the trace id (default `X-Trace-ID`).
    pub fn with_trace_header(mut self, name: HeaderName) -> Self {
        self.trace_header = name;
        self
    }

    /// Where `uri` goes: its own origin if absolute, else the base's, with the path under the
    /// base's prefix.
    fn target(&self, uri: &Uri) -> Result<(Origin, PathAndQuery), Error> {
        let path = uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        if let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) {
            let origin = Origin {
                scheme: scheme.clone(),
                authority: authority.clone(),
            };
            return Ok((origin, path));
        }
        if self.prefix.is_empty() {
            return Ok((self.base.clone(), path));
        }
        let prefixed = format!("{}{path}", self.prefix).parse()?;
        Ok((self.base.clone(), prefixed))
    }

    fn pool(&self, origin: Origin) -> Arc<Pool> {
        let mut pools = lock(&self.pools);
        if let Some(pool) = pools.iter().find(|p| p.origin == origin) {
            return Arc::clone(pool);
        }
        let pool = Arc::new(Pool::new(origin));
        pools.push(Arc::clone(&pool));
        pool
    }

    /// `payload` as sent: prepared on its first send, then looked up.
    fn prepared(&self, payload: &Arc<HttpRequest>) -> Result<Arc<Prepared>, Error> {
        self.prepared.get_or_prepare(payload, |request| {
            let (origin, path) = self.target(&request.uri)?;
            let wire = Wire::render(
                &request.method,
                &path,
                &origin.authority,
                &request.headers,
                &request.body,
            );
            Ok(Arc::new(Prepared {
                pool: self.pool(origin),
                path,
                wire,
            }))
        })
    }

    fn opener(&self) -> Opener<'_> {
        Opener {
            version: self.version,
            tls: &self.tls,
        }
    }

    /// One exchange, start to end: the status and, for a sampled request, the trace id header.
    async fn exchange(
        &self,
        payload: &Arc<HttpRequest>,
        trace: Option<&TraceParent>,
    ) -> Result<(u16, Option<String>), Error> {
        let prepared = self.prepared(payload)?;
        let pool = &prepared.pool;
        let opener = self.opener();
        let mut connection = match pool.checkout(&opener).await? {
            Connection::Http2(generation, sender) => {
                let shared = (generation, sender);
                let path = &prepared.path;
                let header = &self.trace_header;
                return h2::exchange(pool, &opener, shared, payload, path, trace, header).await;
            }
            Connection::Http1(connection) => connection,
        };
        let wire = &prepared.wire;
        let sampled = trace.map(|trace| wire.sampled(&trace.header()));
        let bytes = sampled.as_deref().unwrap_or(wire.unsampled());
        let trace_header = trace.map(|_| self.trace_header.as_str());
        let exchange = connection.exchange(bytes, wire.head_request, trace_header);
        let (head, reusable) = match exchange.await {
            Ok(answer) => answer,
            // The kept connection was closed by the server before the request could leave
            // (the close seen only as the request was written): it goes once more, on a new
            // connection. One that left and got no answer is not sent again.
            Err(failure) if connection.kept() && failure.retryable() => {
                connection = match pool.open(&opener).await? {
                    Connection::Http1(fresh) => fresh,
                    // The server now speaks HTTP/2 (ALPN): the next request will use it.
                    Connection::Http2(..) => return Err(failure.into()),
                };
                let exchange = connection.exchange(bytes, wire.head_request, trace_header);
                exchange.await?
            }
            Err(failure) => return Err(failure.into()),
        };
        if reusable {
            pool.put_back(connection, self.connections);
        }
        Ok((head.status, head.trace_id))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section here is a push, a pop, an insert or a swap: never left half done.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Driver for HttpDriver {
    type Payload = Arc<HttpRequest>;

    async fn send(&self, payload: &Self::Payload, trace: Option<&TraceParent>) -> Reply {
        match self.exchange(payload, trace).await {
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
