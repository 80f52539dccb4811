//! Launching the two arms and running the trials between them.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hyper::Uri;
use tokio_util::sync::CancellationToken;

use super::analysis::analyse;
use super::process::ProcessProbe;
use super::stats::Verdict;
use super::{
    ArmName, ArmResult, ClaimResult, OverheadResult, PointResult, ProbeError, TrialResult,
};
use crate::load::{self, Driver, GrpcDriver, HttpDriver, LoadKind, RatePhase, RunReport};
use crate::progress::Progress;
use crate::result::LoadSummary;
use crate::run::{PreparedMix, RunError, fetch_url, http_uri, load_plan, prepare, rate_phase};
use crate::scenario::{Arm, Managed, Overhead, Relaunch, Scenario, ServiceSpec, System};
use crate::summary::micros;
use crate::system::{ManagedSystem, ServiceLaunch};
use crate::trace::receiver::{Receiver, ReceiverConfig};

/// The experiment at one setting of the swept key (the only one without a sweep).
pub struct Point {
    /// `KEY=VALUE`.
    pub setting: Option<String>,
    pub scenario: Scenario,
}

/// What the experiment measured, however far it got.
pub struct Measured {
    pub result: OverheadResult,
    /// The treatment arm's trials as one run: the load summary and the thresholds read it, since
    /// the treatment is the system as it would be deployed.
    pub treatment: RunReport,
    /// Why the experiment ended early, if it did.
    pub failure: Option<String>,
}

/// Launches both arms, runs every point's trials, stops the arms.
pub async fn run(
    base: &Scenario,
    points: Vec<Point>,
    out_dir: &Path,
    quiet: bool,
    stop: &CancellationToken,
) -> Result<Measured, RunError> {
    let (Some(overhead), System::Managed(managed)) = (&base.overhead, &base.system) else {
        return Err(RunError::BadInput(format!(
            "{}: the overhead experiment needs an overhead section and a managed system",
            base.name
        )));
    };
    // Every point's requests are rendered before anything is launched: bad input shows at once.
    let mixes = points
        .iter()
        .map(|point| prepare(&point.scenario))
        .collect::<Result<Vec<_>, _>>()?;
    let traced = overhead.control.tracing || overhead.treatment.tracing;
    let receiver = match (&overhead.export, traced) {
        (None, true) => Some(
            Receiver::start(ReceiverConfig::default())
                .context("starting the OTLP receiver for the tracing arms")
                .map_err(RunError::Incomplete)?,
        ),
        _ => None,
    };
    let endpoint = overhead
        .export
        .clone()
        .or_else(|| receiver.as_ref().map(Receiver::grpc_endpoint));
    let mut arms = Arms {
        managed,
        overhead,
        endpoint,
        out_dir,
        running: None,
    };

    let progress = Progress::new(quiet, Vec::new());
    let mut results = Vec::with_capacity(points.len());
    let mut treatment: Option<RunReport> = None;
    let mut failure = None;
    for (point, mix) in points.iter().zip(mixes) {
        let mut trials = Vec::new();
        let load = &point.scenario.load;
        let mut trial_run = TrialRun {
            point,
            overhead,
            progress: &progress,
            stop,
            trials: &mut trials,
            treatment: &mut treatment,
        };
        let measured = match mix {
            PreparedMix::Http(kinds) => {
                let driver = |arm: &ArmProcess| {
                    HttpDriver::new(arm.http.clone(), load.connections, load.timeout)
                };
                trial_run.run(driver, kinds, &mut arms).await
            }
            PreparedMix::Grpc(kinds) => {
                let driver = |arm: &ArmProcess| {
                    let endpoint = tonic::transport::Endpoint::from(arm.grpc.clone());
                    GrpcDriver::new(endpoint, load.connections, load.timeout)
                };
                trial_run.run(driver, kinds, &mut arms).await
            }
        };
        let analysis = analyse(&trials, overhead.claim);
        results.push(PointResult {
            setting: point.setting.clone(),
            trials,
            analysis,
        });
        if let Err(reason) = measured {
            failure = Some(reason);
            break;
        }
        if stop.is_cancelled() {
            break;
        }
    }
    arms.stop().await;
    let spans_received = match receiver {
        Some(receiver) => {
            let spans = receiver.stats().spans_received;
            let _ = receiver.shutdown().await;
            Some(spans)
        }
        None => None,
    };
    // A tracing arm that exported nothing measured an experiment without tracing in it.
    let tracing = |arm: ArmName| match arm {
        ArmName::Control => overhead.control.tracing,
        ArmName::Treatment => overhead.treatment.tracing,
    };
    let traced_sent: u64 = results
        .iter()
        .flat_map(|p| &p.trials)
        .filter(|t| tracing(t.arm))
        .map(|t| t.sent)
        .sum();
    if spans_received == Some(0) && traced_sent > 0 && failure.is_none() && !stop.is_cancelled() {
        failure = Some(
            "the tracing arm exported no spans to the harness's receiver: the services did not \
             trace, so the experiment measured nothing of tracing"
                .to_owned(),
        );
    }
    let kind_names = base.requests.iter().map(|k| k.name.clone());
    let mut treatment = treatment.unwrap_or_else(|| RunReport::empty(kind_names));
    // Interrupted in a control trial or between trials, the treatment's own loads all completed.
    if stop.is_cancelled() {
        treatment.stop = load::Stop::Interrupted;
    }
    let result = OverheadResult {
        claim: ClaimResult {
            metric: overhead.claim.metric,
            bound: overhead.claim.bound,
        },
        control: arm_result(&overhead.control),
        treatment: arm_result(&overhead.treatment),
        trials_per_arm: overhead.trials,
        settle_s: overhead.settle.as_secs_f64(),
        verdict: Verdict::combine(results.iter().map(|p| p.analysis.verdict)),
        points: results,
        spans_received,
    };
    Ok(Measured {
        result,
        treatment,
        failure,
    })
}

/// One arm's running services and what is known about them.
struct ArmProcess {
    name: ArmName,
    system: ManagedSystem,
    /// The gateway's fetch URL and the engine's gRPC URL.
    http: Uri,
    grpc: Uri,
    /// Each service's name and probe.
    probes: Vec<(String, ProcessProbe)>,
}

impl ArmProcess {
    /// Why the arm can no longer be measured: a service exited.
    fn crashed(&mut self) -> Option<String> {
        let name = self.name;
        self.system
            .exited()
            .map(|reason| format!("{} arm: {reason}", name.as_str()))
    }

    fn cpu(&self) -> Result<Vec<Duration>, ProbeError> {
        self.probes.iter().map(|(_, probe)| probe.cpu()).collect()
    }
}

/// The two arms' processes: launched for the first pair and, unless the experiment keeps them,
/// afresh for every pair after.
struct Arms<'a> {
    managed: &'a Managed,
    overhead: &'a Overhead,
    endpoint: Option<String>,
    out_dir: &'a Path,
    running: Option<[ArmProcess; 2]>,
}

impl Arms<'_> {
    /// The arms for `pair`, and whether they were just launched (and so need warming up); `None`
    /// when the run was interrupted meanwhile. Every pair (of every sweep point) gets new
    /// processes unless `relaunch: never`; the arm launched first alternates.
    async fn for_pair(
        &mut self,
        pair: usize,
        stop: &CancellationToken,
    ) -> Result<Option<(&mut [ArmProcess; 2], bool)>, String> {
        if self.overhead.relaunch == Relaunch::EveryPair {
            self.stop().await;
        }
        if stop.is_cancelled() {
            return Ok(None);
        }
        let fresh = self.running.is_none();
        if fresh {
            let endpoint = self.endpoint.as_deref();
            let (first, second) = if pair.is_multiple_of(2) {
                (ArmName::Control, ArmName::Treatment)
            } else {
                (ArmName::Treatment, ArmName::Control)
            };
            let first = self.launch(first, endpoint).await?;
            let second = match self.launch(second, endpoint).await {
                Ok(second) => second,
                Err(error) => {
                    first.system.stop().await;
                    return Err(error);
                }
            };
            self.running = Some(match first.name {
                ArmName::Control => [first, second],
                ArmName::Treatment => [second, first],
            });
        }
        match &mut self.running {
            Some(arms) => Ok(Some((arms, fresh))),
            None => Err("the arms were not launched".to_owned()),
        }
    }

    async fn launch(&self, name: ArmName, endpoint: Option<&str>) -> Result<ArmProcess, String> {
        let arm = match name {
            ArmName::Control => &self.overhead.control,
            ArmName::Treatment => &self.overhead.treatment,
        };
        launch(
            self.managed,
            arm,
            name,
            endpoint,
            self.overhead.settle,
            self.out_dir,
        )
        .await
        .map_err(|e| format!("launching the {} arm: {e}", name.as_str()))
    }

    async fn stop(&mut self) {
        if let Some(arms) = self.running.take() {
            for arm in arms {
                arm.system.stop().await;
            }
        }
    }
}

/// Starts one arm's engine and gateway, logging into `out_dir/<arm>/`.
async fn launch(
    managed: &Managed,
    arm: &Arm,
    name: ArmName,
    endpoint: Option<&str>,
    settle: Duration,
    out_dir: &Path,
) -> Result<ArmProcess, RunError> {
    let incomplete = |e: anyhow::Error| RunError::Incomplete(e);
    let exe = std::env::current_exe()
        .context("finding the harness executable to launch the services")
        .map_err(incomplete)?;
    let log_dir = out_dir.join(name.as_str());
    std::fs::create_dir_all(&log_dir)
        .with_context(|| format!("creating {}", log_dir.display()))
        .map_err(incomplete)?;
    let mut env = BTreeMap::new();
    if arm.tracing {
        // Every request traced: the claim is about tracing as configured to keep everything.
        env.insert("OTEL_SDK_DISABLED".to_owned(), "false".to_owned());
        env.insert("OTEL_TRACES_SAMPLER".to_owned(), "always_on".to_owned());
        // Batches leave within the settle time, so that a trial's window holds their export
        // (a scenario's own setting wins).
        let delay = (settle / 2).max(Duration::from_millis(10));
        env.insert(
            "OTEL_BSP_SCHEDULE_DELAY".to_owned(),
            delay.as_millis().to_string(),
        );
        if let Some(endpoint) = endpoint {
            env.insert(
                "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
                endpoint.to_owned(),
            );
        }
    } else {
        env.insert("OTEL_SDK_DISABLED".to_owned(), "true".to_owned());
    }
    let system = ManagedSystem::start(
        &exe,
        &env,
        &combined(&managed.engine, &arm.engine),
        &combined(&managed.gateway, &arm.gateway),
        &log_dir,
    )
    .await
    .map_err(|e| incomplete(e.into()))?;
    // The services say in their ready line whether they trace: an environment that overrode the
    // arm would otherwise go unnoticed.
    let mismatch = [&system.engine, &system.gateway]
        .into_iter()
        .find(|service| service.ready.tracing != arm.tracing)
        .map(|service| service.name());
    if let Some(service) = mismatch {
        system.stop().await;
        let state = |on: bool| if on { "on" } else { "off" };
        return Err(incomplete(anyhow::anyhow!(
            "the {} started with tracing {}, but the arm asks for tracing {} (is \
             OTEL_SDK_DISABLED set in the arm's environment?)",
            service,
            state(!arm.tracing),
            state(arm.tracing)
        )));
    }
    let address = |service: &crate::system::ServiceProcess, listener| {
        service.address(listener).map_err(|e| incomplete(e.into()))
    };
    let http = fetch_url(http_uri(address(&system.gateway, "http")?)?)?;
    let grpc = http_uri(address(&system.engine, "grpc")?)?;
    let mut probes = Vec::new();
    for (service, process) in [
        (engine::core_engine::DEFAULT_SERVICE_NAME, &system.engine),
        (engine::gateway::DEFAULT_SERVICE_NAME, &system.gateway),
    ] {
        if let Some(pid) = process.pid() {
            probes.push((service.to_owned(), ProcessProbe::new(pid)));
        }
    }
    Ok(ArmProcess {
        name,
        system,
        http,
        grpc,
        probes,
    })
}

/// `system.managed`'s settings for a service with the arm's on top.
fn combined(base: &ServiceSpec, arm: &ServiceSpec) -> ServiceLaunch {
    let mut env = base.env.clone();
    env.extend(arm.env.clone());
    ServiceLaunch {
        args: base.args.iter().chain(&arm.args).cloned().collect(),
        env,
    }
}

fn arm_result(arm: &Arm) -> ArmResult {
    let mut extras = Vec::new();
    for (service, spec) in [("engine", &arm.engine), ("gateway", &arm.gateway)] {
        if !spec.args.is_empty() {
            extras.push(format!("{service}: {}", spec.args.join(" ")));
        }
        for (key, value) in &spec.env {
            extras.push(format!("{service}: {key}={value}"));
        }
    }
    ArmResult {
        tracing: arm.tracing,
        extras,
    }
}

/// The trials of one point.
struct TrialRun<'a> {
    point: &'a Point,
    overhead: &'a Overhead,
    progress: &'a Progress,
    stop: &'a CancellationToken,
    /// Where each trial goes.
    trials: &'a mut Vec<TrialResult>,
    /// The treatment arm's loads, as one run.
    treatment: &'a mut Option<RunReport>,
}

impl TrialRun<'_> {
    /// Runs the pairs, A B then B A, warming freshly launched arms up first. Ends early, with
    /// what it has, when the run is interrupted; an arm that fails is the error.
    async fn run<D: Driver>(
        &mut self,
        make_driver: impl Fn(&ArmProcess) -> D,
        kinds: Vec<LoadKind<D::Payload>>,
        arms: &mut Arms<'_>,
    ) -> Result<(), String>
    where
        D::Payload: Clone,
    {
        let load = &self.point.scenario.load;
        let setting = self
            .point
            .setting
            .as_ref()
            .map_or(String::new(), |s| format!("[{s}] "));
        let phases: Vec<RatePhase> = load.phases.iter().map(rate_phase).collect();
        let target_rate = crate::run::target_rate(&load.phases);
        let total = self.overhead.trials * 2;
        let mut drivers: Option<[Arc<D>; 2]> = None;
        for pair in 0..self.overhead.trials {
            if self.stop.is_cancelled() {
                return Ok(());
            }
            let Some((running, fresh)) = arms.for_pair(pair, self.stop).await? else {
                return Ok(());
            };
            let order = if pair.is_multiple_of(2) {
                [0, 1]
            } else {
                [1, 0]
            };
            let drivers = match &drivers {
                Some(drivers) if !fresh => drivers,
                _ => {
                    let made = [make_driver(&running[0]), make_driver(&running[1])].map(Arc::new);
                    self.warm_up(&made, order, &kinds, &setting).await?;
                    drivers.insert(made)
                }
            };
            for a in order {
                if self.stop.is_cancelled() {
                    return Ok(());
                }
                let arm = &mut running[a];
                for (_, probe) in &arm.probes {
                    probe.reset_peak_rss();
                }
                let before = arm.cpu().map_err(|e| e.to_string())?;
                let plan = load_plan(load, phases.clone(), kinds.clone());
                let report = load::run(Arc::clone(&drivers[a]), plan, self.stop.clone(), |_, _| {})
                    .await
                    .map_err(|e| e.to_string())?;
                // Spans batched during the trial are exported within its window.
                self.settle().await;
                if let Some(reason) = arm.crashed() {
                    return Err(reason);
                }
                let after = arm.cpu().map_err(|e| e.to_string())?;
                // Cut short in its load or its settle time.
                let interrupted =
                    report.stop == load::Stop::Interrupted || self.stop.is_cancelled();
                let trial = trial_result(arm, pair, &report, target_rate, &before, &after);
                if arm.name == ArmName::Treatment {
                    match self.treatment {
                        Some(all) => all.absorb(report),
                        None => *self.treatment = Some(report),
                    }
                }
                // An interrupted trial measured part of a load: it pairs with nothing.
                if interrupted {
                    return Ok(());
                }
                self.progress.note(&format!(
                    "{setting}trial {:>2}/{total} {:<9} {:>6} sent  {:>7.1} µs CPU/request  p99 {}",
                    self.trials.len() + 1,
                    trial.arm.as_str(),
                    trial.sent,
                    trial.cpu_us_total,
                    micros(trial.p99_us),
                ));
                self.trials.push(trial);
            }
        }
        Ok(())
    }

    /// The first phase's rate on each freshly launched arm for the warm-up time, not recorded, in
    /// the order the trials will run; then the settle time, so that the first trial's window
    /// holds none of the warm-up's batched spans.
    async fn warm_up<D: Driver>(
        &self,
        drivers: &[Arc<D>; 2],
        order: [usize; 2],
        kinds: &[LoadKind<D::Payload>],
        setting: &str,
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
            "{setting}warm-up: {:?} at {rate}/s on each arm (not recorded)",
            load.warmup
        ));
        for a in order {
            let plan = load_plan(
                load,
                vec![RatePhase::constant(rate, load.warmup)],
                kinds.to_vec(),
            );
            load::run(Arc::clone(&drivers[a]), plan, self.stop.clone(), |_, _| {})
                .await
                .map_err(|e| e.to_string())?;
        }
        self.settle().await;
        Ok(())
    }

    /// Waits the settle time, or until the run is interrupted.
    async fn settle(&self) {
        tokio::select! {
            () = tokio::time::sleep(self.overhead.settle) => {}
            () = self.stop.cancelled() => {}
        }
    }
}

fn trial_result(
    arm: &ArmProcess,
    pair: usize,
    report: &RunReport,
    target_rate: f64,
    before: &[Duration],
    after: &[Duration],
) -> TrialResult {
    let summary = LoadSummary::from_report(report, target_rate);
    let per_request = |used: Duration| {
        if summary.sent == 0 {
            f64::NAN
        } else {
            used.as_secs_f64() * 1e6 / summary.sent as f64
        }
    };
    let cpu_us: BTreeMap<String, f64> = arm
        .probes
        .iter()
        .zip(before.iter().zip(after))
        .map(|((name, _), (b, a))| (name.clone(), per_request(a.saturating_sub(*b))))
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
        p50_us: summary.latency.p50,
        p90_us: summary.latency.p90,
        p99_us: summary.latency.p99,
        peak_rss_bytes,
    }
}

/// The points of a scenario's sweep, each the scenario file read again with the user's `--set`s
/// and then the sweep's own; without a sweep, the scenario itself.
pub fn points(
    path: &Path,
    overrides: &[crate::scenario::Override],
    scenario: &Scenario,
) -> Result<Vec<Point>, RunError> {
    let Some(sweep) = scenario.overhead.as_ref().and_then(|o| o.sweep.as_ref()) else {
        return Ok(vec![Point {
            setting: None,
            scenario: scenario.clone(),
        }]);
    };
    sweep
        .values
        .iter()
        .map(|value| {
            let setting = format!("{}={value}", sweep.key);
            let mut all = overrides.to_vec();
            all.push(
                setting
                    .parse()
                    .map_err(|e: crate::scenario::ScenarioError| {
                        RunError::BadInput(e.to_string())
                    })?,
            );
            let scenario = crate::scenario::load(path, &all)
                .map_err(|e| RunError::BadInput(format!("overhead.sweep at {setting}: {e}")))?;
            Ok(Point {
                setting: Some(setting),
                scenario,
            })
        })
        .collect()
}
