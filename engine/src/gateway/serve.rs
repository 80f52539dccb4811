//! Serving the router over HTTP/1.1 with a header read timeout, and stopping gracefully.
//!
//! `axum::serve` offers no header read timeout, so the gateway drives hyper's connection builder
//! itself, with upgrades on (for the WebSocket route), and the same graceful shutdown: once told to
//! stop it closes the listening socket (new connections are refused), lets every connection finish
//! the request it is serving, closes the idle ones, waits for the WebSocket sessions to close
//! (each with 1001), and returns when the last has gone. hyper-util's `GracefulShutdown` does not
//! take an upgradeable connection, so each connection is told to shut down by its own task.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::listener::LimitedListener;
use crate::metrics::{GatewayMetrics, Refusal};

/// When to stop, and what to wait for then.
pub struct Stop {
    /// Cancelled to stop: the listener closes, connections shut down, sessions close.
    pub token: CancellationToken,
    /// Every connection runs in it; the WebSocket sessions hold tokens of it.
    pub tracker: TaskTracker,
}

/// Serves `router` on `listener` until `stop` is cancelled and every connection and WebSocket
/// session has closed.
///
/// A connection whose client has not sent a whole request head within `header_read_timeout` is
/// closed. hyper's timer runs whenever a connection waits for a request head, so the same timeout
/// also closes a keep-alive connection left idle that long; only a client that had begun a
/// request (sent bytes since the last response) counts as refused.
pub async fn serve(
    mut listener: LimitedListener,
    router: Router,
    header_read_timeout: Duration,
    metrics: Arc<GatewayMetrics>,
    stop: Stop,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    loop {
        let stream = tokio::select! {
            stream = listener.accept() => stream,
            () = stop.token.cancelled() => break,
        };
        let mid_request = stream.mid_request();
        let connection = builder
            .serve_connection(
                TokioIo::new(stream),
                TowerToHyperService::new(router.clone()),
            )
            .with_upgrades();
        let metrics = Arc::clone(&metrics);
        let token = stop.token.clone();
        stop.tracker.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = &mut connection => ended,
                () = token.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            let Err(error) = ended else {
                return;
            };
            if error.is_timeout() {
                if mid_request.load(Ordering::Relaxed) {
                    metrics.refused(Refusal::HeaderTimeout);
                    tracing::debug!("request head not received in time: connection closed");
                }
            } else {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    // Refuse new connections while the open ones finish.
    drop(listener);
    stop.tracker.close();
    stop.tracker.wait().await;
}
