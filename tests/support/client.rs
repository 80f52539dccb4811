//! Plain HTTP clients for checking servers this project did not write, one request per new
//! connection so that the protocol is exactly the one asked for: HTTP/1.1 or HTTP/2 (h2c with
//! prior knowledge) over TCP, or either over TLS with ALPN offering only that protocol. Also a
//! Prometheus text page read into samples, and a self-signed certificate for TLS servers.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// How long one request may take, connection included.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// What came back, read whole.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub version: Version,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {self:?}"))
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum Protocol {
    Http1,
    Http2,
}

/// One request on a new connection over `stream`.
pub(crate) async fn send<S>(
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
pub(crate) fn request(
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

pub(crate) async fn plain(
    addr: SocketAddr,
    protocol: Protocol,
    request: Request<Full<Bytes>>,
) -> Answer {
    let stream = TcpStream::connect(addr).await.expect("connect");
    tokio::time::timeout(TIMEOUT, send(stream, protocol, request))
        .await
        .expect("answered in time")
        .unwrap_or_else(|e| panic!("{protocol:?} to {addr}: {e}"))
}

/// Over TLS, offering only the ALPN protocol of `protocol`, and checking the server chose it.
pub(crate) async fn tls(
    addr: SocketAddr,
    roots: &rustls::RootCertStore,
    protocol: Protocol,
    request: Request<Full<Bytes>>,
) -> Answer {
    let alpn: &[u8] = match protocol {
        Protocol::Http1 => b"http/1.1",
        Protocol::Http2 => b"h2",
    };
    let provider = rustls::crypto::aws_lc_rs::default_provider();
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
pub(crate) async fn samples(url: &str, name: &str) -> BTreeMap<BTreeMap<String, String>, f64> {
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

pub(crate) fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A self-signed certificate for `localhost` and 127.0.0.1, written beside the test's files.
pub(crate) struct TestCert {
    dir: std::path::PathBuf,
    /// Trusts exactly this certificate.
    pub roots: rustls::RootCertStore,
}

impl TestCert {
    pub(crate) fn new() -> Self {
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

    pub(crate) fn cert(&self) -> std::path::PathBuf {
        self.dir.join("cert.pem")
    }

    pub(crate) fn key(&self) -> std::path::PathBuf {
        self.dir.join("key.pem")
    }
}

impl Drop for TestCert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
