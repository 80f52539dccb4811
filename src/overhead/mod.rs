//! What tracing costs: the scenario's load on two arms of the managed system that differ only in
//! tracing, and a verdict on a claim such as "under 1%".
//!
//! By default the arms run as a duet: every request of one schedule goes to both at the same
//! moment, so that the machine's drift (other work, frequency changes, caches) falls on both
//! alike and cancels in each pair; [`crate::scenario::Execution`] also offers trials in A B B A
//! order. Each pair gets freshly launched, warmed-up processes, because two long-lived processes
//! differ by more than tracing costs (see [`crate::scenario::Relaunch`]). Each trial measures each
//! service's CPU time per request over the trial's load plus a settle time in which the batched
//! spans are exported, the latency percentiles from the intended send times, the achieved rate and
//! the peak resident memory. Pairs of trials give the relative differences, and [`stats`] puts a
//! rank-based interval on their centre.

mod analysis;
mod arms;
pub(crate) mod callgrind;
mod experiment;
mod process;
mod sweep;
mod trials;
mod verdict;

pub(crate) use crate::result::overhead::{
    ArmName, ArmResult, ClaimResult, Effect, FaultCounts, InstructionCount, InstructionCounts,
    OverheadResult, PointAnalysis, PointResult, ServiceEffect, Spread, StepArm, StepEffect,
    TrialResult, Verdict,
};
pub(crate) use experiment::run;
pub(crate) use process::ProbeError;
pub(crate) use sweep::points;
