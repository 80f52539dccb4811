//! The HTTP/1.1 client against servers written here that misbehave the way real ones do.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hyper::{Method, Uri};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use super::http1::Http1Conn;
use super::{HttpDriver, HttpRequest, HttpVersion};
use crate::load::driver::{Driver as _, Reply};
use crate::load::outcome::Outcome;
use crate::load::sample::TraceParent;

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// Reads one request (head and Content-Length body) into `pending`'s place; false when the
/// connection ended first.
async fn read_request(stream: &mut TcpStream, pending: &mut Vec<u8>) -> bool {
    loop {
        let mut fields = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut fields);
        if let Ok(httparse::Status::Complete(n)) = request.parse(pending) {
            let length = request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.parse::<usize>().ok())
                .unwrap_or(0);
            if pending.len() >= n + length {
                pending.drain(..n + length);
                return true;
            }
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(read) => pending.extend_from_slice(&chunk[..read]),
        }
    }
}

async fn listen() -> (TcpListener, Uri) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    (listener, format!("http://{address}").parse().expect("url"))
}

fn driver(base: &Uri, connections: usize) -> HttpDriver {
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    HttpDriver::new(base, tls, HttpVersion::Auto, connections).expect("driver")
}

fn post() -> Arc<HttpRequest> {
    Arc::new(HttpRequest::json(
        Method::POST,
        Uri::from_static("/quote"),
        Bytes::from_static(b"{}"),
    ))
}

async fn send(driver: &HttpDriver, request: &Arc<HttpRequest>) -> Reply {
    tokio::time::timeout(Duration::from_secs(5), driver.send(request, None))
        .await
        .unwrap_or_else(|_| Outcome::Timeout.into())
}

fn status(status: u16) -> Reply {
    Outcome::Status(status).into()
}

#[tokio::test]
async fn a_kept_connection_the_server_closed_between_requests_is_replaced_and_nothing_is_lost() {
    let (listener, base) = listen().await;
    let received = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&received);
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        // The first connection answers one request and is closed (an idle timeout); the second
        // answers what comes.
        let (mut first, _) = listener.accept().await.expect("accept");
        let mut pending = Vec::new();
        assert!(read_request(&mut first, &mut pending).await);
        counted.fetch_add(1, Ordering::SeqCst);
        first.write_all(OK).await.expect("answer");
        drop(first);
        let _ = closed_tx.send(());
        let (mut second, _) = listener.accept().await.expect("accept");
        let mut pending = Vec::new();
        while read_request(&mut second, &mut pending).await {
            counted.fetch_add(1, Ordering::SeqCst);
            second.write_all(OK).await.expect("answer");
        }
    });
    let driver = driver(&base, 4);
    let request = post();
    assert_eq!(send(&driver, &request).await, status(200));
    closed_rx.await.expect("server closed its end");
    // Time for the close to reach this end: the case of a connection idle for a while.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(send(&driver, &request).await, status(200));
    assert_eq!(received.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_request_the_server_took_and_never_answered_is_not_sent_again() {
    let (listener, base) = listen().await;
    let received = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&received);
    tokio::spawn(async move {
        // One request answered; the next taken and its connection closed without an answer.
        // Whatever comes later is answered.
        let mut pending = Vec::new();
        let (mut first, _) = listener.accept().await.expect("accept");
        assert!(read_request(&mut first, &mut pending).await);
        counted.fetch_add(1, Ordering::SeqCst);
        first.write_all(OK).await.expect("answer");
        assert!(read_request(&mut first, &mut pending).await);
        counted.fetch_add(1, Ordering::SeqCst);
        drop(first);
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut pending = Vec::new();
            while read_request(&mut stream, &mut pending).await {
                counted.fetch_add(1, Ordering::SeqCst);
                let _ = stream.write_all(OK).await;
            }
        }
    });
    let driver = driver(&base, 4);
    let request = post();
    assert_eq!(send(&driver, &request).await, status(200));
    let reply = send(&driver, &request).await;
    assert!(
        matches!(&reply.outcome, Outcome::Transport(e) if e.contains("closed before the response")),
        "{reply:?}"
    );
    assert_eq!(
        received.load(Ordering::SeqCst),
        2,
        "the request was sent again"
    );
}

#[tokio::test]
async fn a_request_that_could_not_be_written_may_go_again_and_one_that_was_may_not() {
    let (listener, base) = listen().await;
    tokio::spawn(async move {
        // The first connection is reset at once; the second takes a request and closes.
        let (reset, _) = listener.accept().await.expect("accept");
        reset.set_zero_linger().expect("SO_LINGER");
        drop(reset);
        let (mut taken, _) = listener.accept().await.expect("accept");
        let mut pending = Vec::new();
        read_request(&mut taken, &mut pending).await;
    });
    let address = base.authority().expect("authority").as_str().to_owned();
    let mut reset = Http1Conn::new(Box::new(
        TcpStream::connect(&address).await.expect("connect"),
    ));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let request = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";
    let failure = reset
        .exchange(request, false, None)
        .await
        .expect_err("reset connection");
    assert!(failure.retryable(), "{failure:?}");
    let mut taken = Http1Conn::new(Box::new(
        TcpStream::connect(&address).await.expect("connect"),
    ));
    let failure = taken
        .exchange(request, false, None)
        .await
        .expect_err("closed without an answer");
    assert!(!failure.retryable(), "{failure:?}");
}

#[tokio::test]
async fn an_answer_that_closes_the_connection_is_not_followed_by_another_request() {
    for answer in [
        &b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"[..],
        &b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"[..],
    ] {
        let (listener, base) = listen().await;
        let accepted = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&accepted);
        tokio::spawn(async move {
            // Each connection answers one request and then neither reads nor closes: a request
            // sent on it again would never be answered.
            let mut held = Vec::new();
            while let Ok((mut stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let mut pending = Vec::new();
                if read_request(&mut stream, &mut pending).await {
                    let _ = stream.write_all(answer).await;
                }
                held.push(stream);
            }
        });
        let driver = driver(&base, 4);
        let request = post();
        for _ in 0..3 {
            assert_eq!(send(&driver, &request).await, status(200));
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }
}

#[tokio::test]
async fn an_idle_connection_the_server_closed_is_seen_closed_before_use() {
    let (listener, base) = listen().await;
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        let _ = closed_rx.await;
        drop(stream);
    });
    let address = base.authority().expect("authority").as_str().to_owned();
    let stream = TcpStream::connect(address).await.expect("connect");
    let mut connection = Http1Conn::new(Box::new(stream));
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!connection.closed_while_idle());
    closed_tx.send(()).expect("server waiting");
    let mut seen = false;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        if connection.closed_while_idle() {
            seen = true;
            break;
        }
    }
    assert!(seen, "the closed connection still looks open");
}

#[tokio::test]
async fn a_sampled_request_reads_its_trace_id_from_an_answer_that_trickles_in() {
    let (listener, base) = listen().await;
    let (traceparent_tx, traceparent_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut pending = Vec::new();
        let mut request = Vec::new();
        while !request.ends_with(b"\r\n\r\n{}") {
            let mut chunk = [0u8; 1024];
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "request ended early");
            request.extend_from_slice(&chunk[..n]);
        }
        pending.clear();
        let text = String::from_utf8_lossy(&request).into_owned();
        let _ = traceparent_tx.send(text);
        let answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Service Unavailable\r\n\
            X-Trace-ID: 4bf92f3577b34da6\r\nTransfer-Encoding: chunked\r\n\r\n\
            3;x=y\r\nabc\r\n0\r\nExpires: never\r\n\r\n";
        for byte in answer {
            stream.write_all(&[*byte]).await.expect("answer");
            stream.flush().await.expect("flush");
        }
        // Kept open: the answer ended by its last chunk, not by the connection.
        let _ = read_request(&mut stream, &mut pending).await;
    });
    let driver = driver(&base, 4);
    let trace = TraceParent {
        trace_id: 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
        parent_span_id: 0x00f0_67aa_0ba9_02b7,
    };
    let reply = tokio::time::timeout(Duration::from_secs(5), driver.send(&post(), Some(&trace)))
        .await
        .expect("answered");
    assert_eq!(reply.outcome, Outcome::Status(503));
    assert_eq!(reply.trace_header.as_deref(), Some("4bf92f3577b34da6"));
    let request = traceparent_rx.await.expect("request");
    assert!(
        request.contains(&format!("\r\ntraceparent: {}\r\n", trace.header())),
        "{request}"
    );
    let pool = driver.prepared(&post()).expect("prepared").pool.clone();
    assert_eq!(pool.idle(), 1);
}

#[tokio::test]
async fn at_most_the_configured_number_of_idle_connections_is_kept() {
    let (listener, base) = listen().await;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut pending = Vec::new();
                while read_request(&mut stream, &mut pending).await {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let _ = stream.write_all(OK).await;
                }
            });
        }
    });
    let driver = driver(&base, 2);
    let request = post();
    let replies = futures_util::future::join_all((0..4).map(|_| send(&driver, &request))).await;
    assert!(
        replies.iter().all(|reply| *reply == status(200)),
        "{replies:?}"
    );
    assert_eq!(driver.prepared(&request).expect("prepared").pool.idle(), 2);
}

#[tokio::test]
async fn a_malformed_answer_is_a_transport_failure_naming_what_was_wrong() {
    let (listener, base) = listen().await;
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut pending = Vec::new();
        if read_request(&mut stream, &mut pending).await {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n")
                .await;
        }
        let _ = read_request(&mut stream, &mut pending).await;
    });
    let reply = send(&driver(&base, 2), &post()).await;
    assert_eq!(
        reply.outcome,
        Outcome::Transport("malformed chunk size line".into())
    );
}
