//! The quote service of `tests/external/python` (a system built on the OpenTelemetry Python SDK,
//! not by this project) for end-to-end tests: `back` and then `front` as child processes on free
//! loopback ports, in the virtual environment `scripts/python-env` caches. Each is stopped with
//! SIGTERM (so that it flushes its spans), then SIGKILL after a grace period, when dropped.
//!
//! Where `python3` is not installed, [`python`] returns `None` and the caller skips, unless
//! `HARNESS_REQUIRE_PYTHON=1` (set by `scripts/test`, so CI) makes that a failure. A machine with
//! Python whose environment cannot be made (no PyPI, no wheels) fails with pip's reason.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

const REQUIRE_VAR: &str = "HARNESS_REQUIRE_PYTHON";
/// The first start may wait for another test's `scripts/python-env` to install the environment.
const ENV_TIMEOUT: Duration = Duration::from_secs(300);
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The interpreter of the quote service's environment (made by `scripts/python-env` the first
/// time), or `None` when there is no `python3` and the environment does not require it.
pub(crate) fn python(test: &str) -> Option<PathBuf> {
    super::tool("python3", test, REQUIRE_VAR, "python3-venv")?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(root.join("scripts/python-env"))
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running scripts/python-env");
    let deadline = Instant::now() + ENV_TIMEOUT;
    while child
        .try_wait()
        .expect("waiting for scripts/python-env")
        .is_none()
    {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{test}: scripts/python-env took longer than {ENV_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("scripts/python-env output");
    assert!(
        output.status.success(),
        "{test}: scripts/python-env failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(
        !path.is_empty(),
        "{test}: scripts/python-env printed no path"
    );
    Some(PathBuf::from(path))
}

/// How to run the pair.
#[derive(Default, Clone)]
pub(crate) struct QuoteOptions {
    /// `QUOTE_API_KEY` for the front: quotes then need `x-api-key` equal to it.
    pub api_key: Option<String>,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` (OTLP/gRPC, e.g. `http://127.0.0.1:4317`) for both; without
    /// it nothing is exported.
    pub otlp_endpoint: Option<String>,
    /// Front faults (`drop-context`, `count-twice`, `reset-traced-half`).
    pub faults: Vec<String>,
    /// Further environment for both, e.g. `OTEL_TRACES_SAMPLER`.
    pub env: Vec<(String, String)>,
}

/// The running pair: front (HTTP, gRPC `quotes.v1.Quotes/GetQuote`) calling back (gRPC
/// `quotes.v1.Prices/GetPrice`).
pub(crate) struct QuoteServices {
    // Dropped in this order: the front first, so that it never calls a stopped back.
    pub front: PythonService,
    pub back: PythonService,
}

impl QuoteServices {
    /// Starts back, then front with `--back`, and returns once both print their ports.
    pub(crate) fn start(python: &Path, options: &QuoteOptions) -> QuoteServices {
        let back = PythonService::start(python, "back", &[], options);
        let mut front_args = vec!["--back".to_owned(), back.grpc.to_string()];
        for fault in &options.faults {
            front_args.extend(["--fault".to_owned(), fault.clone()]);
        }
        let front = PythonService::start(python, "front", &front_args, options);
        assert!(front.http.is_some(), "the front printed no HTTP port");
        QuoteServices { front, back }
    }

    /// The front's HTTP address.
    pub(crate) fn front_http(&self) -> SocketAddr {
        self.front.http.expect("checked at start")
    }
}

/// One role's process and the ports it printed.
pub(crate) struct PythonService {
    child: Child,
    dir: ScratchDir,
    pub role: &'static str,
    pub http: Option<SocketAddr>,
    pub grpc: SocketAddr,
    pub metrics: SocketAddr,
}

impl PythonService {
    fn start(
        python: &Path,
        role: &'static str,
        args: &[String],
        options: &QuoteOptions,
    ) -> PythonService {
        let dir = ScratchDir::new(role);
        let stderr = std::fs::File::create(dir.0.join("stderr.log")).expect("stderr file");
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/external/python/quote_service.py");
        let mut command = Command::new(python);
        command
            .arg(&script)
            .arg(role)
            .args(args)
            // No __pycache__ beside the sources.
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env_remove("QUOTE_API_KEY")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        if let Some(key) = &options.api_key {
            command.env("QUOTE_API_KEY", key);
        }
        if let Some(endpoint) = &options.otlp_endpoint {
            command.env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint);
        }
        command.envs(options.env.iter().map(|(k, v)| (k, v)));
        // SAFETY: runs between fork and exec and only makes async-signal-safe system calls. The
        // service dies with the test process even if the test is killed before its drop runs.
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
            });
        }
        let mut child = command.spawn().expect("starting the quote service");
        let line = match first_line(&mut child) {
            Ok(line) => line,
            Err(why) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("quote service {role}: {why}:\n{}", dir.log());
            }
        };
        let ports: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("quote service {role} printed {line:?}, not JSON: {e}"));
        let port = |name: &str| -> Option<SocketAddr> {
            let port = u16::try_from(ports.get(name)?.as_u64()?).ok()?;
            Some(SocketAddr::from(([127, 0, 0, 1], port)))
        };
        let (Some(grpc), Some(metrics)) = (port("grpc"), port("metrics")) else {
            panic!("quote service {role} printed {line:?}: no grpc or metrics port");
        };
        PythonService {
            http: port("http"),
            child,
            dir,
            role,
            grpc,
            metrics,
        }
    }

    /// The end of the service's stderr, for failure messages.
    pub(crate) fn log(&self) -> String {
        self.dir.log()
    }

    /// The metrics page's URL.
    pub(crate) fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.metrics)
    }
}

impl Drop for PythonService {
    fn drop(&mut self) {
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "quote service {} did not stop within {STOP_GRACE:?} of SIGTERM; killing it",
            self.role
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The ports line, read on a thread so that a silent process cannot hang the test.
fn first_line(child: &mut Child) -> Result<String, String> {
    let stdout = child.stdout.take().expect("stdout is piped");
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout).take(4096);
        let mut line = String::new();
        let read = reader.read_line(&mut line).map(|_| line);
        let _ = send.send(read);
        // Keep the pipe open and drained for as long as the process lives.
        let mut rest = reader.into_inner();
        let _ = std::io::copy(&mut rest, &mut std::io::sink());
    });
    match receive.recv_timeout(READY_TIMEOUT) {
        Ok(Ok(line)) if !line.trim().is_empty() => Ok(line.trim().to_owned()),
        Ok(Ok(_)) => Err(format!(
            "exited before printing its ports ({})",
            child
                .wait()
                .map_or_else(|e| e.to_string(), |s| s.to_string())
        )),
        Ok(Err(e)) => Err(format!("reading its stdout: {e}")),
        Err(_) => Err(format!("printed no ports within {READY_TIMEOUT:?}")),
    }
}

/// The service's stderr, removed at the end of the test.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(role: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "harness-quote-{role}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("scratch directory");
        ScratchDir(path)
    }

    fn log(&self) -> String {
        let text = std::fs::read_to_string(self.0.join("stderr.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
