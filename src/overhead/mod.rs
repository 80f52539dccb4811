//! What tracing costs: the scenario's load alternated between two arms of the managed system that
//! differ only in tracing, and a verdict on a claim such as "under 1%".
//!
//! Trials run in A B B A order, so that drift of the machine (other work, frequency changes,
//! caches warming) falls on both arms alike; by default each pair gets freshly launched, warmed-up
//! processes, because two long-lived processes differ by more than tracing costs (see
//! [`crate::scenario::Relaunch`]). Each trial measures each service's CPU time per request over
//! the trial's load plus a settle time in which the batched spans are exported, the latency
//! percentiles from the intended send times, the achieved rate and the peak resident memory.
//! Pairs of trials (one of each arm, adjacent in time) give the relative differences, and
//! [`stats`] puts a rank-based interval on their centre.

mod analysis;
mod experiment;
mod process;
pub mod stats;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use analysis::analyse;
pub use experiment::{Measured, Point, points, run};
pub use process::{ProbeError, ProcessProbe};
pub use stats::{Effect, MIN_PAIRS, Verdict};

use crate::scenario::ClaimMetric;

/// The experiment as `result.json` records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OverheadResult {
    pub claim: ClaimResult,
    pub control: ArmResult,
    pub treatment: ArmResult,
    pub trials_per_arm: usize,
    pub settle_s: f64,
    /// Over every point of a sweep: FAIL if any fails, PASS only if all pass.
    pub verdict: Verdict,
    /// One without a sweep.
    pub points: Vec<PointResult>,
    /// Spans the harness's receiver got from the tracing arms; `None` when they export elsewhere.
    pub spans_received: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimResult {
    pub metric: ClaimMetric,
    /// The largest relative increase the claim allows, e.g. 0.01.
    pub bound: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArmResult {
    pub tracing: bool,
    /// Flags and environment the arm adds, as `engine: --flag value`, for the reader.
    pub extras: Vec<String>,
}

/// Which arm a trial ran on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArmName {
    Control,
    Treatment,
}

impl ArmName {
    pub fn as_str(self) -> &'static str {
        match self {
            ArmName::Control => "control",
            ArmName::Treatment => "treatment",
        }
    }
}

/// The experiment at one setting (the only one without a sweep).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PointResult {
    /// `KEY=VALUE` of the sweep at this point.
    pub setting: Option<String>,
    pub trials: Vec<TrialResult>,
    #[serde(flatten)]
    pub analysis: PointAnalysis,
}

/// What the trials of one point say.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PointAnalysis {
    /// Complete pairs (one trial of each arm).
    pub pairs: usize,
    /// Median CPU µs per request, all services together.
    pub control_cpu_us: Option<f64>,
    pub treatment_cpu_us: Option<f64>,
    /// Relative difference in CPU per request, all services together.
    pub cpu: Option<Effect>,
    /// The same in absolute terms: CPU µs the treatment adds to each request.
    pub cpu_cost_us: Option<Effect>,
    /// Each service's share of it.
    pub services: BTreeMap<String, ServiceEffect>,
    /// Relative differences of the latency percentiles.
    pub p50: Option<Effect>,
    pub p90: Option<Effect>,
    pub p99: Option<Effect>,
    /// The claim's verdict at this point.
    pub verdict: Verdict,
    /// The resolution of the claim's metric: smaller effects were indistinguishable from none.
    pub smallest_detectable: Option<f64>,
    /// CPU µs per request at which the measured cost would be exactly the claim's bound: the
    /// claim holds for requests costing at least this much (from the estimate; `_range` from the
    /// interval).
    pub break_even_us: Option<f64>,
    pub break_even_range_us: Option<(f64, f64)>,
}

impl PointAnalysis {
    /// The effect the claim is about: the one the point's verdict judges.
    pub fn claim_effect(&self, metric: ClaimMetric) -> Option<Effect> {
        match metric {
            ClaimMetric::Cpu => self.cpu,
            ClaimMetric::P50 => self.p50,
            ClaimMetric::P90 => self.p90,
            ClaimMetric::P99 => self.p99,
        }
    }
}

/// One service's CPU per request, between the arms.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ServiceEffect {
    /// Median CPU µs per request in the control arm.
    pub control_cpu_us: Option<f64>,
    pub relative: Option<Effect>,
    /// CPU µs per request the treatment adds to this service.
    pub cost_us: Option<Effect>,
}

/// One trial: one arm under the scenario's whole load profile.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrialResult {
    pub arm: ArmName,
    /// The trial's pair: the n-th trial of each arm.
    pub pair: usize,
    pub sent: u64,
    pub unexpected: u64,
    pub dropped: u64,
    pub achieved_rate: f64,
    /// CPU µs per request of each service over the trial and its settle time.
    pub cpu_us: BTreeMap<String, f64>,
    /// Their sum.
    pub cpu_us_total: f64,
    /// Latency from the intended send time, µs.
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    /// Peak resident memory of each service during the trial, bytes; where the kernel would not
    /// reset the peak (`/proc/<pid>/clear_refs`), over the process's life so far.
    pub peak_rss_bytes: BTreeMap<String, u64>,
}
