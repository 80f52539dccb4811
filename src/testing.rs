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

/// A scratch directory of its own for one test, removed with everything in it when dropped, so
/// that test runs leave nothing behind in the temporary directory. Unique within the process too:
/// tests run on parallel threads.
pub(crate) struct Scratch(std::path::PathBuf);

impl Scratch {
    pub(crate) fn new(name: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("harness-{name}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).expect("scratch directory");
        Scratch(path)
    }

    pub(crate) fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
