//! The embedded OTLP trace receiver: managed services export to the harness itself, over gRPC
//! (`TraceService/Export`) or HTTP (`POST /v1/traces`, protobuf or JSON), so a run needs no
//! collector or Jaeger.
//!
//! Memory stays bounded because only the traces the harness registered with [`ReceiverHandle::want`]
//! are stored, each up to a span limit, and only until the verifier releases them once judged
//! ([`TraceSource::release`]); every other span is counted and dropped. The servers run on
//! their own thread and runtime: decoding a large batch must not stall the load generator's
//! workers, whose timers the latency figures depend on.
//!
//! This module is the receiver's interface; `store` keeps the wanted traces and counts the rest,
//! `convert` turns OTLP spans into the model's, `grpc` and `http` are the two listeners'
//! services, and `server` runs both until shutdown.

mod convert;
mod grpc;
mod http;
mod server;
mod store;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdTcpListener};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{SourceError, Trace, TraceId, TraceSource};
use store::Store;

#[cfg(fuzzing)]
pub(crate) use http::fuzz_export;

/// Default cap on spans stored per wanted trace; the traces checked here have a handful.
pub const DEFAULT_MAX_SPANS_PER_TRACE: usize = 256;
/// Default cap on traces registered at once (a released trace no longer counts).
pub const DEFAULT_MAX_TRACES: usize = 100_000;
/// Default cap on one export request, gRPC or HTTP: tonic's own 4 MiB refuses the large batches
/// an SDK sends after a stall.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 32 * 1024 * 1024;

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
    /// Registrations beyond this many traces registered and not yet released are refused (`want` returns false and
    /// `wants_refused` counts them); spans of those traces are then counted as unwanted.
    pub max_traces: usize,
    /// The largest export request accepted, decompressed, on either listener.
    pub max_message_bytes: usize,
    /// Spans of traces not (yet) wanted held, the most recent this many, so that a trace wanted
    /// only after its spans arrived is still kept: a stream's updates start their traces in the
    /// services, and the harness learns their ids when they arrive. 0: none held.
    pub held_unwanted_spans: usize,
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
            held_unwanted_spans: 0,
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
    /// Every span decoded, whatever became of it.
    pub spans_received: u64,
    pub(crate) spans_kept: u64,
    /// Spans of traces nobody registered, or that arrived after their trace was released.
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
    /// A listener could not be bound (the port is taken, or not allowed).
    #[error("binding the OTLP {protocol} listener on {addr}: {source}")]
    Bind {
        /// `gRPC` or `HTTP`.
        protocol: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The receiver's own thread and runtime, which keep it apart from the load's, could not start.
    #[error("starting the OTLP receiver's runtime: {0}")]
    Runtime(std::io::Error),
    /// A server stopped with an error while it ran.
    #[error("the OTLP {protocol} server failed: {reason}")]
    Serve {
        /// `gRPC` or `HTTP`.
        protocol: &'static str,
        /// The server's error.
        reason: String,
    },
    /// Shutdown waited this long for open exports, then dropped them.
    #[error("the OTLP receiver did not stop within {0:?}; open connections were dropped")]
    ShutdownTimeout(Duration),
    /// The receiver's thread ended (panicked) without a word on how it stopped.
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
        let servers = server::serve(
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
    /// trace is sent: spans that arrive earlier are counted as unwanted (unless still held, see
    /// [`ReceiverConfig::held_unwanted_spans`]: those are then kept, and counted so). Returns false (and counts
    /// the refusal) when `max_traces` traces are already registered; registering twice is a no-op.
    pub fn want(&self, id: TraceId) -> bool {
        self.store.want(id)
    }

    /// A snapshot for `result.json`; counters are read one by one, so a batch being stored
    /// meanwhile may show in some and not yet in others.
    pub fn stats(&self) -> ReceiverStats {
        self.store.stats()
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
        std::future::ready(Ok(self.store.lookup(id)))
    }

    /// Forgets the trace: its spans are dropped, and any that arrive later are counted as
    /// unwanted.
    fn release(&self, id: TraceId) {
        self.store.forget(id);
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

    fn release(&self, id: TraceId) {
        self.handle.release(id);
    }
}

#[cfg(test)]
mod tests;
