//! Accepting connections within the connection limit, each counted in `http_connections_active`
//! while it is open.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::metrics::{ConnectionGuard, GatewayMetrics, Refusal};

/// A TCP listener that holds at most `max_connections` connections open.
///
/// A connection past the limit is accepted and closed at once, and counted, rather than left in
/// the kernel's backlog: its client learns at once that it must retry (or go elsewhere) instead of
/// waiting out a connect that seems to hang, the backlog keeps room for the moment a slot frees,
/// and the refusal shows in the metrics, which a connection the gateway never accepted cannot.
pub struct LimitedListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
    metrics: Arc<GatewayMetrics>,
}

impl LimitedListener {
    pub fn new(inner: TcpListener, max_connections: u32, metrics: Arc<GatewayMetrics>) -> Self {
        LimitedListener {
            inner,
            // u32 stays far below `Semaphore::MAX_PERMITS`.
            permits: Arc::new(Semaphore::new(max_connections as usize)),
            metrics,
        }
    }

    /// The next connection within the limit. Errors are retried inside (axum's accept sleeps on
    /// the resource errors such as running out of file descriptors), so this only ever returns one.
    pub async fn accept(&mut self) -> CountedStream {
        loop {
            let (stream, addr) = Listener::accept(&mut self.inner).await;
            let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() else {
                self.metrics.refused(Refusal::ConnectionLimit);
                tracing::debug!(%addr, "connection limit reached: connection closed");
                continue;
            };
            // Small request/response exchanges: do not let Nagle hold back the last segment.
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "could not set TCP_NODELAY");
            }
            return CountedStream {
                stream,
                _guard: self.metrics.connection_opened(),
                _permit: permit,
                mid_request: Arc::new(AtomicBool::new(false)),
            };
        }
    }
}

/// A connection that counts itself closed, and frees its slot, when dropped; it also notes whether
/// a request has begun to arrive since the last response was written.
pub struct CountedStream {
    stream: TcpStream,
    _guard: ConnectionGuard,
    _permit: OwnedSemaphorePermit,
    mid_request: Arc<AtomicBool>,
}

impl CountedStream {
    /// Whether bytes arrived since the last response was written, for telling a client that stalled
    /// partway through a request from an idle keep-alive connection once the stream is hyper's.
    pub fn mid_request(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.mid_request)
    }
}

impl AsyncRead for CountedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.mid_request.store(true, Ordering::Relaxed);
        }
        polled
    }
}

impl CountedStream {
    fn wrote(&self, polled: &Poll<io::Result<usize>>) {
        if matches!(polled, Poll::Ready(Ok(n)) if *n > 0) {
            self.mid_request.store(false, Ordering::Relaxed);
        }
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.wrote(&polled);
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.wrote(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
