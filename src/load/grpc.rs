//! The gRPC driver: any unary method, its request message already encoded, over several HTTP/2
//! connections (plain or TLS) used round robin. It speaks gRPC over `h2` itself: a call is one
//! HEADERS and one DATA frame out, and the status read from the trailers (or a trailers-only
//! answer, or the HTTP status), with no middleware queue, codec or task of its own between the
//! schedule and the connection. The response message is not decoded: only the status counts.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{BufMut as _, Bytes, BytesMut};
use h2::client::SendRequest;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::http::uri::{Authority, PathAndQuery, Scheme};
use hyper::{Method, Request, Uri};
use tokio_rustls::TlsConnector;
use tonic::Code;
use tonic::metadata::MetadataMap;

use super::connect::{Io, open, tls_connector};
use super::driver::{Driver, Reply, TRACEPARENT};
use super::http::{BadBase, MAX_RESPONSE_BYTES};
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

/// Calls unary methods over `connections` HTTP/2 connections, round robin. A connection that
/// fails is made again by the next call that needs it.
pub struct GrpcDriver {
    scheme: Scheme,
    authority: Authority,
    /// Set for `https://` targets.
    tls: Option<TlsConnector>,
    connections: Vec<Connection>,
    next: AtomicUsize,
    /// The response metadata key that carries the trace id, read for sampled calls.
    trace_header: Option<HeaderName>,
}

/// One HTTP/2 connection: its sender once made, and a lock that lets one call at a time make it.
#[derive(Default)]
struct Connection {
    sender: Mutex<Option<SendRequest<Bytes>>>,
    connecting: tokio::sync::Mutex<()>,
}

impl GrpcDriver {
    /// Calls go to `base` (`http://host:port` or `https://host:port`, any path ignored); `tls`
    /// is used for `https://` (ALPN is set to h2 here). Connections are made on first use. No
    /// timeout: the load core gives up on a call itself.
    pub fn new(base: &Uri, tls: rustls::ClientConfig, connections: usize) -> Result<Self, BadBase> {
        let (Some(scheme), Some(authority)) = (base.scheme(), base.authority()) else {
            return Err(BadBase(base.to_string()));
        };
        let tls = (*scheme == Scheme::HTTPS).then(|| tls_connector(tls, &[b"h2"]));
        Ok(GrpcDriver {
            scheme: scheme.clone(),
            authority: authority.clone(),
            tls,
            connections: (0..connections.max(1))
                .map(|_| Connection::default())
                .collect(),
            next: AtomicUsize::new(0),
            trace_header: None,
        })
    }

    /// The response metadata key (e.g. `x-trace-id`) that carries the trace id; `None` (the
    /// default) reads none. A name that is no metadata key reads none either.
    pub fn with_trace_header(mut self, name: &str) -> Self {
        self.trace_header = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).ok();
        self
    }

    /// A ready sender on `connection`, connecting it first if it has none or its last one failed.
    async fn sender(&self, connection: &Connection) -> Result<SendRequest<Bytes>, String> {
        let current = lock(&connection.sender).clone();
        if let Some(sender) = current {
            match sender.ready().await {
                Ok(sender) => return Ok(sender),
                Err(_) => *lock(&connection.sender) = None,
            }
        }
        let _connecting = connection.connecting.lock().await;
        // Another call may have connected while this one waited.
        let current = lock(&connection.sender).clone();
        if let Some(sender) = current {
            return sender.ready().await.map_err(|e| e.to_string());
        }
        let sender = self.connect().await?;
        *lock(&connection.sender) = Some(sender.clone());
        sender.ready().await.map_err(|e| e.to_string())
    }

    async fn connect(&self) -> Result<SendRequest<Bytes>, String> {
        handshake(open(&self.authority, self.tls.as_ref()).await?.io).await
    }

    fn request(&self, call: &GrpcCall, trace: Option<&TraceParent>) -> Option<Request<()>> {
        let uri = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(call.path.clone())
            .build()
            .ok()?;
        let mut request = Request::new(());
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        *headers = call.metadata.clone().into_headers();
        headers.insert(
            hyper::header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        headers.insert(hyper::header::TE, HeaderValue::from_static("trailers"));
        if let Some(value) = trace.and_then(|t| HeaderValue::try_from(t.header()).ok()) {
            headers.insert(TRACEPARENT, value);
        }
        Some(request)
    }

    /// One call, start to end. No `grpc-timeout` is sent: the server would enforce it and answer
    /// CANCELLED, racing this side's timeout and turning timeouts into answers.
    async fn call(&self, call: &GrpcCall, trace: Option<&TraceParent>) -> Result<Reply, String> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.connections.len();
        let connection = &self.connections[i];
        let request = || {
            self.request(call, trace)
                .ok_or_else(|| format!("{}{}: not a URL", self.authority, call.path))
        };
        let failed = |e: h2::Error| {
            if !e.is_reset() {
                // The connection itself failed: the next call makes a new one.
                *lock(&connection.sender) = None;
            }
            e.to_string()
        };
        let mut sender = self.sender(connection).await?;
        let (response, mut stream) = match sender.send_request(request()?, false) {
            Ok(sent) => sent,
            // The connection went away (GOAWAY, or closed) before the call left: it goes on the
            // connection that replaces it.
            Err(error) => {
                failed(error);
                self.sender(connection)
                    .await?
                    .send_request(request()?, false)
                    .map_err(failed)?
            }
        };
        stream
            .send_data(frame(&call.message), true)
            .map_err(failed)?;
        let (head, mut body) = response.await.map_err(failed)?.into_parts();
        let trace_id = |headers: &HeaderMap| {
            let name = self.trace_header.as_ref().filter(|_| trace.is_some())?;
            let value = headers.get(name)?;
            Some(String::from_utf8_lossy(value.as_bytes()).into_owned())
        };
        if head.status != hyper::StatusCode::OK {
            return Ok(Reply {
                outcome: Outcome::Code(code_of_http_status(head.status)),
                trace_header: trace_id(&head.headers),
            });
        }
        // A trailers-only answer (an error, typically) carries its status in the headers.
        if let Some(code) = grpc_status(&head.headers) {
            return Ok(Reply {
                outcome: Outcome::Code(code),
                trace_header: trace_id(&head.headers),
            });
        }
        let mut received = 0usize;
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(failed)?;
            received += chunk.len();
            if received > MAX_RESPONSE_BYTES {
                return Err(format!("response larger than {MAX_RESPONSE_BYTES} bytes"));
            }
            let _ = body.flow_control().release_capacity(chunk.len());
        }
        let trailers = body.trailers().await.map_err(failed)?.unwrap_or_default();
        let code = grpc_status(&trailers).unwrap_or(Code::Internal);
        Ok(Reply {
            outcome: Outcome::Code(code),
            trace_header: trace_id(&head.headers).or_else(|| trace_id(&trailers)),
        })
    }
}

impl Driver for GrpcDriver {
    type Payload = std::sync::Arc<GrpcCall>;

    async fn send(&self, call: &Self::Payload, trace: Option<&TraceParent>) -> Reply {
        match self.call(call, trace).await {
            Ok(reply) => reply,
            Err(error) => Outcome::Transport(error).into(),
        }
    }
}

/// An HTTP/2 client handshake on `io`, its connection then driven by a task of its own.
async fn handshake(io: Box<dyn Io>) -> Result<SendRequest<Bytes>, String> {
    let (sender, connection) = h2::client::Builder::new()
        .initial_window_size(1 << 20)
        .initial_connection_window_size(1 << 24)
        .handshake(io)
        .await
        .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
    tokio::spawn(async move {
        // Ends when the connection does; its calls see the failure themselves.
        let _ = connection.await;
    });
    Ok(sender)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding this lock cannot leave the option half written.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The gRPC length-prefixed message: uncompressed flag, big-endian length, then the message.
fn frame(message: &Bytes) -> Bytes {
    let mut framed = BytesMut::with_capacity(5 + message.len());
    framed.put_u8(0);
    framed.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
    framed.put_slice(message);
    framed.freeze()
}

/// Named once: looking a header up by `&str` parses the name on every call.
const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

fn grpc_status(headers: &HeaderMap) -> Option<Code> {
    let value = headers
        .get(GRPC_STATUS)?
        .to_str()
        .ok()?
        .parse::<i32>()
        .ok()?;
    Some(Code::from_i32(value))
}

/// The gRPC code for an answer that is not HTTP 200, as gRPC's HTTP-to-gRPC status mapping says.
fn code_of_http_status(status: hyper::StatusCode) -> Code {
    match status.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_framed_with_its_length() {
        let framed = frame(&Bytes::from_static(b"abc"));
        assert_eq!(&framed[..], b"\x00\x00\x00\x00\x03abc");
    }

    #[test]
    fn http_statuses_map_as_grpc_says() {
        assert_eq!(
            code_of_http_status(hyper::StatusCode::NOT_FOUND),
            Code::Unimplemented
        );
        assert_eq!(
            code_of_http_status(hyper::StatusCode::SERVICE_UNAVAILABLE),
            Code::Unavailable
        );
        assert_eq!(
            code_of_http_status(hyper::StatusCode::IM_A_TEAPOT),
            Code::Unknown
        );
    }

    #[test]
    fn the_status_is_read_from_grpc_status() {
        let mut headers = HeaderMap::new();
        assert_eq!(grpc_status(&headers), None);
        headers.insert("grpc-status", HeaderValue::from_static("5"));
        assert_eq!(grpc_status(&headers), Some(Code::NotFound));
    }
}
