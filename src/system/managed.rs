//! The bundled engine and gateway as child processes of the harness, on ephemeral loopback ports.
//!
//! The services are this same executable's `engine` and `gateway` subcommands, so that a fresh
//! clone needs one build. Each child gets its own process group (a terminal's Ctrl-C reaches only
//! the harness, which stops the load first and the services after), dies with the harness (parent
//! death signal), is killed if dropped, and logs to a file in the output directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use engine::ready::Ready;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a service may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a service may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// How to launch one service: extra flags and environment on top of the harness's own.
#[derive(Debug, Clone, Default)]
pub struct ServiceLaunch {
    /// Flags after the subcommand.
    pub args: Vec<String>,
    /// Environment variables, over the harness's own.
    pub env: BTreeMap<String, String>,
    /// A program, with its flags, that runs the service (`valgrind --tool=callgrind ...`): the
    /// service is then its last argument. Empty to run the service directly.
    pub wrapper: Vec<String>,
}

impl ServiceLaunch {
    /// The scenario's flags, and an environment of the common variables, then the harness's own
    /// settings, then the scenario's variables. The harness's settings (ephemeral ports, the
    /// engine's address) go through the environment because clap refuses a flag given twice,
    /// while a flag beats its environment variable: a scenario can still set any of them.
    fn merged<const N: usize>(
        &self,
        own_env: [(&str, String); N],
        common_env: &BTreeMap<String, String>,
    ) -> (Vec<String>, BTreeMap<String, String>) {
        let mut env = common_env.clone();
        env.extend(own_env.map(|(key, value)| (key.to_owned(), value)));
        env.extend(self.env.clone());
        (self.args.clone(), env)
    }
}

/// Why the managed system did not come up; each is exit 3, naming the service and its log.
#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    /// The process could not be started.
    #[error("starting the {service}: {source}")]
    Spawn {
        /// Which service.
        service: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It exited before printing its ready line.
    #[error(
        "the {service} exited before it was ready ({status}); its log, {log}, ends with:\n{tail}"
    )]
    Exited {
        /// Which service.
        service: &'static str,
        /// Its exit status, as the OS reports it.
        status: String,
        /// Its log file.
        log: PathBuf,
        /// The last lines of that log.
        tail: String,
    },
    /// It printed no ready line in time.
    #[error("the {service} printed no ready line within {timeout:?}; see {log}")]
    NotReady {
        /// Which service.
        service: &'static str,
        /// How long it was given.
        timeout: Duration,
        /// Its log file.
        log: PathBuf,
    },
    /// Its ready line lacks a listener the harness needs.
    #[error("the {service}'s ready line names no {listener:?} listener")]
    MissingListener {
        /// Which service.
        service: &'static str,
        /// The listener's name (`http`, `grpc`, `metrics`).
        listener: &'static str,
    },
    /// Its log file could not be created.
    #[error("creating the log file {path}: {source}")]
    Log {
        /// The log file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A running service.
pub struct ServiceProcess {
    name: &'static str,
    child: Child,
    /// Its ready line: its listeners' addresses and whether it traces.
    pub ready: Ready,
    /// Its log file (stdout and stderr).
    pub log: PathBuf,
}

impl ServiceProcess {
    async fn start(
        exe: &Path,
        wrapper: &[String],
        name: &'static str,
        subcommand: &str,
        args: Vec<String>,
        env: &BTreeMap<String, String>,
        log_dir: &Path,
    ) -> Result<Self, SystemError> {
        let log = log_dir.join(format!("{subcommand}.log"));
        let log_file = std::fs::File::create(&log).map_err(|source| SystemError::Log {
            path: log.clone(),
            source,
        })?;
        let mut command = match wrapper.split_first() {
            Some((program, flags)) => {
                let mut command = Command::new(program);
                command.args(flags).arg(exe);
                command
            }
            None => Command::new(exe),
        };
        command
            .arg(subcommand)
            .args(args)
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .process_group(0)
            .kill_on_drop(true);
        die_with_harness(&mut command);
        let mut child = command.spawn().map_err(|source| SystemError::Spawn {
            service: name,
            source,
        })?;
        let Some(stdout) = child.stdout.take() else {
            unreachable!("stdout is piped")
        };
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(READY_TIMEOUT, lines.next_line()).await;
        let ready = match first {
            Ok(Ok(Some(line))) => Ready::parse(&line),
            Ok(_) => None,
            Err(_) => {
                return Err(SystemError::NotReady {
                    service: name,
                    timeout: READY_TIMEOUT,
                    log,
                });
            }
        };
        // Keep reading stdout, so that a service writing to it later never meets a closed pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        match ready {
            Some(ready) => Ok(ServiceProcess {
                name,
                child,
                ready,
                log,
            }),
            None => {
                let status = match tokio::time::timeout(Duration::from_secs(5), child.wait()).await
                {
                    Ok(Ok(status)) => status.to_string(),
                    _ => "still running, killed".to_owned(),
                };
                Err(SystemError::Exited {
                    service: name,
                    status,
                    tail: tail(&log, 20),
                    log,
                })
            }
        }
    }

    /// The bound address of one of the service's listeners, as its ready line names them.
    pub fn address(&self, listener: &'static str) -> Result<std::net::SocketAddr, SystemError> {
        self.ready
            .listen
            .get(listener)
            .copied()
            .ok_or(SystemError::MissingListener {
                service: self.name,
                listener,
            })
    }

    /// `core engine` or `API gateway`, for messages.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Its process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Whether the process has exited (a crash during the run).
    pub fn try_exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM, then SIGKILL if it has not exited within the stop timeout.
    pub async fn stop(mut self) -> Option<ExitStatus> {
        terminate(&mut self.child, &format!("the {}", self.name), STOP_TIMEOUT).await
    }
}

/// Makes the child of `command` die with the harness (a parent-death SIGKILL), so that no launched
/// process outlives a harness that was killed.
pub(super) fn die_with_harness(command: &mut Command) {
    // SAFETY: the closure runs in the child between fork and exec and only makes
    // async-signal-safe system calls (prctl, getppid), allocating nothing. The parent-death
    // signal fires when the forking thread exits: the harness forks from the thread that runs
    // the whole command (block_on on the main thread), so that is when the harness exits.
    unsafe {
        let parent = nix::unistd::getpid();
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
            // The harness may have died before the signal was armed.
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::other("the harness exited during launch"));
            }
            Ok(())
        });
    }
}

/// SIGTERM, then SIGKILL if `child` has not exited within `grace`: a process is given the time to
/// flush what it holds (spans, logs) but never to hang the run. `what` names it in the notice.
pub(super) async fn terminate(
    child: &mut Child,
    what: &str,
    grace: Duration,
) -> Option<ExitStatus> {
    if let Some(pid) = child.id() {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
    }
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(Ok(status)) => Some(status),
        _ => {
            eprintln!("harness: {what} did not exit within {grace:?} of SIGTERM; killed it");
            let _ = child.kill().await;
            None
        }
    }
}

/// The last `lines` lines of a log file, for error messages.
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The engine and gateway, started and wired together.
pub struct ManagedSystem {
    /// The core engine (gRPC).
    pub engine: ServiceProcess,
    /// The API gateway (HTTP), pointed at the engine.
    pub gateway: ServiceProcess,
}

impl ManagedSystem {
    /// Starts the engine, then the gateway pointed at it; both on ephemeral loopback ports, both
    /// as subcommands of `exe` (the harness binary). `common_env` goes to both (tracing settings);
    /// each launch adds its own flags and environment.
    pub async fn start(
        exe: &Path,
        common_env: &BTreeMap<String, String>,
        engine: &ServiceLaunch,
        gateway: &ServiceLaunch,
        log_dir: &Path,
    ) -> Result<Self, SystemError> {
        let (engine_args, engine_env) = engine.merged(
            [
                ("ENGINE_GRPC_LISTEN", "127.0.0.1:0".to_owned()),
                ("ENGINE_METRICS_LISTEN", "127.0.0.1:0".to_owned()),
            ],
            common_env,
        );
        let engine_process = ServiceProcess::start(
            exe,
            &engine.wrapper,
            "core engine",
            "engine",
            engine_args,
            &engine_env,
            log_dir,
        )
        .await?;

        match Self::start_gateway(exe, &engine_process, common_env, gateway, log_dir).await {
            Ok(gateway_process) => Ok(ManagedSystem {
                engine: engine_process,
                gateway: gateway_process,
            }),
            Err(error) => {
                engine_process.stop().await;
                Err(error)
            }
        }
    }

    async fn start_gateway(
        exe: &Path,
        engine: &ServiceProcess,
        common_env: &BTreeMap<String, String>,
        gateway: &ServiceLaunch,
        log_dir: &Path,
    ) -> Result<ServiceProcess, SystemError> {
        let engine_url = format!("http://{}", engine.address("grpc")?);
        let (args, env) = gateway.merged(
            [
                ("GATEWAY_LISTEN", "127.0.0.1:0".to_owned()),
                ("GATEWAY_ENGINE_URL", engine_url),
            ],
            common_env,
        );
        ServiceProcess::start(
            exe,
            &gateway.wrapper,
            "API gateway",
            "gateway",
            args,
            &env,
            log_dir,
        )
        .await
    }

    /// Why the system can no longer be measured, if a service has exited on its own.
    pub fn exited(&mut self) -> Option<String> {
        [&mut self.engine, &mut self.gateway]
            .into_iter()
            .find_map(|service| {
                service.try_exited().map(|status| {
                    format!(
                        "the {} exited during the run ({status}); see {}",
                        service.name(),
                        service.log.display()
                    )
                })
            })
    }

    /// Stops the gateway first (no new engine calls), then the engine.
    pub async fn stop(self) {
        self.gateway.stop().await;
        self.engine.stop().await;
    }
}
