//! The `overhead:` section, validated: the two arms, the claim, the sweep and the instruction counts.

use std::time::Duration;

use super::{Located, ServiceSpec};

/// The `overhead:` section: two arms of the managed system that differ only in tracing, the
/// scenario's load alternated between them, and a claim about what the difference may be.
#[derive(Clone, Debug, PartialEq)]
pub struct Overhead {
    /// Trials per arm; at least [`stats::paired::MIN_PAIRS`], each one the
    /// scenario's whole load profile.
    pub trials: usize,
    /// Whether the arms take the load at the same time or in turn.
    pub execution: Execution,
    /// Whether each pair gets freshly launched processes.
    pub relaunch: Relaunch,
    /// Quiet time after each trial's load that still counts to its CPU, so that spans batched
    /// during the trial are exported inside its window. Longer than the batch delay.
    pub settle: Duration,
    pub claim: Claim,
    /// Arm A: by default the services with tracing off.
    pub control: Arm,
    /// Arm B: by default the services with tracing on, every request sampled.
    pub treatment: Arm,
    /// Arms between the two, in order, each adding one part of tracing to the one before; the
    /// treatment adds the last part. Run as one duet, they say where tracing's cost goes.
    pub steps: Vec<Step>,
    /// Where tracing arms export (an OTLP/gRPC `http://` URL); `None` for the harness's own
    /// receiver.
    pub export: Option<String>,
    /// The experiment repeated at each value of one scenario key.
    pub sweep: Option<Sweep>,
    /// A second, deterministic estimate: instructions per request counted under valgrind.
    pub instructions: Option<Instructions>,
}

/// An arm between control and treatment, named for the part of tracing it adds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub name: String,
    pub arm: Arm,
}

/// Counting each arm's instructions per request with callgrind, after the CPU trials.
///
/// Instruction counts hardly move with what else the machine does, where CPU time does; but
/// instructions are not time (cache misses, system calls and waits cost no instructions), so the
/// count is reported beside the CPU verdict, never instead of it.
#[derive(Clone, Debug, PartialEq)]
pub struct Instructions {
    /// Requests per count.
    pub requests: u64,
    /// Requests per second: low, since the services run tens of times slower under valgrind.
    pub rate: f64,
    /// Counts per arm, on the same processes, to show how well a count repeats.
    pub repeats: usize,
}

/// How the two arms of a pair share the machine.
///
/// On a shared machine the speed of the CPU drifts by more than tracing costs from one second to
/// the next (other tenants, caches, frequency). Arms measured one after the other see different
/// machines; arms measured at the same time under the same requests see the same one, and the
/// drift cancels in each pair (duet benchmarking, Bulej et al., ICPE 2020).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Execution {
    /// Both arms under one schedule at once: every request is sent to both, the arm served first
    /// alternating from one request to the next (the default).
    Duet,
    /// One trial of each arm after the other, in A B B A order.
    Alternating,
}

impl Execution {
    /// How the trials ran, as summaries and reports say it: `at the same time (duet)`.
    pub fn describe(self) -> &'static str {
        match self {
            Execution::Duet => "every arm at the same time under the same requests (duet)",
            Execution::Alternating => "one arm after the other, in A B B A order",
        }
    }
}

/// When the arms' processes are replaced.
///
/// Two identical processes can differ by tens of percent in CPU per request for as long as they
/// live (which worker thread owns which connection, memory layout): an A/A comparison of two
/// long-lived processes finds a "difference" that is only which process is which. Fresh processes
/// for each pair turn that into noise between pairs, which the interval then accounts for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relaunch {
    /// New processes for both arms before every pair (the default).
    EveryPair,
    /// Launch once and keep them for the whole experiment.
    Never,
}

/// "The treatment costs less than `bound` more than the control", measured on `metric`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Claim {
    pub metric: ClaimMetric,
    /// A relative increase, e.g. 0.01 for 1%.
    pub bound: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimMetric {
    /// CPU time per request of all services together.
    Cpu,
    /// A latency percentile from intended send times.
    P50,
    P90,
    P99,
}

impl ClaimMetric {
    pub const NAMES: &[(&str, ClaimMetric)] = &[
        ("cpu", ClaimMetric::Cpu),
        ("p50", ClaimMetric::P50),
        ("p90", ClaimMetric::P90),
        ("p99", ClaimMetric::P99),
    ];

    /// The metric as summaries and reports name it: `CPU per request`, `latency p99`.
    pub fn describe(self) -> &'static str {
        match self {
            ClaimMetric::Cpu => "CPU per request",
            ClaimMetric::P50 => "latency p50",
            ClaimMetric::P90 => "latency p90",
            ClaimMetric::P99 => "latency p99",
        }
    }
}

/// One arm of the experiment: tracing on or off, and flags or environment on top of
/// `system.managed`'s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arm {
    pub tracing: bool,
    pub engine: ServiceSpec,
    pub gateway: ServiceSpec,
}

/// A scenario key (as `--set` takes it) and the values it takes in turn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sweep {
    pub key: String,
    /// At least one; each is applied like `--set KEY=VALUE`, and a point it makes invalid is
    /// reported where the value was written.
    pub values: Vec<Located<String>>,
}
