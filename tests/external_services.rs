//! The servers this project did not write, on their own: the quote service built on the
//! OpenTelemetry Python SDK, and nginx proxying to it over HTTP/1.1, h2c and TLS (h2 and
//! http/1.1 by ALPN). The harness's end-to-end tests against "any service" stand on these.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use support::nginx::{NginxConfig, NginxServer};
use support::python::{QuoteOptions, QuoteServices};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

const KEY: &str = "quote-test-key";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const QUOTE: &str = r#"{"symbol":"ACME"}"#;
const TIMEOUT: Duration = Duration::from_secs(10);
const QUOTE_ROUTE: &str = "/v2/quote";
const PRICE_METHOD: &str = "quotes.v1.Prices/GetPrice";

/// What came back, read whole.
#[derive(Debug)]
struct Answer {
    status: u16,
    version: Version,
    headers: hyper::HeaderMap,
    body: Bytes,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {self:?}"))
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Protocol {
    Http1,
    Http2,
}

/// One request on a new connection over `stream`.
async fn send<S>(
    stream: S,
    protocol: Protocol,
    request: Request<Full<Bytes>>,
) -> Result<Answer, hyper::Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(stream);
    let response = match protocol {
        Protocol::Http1 => {
            let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
            tokio::spawn(connection);
            sender.send_request(request).await?
        }
        Protocol::Http2 => {
            let (mut sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(connection);
            sender.send_request(request).await?
        }
    };
    let status = response.status().as_u16();
    let version = response.version();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await?.to_bytes();
    Ok(Answer {
        status,
        version,
        headers,
        body,
    })
}

/// A request; HTTP/1.1 takes the path as its target with a Host header, HTTP/2 the whole URI.
fn request(
    protocol: Protocol,
    scheme: &str,
    authority: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Request<Full<Bytes>> {
    let mut builder = Request::builder().method(method);
    builder = match protocol {
        Protocol::Http1 => builder.uri(path).header("host", authority),
        Protocol::Http2 => builder
            .uri(format!("{scheme}://{authority}{path}"))
            .version(Version::HTTP_2),
    };
    if !body.is_empty() {
        builder = builder.header("content-type", "application/json");
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("a valid request")
}

async fn plain(addr: SocketAddr, protocol: Protocol, request: Request<Full<Bytes>>) -> Answer {
    let stream = TcpStream::connect(addr).await.expect("connect");
    tokio::time::timeout(TIMEOUT, send(stream, protocol, request))
        .await
        .expect("answered in time")
        .unwrap_or_else(|e| panic!("{protocol:?} to {addr}: {e}"))
}

/// Over TLS, offering only the ALPN protocol of `protocol`, and checking the server chose it.
async fn tls(
    addr: SocketAddr,
    roots: &rustls::RootCertStore,
    protocol: Protocol,
    request: Request<Full<Bytes>>,
) -> Answer {
    let alpn: &[u8] = match protocol {
        Protocol::Http1 => b"http/1.1",
        Protocol::Http2 => b"h2",
    };
    // ring is deprecated in rustls for lacking post-quantum key exchange, which a loopback check
    // of nginx's ALPN does not need; it spares the tests a C build of aws-lc.
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots.clone())
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("server name");
    let stream = connector.connect(name, tcp).await.expect("TLS handshake");
    assert_eq!(
        stream.get_ref().1.alpn_protocol(),
        Some(alpn),
        "nginx did not choose {protocol:?} by ALPN"
    );
    tokio::time::timeout(TIMEOUT, send(stream, protocol, request))
        .await
        .expect("answered in time")
        .unwrap_or_else(|e| panic!("TLS {protocol:?} to {addr}: {e}"))
}

/// Samples of one metric from a Prometheus text page, by their labels.
async fn samples(url: &str, name: &str) -> BTreeMap<BTreeMap<String, String>, f64> {
    let text = reqwest::get(url)
        .await
        .and_then(|r| r.error_for_status())
        .expect("metrics page")
        .text()
        .await
        .expect("metrics text");
    let mut found = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (metric, labels) = series.split_once('{').unwrap_or((series, "}"));
        if metric != name {
            continue;
        }
        let labels = labels
            .trim_end_matches('}')
            .split("\",")
            .filter(|pair| !pair.is_empty())
            .filter_map(|pair| {
                let (k, v) = pair.split_once("=\"")?;
                Some((k.to_owned(), v.trim_end_matches('"').to_owned()))
            })
            .collect();
        found.insert(labels, value.parse().expect("a sample value"));
    }
    found
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn http_count(services: &QuoteServices, route: &str, status: &str) -> f64 {
    let all = samples(&services.front.metrics_url(), "http_requests_total").await;
    let key = labels(&[("method", "POST"), ("route", route), ("status", status)]);
    all.get(&key).copied().unwrap_or(0.0)
}

async fn prices_answered(services: &QuoteServices) -> f64 {
    let all = samples(&services.back.metrics_url(), "grpc_server_handled_total").await;
    let key = labels(&[("grpc_method", PRICE_METHOD), ("grpc_code", "OK")]);
    all.get(&key).copied().unwrap_or(0.0)
}

fn start_services(test: &str, options: QuoteOptions) -> Option<QuoteServices> {
    let python = support::python::python(test)?;
    Some(QuoteServices::start(&python, &options))
}

fn assert_quote(answer: &Answer, via: &str) {
    assert_eq!(answer.status, 200, "{via}: {answer:?}");
    assert_eq!(
        answer.header("x-trace-id"),
        Some(TRACE_ID),
        "{via}: {answer:?}"
    );
    let body = answer.json();
    assert_eq!(body["symbol"], "ACME", "{via}: {body}");
    assert!(
        body["price"].as_f64().is_some_and(|p| p > 0.0),
        "{via}: {body}"
    );
}

/// A self-signed certificate for `localhost` and 127.0.0.1, written beside the test's files.
struct TestCert {
    dir: std::path::PathBuf,
    roots: rustls::RootCertStore,
}

impl TestCert {
    fn new() -> Self {
        let certified = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .expect("a certificate");
        let dir =
            std::env::temp_dir().join(format!("harness-external-cert-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("certificate directory");
        std::fs::write(dir.join("cert.pem"), certified.cert.pem()).expect("cert.pem");
        std::fs::write(dir.join("key.pem"), certified.signing_key.serialize_pem())
            .expect("key.pem");
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(certified.cert.der().clone())
            .expect("a root certificate");
        TestCert { dir, roots }
    }

    fn cert(&self) -> std::path::PathBuf {
        self.dir.join("cert.pem")
    }

    fn key(&self) -> std::path::PathBuf {
        self.dir.join("key.pem")
    }
}

impl Drop for TestCert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_proxies_quotes_over_http1_h2c_and_tls() {
    const TEST: &str = "nginx_proxies_quotes_over_http1_h2c_and_tls";
    let Some(nginx_binary) = support::nginx::binary(TEST) else {
        return;
    };
    let options = QuoteOptions {
        api_key: Some(KEY.to_owned()),
        ..QuoteOptions::default()
    };
    let Some(services) = start_services(TEST, options) else {
        return;
    };
    let cert = TestCert::new();
    let nginx = NginxServer::start(
        &nginx_binary,
        &NginxConfig {
            upstream: services.front_http(),
            cert_pem: &cert.cert(),
            key_pem: &cert.key(),
        },
    );
    let quote_headers = [("x-api-key", KEY), ("traceparent", TRACEPARENT)];
    let quote = |protocol, scheme, addr: SocketAddr| {
        request(
            protocol,
            scheme,
            &addr.to_string(),
            "POST",
            QUOTE_ROUTE,
            &quote_headers,
            QUOTE,
        )
    };
    let tls_authority = format!("localhost:{}", nginx.tls.port());
    let tls_quote = |protocol| {
        request(
            protocol,
            "https",
            &tls_authority,
            "POST",
            QUOTE_ROUTE,
            &quote_headers,
            QUOTE,
        )
    };

    let answers = [
        (
            "HTTP/1.1",
            Version::HTTP_11,
            plain(
                nginx.http,
                Protocol::Http1,
                quote(Protocol::Http1, "http", nginx.http),
            )
            .await,
        ),
        (
            "h2c",
            Version::HTTP_2,
            plain(
                nginx.h2c,
                Protocol::Http2,
                quote(Protocol::Http2, "http", nginx.h2c),
            )
            .await,
        ),
        (
            "TLS h2",
            Version::HTTP_2,
            tls(
                nginx.tls,
                &cert.roots,
                Protocol::Http2,
                tls_quote(Protocol::Http2),
            )
            .await,
        ),
        (
            "TLS HTTP/1.1",
            Version::HTTP_11,
            tls(
                nginx.tls,
                &cert.roots,
                Protocol::Http1,
                tls_quote(Protocol::Http1),
            )
            .await,
        ),
    ];
    for (via, version, answer) in &answers {
        assert_quote(answer, via);
        assert_eq!(answer.version, *version, "{via}");
    }

    // nginx answers this itself, on every listener.
    let statics = [
        plain(
            nginx.http,
            Protocol::Http1,
            request(
                Protocol::Http1,
                "http",
                &nginx.http.to_string(),
                "GET",
                "/static.json",
                &[],
                "",
            ),
        )
        .await,
        plain(
            nginx.h2c,
            Protocol::Http2,
            request(
                Protocol::Http2,
                "http",
                &nginx.h2c.to_string(),
                "GET",
                "/static.json",
                &[],
                "",
            ),
        )
        .await,
        tls(
            nginx.tls,
            &cert.roots,
            Protocol::Http2,
            request(
                Protocol::Http2,
                "https",
                &tls_authority,
                "GET",
                "/static.json",
                &[],
                "",
            ),
        )
        .await,
    ];
    for answer in &statics {
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.header("content-type"), Some("application/json"));
        assert_eq!(answer.json(), serde_json::json!({"ok": true}));
    }

    // Exactly the quotes sent reached the front, and each asked the back once.
    let sent = answers.len() as f64;
    assert_eq!(
        http_count(&services, QUOTE_ROUTE, "200").await,
        sent,
        "{}",
        nginx.log()
    );
    assert_eq!(prices_answered(&services).await, sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn front_wants_its_key_and_counts_what_it_answers() {
    let options = QuoteOptions {
        api_key: Some(KEY.to_owned()),
        ..QuoteOptions::default()
    };
    let Some(services) = start_services("front_wants_its_key", options) else {
        return;
    };
    let front = services.front_http();
    let post = |headers: &[(&str, &str)]| {
        request(
            Protocol::Http1,
            "http",
            &front.to_string(),
            "POST",
            QUOTE_ROUTE,
            headers,
            QUOTE,
        )
    };
    let wrong = plain(
        front,
        Protocol::Http1,
        post(&[("x-api-key", "not-the-key")]),
    )
    .await;
    assert_eq!(wrong.status, 401, "{wrong:?}");
    let missing = plain(front, Protocol::Http1, post(&[])).await;
    assert_eq!(missing.status, 401, "{missing:?}");
    let right = plain(
        front,
        Protocol::Http1,
        post(&[("x-api-key", KEY), ("traceparent", TRACEPARENT)]),
    )
    .await;
    assert_quote(&right, "front");
    // Without a traceparent the front starts a trace of its own, and names it.
    let fresh = plain(front, Protocol::Http1, post(&[("x-api-key", KEY)])).await;
    assert_eq!(fresh.status, 200, "{fresh:?}");
    let fresh_id = fresh.header("x-trace-id").unwrap_or_default();
    assert!(
        fresh_id.len() == 32
            && fresh_id != TRACE_ID
            && fresh_id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{fresh:?}"
    );

    assert_eq!(http_count(&services, QUOTE_ROUTE, "401").await, 2.0);
    assert_eq!(http_count(&services, QUOTE_ROUTE, "200").await, 2.0);
    // Refused quotes never reach the back.
    assert_eq!(prices_answered(&services).await, 2.0);
    let durations = samples(
        &services.front.metrics_url(),
        "http_request_duration_seconds_count",
    )
    .await;
    let key = labels(&[("method", "POST"), ("route", QUOTE_ROUTE)]);
    assert_eq!(durations.get(&key).copied(), Some(4.0), "{durations:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn front_faults_show_in_what_a_client_sees() {
    let options = QuoteOptions {
        faults: vec!["count-twice".to_owned(), "reset-traced-half".to_owned()],
        ..QuoteOptions::default()
    };
    let Some(services) = start_services("front_faults", options) else {
        return;
    };
    let front = services.front_http();
    let post = |headers: &[(&str, &str)]| {
        request(
            Protocol::Http1,
            "http",
            &front.to_string(),
            "POST",
            QUOTE_ROUTE,
            headers,
            QUOTE,
        )
    };
    // reset-traced-half: of four traced requests, the second and fourth get a reset.
    let mut outcomes = Vec::new();
    for _ in 0..4 {
        let stream = TcpStream::connect(front).await.expect("connect");
        let sent = tokio::time::timeout(
            TIMEOUT,
            send(
                stream,
                Protocol::Http1,
                post(&[("traceparent", TRACEPARENT)]),
            ),
        )
        .await
        .expect("answered or reset in time");
        outcomes.push(sent.map(|a| a.status).map_err(|e| e.to_string()));
    }
    assert!(
        matches!(outcomes.as_slice(), [Ok(200), Err(_), Ok(200), Err(_)]),
        "{outcomes:?}"
    );
    // Untraced requests are never reset.
    for _ in 0..2 {
        let answer = plain(front, Protocol::Http1, post(&[])).await;
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    // count-twice: four answered requests, counted as eight.
    assert_eq!(http_count(&services, QUOTE_ROUTE, "200").await, 8.0);
    assert_eq!(prices_answered(&services).await, 4.0);
}

#[test]
fn reads_the_version_nginx_prints() {
    use support::nginx::parse_version;
    assert_eq!(
        parse_version("nginx version: nginx/1.22.1\n"),
        Some((1, 22, 1))
    );
    assert_eq!(
        parse_version("nginx version: nginx/1.27.4 (Ubuntu)"),
        Some((1, 27, 4))
    );
    assert_eq!(parse_version("nginx version: nginx/1.25"), Some((1, 25, 0)));
    assert_eq!(parse_version("openresty/1.21"), None);
}
