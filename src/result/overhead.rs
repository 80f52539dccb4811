//! The overhead section of `result.json`: the experiment's arms, trials, effects and verdict.
//! How effects are estimated and judged is the experiment's (`crate::overhead`); what it records
//! is here.

use std::collections::BTreeMap;
use std::ops::Deref;

use serde::{Deserialize, Serialize};
use stats::Estimate;

use crate::scenario::{ClaimMetric, Execution};

/// The experiment as `result.json` records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OverheadResult {
    pub(crate) claim: ClaimResult,
    /// Whether the arms took the load at the same time or in turn; results from before duets
    /// were all in turn.
    #[serde(default = "in_turn")]
    pub execution: Execution,
    pub(crate) control: ArmResult,
    pub(crate) treatment: ArmResult,
    /// The arms between them, in order; empty without attribution.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepArm>,
    pub(crate) trials_per_arm: usize,
    pub(crate) settle_s: f64,
    /// Over every point of a sweep: FAIL if any fails, PASS only if all pass.
    pub verdict: Verdict,
    /// One without a sweep.
    pub points: Vec<PointResult>,
    /// Spans the harness's receiver got from the tracing arms; `None` when they export elsewhere.
    pub spans_received: Option<u64>,
}

impl OverheadResult {
    /// What the reader calls an arm: a step by its name, the others by their role.
    pub fn arm_title(&self, arm: ArmName) -> String {
        match arm {
            ArmName::Step(n) => self
                .steps
                .get(n)
                .map_or_else(|| arm.label(), |step| step.name.clone()),
            other => other.label(),
        }
    }
}

fn in_turn() -> Execution {
    Execution::Alternating
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ClaimResult {
    pub(crate) metric: ClaimMetric,
    /// The largest relative increase the claim allows, e.g. 0.01.
    pub bound: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ArmResult {
    pub(crate) tracing: bool,
    /// Flags and environment the arm adds, as `engine: --flag value`, for the reader.
    pub extras: Vec<String>,
}

/// Which arm a trial ran on; ordered as the chain runs, control first and treatment last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArmName {
    /// The baseline arm, tracing off unless the scenario says otherwise.
    Control,
    /// The n-th arm between control and treatment (from 0), as [`OverheadResult::steps`] names it.
    Step(usize),
    /// The arm whose cost is measured, tracing on unless the scenario says otherwise.
    Treatment,
}

impl ArmName {
    /// `control`, `step1`, `step2`, ..., `treatment`: for directories and progress lines.
    pub fn label(self) -> String {
        match self {
            ArmName::Control => "control".to_owned(),
            ArmName::Step(n) => format!("step{}", n.saturating_add(1)),
            ArmName::Treatment => "treatment".to_owned(),
        }
    }

    /// The arms in their chain's order, with `steps` between control and treatment.
    pub fn chain(steps: usize) -> Vec<ArmName> {
        std::iter::once(ArmName::Control)
            .chain((0..steps).map(ArmName::Step))
            .chain(std::iter::once(ArmName::Treatment))
            .collect()
    }
}

/// An arm between control and treatment, and the part of tracing it adds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepArm {
    pub(crate) name: String,
    #[serde(flatten)]
    pub(crate) arm: ArmResult,
}

/// The experiment at one setting (the only one without a sweep).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PointResult {
    /// `KEY=VALUE` of the sweep at this point.
    pub setting: Option<String>,
    pub(crate) trials: Vec<TrialResult>,
    /// The second estimate, when the scenario asks for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<InstructionCounts>,
    #[serde(flatten)]
    pub(crate) analysis: PointAnalysis,
}

/// What the trials of one point say.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PointAnalysis {
    /// Complete pairs (one trial of each arm).
    pub pairs: usize,
    /// Median CPU µs per request, all services together.
    pub control_cpu_us: Option<f64>,
    pub(crate) treatment_cpu_us: Option<f64>,
    /// Relative difference in CPU per request, all services together.
    pub cpu: Option<Effect>,
    /// The same in absolute terms: CPU µs the treatment adds to each request.
    pub cpu_cost_us: Option<Effect>,
    /// Each service's share of it.
    pub services: BTreeMap<String, ServiceEffect>,
    /// Relative differences of the latency percentiles.
    pub p50: Option<Effect>,
    pub(crate) p90: Option<Effect>,
    pub(crate) p99: Option<Effect>,
    /// Where tracing's cost goes: what each arm of the chain adds to the one before it, the
    /// steps' arms first and the treatment last. Empty without steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepEffect>,
    /// The claim's verdict at this point.
    pub verdict: Verdict,
    /// The resolution of the claim's metric: smaller effects were indistinguishable from none.
    pub smallest_detectable: Option<f64>,
    /// CPU µs per request at which the measured cost would be exactly the claim's bound: the
    /// claim holds for requests costing at least this much (from the estimate; `_range` from the
    /// interval).
    pub break_even_us: Option<f64>,
    pub(crate) break_even_range_us: Option<(f64, f64)>,
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

/// What one arm of the chain adds to the arm before it, per pair.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepEffect {
    /// The arm that adds it.
    pub arm: ArmName,
    /// CPU µs per request added, all services together.
    pub cost_us: Option<Effect>,
    /// The same as a share of the control's CPU per request.
    pub share: Option<Effect>,
    /// CPU µs per request added in each service.
    pub services: BTreeMap<String, Option<Effect>>,
}

/// One service's CPU per request, between the arms.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ServiceEffect {
    /// Median CPU µs per request in the control arm.
    pub control_cpu_us: Option<f64>,
    pub(crate) relative: Option<Effect>,
    /// CPU µs per request the treatment adds to this service.
    pub cost_us: Option<Effect>,
    /// Median minor page faults per request in each arm, when both were read.
    #[serde(default)]
    pub faults: Option<FaultCounts>,
}

/// Minor page faults per request of one service in the control and the treatment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FaultCounts {
    pub(crate) control: f64,
    pub(crate) treatment: f64,
}

impl FaultCounts {
    /// Faults per request by which the arms may differ before it matters. A minor fault costs
    /// the order of a microsecond; an allocator that returns memory to the kernel in one arm and
    /// not in the other can move a service's CPU per request by tens of them, tracing or not
    /// (docs/overhead.md, "Page faults").
    pub const NOTABLE_DIFFERENCE: f64 = 1.0;

    /// Whether the arms' faults differ enough to move the CPU comparison by themselves.
    pub fn differ(&self) -> bool {
        (self.treatment - self.control).abs() >= Self::NOTABLE_DIFFERENCE
    }
}

/// One trial: one arm under the scenario's whole load profile.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrialResult {
    pub(crate) arm: ArmName,
    /// The trial's pair: the n-th trial of each arm.
    pub pair: usize,
    pub(crate) sent: u64,
    pub(crate) unexpected: u64,
    pub(crate) dropped: u64,
    pub(crate) achieved_rate: f64,
    /// CPU µs per request of each service over the trial and its settle time.
    pub cpu_us: BTreeMap<String, f64>,
    /// Their sum.
    pub cpu_us_total: f64,
    /// Minor page faults per request of each service over the same window, where the kernel
    /// reported them.
    #[serde(default)]
    pub minor_faults: BTreeMap<String, f64>,
    /// Latency from the intended send time, µs.
    pub p50_us: u64,
    pub(crate) p90_us: u64,
    pub(crate) p99_us: u64,
    /// Peak resident memory of each service during the trial, bytes; where the kernel would not
    /// reset the peak (`/proc/<pid>/clear_refs`), over the process's life so far.
    pub peak_rss_bytes: BTreeMap<String, u64>,
}

/// Instructions per request, counted under callgrind with both arms taking the same requests at
/// once: a second, deterministic estimate beside the CPU time. Instructions are not time: cache
/// misses, system calls and waiting cost none.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstructionCounts {
    /// Requests in each count, and their rate.
    pub requests: u64,
    pub(crate) rate: f64,
    /// One per repeat, on the same processes.
    pub counts: Vec<InstructionCount>,
    /// Medians over the repeats: instructions per request of all services together.
    pub control: Option<f64>,
    pub(crate) treatment: Option<f64>,
    /// Per repeat `treatment / control − 1`, all services together.
    pub relative: Option<Spread>,
    /// Per repeat, the instructions the treatment adds to each request.
    pub cost: Option<Spread>,
    /// Each service's relative difference.
    pub services: BTreeMap<String, Spread>,
}

/// One count of both arms: instructions per request of each service.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstructionCount {
    pub(crate) control: BTreeMap<String, f64>,
    pub(crate) treatment: BTreeMap<String, f64>,
}

impl InstructionCount {
    /// Instructions per request of all services together: (control, treatment).
    pub fn totals(&self) -> (f64, f64) {
        (self.control.values().sum(), self.treatment.values().sum())
    }
}

/// A value over a few repeats: their median and their range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub(crate) median: f64,
    pub(crate) low: f64,
    pub(crate) high: f64,
}

/// A difference between the arms, with its interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Effect {
    /// The Hodges-Lehmann estimate and its 95% interval; flattened, so that `result.json` has
    /// `estimate`, `low` and `high` beside the fields below.
    #[serde(flatten)]
    pub interval: Estimate,
    /// Half the interval's width: an effect smaller than this would have left zero inside the
    /// interval, so the run could not have told it from no effect at all. Recorded for readers of
    /// `result.json`.
    pub resolution: f64,
    /// Pairs the estimate is made from.
    pub pairs: usize,
}

/// An effect reads as its estimate and interval (`effect.low`, `effect.contains(0.0)`): tables,
/// charts and verdicts want nothing else from it.
impl Deref for Effect {
    type Target = Estimate;

    fn deref(&self) -> &Estimate {
        &self.interval
    }
}

/// What the interval says about a claim that the effect stays below a bound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    /// The whole interval is below the bound: the claim holds.
    Pass,
    /// The whole interval is above the bound: the claim is false.
    Fail,
    /// The interval straddles the bound (or nothing could be estimated): more or longer trials
    /// are needed to tell.
    #[default]
    Inconclusive,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Inconclusive => "INCONCLUSIVE",
        })
    }
}
