//! A traced request that gets no response is a failed trace check, not one left out: the bundled
//! services behind a proxy that drops every other request carrying a `traceparent` (the
//! connection closes without an answer, and no span is made for it) fail the run, with each such
//! trace saying why; the same proxy dropping nothing passes (calibration).
//!
//! Both runs receive spans on the standard OTLP port, as an external system's exporters expect,
//! so they run one after the other in a single test.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use support::run::Run;

/// Forwards to the gateway; when `drop_every_other` is set, every second traced request gets its
/// connection closed instead of an answer.
struct Proxy {
    gateway: SocketAddr,
    client: reqwest::Client,
    drop_every_other: bool,
    traced: AtomicU64,
}

impl Proxy {
    async fn handle(
        &self,
        request: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, std::io::Error> {
        let traced = request.headers().contains_key("traceparent");
        if traced && self.drop_every_other && self.traced.fetch_add(1, Ordering::Relaxed) % 2 == 1 {
            // An error from the service makes hyper close the connection without a response.
            return Err(std::io::Error::other("dropped by the test proxy"));
        }
        let (parts, body) = request.into_parts();
        let url = format!(
            "http://{}{}",
            self.gateway,
            parts.uri.path_and_query().map_or("/", |p| p.as_str())
        );
        let body = body
            .collect()
            .await
            .map_err(std::io::Error::other)?
            .to_bytes();
        let mut forwarded = self.client.request(parts.method, url).body(body);
        for name in ["content-type", "traceparent", "tracestate"] {
            if let Some(value) = parts.headers.get(name) {
                forwarded = forwarded.header(name, value);
            }
        }
        let answer = forwarded.send().await.map_err(std::io::Error::other)?;
        let mut response = Response::builder().status(answer.status());
        for (name, value) in answer.headers() {
            if name != "content-length" && name != "transfer-encoding" {
                response = response.header(name, value);
            }
        }
        let body = answer.bytes().await.map_err(std::io::Error::other)?;
        response
            .body(Full::new(body))
            .map_err(std::io::Error::other)
    }
}

/// Serves the proxy on a loopback port and returns its address.
async fn start_proxy(gateway: SocketAddr, drop_every_other: bool) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let proxy = Arc::new(Proxy {
        gateway,
        client: reqwest::Client::new(),
        drop_every_other,
        traced: AtomicU64::new(0),
    });
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let proxy = Arc::clone(&proxy);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let proxy = Arc::clone(&proxy);
                    async move { proxy.handle(request).await }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    address
}

/// A short run at `proxy` with half of the requests traced and no threshold but the implicit
/// `traces.passed >= 100%`: no error-rate gate to catch the dropped requests instead.
fn scenario(run: &Run, proxy: SocketAddr) -> String {
    run.write_scenario(
        "unanswered.yaml",
        &format!(
            "name: unanswered
system:
  external: {{gateway: \"http://{proxy}\"}}
load:
  protocol: http
  warmup: 0s
  phases:
    - constant: {{rate: 20, duration: 2s}}
  timeout: 2s
requests:
  - name: quote
    weight: 1
    body: {{symbols: [AAPL], source_id: yahoo_finance}}
verify:
  traces:
    sample: 50%
    timeout: 5s
"
        ),
    )
}

fn run_through(proxy: SocketAddr, name: &str) -> (Option<i32>, String, Value) {
    let run = Run::new(name);
    let path = scenario(&run, proxy);
    let output = run.run(&["run", &path]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stdout = format!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    (output.status.code(), stdout, run.result("unanswered"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traced_request_without_a_response_fails_its_trace() {
    let logs = Run::new("unanswered-services");
    std::fs::create_dir_all(&logs.out).expect("log directory");
    let env = BTreeMap::from([
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
            "http://127.0.0.1:4317".to_owned(),
        ),
        ("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "200".to_owned()),
        ("HARNESS_TEST_MARKER".to_owned(), logs.marker.clone()),
    ]);
    let system = harness::system::ManagedSystem::start(
        std::path::Path::new(support::run::HARNESS),
        &env,
        &harness::system::ServiceLaunch::default(),
        &harness::system::ServiceLaunch::default(),
        &logs.out,
    )
    .await
    .expect("services start");
    let gateway = system.gateway.address("http").expect("gateway address");
    let dropping = start_proxy(gateway, true).await;
    let faithful = start_proxy(gateway, false).await;

    let (code, out, result) =
        tokio::task::spawn_blocking(move || run_through(dropping, "unanswered-dropping"))
            .await
            .expect("harness ran");
    let clean = tokio::task::spawn_blocking(move || run_through(faithful, "unanswered-clean"))
        .await
        .expect("harness ran");
    system.stop().await;

    // Dropped: every other traced request is sampled, failed and said why.
    let traces = &result["verification"]["traces"];
    assert_eq!(code, Some(1), "{out}\n{traces:#}");
    let sampled = traces["sampled"].as_u64().expect("sampled");
    let unanswered = traces["unanswered"].as_u64().expect("unanswered");
    assert!(sampled >= 10, "{traces:#}");
    assert_eq!(unanswered, sampled / 2, "{traces:#}");
    assert_eq!(
        traces["failed_checks"]["response"], unanswered,
        "{traces:#}"
    );
    assert_eq!(traces["passed"], sampled - unanswered, "{traces:#}");
    let failures: Vec<&str> = traces["failing"]
        .as_array()
        .expect("failing")
        .iter()
        .flat_map(|t| t["failures"].as_array().expect("failures"))
        .filter(|f| f["check"] == "response")
        .filter_map(|f| f["detail"].as_str())
        .collect();
    assert_eq!(failures.len() as u64, unanswered, "{traces:#}");
    assert!(
        failures.iter().all(|d| d
            .strip_prefix("the request got no response: ")
            .is_some_and(|why| !why.is_empty())),
        "{failures:#?}"
    );
    assert!(
        out.contains(&format!("{unanswered} sampled request(s) got no response")),
        "{out}"
    );
    assert!(out.contains("failed response:"), "{out}");

    // Nothing dropped: no false alarm.
    let (code, out, result) = clean;
    let traces = &result["verification"]["traces"];
    assert_eq!(code, Some(0), "{out}\n{traces:#}");
    assert_eq!(traces["unanswered"], 0, "{traces:#}");
    assert_eq!(traces["passed"], traces["sampled"], "{traces:#}");
}
