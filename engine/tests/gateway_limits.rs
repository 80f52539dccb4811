//! The gateway's limits against clients that would hold it up, on real processes: headers or a
//! body dribbled a byte at a time, a body declared larger than the limit, more connections than
//! the limit; each refusal counted in `http_requests_refused_total`, and ordinary clients
//! untouched.

mod support;

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{Metrics, System, SystemOptions, strings};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

const WAIT: Duration = Duration::from_secs(10);
const FETCH_BODY: &str = r#"{"symbols":["AAPL"],"source_id":"yahoo_finance"}"#;
const FETCH_STATUS: &str =
    r#"http_requests_total{method="POST",path="/api/v1/market-data/fetch",status="#;

fn refused(reason: &str) -> String {
    format!("http_requests_refused_total{{reason=\"{reason}\"}}")
}

/// The system with these gateway flags, scraped by a client that opens a connection per request:
/// with a short header timeout, a pooled connection may be closed just as a request goes out.
async fn start(gateway_args: &[&str]) -> System {
    let mut system = System::start(SystemOptions {
        gateway_args: strings(gateway_args),
        ..SystemOptions::default()
    })
    .await;
    system.http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(WAIT)
        .build()
        .expect("HTTP client");
    system
}

fn metrics_url(system: &System) -> String {
    format!("http://{}/api/v1/metrics", system.gateway.addr("http"))
}

/// One response as read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    close: bool,
    body: String,
}

/// A client on one TCP connection, for what an HTTP library would not send.
struct Raw {
    reader: BufReader<OwnedReadHalf>,
    /// Taken by [`Raw::dribble`].
    writer: Option<OwnedWriteHalf>,
}

impl Raw {
    async fn connect(addr: SocketAddr) -> Raw {
        let (reader, writer) = TcpStream::connect(addr)
            .await
            .expect("gateway reachable")
            .into_split();
        Raw {
            reader: BufReader::new(reader),
            writer: Some(writer),
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let writer = self
            .writer
            .as_mut()
            .expect("the write side is not dribbling");
        writer.write_all(bytes).await
    }

    /// Writes `bytes` one at a time, `gap` apart, in a task of their own, until done or the
    /// connection fails; then keeps the write side open, so that only the gateway can end the
    /// exchange.
    fn dribble(&mut self, bytes: Vec<u8>, gap: Duration) -> tokio::task::JoinHandle<()> {
        let mut writer = self.writer.take().expect("one dribble per connection");
        tokio::spawn(async move {
            for byte in bytes {
                if writer.write_all(&[byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(gap).await;
            }
            tokio::time::sleep(WAIT * 2).await;
        })
    }

    /// The next response, or `None` if the gateway closed the connection (or reset it) first.
    async fn response(&mut self) -> Option<Answer> {
        tokio::time::timeout(WAIT, self.read_response())
            .await
            .unwrap_or_else(|_| panic!("neither a response nor a close within {WAIT:?}"))
            .ok()
            .flatten()
    }

    async fn read_response(&mut self) -> io::Result<Option<Answer>> {
        let mut line = String::new();
        if self.reader.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not a status line: {line:?}"));
        let (mut length, mut close) = (0, false);
        loop {
            line.clear();
            self.reader.read_line(&mut line).await?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').expect("a header line");
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().expect("a length"),
                "connection" => close = value.trim().eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).await?;
        Ok(Some(Answer {
            status,
            close,
            body: String::from_utf8(body).expect("UTF-8 body"),
        }))
    }

    /// Waits for the gateway to close the connection; panics if it is still open after `WAIT`.
    async fn wait_closed(&mut self) {
        let mut rest = Vec::new();
        match tokio::time::timeout(WAIT, self.reader.read_to_end(&mut rest)).await {
            Ok(Ok(_)) | Ok(Err(_)) => assert!(rest.is_empty(), "unexpected bytes: {rest:?}"),
            Err(_) => panic!("the connection is still open after {WAIT:?}"),
        }
    }

    async fn get(&mut self, path: &str) -> Option<Answer> {
        let request = format!("GET {path} HTTP/1.1\r\nhost: gateway\r\n\r\n");
        self.send(request.as_bytes()).await.ok()?;
        self.response().await
    }

    /// The gateway's metrics, scraped over this connection.
    async fn metrics(&mut self) -> Metrics {
        let answer = self.get("/api/v1/metrics").await.expect("metrics answered");
        assert_eq!(answer.status, 200, "{answer:?}");
        Metrics::parse(&answer.body)
    }
}

fn fetch_head(length: &str) -> String {
    format!(
        "POST /api/v1/market-data/fetch HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n{length}\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_dribbling_its_headers_is_cut_off_after_the_header_timeout() {
    let system = start(&["--header-read-timeout", "300ms"]).await;
    let started = Instant::now();
    let mut raw = Raw::connect(system.gateway.addr("http")).await;
    // A byte every 50 ms: 5 s for the whole head, were the gateway to wait for it.
    let mut head = b"GET /health HTTP/1.1\r\nhost: gateway\r\nx-slow: ".to_vec();
    head.extend([b'a'; 50]);
    head.extend(b"\r\n\r\n");
    let dribbler = raw.dribble(head, Duration::from_millis(50));
    raw.wait_closed().await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300),
        "cut off after {elapsed:?}"
    );
    dribbler.abort();

    let url = metrics_url(&system);
    Metrics::wait_for(&system.http, &url, &refused("header_timeout"), 1.0, WAIT).await;
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_without_counting_a_refusal() {
    let system = start(&["--header-read-timeout", "300ms"]).await;
    let mut raw = Raw::connect(system.gateway.addr("http")).await;
    let answer = raw.get("/health").await.expect("answered");
    assert_eq!((answer.status, answer.close), (200, false), "{answer:?}");
    // The header timeout bounds an idle keep-alive connection too.
    raw.wait_closed().await;

    let metrics = system.gateway_metrics().await;
    assert_eq!(metrics.0.get(&refused("header_timeout")), Some(&0.0));
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dribbled_body_gets_408_after_the_body_timeout() {
    let system = start(&["--body-read-timeout", "300ms"]).await;
    let started = Instant::now();
    let mut raw = Raw::connect(system.gateway.addr("http")).await;
    let head = fetch_head(&format!("content-length: {}\r\n", FETCH_BODY.len()));
    raw.send(head.as_bytes()).await.expect("head sent");
    // A byte every 100 ms: about 5 s for the whole body, were the gateway to wait for it.
    let dribbler = raw.dribble(FETCH_BODY.into(), Duration::from_millis(100));
    // The 408 is written just before the close; a byte of the body arriving in between makes the
    // close a reset, which may overtake it. Either way the gateway stopped waiting.
    if let Some(answer) = raw.response().await {
        assert_eq!((answer.status, answer.close), (408, true), "{answer:?}");
        assert!(answer.body.contains("REQUEST_TIMEOUT"), "{answer:?}");
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300),
        "cut off after {elapsed:?}"
    );
    dribbler.abort();

    let url = metrics_url(&system);
    Metrics::wait_for(&system.http, &url, &refused("body_timeout"), 1.0, WAIT).await;
    Metrics::wait_for(
        &system.http,
        &url,
        &format!("{FETCH_STATUS}\"408\"}}"),
        1.0,
        WAIT,
    )
    .await;
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_declared_over_the_limit_gets_413_before_it_is_sent() {
    let system = start(&[]).await;
    let addr = system.gateway.addr("http");
    let mut raw = Raw::connect(addr).await;
    raw.send(fetch_head("content-length: 10000000000\r\n").as_bytes())
        .await
        .expect("head sent");
    let answer = raw.response().await.expect("answered without the body");
    assert_eq!((answer.status, answer.close), (413, true), "{answer:?}");
    assert!(
        answer.body.contains("PAYLOAD_TOO_LARGE") && answer.body.contains("10000000000"),
        "{answer:?}"
    );
    raw.wait_closed().await;

    // Without a declared length the limit is found while reading, and counted the same way.
    let mut raw = Raw::connect(addr).await;
    let chunk = 70 * 1024;
    let mut request = fetch_head("transfer-encoding: chunked\r\n").into_bytes();
    request.extend(format!("{chunk:x}\r\n").as_bytes());
    request.extend(vec![b' '; chunk]);
    request.extend(b"\r\n0\r\n\r\n");
    raw.send(&request).await.expect("request sent");
    let answer = raw.response().await.expect("answered");
    assert_eq!(answer.status, 413, "{answer:?}");

    let metrics = system.gateway_metrics().await;
    assert_eq!(metrics.get(&refused("too_large")), 2.0);
    assert_eq!(metrics.get(&format!("{FETCH_STATUS}\"413\"}}")), 2.0);
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_limit_a_connection_is_closed_and_counted_until_one_closes() {
    let system = start(&["--max-connections", "3"]).await;
    let addr = system.gateway.addr("http");
    // Three connections, each shown to be served and kept open.
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut raw = Raw::connect(addr).await;
        let answer = raw.get("/health").await.expect("served");
        assert_eq!((answer.status, answer.close), (200, false), "{answer:?}");
        open.push(raw);
    }
    let mut fourth = Raw::connect(addr).await;
    assert!(
        fourth.get("/health").await.is_none(),
        "a fourth connection was served"
    );

    let metrics = open[1].metrics().await;
    assert_eq!(metrics.get(&refused("connection_limit")), 1.0);
    assert_eq!(metrics.get("http_connections_active"), 3.0);

    drop(open.remove(0));
    let deadline = tokio::time::Instant::now() + WAIT;
    while open[0].metrics().await.get("http_connections_active") != 2.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the closed connection still counts"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut next = Raw::connect(addr).await;
    let answer = next.get("/health").await.expect("served once a slot freed");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        open[0].metrics().await.get(&refused("connection_limit")),
        1.0
    );
    drop((open, next, fourth));
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordinary_requests_pass_with_every_limit_on() {
    let system = start(&[
        "--header-read-timeout",
        "300ms",
        "--body-read-timeout",
        "300ms",
        "--max-connections",
        "3",
    ])
    .await;
    let response = system
        .fetch(
            json!({"symbols": ["AAPL"], "source_id": "yahoo_finance"}),
            None,
        )
        .await;
    assert_eq!(response.status(), 200);

    // A body in three quick chunks, then a second request on the same connection.
    let mut raw = Raw::connect(system.gateway.addr("http")).await;
    let head = fetch_head(&format!("content-length: {}\r\n", FETCH_BODY.len()));
    raw.send(head.as_bytes()).await.expect("head sent");
    for part in FETCH_BODY.as_bytes().chunks(FETCH_BODY.len().div_ceil(3)) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        raw.send(part).await.expect("chunk sent");
    }
    let answer = raw.response().await.expect("answered");
    assert_eq!((answer.status, answer.close), (200, false), "{answer:?}");
    assert!(answer.body.contains("\"quotes\""), "{answer:?}");
    let answer = raw.get("/health").await.expect("answered");
    assert_eq!(answer.status, 200, "{answer:?}");

    let metrics = system.gateway_metrics().await;
    for reason in [
        "header_timeout",
        "body_timeout",
        "too_large",
        "connection_limit",
    ] {
        assert_eq!(metrics.0.get(&refused(reason)), Some(&0.0), "{reason}");
    }
    assert_eq!(metrics.get(&format!("{FETCH_STATUS}\"200\"}}")), 2.0);
    // The limits were in force all along: left idle, the same connection is closed.
    raw.wait_closed().await;
    system.stop().await;
}
