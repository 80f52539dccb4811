//! Scenario → load plan: the request mix rendered for the protocol, and the phases, arrivals and
//! limits the load core runs. Everything here happens before a service starts, so that a body
//! that does not fit is bad input, found before anything is launched.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::exit::RunError;
use crate::load::{self, LoadKind, LoadPlan, Outcome, RatePhase};
use crate::scenario::{self, Phase, Protocol, Scenario};

/// Payload variants rendered per request kind whose body draws from `vars`.
const VARIANTS_PER_KIND: usize = 64;
/// How long requests still in flight after the last send may take, past their own timeout.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// The request mix rendered for the protocol, before anything starts: a body that does not fit
/// is bad input, found before any service is launched.
pub(crate) enum PreparedMix {
    /// JSON bodies for the gateway's HTTP route.
    Http(Vec<LoadKind<Bytes>>),
    /// Requests for the engine's gRPC method.
    Grpc(Vec<LoadKind<Arc<engine::proto::FetchMarketDataRequest>>>),
}

/// Renders every request kind of `scenario` for its protocol.
pub(crate) fn prepare(scenario: &Scenario) -> Result<PreparedMix, RunError> {
    Ok(match scenario.load.protocol {
        Protocol::Http => PreparedMix::Http(kinds(
            scenario,
            |value| Ok(Bytes::from(serde_json::to_vec(value)?)),
            |e| Outcome::Status(e.status),
        )?),
        Protocol::Grpc => PreparedMix::Grpc(kinds(
            scenario,
            |value| {
                let body: engine::gateway::FetchRequest = serde_json::from_value(value.clone())?;
                Ok(Arc::new(engine::proto::FetchMarketDataRequest::from(body)))
            },
            |e| Outcome::Code(e.code),
        )?),
    })
}

/// Renders each kind's payload variants up front, so that sending does no rendering.
fn kinds<P>(
    scenario: &Scenario,
    prepare: impl Fn(&serde_json::Value) -> Result<P, serde_json::Error>,
    expect: impl Fn(&scenario::Expect) -> Outcome,
) -> Result<Vec<LoadKind<P>>, RunError> {
    let mut rng = StdRng::seed_from_u64(scenario.load.seed);
    scenario
        .requests
        .iter()
        .map(|kind| {
            let variants = if kind.vars.is_empty() {
                1
            } else {
                VARIANTS_PER_KIND
            };
            let payloads = (0..variants)
                .map(|_| {
                    prepare(&kind.render(&mut rng)).map_err(|e| {
                        RunError::BadInput(format!(
                            "requests.{}.body: not a FetchMarketData request: {e}",
                            kind.name
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(LoadKind {
                name: kind.name.clone(),
                weight: kind.weight,
                payloads,
                expect: expect(&kind.expect),
                sampling: load::Sampling::NONE,
            })
        })
        .collect()
}

/// The load core's plan for `phases` of the scenario's load, without trace sampling.
pub(crate) fn load_plan<P>(
    load: &scenario::Load,
    phases: Vec<RatePhase>,
    kinds: Vec<LoadKind<P>>,
) -> LoadPlan<P> {
    LoadPlan {
        kinds,
        phases,
        arrivals: match load.arrivals {
            scenario::Arrivals::Uniform => load::Arrivals::Uniform,
            scenario::Arrivals::Poisson => load::Arrivals::Poisson { seed: load.seed },
        },
        seed: load.seed,
        max_in_flight: load.max_in_flight,
        drain_timeout: load.timeout + DRAIN_GRACE,
        announce: None,
        samples: None,
    }
}

/// The load core's view of a scenario phase.
pub(crate) fn rate_phase(phase: &Phase) -> RatePhase {
    match *phase {
        Phase::Constant { rate, duration } => RatePhase::constant(rate, duration),
        Phase::Ramp { from, to, duration } => RatePhase { from, to, duration },
    }
}

/// Requests per second the phases ask for on average.
pub(crate) fn target_rate(phases: &[Phase]) -> f64 {
    let phases: Vec<RatePhase> = phases.iter().map(rate_phase).collect();
    let seconds: f64 = phases.iter().map(|p| p.duration.as_secs_f64()).sum();
    let requests: f64 = phases.iter().map(RatePhase::expected_requests).sum();
    if seconds > 0.0 {
        requests / seconds
    } else {
        0.0
    }
}
