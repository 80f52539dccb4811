//! Stopping on SIGTERM or SIGINT: stop accepting, let in-flight requests finish, flush spans.

use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::task::JoinHandle;

/// A spawned server: ends with `Ok` only after a requested graceful shutdown.
pub type ServerTask = JoinHandle<anyhow::Result<()>>;

/// SIGTERM and SIGINT handlers. Install them before announcing readiness: until then the default
/// action would kill the process without draining or flushing.
pub struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    pub fn install() -> std::io::Result<Self> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for the next SIGTERM or SIGINT and names it.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// Waits up to `timeout` for servers told to stop to finish their in-flight requests, then aborts
/// whatever is left. Servers that already ended (and were awaited) are skipped.
pub async fn drain<const N: usize>(timeout: Duration, servers: [ServerTask; N]) {
    let pending: Vec<_> = servers.into_iter().filter(|s| !s.is_finished()).collect();
    let aborts: Vec<_> = pending.iter().map(|s| s.abort_handle()).collect();
    let finished = tokio::time::timeout(timeout, async {
        for server in pending {
            let _ = server.await;
        }
    })
    .await;
    if finished.is_err() {
        tracing::warn!(
            ?timeout,
            "in-flight requests did not finish in time; stopping anyway"
        );
        aborts.iter().for_each(tokio::task::AbortHandle::abort);
    }
}

/// The error for a server that ended before it was told to stop.
pub fn unexpected_stop(ended: Result<anyhow::Result<()>, tokio::task::JoinError>) -> anyhow::Error {
    match ended {
        Ok(Ok(())) => anyhow::anyhow!("a server stopped without being asked to"),
        Ok(Err(error)) => error.context("a server stopped unexpectedly"),
        Err(error) => anyhow::anyhow!("a server task failed: {error}"),
    }
}
