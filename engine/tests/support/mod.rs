//! Real service processes on ephemeral ports, and what the tests need around them.
// Each test crate uses a part of it.
#![allow(dead_code)]

pub mod otlp;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine::ready::Ready;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const ENGINE: &str = env!("CARGO_BIN_EXE_core-engine");
pub const GATEWAY: &str = env!("CARGO_BIN_EXE_api-gateway");
pub const TRACEPARENT_SPAN_ID: &str = "00f067aa0ba902b7";

/// A random trace id per call, so tests sharing a receiver never mix their traces.
pub fn new_trace_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    format!("{:016x}{:016x}", nanos ^ u64::from(std::process::id()), n)
}

pub fn traceparent(trace_id: &str) -> String {
    format!("00-{trace_id}-{TRACEPARENT_SPAN_ID}-01")
}

/// A running service process, killed if the test ends without stopping it.
pub struct Service {
    child: Child,
    pub ready: Ready,
    logs: Arc<Mutex<Vec<String>>>,
    log_reader: tokio::task::JoinHandle<()>,
}

impl Service {
    pub async fn start(program: &str, args: &[String], env: &[(String, String)]) -> Service {
        let mut command = Command::new(program);
        // Nothing inherited: an OTEL_*, ENGINE_* or GATEWAY_* variable of the caller's must not
        // change what a test sees.
        command
            .env_clear()
            .args(args)
            .env("RUST_LOG", "info")
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for key in [
            "OTEL_SDK_DISABLED",
            "OTEL_SERVICE_NAME",
            "OTEL_TRACES_SAMPLER",
            "OTEL_TRACES_SAMPLER_ARG",
            "OTEL_RESOURCE_ATTRIBUTES",
        ] {
            command.env_remove(key);
        }
        command.envs(env.iter().map(|(k, v)| (k, v)));
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {program}: {e}"));

        let logs = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&logs);
        let log_reader = tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().expect("log lock").push(line);
            }
        });

        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{program} printed no ready line in 30 s; logs: {:?}",
                    logs.lock()
                )
            })
            .expect("reading stdout");
        let line =
            first.unwrap_or_else(|| panic!("{program} closed stdout; logs: {:?}", logs.lock()));
        let ready = Ready::parse(&line).unwrap_or_else(|| panic!("not a ready line: {line}"));
        Service {
            child,
            ready,
            logs,
            log_reader,
        }
    }

    pub fn addr(&self, listener: &str) -> SocketAddr {
        self.ready.listen[listener]
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id().expect("running") as i32)
    }

    /// Waits until a log line satisfies `found`; panics after `timeout`.
    pub async fn wait_for_log(
        &self,
        timeout: Duration,
        found: impl Fn(&serde_json::Value) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.logs().iter().any(&found) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no such log line after {timeout:?}; logs: {:#?}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Log lines as JSON objects; panics on a line that is not one.
    pub fn logs(&self) -> Vec<serde_json::Value> {
        self.logs
            .lock()
            .expect("log lock")
            .iter()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("log line {l:?} is not JSON: {e}"))
            })
            .collect()
    }

    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).expect("sending a signal");
    }

    /// SIGTERM, then the exit status and every log line; panics if the process outlives `timeout`.
    pub async fn stop(mut self, timeout: Duration) -> (ExitStatus, Vec<serde_json::Value>) {
        self.signal(Signal::SIGTERM);
        let status = tokio::time::timeout(timeout, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("service did not exit within {timeout:?} of SIGTERM"))
            .expect("waiting for the service");
        // The reader ends at end of file, once the process has gone: no line is missed.
        tokio::time::timeout(timeout, &mut self.log_reader)
            .await
            .expect("stderr closes when the process exits")
            .expect("log reader");
        (status, self.logs())
    }
}

/// How to start the engine and gateway pair.
#[derive(Default, Clone)]
pub struct SystemOptions {
    pub tracing: bool,
    pub otlp_endpoint: Option<String>,
    pub engine_args: Vec<String>,
    pub gateway_args: Vec<String>,
}

pub struct System {
    pub engine: Service,
    pub gateway: Service,
    pub http: reqwest::Client,
}

impl System {
    pub async fn start(options: SystemOptions) -> System {
        let mut env = vec![];
        if let Some(endpoint) = &options.otlp_endpoint {
            env.push(("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), endpoint.clone()));
        }
        if !options.tracing {
            env.push(("OTEL_SDK_DISABLED".to_owned(), "true".to_owned()));
        }
        let mut engine_args = strings(&[
            "--grpc-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ]);
        engine_args.extend(options.engine_args.iter().cloned());
        let engine = Service::start(ENGINE, &engine_args, &env).await;
        let mut gateway_args = strings(&["--listen", "127.0.0.1:0", "--engine-url"]);
        gateway_args.push(format!("http://{}", engine.addr("grpc")));
        gateway_args.extend(options.gateway_args.iter().cloned());
        let gateway = Service::start(GATEWAY, &gateway_args, &env).await;
        System {
            engine,
            gateway,
            http: reqwest::Client::new(),
        }
    }

    pub fn fetch_url(&self) -> String {
        format!(
            "http://{}/api/v1/market-data/fetch",
            self.gateway.addr("http")
        )
    }

    pub async fn fetch(
        &self,
        body: serde_json::Value,
        traceparent: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self.http.post(self.fetch_url()).json(&body);
        if let Some(tp) = traceparent {
            request = request.header("traceparent", tp);
        }
        request.send().await.expect("gateway reachable")
    }

    pub async fn gateway_metrics(&self) -> Metrics {
        scrape(
            &self.http,
            &format!("http://{}/api/v1/metrics", self.gateway.addr("http")),
        )
        .await
    }

    pub async fn engine_metrics(&self) -> Metrics {
        scrape(&self.http, &self.engine_metrics_url()).await
    }

    pub fn engine_metrics_url(&self) -> String {
        format!("http://{}/metrics", self.engine.addr("metrics"))
    }

    /// Stops both services, asserts they exited cleanly, and returns their logs (gateway, engine).
    pub async fn stop(self) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
        let (gateway, gateway_logs) = self.gateway.stop(Duration::from_secs(20)).await;
        let (engine, engine_logs) = self.engine.stop(Duration::from_secs(20)).await;
        assert!(gateway.success(), "gateway exited with {gateway}");
        assert!(engine.success(), "engine exited with {engine}");
        (gateway_logs, engine_logs)
    }
}

pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Samples of one scrape, keyed by the series as written (`name{labels}`).
pub struct Metrics(pub HashMap<String, f64>);

impl Metrics {
    /// The samples of a Prometheus text exposition.
    pub fn parse(text: &str) -> Metrics {
        Metrics(
            text.lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .filter_map(|l| {
                    let (series, value) = l.rsplit_once(' ')?;
                    Some((series.to_owned(), value.parse().ok()?))
                })
                .collect(),
        )
    }

    pub fn get(&self, series: &str) -> f64 {
        self.0.get(series).copied().unwrap_or(0.0)
    }

    /// Waits until `series` in a fresh scrape of `url` equals `value`; panics after `timeout`.
    pub async fn wait_for(
        http: &reqwest::Client,
        url: &str,
        series: &str,
        value: f64,
        timeout: Duration,
    ) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let seen = scrape(http, url).await.get(series);
            if seen == value {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{series} is {seen}, not {value}, after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn has_family(&self, name: &str) -> bool {
        self.0
            .keys()
            .any(|k| k == name || k.starts_with(&format!("{name}{{")))
    }
}

async fn scrape(http: &reqwest::Client, url: &str) -> Metrics {
    let response = http
        .get(url)
        .send()
        .await
        .expect("metrics endpoint reachable");
    assert_eq!(response.status(), 200, "{url}");
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.expect("metrics body");
    Metrics::parse(&text)
}
