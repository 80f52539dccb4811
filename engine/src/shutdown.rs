//! Stopping on SIGTERM or SIGINT: stop accepting, let in-flight requests finish, flush spans.

use tokio::signal::unix::{SignalKind, signal};

/// Waits for SIGTERM or SIGINT and names the one that came.
pub async fn signal_received() -> std::io::Result<&'static str> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}
