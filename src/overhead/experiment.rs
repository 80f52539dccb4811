//! The experiment from start to end: the receiver, the arms, every point's trials, the verdict.

use std::path::Path;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use super::analysis::{analyse, attribute};
use super::arms::{ArmProcess, Arms, arm_result};
use super::callgrind::Callgrind;
use super::sweep::Point;
use super::trials::TrialRun;
use super::{ArmName, ClaimResult, OverheadResult, PointResult, StepArm, Verdict};
use crate::exit::RunError;
use crate::load::{self, GrpcDriver, HttpDriver, HttpVersion, RunReport};
use crate::plan::{PreparedMix, prepare, process_env};
use crate::progress::Progress;
use crate::scenario::{Scenario, System};
use crate::trace::receiver::{Receiver, ReceiverConfig};

/// What the experiment measured, however far it got.
pub(crate) struct Measured {
    pub result: OverheadResult,
    /// The treatment arm's trials as one run: the load summary and the thresholds read it, since
    /// the treatment is the system as it would be deployed.
    pub treatment: RunReport,
    /// Why the experiment ended early, if it did.
    pub failure: Option<String>,
}

/// Launches both arms, runs every point's trials, stops the arms.
pub(crate) async fn run(
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
        .map(|point| prepare(&point.scenario, &process_env))
        .collect::<Result<Vec<_>, _>>()?;
    // Missing valgrind is found before anything is measured.
    let callgrind = match &overhead.instructions {
        Some(_) => {
            Some(Callgrind::find().map_err(|e| RunError::Incomplete(anyhow::Error::new(e)))?)
        }
        None => None,
    };
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
        counting: None,
    };

    let tls = crate::tls::client_config(&crate::tls::TlsSpec::default())
        .map_err(|e| RunError::Incomplete(e.into()))?;
    let progress = Progress::new(quiet, Vec::new());
    let mut results = Vec::with_capacity(points.len());
    let mut treatment: Option<RunReport> = None;
    let mut failure = None;
    for (point, mix) in points.iter().zip(mixes) {
        let mut trials = Vec::new();
        let mut instructions = None;
        let load = &point.scenario.load;
        let mut trial_run = TrialRun {
            point,
            overhead,
            progress: &progress,
            stop,
            trials: &mut trials,
            treatment: &mut treatment,
            instructions: &mut instructions,
            callgrind: callgrind.as_ref(),
        };
        // The arms are the bundled services on loopback: plain connections.
        let measured = match mix {
            PreparedMix::Http(kinds) => {
                let driver = |arm: &ArmProcess| {
                    HttpDriver::new(&arm.http, tls.clone(), HttpVersion::Auto, load.connections)
                        .map_err(|e| e.to_string())
                };
                trial_run.run(driver, kinds, &mut arms).await
            }
            PreparedMix::Grpc(kinds) => {
                let driver = |arm: &ArmProcess| {
                    GrpcDriver::new(&arm.grpc, tls.clone(), load.connections)
                        .map_err(|e| e.to_string())
                };
                trial_run.run(driver, kinds, &mut arms).await
            }
            // Refused when the scenario is read: the trials are request loads.
            PreparedMix::WebSocket(_) => {
                Err("the overhead experiment does not apply to websocket: kinds".to_owned())
            }
        };
        let mut analysis = analyse(&trials, overhead.claim);
        analysis.steps = attribute(&trials, overhead.steps.len());
        results.push(PointResult {
            setting: point.setting.clone(),
            trials,
            instructions,
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
        ArmName::Step(n) => overhead.steps.get(n).is_some_and(|s| s.arm.tracing),
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
        execution: overhead.execution,
        control: arm_result(&overhead.control),
        treatment: arm_result(&overhead.treatment),
        steps: overhead
            .steps
            .iter()
            .map(|step| StepArm {
                name: step.name.clone(),
                arm: arm_result(&step.arm),
            })
            .collect(),
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
