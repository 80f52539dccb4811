//! The gRPC listener's service: `TraceService/Export`, gzip accepted, requests up to the
//! configured size, a bounded number decoded at once.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::codec::CompressionEncoding;

use super::store::{Store, export_response};

/// Exports read and decoded at once, as over HTTP: two of the largest bodies. tonic reads a whole
/// message before the handler runs, so the bound is a layer in front of the service: an export
/// past it waits, unread, for its turn.
pub(super) const EXPORTS_AT_ONCE: usize = 2;

/// The HTTP/2 flow-control windows, per stream and per connection: what an export waiting for its
/// turn may have sent (and the receiver hold) before its sender must stop.
pub(super) const WINDOW_BYTES: u32 = 1024 * 1024;

/// The `TraceService` that stores what it is sent, gzipped or not, up to `max_message_bytes` a
/// request.
pub(super) fn service(
    store: Arc<Store>,
    max_message_bytes: usize,
) -> TraceServiceServer<GrpcIngest> {
    TraceServiceServer::new(GrpcIngest(store))
        .max_decoding_message_size(max_message_bytes)
        .accept_compressed(CompressionEncoding::Gzip)
}

pub(super) struct GrpcIngest(Arc<Store>);

#[tonic::async_trait]
impl TraceService for GrpcIngest {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let tally = self.0.ingest(request.into_inner());
        Ok(tonic::Response::new(export_response(tally)))
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use bytes::{BufMut as _, Bytes, BytesMut};
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::trace::v1 as otlp;
    use prost::Message as _;
    use tokio::sync::Notify;

    use super::super::{Receiver, ReceiverConfig};
    use super::*;

    /// An export of about 4 MiB, framed as gRPC sends it.
    fn large_export() -> Bytes {
        let span = otlp::Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: "large".into(),
            attributes: vec![KeyValue {
                key: "padding".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue("x".repeat(4 << 20))),
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let request = ExportTraceServiceRequest {
            resource_spans: vec![otlp::ResourceSpans {
                scope_spans: vec![otlp::ScopeSpans {
                    spans: vec![span],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let message = request.encode_to_vec();
        let mut framed = BytesMut::with_capacity(5 + message.len());
        framed.put_u8(0);
        framed.put_u32(u32::try_from(message.len()).expect("fits"));
        framed.put_slice(&message);
        framed.freeze()
    }

    /// One export on a connection of its own: its body sent up to `pause` as fast as the
    /// receiver's flow control lets it (`sent` counts what it let through), the rest once
    /// `resume` is notified. Returns the answer's `grpc-status`.
    async fn export(
        addr: SocketAddr,
        framed: Bytes,
        pause: usize,
        resume: Arc<Notify>,
        sent: Arc<AtomicUsize>,
    ) -> String {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connects");
        let (client, connection) = h2::client::handshake(tcp).await.expect("HTTP/2");
        tokio::spawn(connection);
        let request = axum::http::Request::post(format!(
            "http://{addr}/opentelemetry.proto.collector.trace.v1.TraceService/Export"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("request");
        let mut client = client.ready().await.expect("ready");
        let (response, mut body) = client.send_request(request, false).expect("sent");
        let mut at = 0;
        while at < framed.len() {
            if at == pause {
                resume.notified().await;
            }
            let until = if at < pause { pause } else { framed.len() };
            body.reserve_capacity(until - at);
            let granted = std::future::poll_fn(|cx| body.poll_capacity(cx))
                .await
                .expect("stream open")
                .expect("capacity");
            let n = granted.min(until - at);
            body.send_data(framed.slice(at..at + n), at + n == framed.len())
                .expect("data sent");
            at += n;
            sent.store(at, Ordering::SeqCst);
        }
        let response = response.await.expect("answered");
        let status = |headers: &axum::http::HeaderMap| {
            headers
                .get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        if let Some(code) = status(response.headers()) {
            return code;
        }
        let mut answer = response.into_body();
        while let Some(chunk) = answer.data().await {
            chunk.expect("answer body");
        }
        let trailers = answer.trailers().await.expect("trailers");
        trailers.as_ref().and_then(status).unwrap_or_default()
    }

    async fn until(what: &str, done: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(tokio::time::Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn exports_decoded_at_once_are_bounded_and_the_rest_wait_unread() {
        let receiver = Receiver::start(ReceiverConfig::default()).expect("starts");
        let addr = receiver.grpc_addr();
        let framed = large_export();
        // Past one window: a sender gets here only if the receiver reads what it sends.
        let pause = framed.len() / 2;
        assert!(pause > 2 * WINDOW_BYTES as usize);
        let start = |framed: &Bytes| {
            let (resume, sent) = (Arc::new(Notify::new()), Arc::new(AtomicUsize::new(0)));
            let task = tokio::spawn(export(
                addr,
                framed.clone(),
                pause,
                Arc::clone(&resume),
                Arc::clone(&sent),
            ));
            (task, resume, sent)
        };
        let read: Vec<_> = (0..EXPORTS_AT_ONCE).map(|_| start(&framed)).collect();
        until("the first exports are read", || {
            read.iter()
                .all(|(_, _, sent)| sent.load(Ordering::SeqCst) == pause)
        })
        .await;

        // One more while they are held half sent: it waits its turn, unread past its window.
        let (waiting, resume_waiting, waiting_sent) = start(&framed);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let held = waiting_sent.load(Ordering::SeqCst);
        assert!(
            held <= WINDOW_BYTES as usize,
            "{held} bytes of a waiting export were read"
        );

        // Once the first are done, it is read and stored too.
        for (task, resume, _) in read {
            resume.notify_one();
            assert_eq!(task.await.expect("export"), "0");
        }
        until("the waiting export is read", || {
            waiting_sent.load(Ordering::SeqCst) == pause
        })
        .await;
        resume_waiting.notify_one();
        assert_eq!(waiting.await.expect("export"), "0");
        assert_eq!(receiver.stats().batches, 3);
    }
}
