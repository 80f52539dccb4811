//! Resident memory of the processes of a run, sampled once a second while the load runs.
//!
//! The sampler is a task of the harness's main runtime, beside the load (which has a thread of its
//! own): reading `/proc/<pid>/status` costs the load nothing. A series that would outgrow
//! [`MAX_SAMPLES`] drops every other sample and samples half as often from then on, so that a
//! day-long soak keeps a few thousand evenly spaced points per process, not 86,400.

use std::io::Read as _;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often each process is read.
pub const PERIOD: Duration = Duration::from_secs(1);
/// The most samples one series keeps: an hour at one a second fits whole.
pub const MAX_SAMPLES: usize = 4096;
/// The most of `/proc/<pid>/status` read: the file is about 1.5 KB.
const MAX_STATUS_BYTES: u64 = 16 * 1024;

/// A process to sample: its name in results and thresholds, and its pid.
#[derive(Debug, Clone)]
pub struct Watched {
    /// `core-engine`, `harness`: what `memory.growth(NAME)` names.
    pub name: String,
    /// Its process id.
    pub pid: u32,
    /// A service of the system under test (not the harness itself).
    pub service: bool,
}

/// What was sampled of one process.
#[derive(Debug, Clone)]
pub struct Series {
    /// The process sampled.
    pub watched: Watched,
    /// When, and its resident set size then, in bytes.
    pub samples: Vec<(Instant, u64)>,
    /// The time between kept samples: [`PERIOD`], doubled each time the series was thinned.
    pub every: Duration,
    /// Why sampling stopped before the load ended (the process exited, `/proc` refused).
    pub stopped: Option<String>,
}

impl Series {
    fn new(watched: Watched) -> Self {
        Series {
            watched,
            samples: Vec::new(),
            every: PERIOD,
            stopped: None,
        }
    }

    /// Keeps a reading taken at tick `tick` (counted from 0 at [`PERIOD`]), thinning the series
    /// when it is full.
    fn keep(&mut self, tick: u64, at: Instant, rss: u64) {
        let stride = (self.every.as_nanos() / PERIOD.as_nanos()).max(1) as u64;
        if !tick.is_multiple_of(stride) {
            return;
        }
        if self.samples.len() >= MAX_SAMPLES {
            let mut index = 0;
            self.samples.retain(|_| {
                index += 1;
                index % 2 == 1
            });
            self.every *= 2;
            if !tick.is_multiple_of(stride * 2) {
                return;
            }
        }
        self.samples.push((at, rss));
    }
}

/// The sampling task; [`RssSampler::finish`] stops it and hands its series back.
pub struct RssSampler {
    stop: CancellationToken,
    task: JoinHandle<Vec<Series>>,
}

impl RssSampler {
    /// Starts sampling `watched` at once and then every [`PERIOD`].
    pub fn start(watched: Vec<Watched>) -> Self {
        let stop = CancellationToken::new();
        let ended = stop.clone();
        let task = tokio::spawn(async move {
            let mut series: Vec<Series> = watched.into_iter().map(Series::new).collect();
            let mut ticks = tokio::time::interval(PERIOD);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut tick = 0u64;
            loop {
                tokio::select! {
                    () = ended.cancelled() => break,
                    _ = ticks.tick() => {}
                }
                for one in series.iter_mut().filter(|s| s.stopped.is_none()) {
                    match resident_bytes(one.watched.pid) {
                        Ok(rss) => one.keep(tick, Instant::now(), rss),
                        Err(error) => one.stopped = Some(error.to_string()),
                    }
                }
                tick += 1;
            }
            series
        });
        RssSampler { stop, task }
    }

    /// Stops sampling; the series so far (empty if the task failed, which it cannot short of a
    /// panic).
    pub async fn finish(self) -> Vec<Series> {
        self.stop.cancel();
        self.task.await.unwrap_or_default()
    }
}

/// Why a process's resident memory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RssError {
    /// The status file could not be read: the process has exited, or `/proc` is not there.
    #[error("reading /proc/{pid}/status: {source}")]
    Read {
        /// The process.
        pid: u32,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file has no `VmRSS:` line in kB (a kernel thread, or not Linux's format).
    #[error("/proc/{pid}/status has no VmRSS line in kB")]
    Format {
        /// The process.
        pid: u32,
    },
}

/// The resident set size of `pid` in bytes, from `VmRSS` in `/proc/<pid>/status`.
pub fn resident_bytes(pid: u32) -> Result<u64, RssError> {
    let mut text = String::new();
    std::fs::File::open(format!("/proc/{pid}/status"))
        .and_then(|file| file.take(MAX_STATUS_BYTES).read_to_string(&mut text))
        .map_err(|source| RssError::Read { pid, source })?;
    vm_rss_kib(&text)
        .and_then(|kib| kib.checked_mul(1024))
        .ok_or(RssError::Format { pid })
}

/// The `VmRSS:` value of a status file, in KiB (which proc(5) writes `kB`).
fn vm_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_kib() {
        let status = "Name:\tx\nVmHWM:\t   10240 kB\nVmRSS:\t    8000 kB\nThreads:\t4\n";
        assert_eq!(vm_rss_kib(status), Some(8000));
        assert_eq!(vm_rss_kib("Name:\tkthreadd\n"), None);
        assert_eq!(vm_rss_kib("VmRSS:\t8000 pages\n"), None);
        assert_eq!(vm_rss_kib("VmRSS:\tlots kB\n"), None);
    }

    #[test]
    fn the_harness_reads_its_own_memory_and_not_a_missing_process() {
        let own = resident_bytes(std::process::id()).expect("own status");
        assert!(own > 1 << 20, "{own}");
        // Beyond the kernel's largest pid (2^22).
        let missing = resident_bytes(u32::MAX).expect_err("no such process");
        assert!(
            missing.to_string().contains("/proc/4294967295/status"),
            "{missing}"
        );
    }

    #[test]
    fn a_full_series_is_thinned_evenly_and_sampled_half_as_often() {
        let mut series = Series::new(Watched {
            name: "x".into(),
            pid: 1,
            service: true,
        });
        let t0 = Instant::now();
        let total = 3 * MAX_SAMPLES as u64;
        for tick in 0..total {
            series.keep(tick, t0 + PERIOD * tick as u32, tick);
        }
        assert!(series.samples.len() <= MAX_SAMPLES);
        assert!(series.samples.len() >= MAX_SAMPLES / 2);
        assert_eq!(series.every, PERIOD * 4);
        // Evenly spaced by the final stride, from the first tick to near the last.
        let values: Vec<u64> = series.samples.iter().map(|s| s.1).collect();
        assert_eq!(values[0], 0);
        assert!(values.windows(2).all(|w| w[1] - w[0] == 4), "uneven");
        assert!(total - values[values.len() - 1] <= 4);
    }

    #[tokio::test]
    async fn the_sampler_stops_on_request_and_notes_a_process_that_is_gone() {
        let sampler = RssSampler::start(vec![
            Watched {
                name: "harness".into(),
                pid: std::process::id(),
                service: false,
            },
            Watched {
                name: "gone".into(),
                pid: u32::MAX,
                service: true,
            },
        ]);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let series = sampler.finish().await;
        assert_eq!(series.len(), 2);
        assert!(
            (1..=3).contains(&series[0].samples.len()),
            "{:?}",
            series[0]
        );
        assert!(series[0].stopped.is_none());
        assert!(series[1].samples.is_empty());
        assert!(series[1].stopped.is_some());
    }
}
