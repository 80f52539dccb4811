//! Both listeners on the receiver's own runtime, until shutdown is asked for; then exports in
//! flight get a grace period, and connections still open after it are dropped.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tower::limit::GlobalConcurrencyLimitLayer;

use super::ReceiverError;
use super::store::Store;
use super::{grpc, http};

/// How long in-flight exports may take to finish once shutdown is asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Both servers until `token` is cancelled, then at most [`SHUTDOWN_GRACE`] for exports in flight.
pub(super) async fn serve(
    store: Arc<Store>,
    grpc_listener: TcpListener,
    http_listener: TcpListener,
    max_message_bytes: usize,
    token: CancellationToken,
) -> Result<(), ReceiverError> {
    let grpc = tonic::transport::Server::builder()
        .initial_stream_window_size(grpc::WINDOW_BYTES)
        .initial_connection_window_size(grpc::WINDOW_BYTES)
        .layer(GlobalConcurrencyLimitLayer::new(grpc::EXPORTS_AT_ONCE))
        .add_service(grpc::service(Arc::clone(&store), max_message_bytes))
        .serve_with_incoming_shutdown(
            TcpIncoming::from(grpc_listener).with_nodelay(Some(true)),
            token.clone().cancelled_owned(),
        );
    let http = axum::serve(http_listener, http::router(store, max_message_bytes))
        .with_graceful_shutdown(token.clone().cancelled_owned())
        .into_future();

    let both = async { tokio::join!(grpc, http) };
    let deadline = async {
        token.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        (grpc, http) = both => {
            grpc.map_err(|e| ReceiverError::Serve { protocol: "gRPC", reason: e.to_string() })?;
            http.map_err(|e| ReceiverError::Serve { protocol: "HTTP", reason: e.to_string() })
        }
        () = deadline => Err(ReceiverError::ShutdownTimeout(SHUTDOWN_GRACE)),
    }
}
