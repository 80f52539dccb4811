//! A real Jaeger v2 for end-to-end tests: the binary `scripts/jaeger` builds (Jaeger v1.75.0's
//! `cmd/jaeger`), run with the compose stack's `observability/jaeger.yaml` and only its ports
//! moved to free loopback ones, exactly as the harness launches it for `system.managed.jaeger`.
//! It is killed, and its directory removed, when dropped.
//!
//! Where no binary can be had (no `HARNESS_JAEGER_BIN`, none cached, and no Go to build one),
//! [`binary`] returns `None` and the caller skips, unless `HARNESS_REQUIRE_JAEGER=1` (set by
//! `scripts/test`, so CI) makes that a failure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::system::jaeger::{BINARY_VAR, JaegerPorts, STACK_CONFIG, cached_binary};
use nix::sys::signal::Signal;

const REQUIRE_VAR: &str = "HARNESS_REQUIRE_JAEGER";
/// The first call may wait for another test's `scripts/jaeger` to build it (minutes, once).
const BUILD_TIMEOUT: Duration = Duration::from_secs(900);
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The Jaeger v2 binary, built by `scripts/jaeger` when missing and Go is there; `None` (the
/// caller skips) when it cannot be had and the environment does not require it.
pub(crate) fn binary(test: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(BINARY_VAR).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let required = std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1");
    let cached = cached_binary().filter(|path| path.is_file());
    if cached.is_none() && super::find_on_path("go").is_none() {
        assert!(
            !required,
            "{test}: no Jaeger binary and no `go` to build one, but {REQUIRE_VAR}=1 requires it; \
             install Go and run scripts/jaeger"
        );
        eprintln!(
            "note: {test}: skipping: no Jaeger v2 binary (set {BINARY_VAR}, or install Go and run \
             scripts/jaeger)"
        );
        return None;
    }
    // Also when cached: the script checks the binary still starts, and holds its lock while
    // another test builds it.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(root.join("scripts/jaeger"))
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running scripts/jaeger");
    let deadline = Instant::now() + BUILD_TIMEOUT;
    while child
        .try_wait()
        .expect("waiting for scripts/jaeger")
        .is_none()
    {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{test}: scripts/jaeger took longer than {BUILD_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("scripts/jaeger output");
    if !output.status.success() {
        let why = String::from_utf8_lossy(&output.stderr);
        assert!(
            !required,
            "{test}: scripts/jaeger failed ({}):\n{why}",
            output.status
        );
        eprintln!("note: {test}: skipping: scripts/jaeger failed:\n{why}");
        return None;
    }
    let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(!path.is_empty(), "{test}: scripts/jaeger printed no path");
    Some(PathBuf::from(path))
}

/// A running Jaeger.
pub(crate) struct JaegerServer {
    child: Child,
    dir: PathBuf,
    /// Its loopback listeners.
    pub ports: JaegerPorts,
}

impl JaegerServer {
    /// Starts Jaeger and returns once its health check and v3 query API answer.
    pub(crate) async fn start(binary: &Path) -> JaegerServer {
        let dir = std::env::temp_dir().join(format!(
            "harness-jaeger-{}-{}",
            std::process::id(),
            unique()
        ));
        std::fs::create_dir_all(&dir).expect("Jaeger directory");
        let config = dir.join("jaeger.yaml");
        std::fs::write(&config, STACK_CONFIG).expect("Jaeger configuration");
        // A port chosen free may be taken before Jaeger binds it: then it exits, and the next
        // attempt picks others.
        const ATTEMPTS: u32 = 3;
        for attempt in 1..=ATTEMPTS {
            let ports = JaegerPorts::pick().expect("free loopback ports");
            let child = spawn(binary, &ports, &config, &dir);
            let mut server = JaegerServer {
                child,
                dir: dir.clone(),
                ports,
            };
            match server.wait_ready().await {
                Ok(()) => return server,
                Err(exited) if attempt < ATTEMPTS => {
                    eprintln!("Jaeger exited ({exited}); trying other ports");
                }
                Err(exited) => panic!("Jaeger did not start ({exited}):\n{}", server.log()),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// The query service's base URL.
    pub(crate) fn query_url(&self) -> String {
        self.ports.query_url()
    }

    /// `OTEL_EXPORTER_OTLP_ENDPOINT` for services exporting OTLP/gRPC to it.
    pub(crate) fn otlp_grpc_endpoint(&self) -> String {
        self.ports.otlp_grpc_endpoint()
    }

    /// Its OTLP/HTTP traces endpoint (`/v1/traces`).
    pub(crate) fn otlp_http_traces(&self) -> String {
        format!("http://127.0.0.1:{}/v1/traces", self.ports.otlp_http)
    }

    /// The collector's own metrics (`otelcol_*`), Prometheus text.
    pub(crate) fn metrics_url(&self) -> String {
        self.ports.metrics_url()
    }

    /// The end of Jaeger's log, for failure messages.
    pub(crate) fn log(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("jaeger.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Waits for the health check, then the v3 service list; `Err` if the process exits first.
    async fn wait_ready(&mut self) -> Result<(), String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("HTTP client");
        let deadline = Instant::now() + READY_TIMEOUT;
        let services = format!("{}/api/v3/services", self.query_url());
        for url in [self.ports.health_url(), services] {
            loop {
                if let Ok(Some(status)) = self.child.try_wait() {
                    return Err(status.to_string());
                }
                let answer = client.get(&url).send().await;
                if answer.is_ok_and(|r| r.status().is_success()) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "Jaeger did not answer {url} within {READY_TIMEOUT:?}:\n{}",
                    self.log()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }
}

impl Drop for JaegerServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn unique() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn spawn(binary: &Path, ports: &JaegerPorts, config: &Path, dir: &Path) -> Child {
    let log = std::fs::File::create(dir.join("jaeger.log")).expect("Jaeger log file");
    let mut command = Command::new(binary);
    command
        .args(ports.arguments(config))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("Jaeger log file"))
        .stderr(log);
    // SAFETY: runs between fork and exec and only makes async-signal-safe system calls. The
    // server dies with the test process even if the test is killed before its drop runs.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
        });
    }
    command.spawn().expect("starting jaeger")
}
