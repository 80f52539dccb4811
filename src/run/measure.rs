//! The measured part of a run: warm-up, the metrics baseline, then the load with its trace
//! sampling, on the driver for the target's protocol.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::shard::Sharding;
use super::target::Target;
use crate::exit::RunError;
use crate::load::stream::{StreamKind, StreamPlan, StreamTarget};
use crate::load::{self, Driver, GrpcDriver, HttpDriver, LoadKind, RatePhase, RunReport};
use crate::plan::{PreparedMix, arrivals, load_plan, rate_phase};
use crate::progress::Progress;
use crate::scenario::{Phase, Scenario};
use crate::verify::Verifier;

/// Warms up, then runs the measured load with the verifier sampling it.
pub(super) async fn drive(
    scenario: &Scenario,
    mix: PreparedMix,
    target: &Target,
    stop: &CancellationToken,
    quiet: bool,
    verify: Verify<'_>,
) -> Result<RunReport, RunError> {
    let load = &scenario.load;
    // The response header (HTTP) or metadata (gRPC) that carries the trace id, if checked.
    let trace_header = scenario
        .verify
        .traces
        .as_ref()
        .and_then(|t| t.response_header.as_deref());
    match mix {
        PreparedMix::Http(kinds) => {
            let mut driver = HttpDriver::new(
                &target.base,
                target.tls.clone(),
                target.http,
                load.connections,
            )
            .map_err(|e| RunError::BadInput(e.to_string()))?;
            if let Some(name) =
                trace_header.and_then(|h| hyper::header::HeaderName::from_bytes(h.as_bytes()).ok())
            {
                driver = driver.with_trace_header(name);
            }
            warm_up_and_run(scenario, Arc::new(driver), kinds, stop, quiet, verify).await
        }
        PreparedMix::Grpc(kinds) => {
            let mut driver = GrpcDriver::new(&target.base, target.tls.clone(), load.connections)
                .map_err(|e| RunError::BadInput(e.to_string()))?;
            if let Some(name) = trace_header {
                driver = driver.with_trace_header(name);
            }
            warm_up_and_run(scenario, Arc::new(driver), kinds, stop, quiet, verify).await
        }
        PreparedMix::WebSocket(kinds) => {
            let target = StreamTarget {
                base: target.base.clone(),
                tls: target.tls.clone(),
            };
            subscribe(scenario, target, kinds, stop, quiet, verify).await
        }
    }
}

/// The stream load: subscriptions connected at the phases' rate and held to their end. Its
/// connections are the measurement, so there is no warm-up.
async fn subscribe(
    scenario: &Scenario,
    target: StreamTarget,
    kinds: Vec<StreamKind>,
    stop: &CancellationToken,
    quiet: bool,
    verify: Verify<'_>,
) -> Result<RunReport, RunError> {
    let load = &scenario.load;
    let rate_phases: Vec<RatePhase> = load.phases.iter().map(rate_phase).collect();
    let progress = progress(load, &rate_phases, quiet);
    verify
        .verifier
        .before_load(verify.scrape_targets, stop)
        .await;
    let plan = StreamPlan {
        kinds,
        phases: rate_phases,
        arrivals: arrivals(load),
        seed: load.seed,
        max_connections: load.max_in_flight,
        timeout: load.timeout,
        announce: verify.verifier.stream_announce(),
    };
    let ticks = Arc::clone(&progress);
    let report = load::stream::run(target, plan, stop.clone(), move |recorder, elapsed| {
        ticks.tick(recorder, elapsed)
    })
    .await
    .map_err(|e| RunError::BadInput(e.to_string()))?;
    progress.finish();
    Ok(report)
}

/// The progress line, which names each phase from the moment it starts.
fn progress(load: &crate::scenario::Load, rate_phases: &[RatePhase], quiet: bool) -> Arc<Progress> {
    let labels = load
        .phases
        .iter()
        .enumerate()
        .map(|(i, phase)| match phase {
            Phase::Constant { rate, .. } => format!("[phase {} constant {rate}/s]", i + 1),
            Phase::Ramp { from, to, .. } => format!("[phase {} ramp {from}->{to}/s]", i + 1),
        });
    let starts = load::schedule::phase_starts(rate_phases);
    Arc::new(Progress::new(
        quiet,
        starts.into_iter().zip(labels).collect(),
    ))
}

/// The verifier and what it needs between the warm-up and the measured load.
pub(super) struct Verify<'a> {
    pub(super) verifier: &'a mut Verifier,
    pub(super) scrape_targets: Option<Vec<(String, String)>>,
    /// A shard's share of the load, and the fleet's common start.
    pub(super) sharding: Option<&'a Sharding>,
}

async fn warm_up_and_run<D: Driver>(
    scenario: &Scenario,
    driver: Arc<D>,
    mut kinds: Vec<LoadKind<D::Payload>>,
    stop: &CancellationToken,
    quiet: bool,
    verify: Verify<'_>,
) -> Result<RunReport, RunError>
where
    D::Payload: Clone,
{
    let load = &scenario.load;
    let segment = verify.sharding.map(|s| s.shard.segment());
    let plan = |phases, kinds| load::LoadPlan {
        segment,
        ..load_plan(load, phases, kinds)
    };
    let rate_phases: Vec<RatePhase> = load.phases.iter().map(rate_phase).collect();
    let progress = progress(load, &rate_phases, quiet);
    if !load.warmup.is_zero() {
        let rate = load.phases.first().map_or(1.0, Phase::start_rate);
        let warm_kinds = kinds.iter().map(LoadKind::clone).collect();
        progress.note(&format!(
            "warm-up: {:?} at {rate}/s (not recorded)",
            load.warmup
        ));
        load::run(
            Arc::clone(&driver),
            plan(vec![RatePhase::constant(rate, load.warmup)], warm_kinds),
            stop.clone(),
            |_, _| {},
        )
        .await
        .map_err(|e| RunError::BadInput(e.to_string()))?;
    }
    // The metrics baseline is what the warm-up left; sampling starts with the measured load.
    verify
        .verifier
        .before_load(verify.scrape_targets, stop)
        .await;
    for (kind, sampling) in kinds.iter_mut().zip(verify.verifier.sampling(scenario)) {
        kind.sampling = sampling;
    }
    let (announce, samples) = verify.verifier.start_traces(stop);
    let phases = load.phases.iter().map(rate_phase).collect();
    let mut measured = plan(phases, kinds);
    measured.announce = announce;
    measured.samples = samples;
    if let Some(sharding) = verify.sharding {
        progress.note("waiting for the fleet's common start");
        sharding.wait_for_start(stop).await?;
    }
    let ticks = Arc::clone(&progress);
    let report = load::run(driver, measured, stop.clone(), move |recorder, elapsed| {
        ticks.tick(recorder, elapsed)
    })
    .await
    .map_err(|e| RunError::BadInput(e.to_string()))?;
    if let Some(sharding) = verify.sharding {
        sharding.load_ended();
    }
    progress.finish();
    if let Some(traces) = &scenario.verify.traces {
        progress.note(&format!(
            "verifying: each sampled trace has up to {:?} to arrive complete",
            traces.timeout
        ));
    }
    Ok(report)
}
