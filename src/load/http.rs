//! The HTTP driver: any method, URL, headers and body, over HTTP/1.1 or HTTP/2 (h2c by prior
//! knowledge, h2 over TLS by ALPN), plain or TLS. Its own keep-alive pool over hyper's connection
//! API: an HTTP/1.1 connection is taken for one exchange and put back, an HTTP/2 one is shared by
//! every request, and nothing runs per request beside the request itself (no pool task, no
//! connector service, no per-request timer).

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::{http1, http2};
use hyper::header::{HOST, HeaderMap, HeaderName, HeaderValue};
use hyper::http::uri::{Authority, PathAndQuery, Scheme};
use hyper::{Method, Request, Response, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio_rustls::TlsConnector;

use super::connect::{open, tls_connector};
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
    trace_header: HeaderName,
}

/// Scheme and authority: what a connection is made to.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Origin {
    scheme: Scheme,
    authority: Authority,
}

/// The connections to one origin.
struct Pool {
    origin: Origin,
    /// HTTP/1.1 connections between exchanges, the most recently used last.
    idle: Mutex<Vec<http1::SendRequest<Full<Bytes>>>>,
    /// The HTTP/2 connection every request shares, once there is one.
    shared: Mutex<Shared>,
    /// Lets one request at a time open a connection that may turn out HTTP/2, so that a burst
    /// of first requests opens one shared connection, not one each.
    opening_h2: tokio::sync::Mutex<()>,
}

/// The shared HTTP/2 connection, numbered so that a request that saw it fail replaces that one
/// and not a newer one another request already opened.
#[derive(Default)]
struct Shared {
    generation: u64,
    sender: Option<http2::SendRequest<Full<Bytes>>>,
}

enum Connection {
    Http1(http1::SendRequest<Full<Bytes>>),
    /// The shared connection and its generation.
    Http2(u64, http2::SendRequest<Full<Bytes>>),
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

    fn pool(&self, origin: &Origin) -> Arc<Pool> {
        let mut pools = lock(&self.pools);
        if let Some(pool) = pools.iter().find(|p| p.origin == *origin) {
            return Arc::clone(pool);
        }
        let pool = Arc::new(Pool {
            origin: origin.clone(),
            idle: Mutex::new(Vec::new()),
            shared: Mutex::new(Shared::default()),
            opening_h2: tokio::sync::Mutex::new(()),
        });
        pools.push(Arc::clone(&pool));
        pool
    }

    /// A connection for one exchange: the shared HTTP/2 one, an idle HTTP/1.1 one, or a new one.
    async fn checkout(&self, pool: &Pool) -> Result<Connection, Error> {
        if let Some((generation, shared)) = reusable_shared(pool) {
            return Ok(Connection::Http2(generation, shared));
        }
        while let Some(idle) = lock(&pool.idle).pop() {
            if !idle.is_closed() {
                return Ok(Connection::Http1(idle));
            }
        }
        let may_be_h2 = match self.version {
            HttpVersion::Http1 => false,
            HttpVersion::Http2 => true,
            HttpVersion::Auto => pool.origin.scheme == Scheme::HTTPS,
        };
        if !may_be_h2 {
            return self.open(&pool.origin).await;
        }
        let _opening = pool.opening_h2.lock().await;
        if let Some((generation, shared)) = reusable_shared(pool) {
            return Ok(Connection::Http2(generation, shared));
        }
        Ok(match self.open(&pool.origin).await? {
            Connection::Http2(_, sender) => {
                let mut shared = lock(&pool.shared);
                shared.generation += 1;
                shared.sender = Some(sender.clone());
                Connection::Http2(shared.generation, sender)
            }
            http1 => http1,
        })
    }

    async fn open(&self, origin: &Origin) -> Result<Connection, Error> {
        let tls = (origin.scheme == Scheme::HTTPS).then_some(&self.tls);
        let connected = open(&origin.authority, tls).await?;
        let io = TokioIo::new(connected.io);
        let h2 = connected.h2 || (tls.is_none() && self.version == HttpVersion::Http2);
        if h2 {
            let (sender, connection) = http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(connection);
            // Numbered when it becomes the pool's shared connection.
            Ok(Connection::Http2(0, sender))
        } else {
            let (sender, connection) = http1::handshake(io).await?;
            tokio::spawn(connection);
            Ok(Connection::Http1(sender))
        }
    }

    fn request(
        &self,
        payload: &HttpRequest,
        trace: Option<&TraceParent>,
        origin: &Origin,
        path: PathAndQuery,
        h2: bool,
    ) -> Result<Request<Full<Bytes>>, Error> {
        let mut request = Request::new(Full::new(payload.body.clone()));
        *request.method_mut() = payload.method.clone();
        *request.headers_mut() = payload.headers.clone();
        // HTTP/2 carries the origin in pseudo-headers; HTTP/1.1 in `Host`, with the path alone
        // on the request line.
        *request.uri_mut() = if h2 {
            Uri::builder()
                .scheme(origin.scheme.clone())
                .authority(origin.authority.clone())
                .path_and_query(path)
                .build()?
        } else {
            if !request.headers().contains_key(HOST) {
                let host = HeaderValue::from_str(origin.authority.as_str())?;
                request.headers_mut().insert(HOST, host);
            }
            Uri::from(path)
        };
        if let Some(trace) = trace
            && let Ok(value) = HeaderValue::try_from(trace.header())
        {
            request.headers_mut().insert(TRACEPARENT, value);
        }
        Ok(request)
    }

    /// One exchange, start to end: the status and, for a sampled request, the trace id header.
    async fn exchange(
        &self,
        payload: &HttpRequest,
        trace: Option<&TraceParent>,
    ) -> Result<(u16, Option<String>), Error> {
        let (origin, path) = self.target(&payload.uri)?;
        let pool = self.pool(&origin);
        let mut connection = self.checkout(&pool).await?;
        if let Connection::Http1(kept) = &mut connection
            && kept.ready().await.is_err()
        {
            // Closed since it was put back (the server's `Connection: close` or idle timeout).
            connection = self.open(&origin).await?;
        }
        let mut sender = match connection {
            Connection::Http2(generation, mut sender) => {
                let request = self.request(payload, trace, &origin, path, true)?;
                let response = match sender.try_send_request(request).await {
                    Ok(response) => response,
                    // The shared connection is going away (GOAWAY, or closed) and the request
                    // never left: it goes on the connection that replaces it.
                    Err(mut failed) => {
                        let Some(request) = failed.take_message() else {
                            return Err(failed.into_error().into());
                        };
                        forget_shared(&pool, generation);
                        match self.checkout(&pool).await? {
                            Connection::Http2(_, mut fresh) => fresh.send_request(request).await?,
                            Connection::Http1(_) => return Err(failed.into_error().into()),
                        }
                    }
                };
                return read(response, trace, &self.trace_header).await;
            }
            Connection::Http1(sender) => sender,
        };
        let request = self.request(payload, trace, &origin, path, false)?;
        let response = match sender.try_send_request(request).await {
            Ok(response) => response,
            // The kept connection was closed by the server before the request left it: the
            // request goes once more, on a new connection.
            Err(mut failed) => {
                let Some(request) = failed.take_message() else {
                    return Err(failed.into_error().into());
                };
                match self.open(&origin).await? {
                    Connection::Http1(mut fresh) => {
                        let response = fresh.send_request(request).await?;
                        sender = fresh;
                        response
                    }
                    // The server now speaks HTTP/2 (ALPN): the next request will use it.
                    Connection::Http2(..) => return Err(failed.into_error().into()),
                }
            }
        };
        let reusable = !closes(&response);
        let answer = read(response, trace, &self.trace_header).await?;
        let mut idle = lock(&pool.idle);
        if reusable && idle.len() < self.connections {
            idle.push(sender);
        }
        Ok(answer)
    }
}

/// Whether the server ends the connection after this response (HTTP/1.0, or `Connection: close`).
fn closes(response: &Response<hyper::body::Incoming>) -> bool {
    response.version() < hyper::Version::HTTP_11
        || response
            .headers()
            .get_all(hyper::header::CONNECTION)
            .iter()
            .any(|value| {
                value
                    .as_bytes()
                    .split(|b| *b == b',')
                    .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"))
            })
}

/// Reads a response through: its status, the trace id header if the request was sampled, and the
/// whole body, counted (not kept) and bounded.
async fn read(
    response: Response<hyper::body::Incoming>,
    trace: Option<&TraceParent>,
    trace_header: &HeaderName,
) -> Result<(u16, Option<String>), Error> {
    let status = response.status().as_u16();
    let trace_id = trace
        .and_then(|_| response.headers().get(trace_header))
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    // Read the whole body: the exchange is not over (nor the connection reusable) before.
    let mut body = response.into_body();
    let mut received = 0usize;
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            received += data.len();
            if received > MAX_RESPONSE_BYTES {
                return Err(format!("response larger than {MAX_RESPONSE_BYTES} bytes").into());
            }
        }
    }
    Ok((status, trace_id))
}

/// Drops the pool's shared HTTP/2 connection if it is still the one of `generation`, which
/// failed, so that the next request opens a new one.
fn forget_shared(pool: &Pool, generation: u64) {
    let mut shared = lock(&pool.shared);
    if shared.generation == generation {
        shared.sender = None;
    }
}

/// The pool's shared HTTP/2 connection and its generation, if it is still open.
fn reusable_shared(pool: &Pool) -> Option<(u64, http2::SendRequest<Full<Bytes>>)> {
    let mut shared = lock(&pool.shared);
    if shared
        .sender
        .as_ref()
        .is_some_and(http2::SendRequest::is_closed)
    {
        shared.sender = None;
    }
    let generation = shared.generation;
    shared.sender.clone().map(|sender| (generation, sender))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section here is a push, a pop or a swap: never left half done.
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
