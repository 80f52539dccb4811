//! The client against real servers on loopback: the `h2` crate's server side, and for GOAWAY a
//! server written frame by frame here (`h2` announces every stream it has read as processed, so
//! it cannot leave calls in flight above its last stream id).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hyper::http::{HeaderMap, HeaderValue, Response as HttpResponse};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tonic::Code;

use super::frame::{self, Frame};
use super::hpack;
use crate::load::driver::{Driver, Reply};
use crate::load::grpc::{GrpcCall, GrpcDriver};
use crate::load::outcome::Outcome;
use crate::load::sample::TraceParent;

/// How the test server answers every call.
#[derive(Clone, Copy)]
enum Answer {
    /// A message of `body` bytes, then trailers with status 0; `x-trace-id: t-<stream>` in the
    /// headers, after a header of `long` bytes if not 0.
    Ok { body: usize, long: usize },
    /// Headers only, with this `grpc-status`.
    TrailersOnly(u32),
    /// RST_STREAM with ENHANCE_YOUR_CALM.
    Reset,
}

/// Connections the server accepted, and the most calls it had open at once.
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    open: AtomicUsize,
    most_open: AtomicUsize,
}

async fn h2_server(builder: h2::server::Builder, answer: Answer) -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let counts = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            counts.connections.fetch_add(1, Ordering::SeqCst);
            let (builder, counts) = (builder.clone(), counts.clone());
            tokio::spawn(async move {
                let mut connection = builder.handshake::<_, Bytes>(tcp).await.unwrap();
                while let Some(Ok((request, respond))) = connection.accept().await {
                    tokio::spawn(answer_call(request, respond, answer, counts.clone()));
                }
            });
        }
    });
    (addr, seen)
}

async fn answer_call(
    request: hyper::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    answer: Answer,
    seen: Arc<Seen>,
) {
    let open = seen.open.fetch_add(1, Ordering::SeqCst) + 1;
    seen.most_open.fetch_max(open, Ordering::SeqCst);
    let stream = respond.stream_id().as_u32();
    let mut body = request.into_body();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    // Let concurrent calls pile up, so that concurrency limits are tested.
    tokio::time::sleep(Duration::from_millis(2)).await;
    seen.open.fetch_sub(1, Ordering::SeqCst);
    let head = |grpc_status: Option<u32>| {
        let mut head = HttpResponse::builder()
            .status(200)
            .header("content-type", "application/grpc");
        if let Some(code) = grpc_status {
            head = head.header("grpc-status", code);
        }
        head.body(()).unwrap()
    };
    match answer {
        Answer::Reset => respond.send_reset(h2::Reason::ENHANCE_YOUR_CALM),
        Answer::TrailersOnly(code) => {
            let _ = respond.send_response(head(Some(code)), true);
        }
        Answer::Ok { body, long } => {
            let mut response = head(None);
            if long > 0 {
                let value = HeaderValue::from_str(&"l".repeat(long)).unwrap();
                response.headers_mut().insert("x-long", value);
            }
            let trace = HeaderValue::from_str(&format!("t-{stream}")).unwrap();
            response.headers_mut().insert("x-trace-id", trace);
            let Ok(mut send) = respond.send_response(response, false) else {
                return;
            };
            let mut message = vec![0u8; 5 + body];
            message[1..5].copy_from_slice(&u32::try_from(body).unwrap().to_be_bytes());
            let _ = send.send_data(message.into(), false);
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", HeaderValue::from_static("0"));
            let _ = send.send_trailers(trailers);
        }
    }
}

fn driver(addr: SocketAddr, connections: usize) -> Arc<GrpcDriver> {
    let tls = crate::tls::client_config(&crate::tls::TlsSpec {
        insecure: true,
        ..Default::default()
    })
    .unwrap();
    let base = format!("http://{addr}").parse().unwrap();
    Arc::new(
        GrpcDriver::new(&base, tls, connections)
            .unwrap()
            .with_trace_header("X-Trace-Id"),
    )
}

fn call() -> Arc<GrpcCall> {
    let mut metadata = tonic::metadata::MetadataMap::new();
    metadata.insert("x-api-key", "secret".parse().unwrap());
    Arc::new(GrpcCall {
        path: "/pkg.Svc/Method".parse().unwrap(),
        metadata,
        message: Bytes::from_static(b"\x08\x01"),
    })
}

const TRACE: TraceParent = TraceParent {
    trace_id: 1,
    parent_span_id: 2,
};

/// `n` calls at once, every other one sampled, each given up after 10 s.
async fn calls(driver: &Arc<GrpcDriver>, n: usize) -> Vec<Reply> {
    let call = call();
    let all = (0..n).map(|i| {
        let (driver, call) = (driver.clone(), call.clone());
        tokio::spawn(async move {
            let trace = (i % 2 == 0).then_some(&TRACE);
            tokio::time::timeout(Duration::from_secs(10), driver.send(&call, trace))
                .await
                .unwrap_or_else(|_| Outcome::Transport("no answer in 10 s".into()).into())
        })
    });
    let mut replies = Vec::new();
    for reply in futures_util::future::join_all(all).await {
        replies.push(reply.unwrap());
    }
    replies
}

fn assert_all_ok(replies: &[Reply]) {
    for reply in replies {
        assert_eq!(reply.outcome, Outcome::Code(Code::Ok), "{reply:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_answered_and_the_trace_header_read_for_sampled_ones() {
    let (addr, seen) =
        h2_server(h2::server::Builder::new(), Answer::Ok { body: 10, long: 0 }).await;
    let driver = driver(addr, 2);
    let replies = calls(&driver, 40).await;
    assert_all_ok(&replies);
    for (i, reply) in replies.iter().enumerate() {
        assert_eq!(reply.trace_header.is_some(), i % 2 == 0, "{reply:?}");
        assert!(
            reply
                .trace_header
                .as_ref()
                .is_none_or(|t| t.starts_with("t-"))
        );
    }
    assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_trailers_only_answer_gives_its_status() {
    let (addr, _) = h2_server(h2::server::Builder::new(), Answer::TrailersOnly(5)).await;
    let replies = calls(&driver(addr, 1), 4).await;
    for reply in replies {
        assert_eq!(reply.outcome, Outcome::Code(Code::NotFound));
    }
}

#[tokio::test]
async fn a_reset_stream_ends_its_call_with_the_code() {
    let (addr, _) = h2_server(h2::server::Builder::new(), Answer::Reset).await;
    let driver = driver(addr, 1);
    for reply in calls(&driver, 3).await {
        let Outcome::Transport(error) = &reply.outcome else {
            panic!("{reply:?}")
        };
        assert!(error.contains("ENHANCE_YOUR_CALM"), "{error}");
    }
}

#[tokio::test]
async fn calls_beyond_the_servers_concurrency_limit_wait_and_all_complete() {
    let mut builder = h2::server::Builder::new();
    builder.max_concurrent_streams(1);
    let (addr, seen) = h2_server(builder, Answer::Ok { body: 10, long: 0 }).await;
    assert_all_ok(&calls(&driver(addr, 1), 20).await);
    assert_eq!(seen.most_open.load(Ordering::SeqCst), 1);
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_large_answer_is_read_through_window_updates() {
    // Four times the stream window, and more than the connection's in all.
    let body = 4 << 20;
    let (addr, _) = h2_server(h2::server::Builder::new(), Answer::Ok { body, long: 0 }).await;
    assert_all_ok(&calls(&driver(addr, 1), 6).await);
}

#[tokio::test]
async fn an_answer_over_the_bound_fails_its_call() {
    let body = (16 << 20) + 1;
    let (addr, _) = h2_server(h2::server::Builder::new(), Answer::Ok { body, long: 0 }).await;
    let driver = driver(addr, 1);
    let reply = &calls(&driver, 1).await[0];
    assert_eq!(
        reply.outcome,
        Outcome::Transport(format!("response larger than {} bytes", 16 << 20))
    );
    // The connection still serves.
    let (addr, _) = h2_server(h2::server::Builder::new(), Answer::Ok { body: 10, long: 0 }).await;
    assert_all_ok(&calls(&self::driver(addr, 1), 1).await);
}

#[tokio::test]
async fn a_header_block_continued_in_continuation_frames_is_read_whole() {
    let long = 40 << 10;
    let (addr, _) = h2_server(h2::server::Builder::new(), Answer::Ok { body: 10, long }).await;
    let replies = calls(&driver(addr, 1), 2).await;
    assert_all_ok(&replies);
    // The trace header comes after the long one: the whole block was decoded.
    assert_eq!(replies[0].trace_header.as_deref(), Some("t-1"));
}

/// Reads frames until `n` request HEADERS have arrived; their stream ids.
async fn read_requests(tcp: &mut TcpStream, buf: &mut Vec<u8>, n: usize) -> Vec<u32> {
    let mut streams = Vec::new();
    loop {
        while let Some((frame, used)) = frame::parse(buf, 1 << 20).unwrap() {
            if let Frame::Headers { stream, .. } = frame {
                streams.push(stream);
            }
            buf.drain(..used);
        }
        if streams.len() >= n {
            return streams;
        }
        let mut chunk = [0; 4096];
        let read = tcp.read(&mut chunk).await.unwrap();
        assert!(read > 0, "the client closed the connection");
        buf.extend_from_slice(&chunk[..read]);
    }
}

fn answer_frames(out: &mut Vec<u8>, stream: u32) {
    frame::put_headers(out, stream, &[b"\x88"], false, 16_384);
    frame::put_data(out, stream, b"\0\0\0\0\0", false);
    let mut trailers = Vec::new();
    hpack::literal(&mut trailers, b"grpc-status", b"0");
    frame::put_headers(out, stream, &[&trailers], true, 16_384);
}

/// The server's side of the preface: the client's read, empty SETTINGS sent.
async fn server_handshake(tcp: &mut TcpStream) {
    let mut preface = [0; 24];
    tcp.read_exact(&mut preface).await.unwrap();
    let mut out = Vec::new();
    frame::put_settings(&mut out, &[]);
    tcp.write_all(&out).await.unwrap();
}
/// A server that on its first connection answers the first of `n` calls and sends GOAWAY naming
/// that call's stream as the last, and on later ones answers every call.
async fn goaway_server(n: usize) -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let counts = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let first = counts.connections.fetch_add(1, Ordering::SeqCst) == 0;
            tokio::spawn(async move {
                server_handshake(&mut tcp).await;
                let mut buf = Vec::new();
                if first {
                    let streams = read_requests(&mut tcp, &mut buf, n).await;
                    let mut out = Vec::new();
                    answer_frames(&mut out, streams[0]);
                    frame::put_header(&mut out, 8, frame::GOAWAY, 0, 0);
                    out.extend_from_slice(&streams[0].to_be_bytes());
                    out.extend_from_slice(&0u32.to_be_bytes());
                    tcp.write_all(&out).await.unwrap();
                    // Kept open: the client must move on without the connection closing.
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    return;
                }
                loop {
                    let streams = read_requests(&mut tcp, &mut buf, 1).await;
                    let mut out = Vec::new();
                    for stream in streams {
                        answer_frames(&mut out, stream);
                    }
                    tcp.write_all(&out).await.unwrap();
                }
            });
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn calls_above_a_goaways_last_stream_go_on_one_new_connection() {
    let (addr, seen) = goaway_server(8).await;
    let replies = calls(&driver(addr, 1), 8).await;
    assert_all_ok(&replies);
    assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_connection_the_server_closed_is_made_again_by_the_next_call() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let driver = driver(addr, 1);
    let server = tokio::spawn(async move {
        // The first connection closes after its settings; the second answers.
        for closes in [true, false] {
            let (mut tcp, _) = listener.accept().await.unwrap();
            server_handshake(&mut tcp).await;
            let mut buf = Vec::new();
            let streams = read_requests(&mut tcp, &mut buf, 1).await;
            if closes {
                drop(tcp);
                continue;
            }
            let mut out = Vec::new();
            answer_frames(&mut out, streams[0]);
            tcp.write_all(&out).await.unwrap();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let first = &calls(&driver, 1).await[0];
    assert!(
        matches!(&first.outcome, Outcome::Transport(e) if e.contains("closed by the server")),
        "{first:?}"
    );
    assert_all_ok(&calls(&driver, 1).await);
    server.await.unwrap();
}
