//! The trials of one point: both arms under the scenario's load, at the same time (duet) or in
//! turn, and what each trial cost.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::analysis::count_instructions;
use super::arms::{ArmProcess, Arms};
use super::callgrind::Callgrind;
use super::process::Usage;
use super::sweep::Point;
use super::{ArmName, InstructionCount, InstructionCounts, TrialResult};
use crate::format::duration_terse;
use crate::load::{self, Driver, LoadKind, RatePhase, RunReport};
use crate::plan::{load_plan, rate_phase};
use crate::progress::Progress;
use crate::result::LoadSummary;
use crate::scenario::{Execution, Instructions, Overhead};

/// The trials of one point.
pub(super) struct TrialRun<'a> {
    pub(super) point: &'a Point,
    pub(super) overhead: &'a Overhead,
    pub(super) progress: &'a Progress,
    pub(super) stop: &'a CancellationToken,
    /// Where each trial goes.
    pub(super) trials: &'a mut Vec<TrialResult>,
    /// The treatment arm's loads, as one run.
    pub(super) treatment: &'a mut Option<RunReport>,
    /// Where the instruction counts go, when the scenario asks for them.
    pub(super) instructions: &'a mut Option<InstructionCounts>,
    /// valgrind, found before anything ran, when the scenario asks for instruction counts.
    pub(super) callgrind: Option<&'a Callgrind>,
}

/// What a pair's trial measured on one arm.
struct Measurement {
    report: RunReport,
    before: Vec<Usage>,
    after: Vec<Usage>,
}

impl TrialRun<'_> {
    /// Runs the pairs, warming freshly launched arms up first. Ends early, with what it has,
    /// when the run is interrupted; an arm that fails is the error.
    pub(super) async fn run<D: Driver>(
        &mut self,
        make_driver: impl Fn(&ArmProcess) -> Result<D, String>,
        kinds: Vec<LoadKind<D::Payload>>,
        arms: &mut Arms<'_>,
    ) -> Result<(), String>
    where
        D::Payload: Clone,
    {
        let mut drivers: Option<Vec<Arc<D>>> = None;
        for pair in 0..self.overhead.trials {
            if self.stop.is_cancelled() {
                return Ok(());
            }
            let Some((running, fresh)) = arms.for_pair(pair, self.stop).await? else {
                return Ok(());
            };
            // In turn: A B, then B A, so that a drift in time falls on both arms alike.
            let order = if pair.is_multiple_of(2) {
                [0, 1]
            } else {
                [1, 0]
            };
            let drivers = match &drivers {
                Some(drivers) if !fresh => drivers,
                _ => {
                    let made: Vec<Arc<D>> = running
                        .iter()
                        .map(|arm| make_driver(arm).map(Arc::new))
                        .collect::<Result<_, _>>()?;
                    self.warm_up(&made, order, &kinds).await?;
                    drivers.insert(made)
                }
            };
            let complete = match self.overhead.execution {
                Execution::Duet => self.duet(running, drivers, &kinds, pair).await?,
                Execution::Alternating => {
                    self.in_turn(running, drivers, order, &kinds, pair).await?
                }
            };
            if !complete {
                return Ok(());
            }
        }
        self.instruction_counts(&make_driver, &kinds, arms).await
    }

    /// When the scenario asks for instruction counts: the trials' processes go, control and
    /// treatment are launched once more under callgrind and counted, and go again after the
    /// count, whatever became of it.
    async fn instruction_counts<D: Driver>(
        &mut self,
        make_driver: &impl Fn(&ArmProcess) -> Result<D, String>,
        kinds: &[LoadKind<D::Payload>],
        arms: &mut Arms<'_>,
    ) -> Result<(), String>
    where
        D::Payload: Clone,
    {
        let (Some(spec), Some(callgrind)) = (&self.overhead.instructions, self.callgrind) else {
            return Ok(());
        };
        arms.stop().await;
        arms.counting = Some(callgrind.clone());
        let counts = match arms.for_pair(0, self.stop).await {
            Ok(Some((running, _))) => {
                match running
                    .iter()
                    .map(|arm| make_driver(arm).map(Arc::new))
                    .collect::<Result<Vec<Arc<D>>, _>>()
                {
                    Ok(drivers) => self
                        .count(running, &drivers, kinds, spec, callgrind)
                        .await
                        .map(Some),
                    Err(error) => Err(error),
                }
            }
            Ok(None) => Ok(None),
            Err(error) => Err(error),
        };
        arms.stop().await;
        arms.counting = None;
        if let Some(counts) = counts?
            && !self.stop.is_cancelled()
        {
            *self.instructions = Some(count_instructions(spec.requests, spec.rate, counts));
        }
        Ok(())
    }

    /// Both arms under callgrind take `spec.requests` at once, `spec.repeats` times after a
    /// warm-up; each service's counters are zeroed before and read after (with the settle time,
    /// in which spans are exported).
    async fn count<D: Driver>(
        &self,
        running: &[ArmProcess],
        drivers: &[Arc<D>],
        kinds: &[LoadKind<D::Payload>],
        spec: &Instructions,
        callgrind: &Callgrind,
    ) -> Result<Vec<InstructionCount>, String>
    where
        D::Payload: Clone,
    {
        let load = &self.point.scenario.load;
        let duration = Duration::from_secs_f64(spec.requests as f64 / spec.rate);
        let plan = |duration| {
            load_plan(
                load,
                vec![RatePhase::constant(spec.rate, duration)],
                kinds.to_vec(),
            )
        };
        // Under valgrind, code runs slowly the first time it is translated, and spans take
        // longer to leave: a quarter of a count's requests to warm up, and at least a second of
        // settle.
        let settle = self.overhead.settle.max(Duration::from_secs(1));
        self.progress.note(&format!(
            "{}instructions: both arms under callgrind, {} requests at {}/s, {} times",
            self.setting(),
            spec.requests,
            spec.rate,
            spec.repeats
        ));
        load::run_together(drivers.to_vec(), plan(duration / 4), self.stop.clone())
            .await
            .map_err(|e| e.to_string())?;
        self.pause(settle).await;
        let mut counts = Vec::with_capacity(spec.repeats);
        for repeat in 1..=spec.repeats {
            if self.stop.is_cancelled() {
                break;
            }
            for arm in running {
                for (_, pid, _) in &arm.counted {
                    callgrind.zero(*pid).await.map_err(|e| e.to_string())?;
                }
            }
            let reports = load::run_together(drivers.to_vec(), plan(duration), self.stop.clone())
                .await
                .map_err(|e| e.to_string())?;
            self.pause(settle).await;
            if self.stop.is_cancelled() {
                break;
            }
            let mut per_arm = Vec::with_capacity(2);
            for (arm, report) in running.iter().zip(&reports) {
                let sent = report.recorder.kinds.iter().map(|k| k.sent).sum::<u64>();
                let mut by_service = BTreeMap::new();
                for (service, pid, out) in &arm.counted {
                    let instructions = callgrind
                        .dump(*pid, out, repeat)
                        .await
                        .map_err(|e| e.to_string())?;
                    by_service.insert(service.clone(), instructions as f64 / sent.max(1) as f64);
                }
                per_arm.push(by_service);
            }
            let (Some(treatment), Some(control)) = (per_arm.pop(), per_arm.pop()) else {
                return Err("instruction counts: an arm is missing".to_owned());
            };
            let count = InstructionCount { control, treatment };
            let (control, treatment) = count.totals();
            self.progress.note(&format!(
                "{}instructions {repeat}/{}: control {control:.0}, treatment {treatment:.0} per \
                 request",
                self.setting(),
                spec.repeats,
            ));
            counts.push(count);
        }
        Ok(counts)
    }

    /// One trial of both arms at once: every request of the schedule goes to both, and both
    /// arms' CPU is read over the same window. `false` when interrupted.
    async fn duet<D: Driver>(
        &mut self,
        running: &mut [ArmProcess],
        drivers: &[Arc<D>],
        kinds: &[LoadKind<D::Payload>],
        pair: usize,
    ) -> Result<bool, String>
    where
        D::Payload: Clone,
    {
        let before = running
            .iter()
            .map(|arm| arm.begin_trial().map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let plan = load_plan(&self.point.scenario.load, self.phases(), kinds.to_vec());
        let reports = load::run_together(drivers.to_vec(), plan, self.stop.clone())
            .await
            .map_err(|e| e.to_string())?;
        // Spans batched during the trial are exported within its window.
        self.settle().await;
        for arm in running.iter_mut() {
            if let Some(reason) = arm.crashed() {
                return Err(reason);
            }
        }
        let after = running
            .iter()
            .map(|arm| arm.usage().map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut complete = true;
        for ((arm, report), (before, after)) in running
            .iter()
            .zip(reports)
            .zip(before.into_iter().zip(after))
        {
            let measured = Measurement {
                report,
                before,
                after,
            };
            complete &= self.record(arm, pair, measured);
        }
        Ok(complete)
    }

    /// One trial of each arm, one after the other in `order`. `false` when interrupted.
    async fn in_turn<D: Driver>(
        &mut self,
        running: &mut [ArmProcess],
        drivers: &[Arc<D>],
        order: [usize; 2],
        kinds: &[LoadKind<D::Payload>],
        pair: usize,
    ) -> Result<bool, String>
    where
        D::Payload: Clone,
    {
        for a in order {
            if self.stop.is_cancelled() {
                return Ok(false);
            }
            let arm = &mut running[a];
            let before = arm.begin_trial().map_err(|e| e.to_string())?;
            let plan = load_plan(&self.point.scenario.load, self.phases(), kinds.to_vec());
            let report = load::run(Arc::clone(&drivers[a]), plan, self.stop.clone(), |_, _| {})
                .await
                .map_err(|e| e.to_string())?;
            self.settle().await;
            if let Some(reason) = arm.crashed() {
                return Err(reason);
            }
            let after = arm.usage().map_err(|e| e.to_string())?;
            if !self.record(
                arm,
                pair,
                Measurement {
                    report,
                    before,
                    after,
                },
            ) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Keeps one arm's trial, unless it was cut short: an interrupted trial measured part of a
    /// load and pairs with nothing (`false`). The treatment's load joins the run's report either
    /// way.
    fn record(&mut self, arm: &ArmProcess, pair: usize, measured: Measurement) -> bool {
        let Measurement {
            report,
            before,
            after,
        } = measured;
        let interrupted = report.stop == load::Stop::Interrupted || self.stop.is_cancelled();
        let target_rate = crate::plan::target_rate(&self.point.scenario.load.phases);
        let trial = trial_result(arm, pair, &report, target_rate, &before, &after);
        if arm.name == ArmName::Treatment {
            match self.treatment {
                Some(all) => all.absorb(report),
                None => *self.treatment = Some(report),
            }
        }
        if interrupted {
            return false;
        }
        self.progress.note(&format!(
            "{}trial {:>2}/{} {:<9} {:>6} sent  {:>7.1} µs CPU/request  p99 {}",
            self.setting(),
            self.trials.len() + 1,
            self.overhead.trials * (self.overhead.steps.len() + 2),
            trial.arm.label(),
            trial.sent,
            trial.cpu_us_total,
            duration_terse(trial.p99_us),
        ));
        self.trials.push(trial);
        true
    }

    /// The first phase's rate on each freshly launched arm for the warm-up time, not recorded,
    /// both at once in a duet and in the trials' order otherwise; then the settle time, so that
    /// the first trial's window holds none of the warm-up's batched spans.
    async fn warm_up<D: Driver>(
        &self,
        drivers: &[Arc<D>],
        order: [usize; 2],
        kinds: &[LoadKind<D::Payload>],
    ) -> Result<(), String>
    where
        D::Payload: Clone,
    {
        let load = &self.point.scenario.load;
        if load.warmup.is_zero() {
            return Ok(());
        }
        let rate = load.phases.first().map_or(1.0, |p| p.start_rate());
        self.progress.note(&format!(
            "{}warm-up: {:?} at {rate}/s on each arm (not recorded)",
            self.setting(),
            load.warmup
        ));
        let plan = || {
            load_plan(
                load,
                vec![RatePhase::constant(rate, load.warmup)],
                kinds.to_vec(),
            )
        };
        match self.overhead.execution {
            Execution::Duet => {
                load::run_together(drivers.to_vec(), plan(), self.stop.clone())
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Execution::Alternating => {
                for a in order {
                    load::run(
                        Arc::clone(&drivers[a]),
                        plan(),
                        self.stop.clone(),
                        |_, _| {},
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                }
            }
        }
        self.settle().await;
        Ok(())
    }

    /// Waits the settle time, or until the run is interrupted.
    async fn settle(&self) {
        self.pause(self.overhead.settle).await;
    }

    async fn pause(&self, time: Duration) {
        tokio::select! {
            () = tokio::time::sleep(time) => {}
            () = self.stop.cancelled() => {}
        }
    }

    fn phases(&self) -> Vec<RatePhase> {
        self.point
            .scenario
            .load
            .phases
            .iter()
            .map(rate_phase)
            .collect()
    }

    /// The progress lines' prefix at a sweep point.
    fn setting(&self) -> String {
        self.point
            .setting
            .as_ref()
            .map_or(String::new(), |s| format!("[{s}] "))
    }
}

fn trial_result(
    arm: &ArmProcess,
    pair: usize,
    report: &RunReport,
    target_rate: f64,
    before: &[Usage],
    after: &[Usage],
) -> TrialResult {
    let summary = LoadSummary::from_report(report, target_rate);
    let per_request = |used: f64| {
        if summary.sent == 0 {
            f64::NAN
        } else {
            used / summary.sent as f64
        }
    };
    let windows = || arm.probes.iter().zip(before.iter().zip(after));
    let cpu_us: BTreeMap<String, f64> = windows()
        .map(|((name, _), (b, a))| {
            let used = a.cpu.saturating_sub(b.cpu).as_secs_f64() * 1e6;
            (name.clone(), per_request(used))
        })
        .collect();
    let minor_faults = windows()
        .filter_map(|((name, _), (b, a))| {
            let faults = a.minor_faults?.checked_sub(b.minor_faults?)?;
            Some((name.clone(), per_request(faults as f64)))
        })
        .collect();
    let peak_rss_bytes = arm
        .probes
        .iter()
        .filter_map(|(name, probe)| probe.peak_rss().ok().map(|rss| (name.clone(), rss)))
        .collect();
    TrialResult {
        arm: arm.name,
        pair,
        sent: summary.sent,
        unexpected: summary.unexpected + summary.abandoned,
        dropped: summary.dropped,
        achieved_rate: summary.achieved_rate,
        cpu_us_total: cpu_us.values().sum(),
        cpu_us,
        minor_faults,
        p50_us: summary.latency.p50,
        p90_us: summary.latency.p90,
        p99_us: summary.latency.p99,
        peak_rss_bytes,
    }
}
