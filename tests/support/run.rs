//! Runs of the `harness` binary in a scratch directory, with a marker in the environment of
//! everything they start so that leftover processes can be found.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const HARNESS: &str = env!("CARGO_BIN_EXE_harness");

/// A scratch output directory, and a marker in the environment of everything the run starts, so
/// that leftover processes can be found.
pub struct Run {
    pub out: PathBuf,
    pub marker: String,
}

impl Run {
    pub fn new(name: &str) -> Self {
        let marker = format!("harness-cli-{name}-{}", std::process::id());
        let out = std::env::temp_dir().join(&marker);
        let _ = std::fs::remove_dir_all(&out);
        Run { out, marker }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(HARNESS);
        command
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .args(["--out", &self.out.display().to_string(), "--quiet"])
            .env("HARNESS_TEST_MARKER", &self.marker)
            .stdin(Stdio::null());
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("harness runs")
    }

    pub fn result(&self, scenario: &str) -> Value {
        let path = self.out.join(scenario).join("result.json");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).expect("result.json is JSON")
    }

    /// Processes still running with this run's marker in their environment.
    pub fn leftovers(&self) -> Vec<u32> {
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

    pub fn assert_no_leftovers(&self) {
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
    pub fn write_scenario(&self, name: &str, text: &str) -> String {
        std::fs::create_dir_all(&self.out).expect("output directory");
        let path = self.out.join(name);
        std::fs::write(&path, text).expect("scenario written");
        path.display().to_string()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.out);
    }
}
