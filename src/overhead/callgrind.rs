//! Counting a running service's instructions with valgrind's callgrind: the service is launched
//! under it, its counters are zeroed before a window and dumped after (`callgrind_control`), and
//! the dump's `summary:` line is the instructions executed in between, by every thread.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

/// How long `callgrind_control` may take to reach a service and hear back.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(60);
/// The `summary:` line is in a dump's header; a dump's per-function body can run to megabytes.
const HEADER_BYTES: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub(crate) enum CallgrindError {
    #[error(
        "counting instructions needs valgrind's {0} on PATH (Debian's valgrind package); \
         install it, or remove overhead.instructions from the scenario"
    )]
    Missing(&'static str),
    #[error("{command} for process {pid}: {source}")]
    Control {
        command: &'static str,
        pid: u32,
        source: std::io::Error,
    },
    #[error("{command} for process {pid} failed ({status}): {output}")]
    Refused {
        command: &'static str,
        pid: u32,
        status: String,
        output: String,
    },
    #[error("{command} for process {pid} did not finish within {CONTROL_TIMEOUT:?}")]
    Timeout { command: &'static str, pid: u32 },
    #[error("reading the callgrind dump {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the callgrind dump {path} has no `summary:` line in its first {HEADER_BYTES} bytes")]
    NoSummary { path: PathBuf },
}

/// valgrind and its control program, found on `PATH`.
#[derive(Debug, Clone)]
pub(crate) struct Callgrind {
    valgrind: PathBuf,
    control: PathBuf,
}

impl Callgrind {
    pub(crate) fn find() -> Result<Self, CallgrindError> {
        Ok(Callgrind {
            valgrind: on_path("valgrind").ok_or(CallgrindError::Missing("valgrind"))?,
            control: on_path("callgrind_control")
                .ok_or(CallgrindError::Missing("callgrind_control"))?,
        })
    }

    /// The command line that runs a service under callgrind, its counts going to `out` and
    /// valgrind's own messages beside it (not into the service's log).
    pub(crate) fn wrapper(&self, out: &Path) -> Vec<String> {
        vec![
            self.valgrind.display().to_string(),
            "--tool=callgrind".to_owned(),
            format!("--callgrind-out-file={}", out.display()),
            format!("--log-file={}.log", out.display()),
        ]
    }

    /// Sets the process's counters to zero.
    pub(crate) async fn zero(&self, pid: u32) -> Result<(), CallgrindError> {
        self.control("--zero", pid).await
    }

    /// Dumps the counters since the last zero, as the process's `number`-th dump (from 1), and
    /// returns the instructions they hold. `out` is the file given to [`Self::wrapper`].
    pub(crate) async fn dump(
        &self,
        pid: u32,
        out: &Path,
        number: usize,
    ) -> Result<u64, CallgrindError> {
        self.control("--dump", pid).await?;
        let mut path = out.as_os_str().to_owned();
        path.push(format!(".{number}"));
        summary(Path::new(&path))
    }

    async fn control(&self, command: &'static str, pid: u32) -> Result<(), CallgrindError> {
        let run = Command::new(&self.control)
            .arg(command)
            .arg(pid.to_string())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(CONTROL_TIMEOUT, run)
            .await
            .map_err(|_| CallgrindError::Timeout { command, pid })?
            .map_err(|source| CallgrindError::Control {
                command,
                pid,
                source,
            })?;
        // callgrind_control says "OK." per process it reached; it exits 0 even when it found none.
        let text = String::from_utf8_lossy(&output.stdout);
        if output.status.success() && text.contains("OK.") {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(CallgrindError::Refused {
            command,
            pid,
            status: output.status.to_string(),
            output: format!("{}{}", text.trim(), stderr.trim())
                .chars()
                .take(500)
                .collect(),
        })
    }
}

/// The `summary:` total of a callgrind dump (its first event, instructions, with the default
/// event set).
fn summary(path: &Path) -> Result<u64, CallgrindError> {
    let read_error = |source| CallgrindError::Read {
        path: path.to_owned(),
        source,
    };
    let mut head = String::new();
    std::fs::File::open(path)
        .map_err(read_error)?
        .take(HEADER_BYTES)
        .read_to_string(&mut head)
        .map_err(read_error)?;
    parse_summary(&head).ok_or_else(|| CallgrindError::NoSummary {
        path: path.to_owned(),
    })
}

fn parse_summary(head: &str) -> Option<u64> {
    head.lines()
        .find_map(|line| line.strip_prefix("summary:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_line_gives_the_instructions() {
        let head = "version: 1\ncreator: callgrind-3.19.0\npid: 11298\ncmd:  harness engine\n\
                    part: 1\n\ndesc: Trigger: dump\n\nevents: Ir\nsummary: 147705\n\nfl= (1)\n";
        assert_eq!(parse_summary(head), Some(147_705));
        assert_eq!(parse_summary("events: Ir Dr\nsummary: 12 34\n"), Some(12));
        assert_eq!(parse_summary("events: Ir\ntotals: 5\n"), None);
        assert_eq!(parse_summary("summary: lots\n"), None);
    }

    #[test]
    fn a_missing_or_empty_dump_is_an_error_naming_it() {
        let dir = std::env::temp_dir().join(format!("harness-callgrind-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let missing = dir.join("none.out");
        let error = summary(&missing).expect_err("no file").to_string();
        assert!(error.contains("none.out"), "{error}");
        let empty = dir.join("empty.out");
        std::fs::write(&empty, "events: Ir\n").expect("write");
        let error = summary(&empty).expect_err("no summary").to_string();
        assert!(
            error.contains("empty.out") && error.contains("summary"),
            "{error}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
