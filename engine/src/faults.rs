//! Faults the engine can be told to inject, so that scenarios and tests can show the harness
//! catches what it claims to catch. All are off by default.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tonic::Code;

use crate::duration::parse_duration;
use crate::status::code_from_name;

#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Fault injection (for scenarios and tests)")]
pub struct FaultArgs {
    /// Latency added to every request
    #[arg(long, env = "ENGINE_FAULT_LATENCY", value_parser = parse_duration, default_value = "0ms")]
    pub fault_latency: Duration,
    /// Stall periodically: once in every period, hold all requests for --fault-stall-for
    #[arg(long, env = "ENGINE_FAULT_STALL_EVERY", value_parser = parse_duration, requires = "fault_stall_for")]
    pub fault_stall_every: Option<Duration>,
    /// Length of each stall (at the end of each --fault-stall-every period)
    #[arg(long, env = "ENGINE_FAULT_STALL_FOR", value_parser = parse_duration, requires = "fault_stall_every")]
    pub fault_stall_for: Option<Duration>,
    /// Share of valid requests, 0 to 1, answered with --fault-error-code (exactly: every 1/ratio-th one)
    #[arg(long, env = "ENGINE_FAULT_ERROR_RATIO", value_parser = parse_ratio, default_value = "0")]
    pub fault_error_ratio: f64,
    /// gRPC code of injected errors, by name (e.g. UNAVAILABLE, INTERNAL)
    #[arg(long, env = "ENGINE_FAULT_ERROR_CODE", value_parser = parse_error_code, default_value = "UNAVAILABLE")]
    pub fault_error_code: Code,
    /// Stall streams periodically: once in every period, hold every stream for
    /// --fault-stream-stall-for; updates falling due meanwhile go out late with their event time
    #[arg(long, env = "ENGINE_FAULT_STREAM_STALL_EVERY", value_parser = parse_duration, requires = "fault_stream_stall_for")]
    pub fault_stream_stall_every: Option<Duration>,
    /// Length of each stream stall (at the end of each --fault-stream-stall-every period)
    #[arg(long, env = "ENGINE_FAULT_STREAM_STALL_FOR", value_parser = parse_duration, requires = "fault_stream_stall_every")]
    pub fault_stream_stall_for: Option<Duration>,
    /// Crash this long after the engine is ready: it aborts, with no shutdown and no span flush,
    /// as a service that dies during a run does
    #[arg(long, env = "ENGINE_FAULT_CRASH_AFTER", value_parser = parse_duration)]
    pub fault_crash_after: Option<Duration>,
    /// Calibration only: CPU microseconds burnt per request whose span is sampled, to emulate a
    /// known tracing cost (at most 100000: each burns a worker thread, which would otherwise
    /// starve /metrics and shutdown)
    #[arg(
        long,
        env = "ENGINE_CALIBRATION_TRACED_CPU_US",
        default_value_t = 0,
        value_parser = clap::value_parser!(u64).range(0..=MAX_CALIBRATION_CPU_US)
    )]
    pub calibration_traced_cpu_us: u64,
    /// Calibration only: bytes allocated, written to and never freed per request, so that the
    /// engine's resident memory grows at a known rate (at most 16 MiB a request)
    #[arg(
        long,
        env = "ENGINE_CALIBRATION_LEAK_BYTES_PER_REQUEST",
        default_value_t = 0,
        value_parser = clap::value_parser!(u64).range(0..=MAX_CALIBRATION_LEAK_BYTES)
    )]
    pub calibration_leak_bytes_per_request: u64,
}

/// The most a request may be made to leak: 16 MiB, so that a mistyped flag exhausts memory in
/// minutes rather than at once.
const MAX_CALIBRATION_LEAK_BYTES: u64 = 16 << 20;

/// The most CPU a traced request may be made to burn: 100 ms, far beyond any tracing cost.
const MAX_CALIBRATION_CPU_US: u64 = 100_000;

fn parse_ratio(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{text:?} is not a ratio between 0 and 1")),
    }
}

fn parse_error_code(text: &str) -> Result<Code, String> {
    match code_from_name(text.trim()) {
        Some(Code::Ok) => Err("OK is not an error code".into()),
        Some(code) => Ok(code),
        None => Err(format!(
            "{text:?} is not a gRPC code name such as UNAVAILABLE"
        )),
    }
}

/// The engine's active faults.
#[derive(Debug)]
pub struct Faults {
    latency: Duration,
    stall: Option<Stall>,
    stream_stall: Option<Stall>,
    error_ratio: f64,
    error_code: Code,
    traced_cpu: Duration,
    leak_bytes: usize,
    started: Instant,
    requests: AtomicU64,
}

#[derive(Debug, Clone, Copy)]
struct Stall {
    every: Duration,
    length: Duration,
}

impl Stall {
    /// From a pair of `--…-every` and `--…-for` flags, named `flag` in the error.
    fn new(
        every: Option<Duration>,
        length: Option<Duration>,
        flag: &str,
    ) -> Result<Option<Self>, String> {
        match (every, length) {
            (Some(every), Some(length)) if length >= every || every.is_zero() => Err(format!(
                "--{flag}-for ({length:?}) must be shorter than --{flag}-every ({every:?})"
            )),
            (Some(every), Some(length)) => Ok(Some(Stall { every, length })),
            _ => Ok(None),
        }
    }

    /// What remains, at `now`, of the stall in progress (zero between stalls); periods count
    /// from `started`.
    fn remaining(&self, started: Instant, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(started).as_nanos();
        let phase = Duration::from_nanos((elapsed % self.every.as_nanos()) as u64);
        let stall_starts = self.every - self.length;
        if phase >= stall_starts {
            self.every - phase
        } else {
            Duration::ZERO
        }
    }
}

impl Default for Faults {
    /// No fault: how the engine runs unless a flag says otherwise.
    fn default() -> Self {
        Faults {
            latency: Duration::ZERO,
            stall: None,
            stream_stall: None,
            error_ratio: 0.0,
            error_code: Code::Unavailable,
            traced_cpu: Duration::ZERO,
            leak_bytes: 0,
            started: Instant::now(),
            requests: AtomicU64::new(0),
        }
    }
}

impl Faults {
    pub fn new(args: &FaultArgs) -> Result<Self, String> {
        Ok(Faults {
            latency: args.fault_latency,
            stall: Stall::new(args.fault_stall_every, args.fault_stall_for, "fault-stall")?,
            stream_stall: Stall::new(
                args.fault_stream_stall_every,
                args.fault_stream_stall_for,
                "fault-stream-stall",
            )?,
            error_ratio: args.fault_error_ratio,
            error_code: args.fault_error_code,
            traced_cpu: Duration::from_micros(args.calibration_traced_cpu_us),
            leak_bytes: usize::try_from(args.calibration_leak_bytes_per_request)
                .map_err(|_| "--calibration-leak-bytes-per-request does not fit".to_owned())?,
            started: Instant::now(),
            requests: AtomicU64::new(0),
        })
    }

    /// How long a request arriving at `now` must wait: the fixed latency, plus what remains of
    /// the stall in progress, if any.
    pub fn delay(&self, now: Instant) -> Duration {
        let stalled = self
            .stall
            .map_or(Duration::ZERO, |stall| stall.remaining(self.started, now));
        self.latency + stalled
    }

    /// How long every stream must hold at `now`: what remains of the stream stall in progress.
    pub fn stream_hold(&self, now: Instant) -> Duration {
        self.stream_stall
            .map_or(Duration::ZERO, |stall| stall.remaining(self.started, now))
    }

    /// The injected error for this request, if it is one of the chosen share.
    ///
    /// Request n fails when `floor((n + 1) × ratio)` steps past `floor(n × ratio)`: exactly
    /// `ratio × N` failures among the first N requests, spread evenly, so tests can count them.
    pub fn injected_error(&self) -> Option<Code> {
        if self.error_ratio <= 0.0 {
            return None;
        }
        let n = self.requests.fetch_add(1, Ordering::Relaxed) as f64;
        let fails = ((n + 1.0) * self.error_ratio).floor() > (n * self.error_ratio).floor();
        fails.then_some(self.error_code)
    }

    /// Calibration only: burns the configured CPU time on this thread. Callers invoke it for
    /// sampled requests only, so that it stands for a known per-traced-request cost.
    pub fn burn_traced_cpu(&self) {
        if !self.traced_cpu.is_zero() {
            burn_thread_cpu(self.traced_cpu);
        }
    }
}

impl Faults {
    /// Calibration only: allocates the configured bytes and never frees them. They are filled
    /// with ones, which writes every page (an allocation never written to would only reserve
    /// address space, and a zeroed one may come from pages the kernel has not yet provided).
    pub fn leak(&self) {
        if self.leak_bytes > 0 {
            let kept: &'static mut [u8] = vec![1u8; self.leak_bytes].leak();
            std::hint::black_box(kept);
        }
    }
}

/// Spins until this thread has used `amount` of CPU time. Measured on the thread's CPU clock, not
/// the wall clock, so that preemption on a busy machine does not shorten the burn.
fn burn_thread_cpu(amount: Duration) {
    use nix::time::{ClockId, clock_gettime};
    let now = || clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).map(Duration::from);
    let Ok(start) = now() else { return };
    let mut spins = 0u64;
    while now().is_ok_and(|t| t.saturating_sub(start) < amount) {
        spins = std::hint::black_box(spins.wrapping_add(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        faults: FaultArgs,
    }

    fn faults(args: &[&str]) -> Result<Faults, String> {
        let cli = Cli::try_parse_from(std::iter::once("engine").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        Faults::new(&cli.faults)
    }

    #[test]
    fn no_faults_by_default() {
        let f = faults(&[]).expect("defaults");
        assert_eq!(f.delay(Instant::now()), Duration::ZERO);
        assert!((0..1_000).all(|_| f.injected_error().is_none()));
    }

    #[test]
    fn error_ratio_is_exact_and_evenly_spread() {
        let f = faults(&[
            "--fault-error-ratio",
            "0.25",
            "--fault-error-code",
            "internal",
        ])
        .expect("valid");
        let outcomes: Vec<_> = (0..100).map(|_| f.injected_error()).collect();
        assert_eq!(outcomes.iter().filter(|o| o.is_some()).count(), 25);
        assert_eq!(outcomes[..4], [None, None, None, Some(Code::Internal)]);
    }

    #[test]
    fn stall_holds_requests_until_the_end_of_the_window() {
        let f = faults(&[
            "--fault-stall-every",
            "5s",
            "--fault-stall-for",
            "1s",
            "--fault-latency",
            "10ms",
        ])
        .expect("valid");
        let at = |ms: u64| f.delay(f.started + Duration::from_millis(ms));
        assert_eq!(at(0), Duration::from_millis(10));
        assert_eq!(at(3_999), Duration::from_millis(10));
        assert_eq!(at(4_000), Duration::from_millis(1_010));
        assert_eq!(at(4_750), Duration::from_millis(260));
        assert_eq!(at(5_000), Duration::from_millis(10));
        assert_eq!(at(9_500), Duration::from_millis(510));
        assert_eq!(
            f.stream_hold(f.started + Duration::from_millis(4_500)),
            Duration::ZERO
        );
    }

    #[test]
    fn stream_stall_holds_streams_only() {
        let f = faults(&[
            "--fault-stream-stall-every",
            "2s",
            "--fault-stream-stall-for",
            "500ms",
        ])
        .expect("valid");
        let hold = |ms: u64| f.stream_hold(f.started + Duration::from_millis(ms));
        assert_eq!(hold(0), Duration::ZERO);
        assert_eq!(hold(1_499), Duration::ZERO);
        assert_eq!(hold(1_500), Duration::from_millis(500));
        assert_eq!(hold(3_900), Duration::from_millis(100));
        assert_eq!(
            f.delay(f.started + Duration::from_millis(1_600)),
            Duration::ZERO
        );
        let err = faults(&[
            "--fault-stream-stall-every",
            "1s",
            "--fault-stream-stall-for",
            "1s",
        ])
        .expect_err("refused");
        assert!(err.contains("--fault-stream-stall-for"), "{err}");
        assert!(
            faults(&[])
                .expect("defaults")
                .stream_hold(Instant::now())
                .is_zero()
        );
    }

    #[test]
    fn bad_values_are_refused_with_the_flag_named() {
        let err = faults(&["--fault-error-ratio", "1.5"]).expect_err("refused");
        assert!(
            err.contains("--fault-error-ratio") && err.contains("not a ratio"),
            "{err}"
        );
        let err = faults(&["--fault-error-code", "OK"]).expect_err("refused");
        assert!(err.contains("OK is not an error code"), "{err}");
        let err =
            faults(&["--fault-stall-every", "1s", "--fault-stall-for", "2s"]).expect_err("refused");
        assert!(err.contains("must be shorter"), "{err}");
        let err = faults(&["--fault-stall-every", "1s"]).expect_err("refused");
        assert!(err.contains("--fault-stall-for"), "{err}");
        let err =
            faults(&["--calibration-traced-cpu-us", "18446744073709551615"]).expect_err("refused");
        assert!(
            err.contains("--calibration-traced-cpu-us") && err.contains("0..=100000"),
            "{err}"
        );
        let f = faults(&["--calibration-traced-cpu-us", "100000"]).expect("the bound itself");
        assert_eq!(f.traced_cpu, Duration::from_millis(100));
        let err =
            faults(&["--calibration-leak-bytes-per-request", "16777217"]).expect_err("refused");
        assert!(
            err.contains("--calibration-leak-bytes-per-request"),
            "{err}"
        );
    }

    /// The leak is real: resident memory grows by about what was asked (read from the kernel, as
    /// the harness reads it).
    #[test]
    fn leaks_grow_resident_memory() {
        let rss = || {
            let status = std::fs::read_to_string("/proc/self/status").expect("status");
            let line = status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .expect("VmRSS");
            let kb: u64 = line
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .expect("a number");
            kb * 1024
        };
        let f = faults(&["--calibration-leak-bytes-per-request", "1048576"]).expect("valid");
        let before = rss();
        for _ in 0..32 {
            f.leak();
        }
        let grown = rss().saturating_sub(before);
        assert!(grown >= 30 << 20, "grew {grown} bytes for 32 MiB leaked");
    }

    #[test]
    fn burn_uses_at_least_the_asked_cpu_time() {
        use nix::time::{ClockId, clock_gettime};
        let cpu =
            || Duration::from(clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).expect("clock"));
        let before = cpu();
        burn_thread_cpu(Duration::from_millis(5));
        assert!(cpu() - before >= Duration::from_millis(5));
    }
}
