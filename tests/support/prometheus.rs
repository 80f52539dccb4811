//! A real Prometheus server for end-to-end tests: a child process on a free loopback port, with
//! its own storage directory and a generated configuration that scrapes the given targets every
//! second. It is killed, and its directory removed, when dropped.
//!
//! Where `prometheus` is not installed, [`binary`] returns `None` and the caller skips, unless
//! `HARNESS_REQUIRE_PROMETHEUS=1` (set by `scripts/test`, so CI) makes that a failure.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::metrics::PrometheusSource;
use harness::metrics::prometheus::Health;
use nix::sys::signal::Signal;

const REQUIRE_VAR: &str = "HARNESS_REQUIRE_PROMETHEUS";
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const FIRST_SCRAPE_TIMEOUT: Duration = Duration::from_secs(30);

/// One scrape job: Prometheus's `job` label is the service name.
pub(crate) struct ScrapeTarget<'a> {
    pub job: &'a str,
    pub address: SocketAddr,
    pub metrics_path: &'a str,
    /// A file whose content Prometheus sends as `Authorization: Bearer <content>`.
    pub credentials_file: Option<&'a Path>,
}

/// The `prometheus` executable on `PATH`, if any; panics instead of returning `None` when the
/// environment requires Prometheus.
pub(crate) fn binary(test: &str) -> Option<PathBuf> {
    super::tool("prometheus", test, REQUIRE_VAR, "prometheus")
}

/// `promtool`, which the same Debian package ships; `None` and panics as for [`binary`].
pub(crate) fn promtool(test: &str) -> Option<PathBuf> {
    super::tool("promtool", test, REQUIRE_VAR, "prometheus")
}

pub(crate) struct PrometheusServer {
    child: Child,
    dir: ScratchDir,
    /// The base URL of its HTTP API, e.g. `http://127.0.0.1:40123/`.
    pub url: String,
}

impl PrometheusServer {
    /// Starts Prometheus and returns once it is ready and has scraped every target successfully.
    pub(crate) async fn start(binary: &Path, targets: &[ScrapeTarget<'_>]) -> PrometheusServer {
        let server = Self::launch(binary, targets).await;
        server.wait_first_scrapes(targets).await;
        server
    }

    /// Starts Prometheus and returns once it has tried every target and found each down, with
    /// the error of its last scrape (for targets that must refuse it).
    pub(crate) async fn start_refused(
        binary: &Path,
        targets: &[ScrapeTarget<'_>],
    ) -> (PrometheusServer, Vec<String>) {
        let server = Self::launch(binary, targets).await;
        let api = PrometheusSource::new(&server.url, vec![]).expect("Prometheus URL");
        let deadline = Instant::now() + FIRST_SCRAPE_TIMEOUT;
        loop {
            let state = api.targets().await;
            if let Ok(found) = &state
                && found.active.len() == targets.len()
                && found
                    .active
                    .iter()
                    .all(|t| t.health == Health::Down && !t.last_error.is_empty())
            {
                let errors = found.active.iter().map(|t| t.last_error.clone()).collect();
                return (server, errors);
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus had not found all {} targets down within {FIRST_SCRAPE_TIMEOUT:?}: {state:#?}\n{}",
                targets.len(),
                server.dir.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Starts Prometheus and returns once it is ready, whether or not its targets are up yet (for
    /// services that something else starts later).
    pub(crate) async fn launch(binary: &Path, targets: &[ScrapeTarget<'_>]) -> PrometheusServer {
        let dir = ScratchDir::new();
        std::fs::create_dir_all(dir.0.join("data")).expect("Prometheus directory");
        let config = dir.0.join("prometheus.yml");
        std::fs::write(&config, config_text(targets)).expect("Prometheus configuration");
        check_config(&config);

        // The port is free when chosen; should another process take it before Prometheus binds
        // it, Prometheus exits and the next attempt picks another.
        const ATTEMPTS: u32 = 3;
        for attempt in 1..=ATTEMPTS {
            let port = free_port();
            let url = format!("http://127.0.0.1:{port}/");
            let mut child = spawn(binary, &dir.0, &config, port);
            match wait_ready(&mut child, &url, &dir).await {
                Ok(()) => return PrometheusServer { child, dir, url },
                Err(exited) if attempt < ATTEMPTS => {
                    eprintln!("Prometheus on port {port} exited ({exited}); trying another port");
                }
                Err(exited) => panic!("Prometheus did not start ({exited}):\n{}", dir.log()),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// Waits until every target is up, as `/api/v1/targets` reports it.
    async fn wait_first_scrapes(&self, targets: &[ScrapeTarget<'_>]) {
        let api = PrometheusSource::new(&self.url, vec![]).expect("Prometheus URL");
        let deadline = Instant::now() + FIRST_SCRAPE_TIMEOUT;
        loop {
            let state = api.targets().await;
            if let Ok(found) = &state
                && found.active.len() == targets.len()
                && found.active.iter().all(|t| t.health == Health::Up)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus had not scraped all {} targets within {FIRST_SCRAPE_TIMEOUT:?}: {state:#?}\n{}",
                targets.len(),
                self.dir.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for `/-/ready`; `Err` if the process exits first.
async fn wait_ready(child: &mut Child, url: &str, dir: &ScratchDir) -> Result<(), String> {
    let client = reqwest::Client::new();
    let ready = format!("{url}-/ready");
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(status.to_string());
        }
        let answer = client
            .get(&ready)
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        if answer.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "Prometheus was not ready within {READY_TIMEOUT:?}:\n{}",
                dir.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Prometheus's configuration, storage and log, removed at the end of the test.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!(
            "harness-prometheus-{}-{}",
            std::process::id(),
            unique()
        ));
        std::fs::create_dir_all(&path).expect("scratch directory");
        ScratchDir(path)
    }

    /// The end of Prometheus's log, for failure messages.
    fn log(&self) -> String {
        let text = std::fs::read_to_string(self.0.join("prometheus.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn unique() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// One job per target, scraped every second (the timeout equal to the interval, as Prometheus
/// requires it not to be longer).
fn config_text(targets: &[ScrapeTarget<'_>]) -> String {
    let mut text = String::from(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1m\nscrape_configs:\n",
    );
    for target in targets {
        text.push_str(&format!(
            "  - job_name: {:?}\n    metrics_path: {:?}\n    static_configs:\n      - targets: [{:?}]\n",
            target.job,
            target.metrics_path,
            target.address.to_string()
        ));
        if let Some(file) = target.credentials_file {
            text.push_str(&format!(
                "    authorization: {{type: Bearer, credentials_file: {:?}}}\n",
                file.display().to_string()
            ));
        }
    }
    text
}

/// `promtool check config`, when promtool is installed: a clear message for a bad configuration
/// instead of a server that exits.
fn check_config(config: &Path) {
    let Some(promtool) = super::find_on_path("promtool") else {
        return;
    };
    let output = Command::new(promtool)
        .args(["check", "config"])
        .arg(config)
        .output()
        .expect("running promtool");
    assert!(
        output.status.success(),
        "promtool rejects the generated configuration:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn spawn(binary: &Path, dir: &Path, config: &Path, port: u16) -> Child {
    let log = std::fs::File::create(dir.join("prometheus.log")).expect("Prometheus log file");
    let mut command = Command::new(binary);
    command
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    // SAFETY: runs between fork and exec and only makes async-signal-safe system calls. The
    // server dies with the test process even if the test is killed before its drop runs.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
        });
    }
    command.spawn().expect("starting prometheus")
}
