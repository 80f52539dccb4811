//! The gRPC driver: any unary method, its request message already encoded, over several HTTP/2
//! connections (plain or TLS) used round robin, over this crate's unary HTTP/2 client
//! ([`super::http2`]): a call is one HEADERS (its block encoded once per call) and one DATA frame
//! out, and the status read from the trailers (or a trailers-only answer, or the HTTP status),
//! with no middleware queue, codec or task of its own between the schedule and the connection.
//! The response message is not decoded: only the status counts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{BufMut as _, Bytes, BytesMut};
use hyper::Uri;
use hyper::header::HeaderName;
use hyper::http::uri::{Authority, PathAndQuery, Scheme};
use tokio_rustls::TlsConnector;
use tonic::Code;
use tonic::metadata::MetadataMap;

use super::connect::{open, tls_connector};
use super::driver::{Driver, Reply, TRACEPARENT};
use super::http::BadBase;
use super::http2::{CallError, Connection, Response, hpack};
use super::outcome::Outcome;
use super::prepared::PreparedCache;
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
    https: bool,
    authority: Authority,
    /// Set for `https://` targets.
    tls: Option<TlsConnector>,
    connections: Vec<Slot>,
    next: AtomicUsize,
    /// The response metadata key that carries the trace id, read for sampled calls.
    trace_header: Option<HeaderName>,
    /// Each call's header block and framed message, made on its first send.
    prepared: PreparedCache<GrpcCall, Prepared>,
}

/// A connection once made, and a lock that lets one call at a time make it.
#[derive(Default)]
struct Slot {
    current: Mutex<Option<Arc<Connection>>>,
    connecting: tokio::sync::Mutex<()>,
}

/// A call's frames' contents, encoded once.
#[derive(Clone)]
struct Prepared {
    head: Bytes,
    /// The metadata's own `traceparent`, sent only on calls not sampled.
    traceparent: Bytes,
    body: Bytes,
}

/// How often a call the server did not process is sent again, on the replacing connection.
const RETRIES: usize = 2;

impl GrpcDriver {
    /// Calls go to `base` (`http://host:port` or `https://host:port`, any path ignored); `tls`
    /// is used for `https://` (ALPN is set to h2 here). Connections are made on first use. No
    /// timeout: the load core gives up on a call itself.
    pub fn new(base: &Uri, tls: rustls::ClientConfig, connections: usize) -> Result<Self, BadBase> {
        let (Some(scheme), Some(authority)) = (base.scheme(), base.authority()) else {
            return Err(BadBase(base.to_string()));
        };
        let https = *scheme == Scheme::HTTPS;
        let tls = https.then(|| tls_connector(tls, &[b"h2"]));
        Ok(GrpcDriver {
            https,
            authority: authority.clone(),
            tls,
            connections: (0..connections.max(1)).map(|_| Slot::default()).collect(),
            next: AtomicUsize::new(0),
            trace_header: None,
            prepared: PreparedCache::new(),
        })
    }

    /// The response metadata key (e.g. `x-trace-id`) that carries the trace id; `None` (the
    /// default) reads none. A name that is no metadata key reads none either.
    pub fn with_trace_header(mut self, name: &str) -> Self {
        self.trace_header = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).ok();
        self
    }

    /// A usable connection in `slot`, connecting it first if it has none, or its last one failed
    /// or is going away. Calls that find it so together make one new connection.
    async fn connection(&self, slot: &Slot) -> Result<Arc<Connection>, String> {
        let usable = |slot: &Slot| lock(&slot.current).clone().filter(|c| c.usable());
        if let Some(connection) = usable(slot) {
            return Ok(connection);
        }
        let _connecting = slot.connecting.lock().await;
        // Another call may have connected while this one waited.
        if let Some(connection) = usable(slot) {
            return Ok(connection);
        }
        let io = open(&self.authority, self.tls.as_ref()).await?.io;
        let trace_name = self
            .trace_header
            .as_ref()
            .map(|n| n.as_str().as_bytes().into());
        let connection = Arc::new(Connection::handshake(io, trace_name).await?);
        *lock(&slot.current) = Some(connection.clone());
        Ok(connection)
    }

    /// The call's header block, metadata `traceparent` and framed message, made once per call.
    fn prepared(&self, call: &Arc<GrpcCall>) -> Prepared {
        let Ok(prepared) = self.prepared.get_or_prepare(call, |call| {
            let (head, traceparent) = self.header_block(call);
            Ok::<_, std::convert::Infallible>(Prepared {
                head,
                traceparent,
                body: frame(&call.message),
            })
        });
        prepared
    }

    /// The request's header block (HPACK, no dynamic table), and apart from it any `traceparent`
    /// the metadata itself carries.
    fn header_block(&self, call: &GrpcCall) -> (Bytes, Bytes) {
        let mut block = Vec::with_capacity(128);
        hpack::request_start(
            &mut block,
            self.https,
            self.authority.as_str().as_bytes(),
            call.path.as_str().as_bytes(),
        );
        hpack::literal_indexed_name(&mut block, hpack::CONTENT_TYPE, b"application/grpc");
        hpack::literal(&mut block, b"te", b"trailers");
        let mut traceparent = Vec::new();
        for (name, value) in call.metadata.clone().into_headers().iter() {
            match name.as_str() {
                "content-type" | "te" => {}
                TRACEPARENT => {
                    hpack::literal(&mut traceparent, TRACEPARENT.as_bytes(), value.as_bytes())
                }
                name => hpack::literal(&mut block, name.as_bytes(), value.as_bytes()),
            }
        }
        (block.into(), traceparent.into())
    }

    /// One call, start to end. No `grpc-timeout` is sent: the server would enforce it and answer
    /// CANCELLED, racing this side's timeout and turning timeouts into answers.
    async fn call(
        &self,
        call: &Arc<GrpcCall>,
        trace: Option<&TraceParent>,
    ) -> Result<Reply, String> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.connections.len();
        let slot = &self.connections[i];
        let Prepared {
            head,
            traceparent: metadata_traceparent,
            body,
        } = self.prepared(call);
        let extra = match trace {
            Some(trace) => {
                let mut field = Vec::with_capacity(80);
                hpack::never_indexed(
                    &mut field,
                    TRACEPARENT.as_bytes(),
                    trace.header().as_bytes(),
                );
                Bytes::from(field)
            }
            None => metadata_traceparent,
        };
        let mut attempt = 0;
        let response = loop {
            let connection = self.connection(slot).await?;
            match connection
                .call(head.clone(), extra.clone(), body.clone(), trace.is_some())
                .await
            {
                // Never processed (GOAWAY, REFUSED_STREAM): it goes on the replacing connection.
                Err(CallError::Refused) if attempt < RETRIES => attempt += 1,
                Err(error) => return Err(error.to_string()),
                Ok(response) => break response,
            }
        };
        Ok(reply(response))
    }
}

impl Driver for GrpcDriver {
    type Payload = Arc<GrpcCall>;

    async fn send(&self, call: &Self::Payload, trace: Option<&TraceParent>) -> Reply {
        match self.call(call, trace).await {
            Ok(reply) => reply,
            Err(error) => Outcome::Transport(error).into(),
        }
    }
}

/// The call's gRPC code: the HTTP status mapped if not 200, else `grpc-status` of a trailers-only
/// answer, else of the trailers (none there is INTERNAL).
fn reply(response: Response) -> Reply {
    let code = if response.status != 200 {
        code_of_http_status(response.status)
    } else {
        match response.head_grpc_status.or(response.trailer_grpc_status) {
            Some(code) => Code::from_i32(code),
            None => Code::Internal,
        }
    };
    Reply {
        outcome: Outcome::Code(code),
        trace_header: response.trace,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding this lock cannot leave the value half written.
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

/// The gRPC code for an answer that is not HTTP 200, as gRPC's HTTP-to-gRPC status mapping says.
fn code_of_http_status(status: u16) -> Code {
    match status {
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
        assert_eq!(code_of_http_status(404), Code::Unimplemented);
        assert_eq!(code_of_http_status(503), Code::Unavailable);
        assert_eq!(code_of_http_status(418), Code::Unknown);
    }

    #[test]
    fn the_status_comes_from_http_then_headers_then_trailers() {
        let response = |status, head, trailer| Response {
            status,
            head_grpc_status: head,
            trailer_grpc_status: trailer,
            ..Response::default()
        };
        let code = |r| match reply(r).outcome {
            Outcome::Code(code) => code,
            other => panic!("{other:?}"),
        };
        assert_eq!(code(response(503, Some(0), None)), Code::Unavailable);
        assert_eq!(code(response(200, Some(5), Some(0))), Code::NotFound);
        assert_eq!(code(response(200, None, Some(7))), Code::PermissionDenied);
        assert_eq!(code(response(200, None, None)), Code::Internal);
    }
}
