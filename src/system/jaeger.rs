//! Jaeger v2 as a child process of the harness, beside the managed services: the stack's own
//! configuration (`observability/jaeger.yaml`) with only its listeners moved to free loopback
//! ports, so that one command runs load → services → OTLP → Jaeger → query API → verdict.
//!
//! Jaeger v2 is an OpenTelemetry Collector distribution: `--config` loads the file and each
//! `--set KEY=VALUE` overrides one key of it. The binary is found by [`find_binary`]
//! (`scripts/jaeger` builds it once per machine).

use std::ffi::OsString;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// The release `scripts/jaeger` builds: its `cmd/jaeger` is Jaeger v2.
pub const JAEGER_VERSION: &str = "v1.75.0";
/// The compose stack's Jaeger configuration, built into the harness so that a launched Jaeger
/// runs what the stack runs, wherever the harness is started from.
pub const STACK_CONFIG: &str = include_str!("../../observability/jaeger.yaml");
/// The environment variable naming the binary, after `--jaeger-bin`.
pub const BINARY_VAR: &str = "HARNESS_JAEGER_BIN";

/// How long Jaeger may take to answer on its health and query endpoints.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long Jaeger may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// A port chosen free may be taken before Jaeger binds it: then it exits, and another set is tried.
const ATTEMPTS: u32 = 3;

/// Why Jaeger could not be found or started.
#[derive(Debug, thiserror::Error)]
pub enum JaegerLaunchError {
    /// No binary where one is looked for.
    #[error(
        "no Jaeger v2 binary: give --jaeger-bin PATH, set {BINARY_VAR}, put `jaeger` on PATH, or \
         build it once with scripts/jaeger (Jaeger {JAEGER_VERSION}, needs Go); looked for {cache}"
    )]
    NotFound {
        /// Where `scripts/jaeger` would have cached it.
        cache: String,
    },
    /// The binary named explicitly is not there.
    #[error("the Jaeger binary {path} ({from}) does not exist or is not a file")]
    Missing {
        /// The path as given.
        path: PathBuf,
        /// `--jaeger-bin` or the environment variable.
        from: &'static str,
    },
    /// A file (the configuration, the log) could not be written or read.
    #[error("{what} {path}: {source}")]
    File {
        /// What the file is for.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// No free loopback ports.
    #[error("choosing free loopback ports for Jaeger: {0}")]
    Ports(#[source] std::io::Error),
    /// The process could not be started.
    #[error("starting Jaeger {binary}: {source}")]
    Spawn {
        /// The binary.
        binary: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// Jaeger exited before it was ready, every attempt.
    #[error("Jaeger exited before it was ready ({status}); its log, {log}, ends with:\n{tail}")]
    Exited {
        /// Its exit status.
        status: String,
        /// Its log file.
        log: PathBuf,
        /// The end of that log.
        tail: String,
    },
    /// Jaeger ran but did not answer in time.
    #[error(
        "Jaeger did not answer on {url} within {timeout:?} (last: {last}); its log, {log}, ends \
         with:\n{tail}"
    )]
    NotReady {
        /// The endpoint that did not answer.
        url: String,
        /// How long it was given.
        timeout: Duration,
        /// The last answer or error.
        last: String,
        /// Its log file.
        log: PathBuf,
        /// The end of that log.
        tail: String,
    },
}

/// The Jaeger binary: `explicit` (`--jaeger-bin`), else [`BINARY_VAR`], else `jaeger` on `PATH`,
/// else the cache `scripts/jaeger` builds into.
pub fn find_binary(explicit: Option<&Path>) -> Result<PathBuf, JaegerLaunchError> {
    let named = |path: PathBuf, from| {
        if path.is_file() {
            Ok(path)
        } else {
            Err(JaegerLaunchError::Missing { path, from })
        }
    };
    if let Some(path) = explicit {
        return named(path.to_owned(), "--jaeger-bin");
    }
    if let Some(path) = std::env::var_os(BINARY_VAR).filter(|p| !p.is_empty()) {
        return named(PathBuf::from(path), BINARY_VAR);
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("jaeger"))
            .find(|candidate| candidate.is_file())
    });
    if let Some(path) = on_path {
        return Ok(path);
    }
    let cache = cached_binary();
    match cache {
        Some(path) if path.is_file() => Ok(path),
        other => Err(JaegerLaunchError::NotFound {
            cache: other.map_or_else(
                || "$XDG_CACHE_HOME or $HOME (neither is set)".to_owned(),
                |p| p.display().to_string(),
            ),
        }),
    }
}

/// Where `scripts/jaeger` keeps the binary: `${XDG_CACHE_HOME:-$HOME/.cache}/harness/…`.
pub fn cached_binary() -> Option<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))?;
    Some(
        cache
            .join("harness")
            .join(format!("jaeger-{JAEGER_VERSION}"))
            .join("jaeger"),
    )
}

/// The loopback ports of one Jaeger: every listener the stack's configuration opens, plus its
/// own metrics (the collector's telemetry, `otelcol_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JaegerPorts {
    /// OTLP/gRPC in.
    pub otlp_grpc: u16,
    /// OTLP/HTTP in.
    pub otlp_http: u16,
    /// The UI and the HTTP query APIs (v1 and v3).
    pub query_http: u16,
    /// The gRPC query APIs.
    pub query_grpc: u16,
    /// The health check (`/status`).
    pub health: u16,
    /// The collector's own Prometheus metrics.
    pub metrics: u16,
}

impl JaegerPorts {
    /// Six ports free at the moment: all are held open together so that none repeats.
    pub fn pick() -> std::io::Result<Self> {
        let listeners = (0..6)
            .map(|_| TcpListener::bind("127.0.0.1:0"))
            .collect::<std::io::Result<Vec<_>>>()?;
        let ports = listeners
            .iter()
            .map(|l| l.local_addr().map(|a| a.port()))
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(JaegerPorts {
            otlp_grpc: ports[0],
            otlp_http: ports[1],
            query_http: ports[2],
            query_grpc: ports[3],
            health: ports[4],
            metrics: ports[5],
        })
    }

    /// Where services export OTLP/gRPC, as `OTEL_EXPORTER_OTLP_ENDPOINT` takes it.
    pub fn otlp_grpc_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.otlp_grpc)
    }

    /// The query service's base URL (UI, `/api/v3/…`, `/api/…`).
    pub fn query_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.query_http)
    }

    /// The collector's own metrics (`otelcol_receiver_accepted_spans`, …) in Prometheus text.
    pub fn metrics_url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.metrics)
    }

    /// The health check extension's status endpoint.
    pub fn health_url(&self) -> String {
        format!("http://127.0.0.1:{}/status", self.health)
    }

    /// The command line that runs `config` with these ports: `--config`, then one `--set` per
    /// listener, the collector's own metrics on loopback, and no tracing of Jaeger's own queries
    /// (which would export to the standard OTLP port, where another collector may listen).
    pub fn arguments(&self, config: &Path) -> Vec<OsString> {
        let mut config_arg = OsString::from("--config=file:");
        config_arg.push(config.as_os_str());
        let loopback = |port: u16| format!("127.0.0.1:{port}");
        let sets = [
            (
                "receivers.otlp.protocols.grpc.endpoint",
                loopback(self.otlp_grpc),
            ),
            (
                "receivers.otlp.protocols.http.endpoint",
                loopback(self.otlp_http),
            ),
            (
                "extensions.jaeger_query.http.endpoint",
                loopback(self.query_http),
            ),
            (
                "extensions.jaeger_query.grpc.endpoint",
                loopback(self.query_grpc),
            ),
            (
                "extensions.healthcheckv2.http.endpoint",
                loopback(self.health),
            ),
            ("extensions.jaeger_query.enable_tracing", "false".to_owned()),
            ("service.telemetry.metrics.level", "detailed".to_owned()),
            (
                "service.telemetry.metrics.readers",
                format!(
                    "[{{pull: {{exporter: {{prometheus: {{host: 127.0.0.1, port: {}}}}}}}}}]",
                    self.metrics
                ),
            ),
        ];
        std::iter::once(config_arg)
            .chain(
                sets.into_iter()
                    .map(|(key, value)| OsString::from(format!("--set={key}={value}"))),
            )
            .collect()
    }
}

/// A running Jaeger, ready to receive spans and answer queries.
pub struct JaegerProcess {
    child: Child,
    /// Its listeners.
    pub ports: JaegerPorts,
    /// Its log (stdout and stderr).
    pub log: PathBuf,
}

impl JaegerProcess {
    /// Starts `binary` with `config` (the stack's when `None`, written into `dir` for the
    /// record) on free loopback ports, logging to `dir/jaeger.log`, and returns once its health
    /// check and its v3 query API answer.
    pub async fn start(
        binary: &Path,
        config: Option<&Path>,
        dir: &Path,
    ) -> Result<Self, JaegerLaunchError> {
        let config = match config {
            Some(config) => config.to_owned(),
            None => {
                let path = dir.join("jaeger.yaml");
                std::fs::write(&path, STACK_CONFIG).map_err(|source| JaegerLaunchError::File {
                    what: "writing Jaeger's configuration",
                    path: path.clone(),
                    source,
                })?;
                path
            }
        };
        let log = dir.join("jaeger.log");
        let mut attempt = 1;
        loop {
            let ports = JaegerPorts::pick().map_err(JaegerLaunchError::Ports)?;
            let child = spawn(binary, &ports.arguments(&config), &log)?;
            let mut process = JaegerProcess {
                child,
                ports,
                log: log.clone(),
            };
            match process.wait_ready().await {
                Ok(()) => return Ok(process),
                // Most likely a port taken between choosing and binding it.
                Err(JaegerLaunchError::Exited { .. }) if attempt < ATTEMPTS => attempt += 1,
                Err(error) => {
                    process.stop().await;
                    return Err(error);
                }
            }
        }
    }

    async fn wait_ready(&mut self) -> Result<(), JaegerLaunchError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .no_proxy()
            .build()
            .map_err(|e| JaegerLaunchError::Spawn {
                binary: PathBuf::from("(HTTP client)"),
                source: std::io::Error::other(e),
            })?;
        let deadline = Instant::now() + READY_TIMEOUT;
        let services = format!("{}/api/v3/services", self.ports.query_url());
        for url in [self.ports.health_url(), services] {
            let mut last: String;
            loop {
                if let Some(status) = self.try_exited() {
                    return Err(JaegerLaunchError::Exited {
                        status: status.to_string(),
                        tail: tail(&self.log, 20),
                        log: self.log.clone(),
                    });
                }
                match client.get(&url).send().await {
                    Ok(response) if response.status().is_success() => break,
                    Ok(response) => last = format!("HTTP {}", response.status()),
                    Err(error) => last = error.without_url().to_string(),
                }
                if Instant::now() > deadline {
                    return Err(JaegerLaunchError::NotReady {
                        url,
                        timeout: READY_TIMEOUT,
                        last,
                        tail: tail(&self.log, 20),
                        log: self.log.clone(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// Whether Jaeger has exited (a crash during the run).
    pub fn try_exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM (the collector drains its pipeline), then SIGKILL after the stop timeout.
    pub async fn stop(mut self) -> Option<ExitStatus> {
        super::managed::terminate(&mut self.child, "Jaeger", STOP_TIMEOUT).await
    }
}

fn spawn(binary: &Path, args: &[OsString], log: &Path) -> Result<Child, JaegerLaunchError> {
    let file = |log: &Path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|source| JaegerLaunchError::File {
                what: "opening Jaeger's log",
                path: log.to_owned(),
                source,
            })
    };
    let (stdout, stderr) = (file(log)?, file(log)?);
    let mut command = Command::new(binary);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0)
        .kill_on_drop(true);
    super::managed::die_with_harness(&mut command);
    command.spawn().map_err(|source| JaegerLaunchError::Spawn {
        binary: binary.to_owned(),
        source,
    })
}

/// The last `lines` lines of a log, for error messages; at most 64 KiB of it is read.
fn tail(path: &Path, lines: usize) -> String {
    use std::io::{Read as _, Seek as _, SeekFrom};
    const MAX: u64 = 64 * 1024;
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(MAX)));
    let mut bytes = Vec::new();
    let _ = file.take(MAX).read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arguments_move_every_listener_to_loopback_and_keep_the_stack_configuration() {
        let ports = JaegerPorts {
            otlp_grpc: 1001,
            otlp_http: 1002,
            query_http: 1003,
            query_grpc: 1004,
            health: 1005,
            metrics: 1006,
        };
        let args: Vec<String> = ports
            .arguments(Path::new("/x/jaeger.yaml"))
            .into_iter()
            .map(|a| a.into_string().expect("utf-8"))
            .collect();
        assert_eq!(args[0], "--config=file:/x/jaeger.yaml");
        for (key, port) in [
            ("receivers.otlp.protocols.grpc.endpoint", 1001),
            ("receivers.otlp.protocols.http.endpoint", 1002),
            ("extensions.jaeger_query.http.endpoint", 1003),
            ("extensions.jaeger_query.grpc.endpoint", 1004),
            ("extensions.healthcheckv2.http.endpoint", 1005),
        ] {
            let set = format!("--set={key}=127.0.0.1:{port}");
            assert!(args.contains(&set), "{set} missing from {args:?}");
        }
        assert!(
            args.iter()
                .any(|a| a.contains("service.telemetry.metrics.readers")
                    && a.contains("host: 127.0.0.1, port: 1006")),
            "{args:?}"
        );
        assert!(args.contains(&"--set=extensions.jaeger_query.enable_tracing=false".to_owned()));
        // Every endpoint the stack's file opens is overridden: none stays on 0.0.0.0.
        let opened = STACK_CONFIG.matches("endpoint: 0.0.0.0").count();
        let overridden = args.iter().filter(|a| a.contains("=127.0.0.1:")).count();
        assert_eq!(opened, overridden, "{STACK_CONFIG}");
    }

    #[test]
    fn picked_ports_are_distinct() {
        let ports = JaegerPorts::pick().expect("ports");
        let mut all = [
            ports.otlp_grpc,
            ports.otlp_http,
            ports.query_http,
            ports.query_grpc,
            ports.health,
            ports.metrics,
        ];
        all.sort_unstable();
        assert!(all.windows(2).all(|w| w[0] != w[1]), "{all:?}");
    }

    #[test]
    fn an_explicit_binary_that_is_missing_is_named() {
        let error = find_binary(Some(Path::new("/nonexistent/jaeger"))).expect_err("missing");
        let text = error.to_string();
        assert!(
            text.contains("/nonexistent/jaeger") && text.contains("--jaeger-bin"),
            "{text}"
        );
    }
}
