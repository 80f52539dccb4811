//! Loopback servers for unit tests: a router on a free port, and a body that arrives slowly.

use std::time::Duration;

use axum::Router;
use axum::body::Body;

/// Serves `app` on an ephemeral loopback port until the test's runtime ends; the base URL.
pub(crate) async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

/// `body` streamed in 64 KiB chunks with no length announced, each after `pause`.
pub(crate) fn dribble(body: Vec<u8>, pause: Duration) -> Body {
    let (send, chunks) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    tokio::spawn(async move {
        for chunk in body.chunks(64 * 1024) {
            tokio::time::sleep(pause).await;
            if send.send(Ok(chunk.to_vec())).await.is_err() {
                return;
            }
        }
    });
    Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(chunks))
}
