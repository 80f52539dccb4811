//! Serving the router over HTTP/1.1 with a header read timeout, and stopping gracefully.
//!
//! `axum::serve` offers no header read timeout, so the gateway drives hyper's connection builder
//! itself, with the same graceful shutdown: once told to stop it closes the listening socket (new
//! connections are refused), lets every connection finish the request it is serving, closes the
//! idle ones, and returns when the last has closed.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio_util::sync::CancellationToken;

use super::listener::LimitedListener;
use crate::metrics::{GatewayMetrics, Refusal};

/// Serves `router` on `listener` until `stop` is cancelled and every connection has closed.
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
    stop: CancellationToken,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let graceful = GracefulShutdown::new();
    loop {
        let stream = tokio::select! {
            stream = listener.accept() => stream,
            () = stop.cancelled() => break,
        };
        let mid_request = stream.mid_request();
        let connection = graceful.watch(builder.serve_connection(
            TokioIo::new(stream),
            TowerToHyperService::new(router.clone()),
        ));
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let Err(error) = connection.await else {
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
    graceful.shutdown().await;
}
