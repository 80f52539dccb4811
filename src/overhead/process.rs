//! What one service process has cost: its CPU time, its minor page faults and its peak resident
//! memory.
//!
//! CPU time is the kernel's per-process total (user plus system, every thread, including threads
//! that have exited): the same utime + stime that `/proc/<pid>/stat` reports, read through the
//! process's CPU clock (`clock_getcpuclockid`) in nanoseconds instead of clock ticks. A tick is
//! 10 ms, as much as a few hundred requests cost, which would drown a 1% effect in rounding.
//! `/proc/<pid>/stat` is the fallback where that clock cannot be read.

use std::path::PathBuf;
use std::time::Duration;

use nix::time::{ClockId, clock_getcpuclockid, clock_gettime};
use nix::unistd::Pid;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ProbeError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {what}")]
    Format { path: PathBuf, what: &'static str },
}

/// A process's running totals at one moment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Usage {
    pub cpu: Duration,
    /// Minor page faults (`minflt` in `/proc/<pid>/stat`), when that could be read. A memory
    /// allocator that hands pages back to the kernel and takes them again pays one for each page
    /// it touches anew, in CPU time that has nothing to do with the work.
    pub minor_faults: Option<u64>,
}

/// Reads one process's resource use.
#[derive(Debug)]
pub(crate) struct ProcessProbe {
    pid: u32,
    clock: Option<ClockId>,
}

impl ProcessProbe {
    pub(crate) fn new(pid: u32) -> Self {
        let clock = i32::try_from(pid)
            .ok()
            .and_then(|pid| clock_getcpuclockid(Pid::from_raw(pid)).ok());
        ProcessProbe { pid, clock }
    }

    /// The CPU time the process has used since it started.
    pub(crate) fn cpu(&self) -> Result<Duration, ProbeError> {
        if let Some(time) = self.clock.and_then(|clock| clock_gettime(clock).ok()) {
            return Ok(Duration::from(time));
        }
        self.stat_cpu()
    }

    /// CPU time and minor page faults so far.
    pub(crate) fn usage(&self) -> Result<Usage, ProbeError> {
        let minor_faults = read(&self.proc_path("stat"))
            .ok()
            .and_then(|stat| stat_field(&stat, 10));
        Ok(Usage {
            cpu: self.cpu()?,
            minor_faults,
        })
    }

    /// utime + stime from `/proc/<pid>/stat`, in clock ticks turned into time.
    pub(crate) fn stat_cpu(&self) -> Result<Duration, ProbeError> {
        let path = self.proc_path("stat");
        let text = read(&path)?;
        let ticks = stat_cpu_ticks(&text).ok_or(ProbeError::Format {
            path,
            what: "no utime and stime fields after the command name",
        })?;
        Ok(Duration::from_secs_f64(
            ticks as f64 / clock_ticks_per_second(),
        ))
    }

    /// Restarts the peak resident set size from the current one, so that the next
    /// [`Self::peak_rss`] covers only what follows. Best effort: where the kernel refuses
    /// (`false`), the peak covers the process's whole life.
    pub(crate) fn reset_peak_rss(&self) -> bool {
        std::fs::write(self.proc_path("clear_refs"), "5").is_ok()
    }

    /// The peak resident set size in bytes (`VmHWM`).
    pub(crate) fn peak_rss(&self) -> Result<u64, ProbeError> {
        let path = self.proc_path("status");
        let text = read(&path)?;
        status_kib(&text, "VmHWM:")
            .map(|kib| kib * 1024)
            .ok_or(ProbeError::Format {
                path,
                what: "no VmHWM line",
            })
    }

    fn proc_path(&self, file: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/{file}", self.pid))
    }
}

fn read(path: &std::path::Path) -> Result<String, ProbeError> {
    std::fs::read_to_string(path).map_err(|source| ProbeError::Read {
        path: path.to_owned(),
        source,
    })
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    Some(stat_field(stat, 14)? + stat_field(stat, 15)?)
}

/// Field `n` (numbered from 1, as proc(5) does) of a `/proc/<pid>/stat` line, for the numeric
/// fields after the command name. The name (field 2) is in parentheses and may itself hold spaces
/// and parentheses, so fields are counted from the last `)`.
fn stat_field(stat: &str, n: usize) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name comes the state, field 3.
    rest.split_whitespace().nth(n.checked_sub(3)?)?.parse().ok()
}

fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()
}

fn clock_ticks_per_second() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|&ticks| ticks > 0)
        .map_or(100.0, |ticks| ticks as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let stat = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 1 0 0 0 250 31 0 0 20 0 9 0";
        assert_eq!(stat_cpu_ticks(stat), Some(281));
        assert_eq!(stat_field(stat, 10), Some(1), "minflt");
        assert_eq!(stat_field(stat, 2), None, "the name is not a number");
        assert_eq!(stat_cpu_ticks("4242 (truncated) S 1 2"), None);
        assert_eq!(stat_cpu_ticks("no parenthesis"), None);
    }

    #[test]
    fn status_lines_give_kibibytes() {
        let status = "Name:\tx\nVmHWM:\t   10240 kB\nVmRSS:\t    8000 kB\n";
        assert_eq!(status_kib(status, "VmHWM:"), Some(10240));
        assert_eq!(status_kib(status, "VmSwap:"), None);
    }

    /// The precise clock and the kernel's tick count describe the same time: a process that has
    /// burnt CPU shows it in both, within the ticks' rounding.
    #[test]
    fn the_cpu_clock_agrees_with_proc_stat() {
        let probe = ProcessProbe::new(std::process::id());
        let start = probe.cpu().expect("own CPU time");
        let mut x = 0u64;
        while probe.cpu().expect("own CPU time") - start < Duration::from_millis(200) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let precise = probe.cpu().expect("own CPU time");
        let ticks = probe.stat_cpu().expect("own stat");
        let tick = Duration::from_secs_f64(1.0 / clock_ticks_per_second());
        // Both count every thread of this (multi-threaded) test process; allow a few ticks for
        // the other tests running meanwhile and for the ticks' rounding.
        let gap = precise.abs_diff(ticks);
        assert!(
            gap <= tick * 50,
            "clock {precise:?} vs stat {ticks:?} (tick {tick:?})"
        );
        assert!(precise >= Duration::from_millis(200));
        assert!(probe.peak_rss().expect("own status") > 0);
    }

    /// Touching fresh pages shows as minor faults: at least one per page.
    #[test]
    fn fresh_pages_show_as_minor_faults() {
        let probe = ProcessProbe::new(std::process::id());
        let before = probe.usage().expect("own usage").minor_faults;
        // 64 MiB: above glibc's largest mmap threshold (32 MiB), so mapped afresh and touched here
        // page by page whatever the other tests in this process freed before.
        let pages = 16_384;
        let mut memory = vec![0u8; pages * 4096];
        for page in memory.chunks_mut(4096) {
            page[0] = 1;
        }
        std::hint::black_box(&memory);
        let after = probe.usage().expect("own usage").minor_faults;
        let (Some(before), Some(after)) = (before, after) else {
            panic!("minflt is readable for our own process");
        };
        assert!(
            after - before >= pages as u64 / 2,
            "{} faults for {pages} fresh pages",
            after - before
        );
    }

    #[test]
    fn a_process_that_is_gone_is_an_error_naming_the_file() {
        let probe = ProcessProbe {
            pid: u32::MAX,
            clock: None,
        };
        let error = probe.cpu().expect_err("no such process").to_string();
        assert!(
            error.contains(&format!("/proc/{}/stat", u32::MAX)),
            "{error}"
        );
        assert!(!probe.reset_peak_rss());
    }
}
