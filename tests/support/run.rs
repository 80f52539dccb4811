//! Runs of the `harness` binary in a scratch directory, with a marker in the environment of
//! everything they start so that leftover processes can be found.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub(crate) const HARNESS: &str = env!("CARGO_BIN_EXE_harness");

/// A scratch output directory, and a marker in the environment of everything the run starts, so
/// that leftover processes can be found.
pub(crate) struct Run {
    pub out: PathBuf,
    pub marker: String,
}

impl Run {
    pub(crate) fn new(name: &str) -> Self {
        let marker = format!("harness-cli-{name}-{}", std::process::id());
        let out = std::env::temp_dir().join(&marker);
        let _ = std::fs::remove_dir_all(&out);
        Run { out, marker }
    }

    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(HARNESS);
        command
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .args(["--out", &self.out.display().to_string(), "--quiet"])
            .env("HARNESS_TEST_MARKER", &self.marker)
            .stdin(Stdio::null());
        command
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("harness runs")
    }

    pub(crate) fn result(&self, scenario: &str) -> Value {
        let path = self.out.join(scenario).join("result.json");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).expect("result.json is JSON")
    }

    /// Processes still running with this run's marker in their environment.
    pub(crate) fn leftovers(&self) -> Vec<u32> {
        let marker = format!("HARNESS_TEST_MARKER={}", self.marker);
        std::fs::read_dir("/proc")
            .expect("/proc")
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/environ"))
                    .map(|env| env.split(|&b| b == 0).any(|var| var == marker.as_bytes()))
                    .unwrap_or(false)
            })
            .collect()
    }

    pub(crate) fn assert_no_leftovers(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.leftovers().is_empty() {
            assert!(
                Instant::now() < deadline,
                "processes left behind: {:?}",
                self.leftovers()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Run {
    /// Writes a scenario into the output directory and returns its path, for variants of the
    /// bundled scenarios.
    pub(crate) fn write_scenario(&self, name: &str, text: &str) -> String {
        std::fs::create_dir_all(&self.out).expect("output directory");
        let path = self.out.join(name);
        std::fs::write(&path, text).expect("scenario written");
        path.display().to_string()
    }
}

impl Run {
    /// Starts `harness ARGS` with progress on, sends SIGINT once `count` progress lines starting
    /// with `prefix` have appeared, and returns its exit code (it must exit within 30 s).
    pub(crate) fn interrupt_after(&self, args: &[&str], prefix: &str, count: usize) -> Option<i32> {
        self.signal_after(args, prefix, count, nix::sys::signal::Signal::SIGINT)
            .0
    }

    /// As [`Run::interrupt_after`], with any signal; also returns how long the harness took to
    /// exit after it.
    pub(crate) fn signal_after(
        &self,
        args: &[&str],
        prefix: &str,
        count: usize,
        signal: nix::sys::signal::Signal,
    ) -> (Option<i32>, Duration) {
        use std::io::BufRead;

        let mut child = Command::new(HARNESS)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .args(["--out", &self.out.display().to_string()])
            .env("HARNESS_TEST_MARKER", &self.marker)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("harness starts");
        // Plain progress lines: stderr is not a terminal.
        let stderr = child.stderr.take().expect("piped stderr");
        let mut lines = std::io::BufReader::new(stderr).lines();
        let mut seen = 0;
        while seen < count {
            let line = lines
                .next()
                .expect("progress before the end")
                .expect("utf-8");
            if line.starts_with(prefix) {
                seen += 1;
            }
        }
        // Keep draining stderr so that the harness never blocks on it.
        std::thread::spawn(move || lines.for_each(drop));
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, signal).expect("signal");
        let signalled = Instant::now();
        let deadline = signalled + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return (status.code(), signalled.elapsed());
            }
            assert!(
                Instant::now() < deadline,
                "harness still running 30 s after {signal}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.out);
    }
}

/// The bundled services with tracing off, launched as an external system would run (reached by
/// URL), their logs under `logs.out`.
pub(crate) async fn bundled_services(logs: &Run) -> harness::system::ManagedSystem {
    std::fs::create_dir_all(&logs.out).expect("log directory");
    let env = std::collections::BTreeMap::from([
        ("OTEL_SDK_DISABLED".to_owned(), "true".to_owned()),
        ("HARNESS_TEST_MARKER".to_owned(), logs.marker.clone()),
    ]);
    harness::system::ManagedSystem::start(
        Path::new(HARNESS),
        &env,
        &harness::system::ServiceLaunch::default(),
        &harness::system::ServiceLaunch::default(),
        &logs.out,
    )
    .await
    .expect("services start")
}
