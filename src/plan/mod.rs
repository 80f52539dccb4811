//! Scenario → load plan: every request kind rendered for its protocol, and the phases, arrivals
//! and limits the load core runs. Rendering happens before a service starts, so that a request
//! that does not fit (an unset `${NAME}`, a message that does not match its type) is bad input,
//! found before anything is launched. Relative URLs stay relative: the driver knows the target.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::Uri;
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use prost::Message as _;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::bundled;
use crate::exit::RunError;
use crate::load::{self, GrpcCall, HttpRequest, LoadKind, LoadPlan, Outcome, RatePhase};
use crate::scenario::template::{self as tpl, Draw};
use crate::scenario::{
    self, Call, GrpcMethod, HttpBody, Phase, Protocol, RequestKind, Scenario, Template,
};

pub(crate) mod canary;

pub(crate) use canary::Canaries;

/// Draws rendered ahead per request kind whose values come from `vars:` lists; a `vars_file:`
/// gets one per row, up to this many.
const VARIANTS_PER_KIND: usize = 64;
const MAX_ROWS_RENDERED: usize = 4096;
/// How long requests still in flight after the last send may take, past their own timeout.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// The request mix rendered for the protocol, before anything starts.
pub(crate) enum PreparedMix {
    /// HTTP requests; URLs relative to the target stay relative.
    Http(Vec<LoadKind<Arc<HttpRequest>>>),
    /// Unary gRPC calls.
    Grpc(Vec<LoadKind<Arc<GrpcCall>>>),
    /// WebSocket subscriptions.
    WebSocket(Vec<load::stream::StreamKind>),
}

/// Where environment variables come from: the process, or a test's map.
pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment.
pub(crate) fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// What rendering does with a `grpc:` method that the target's reflection service has not yet
/// described: its message cannot be encoded without the method's descriptors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unresolved {
    /// An error: the run resolves every method before it renders the mix it sends.
    Refuse,
    /// Render its message and metadata as text (so that their templates and variables are
    /// checked) and encode nothing: for checks before the server can be asked.
    CheckText,
}

/// Renders every request kind of `scenario` for its protocol. Every `grpc:` method must be
/// resolved (`GrpcMethod::Resolved`).
pub(crate) fn prepare(scenario: &Scenario, env: Env<'_>) -> Result<PreparedMix, RunError> {
    prepare_with(scenario, env, Unresolved::Refuse)
}

/// Everything [`prepare`] checks, except encoding the messages of methods still to be asked of
/// the server's reflection service: what can be known before the system is reached.
pub(crate) fn check(scenario: &Scenario, env: Env<'_>) -> Result<(), RunError> {
    prepare_with(scenario, env, Unresolved::CheckText).map(drop)
}

fn prepare_with(
    scenario: &Scenario,
    env: Env<'_>,
    unresolved: Unresolved,
) -> Result<PreparedMix, RunError> {
    // Checked before rendering, so an unset variable is named where it is first written.
    for kind in &scenario.requests {
        if let Some((name, at)) = kind.env.iter().find(|(name, _)| env(name).is_none()) {
            let unset = tpl::RenderError::Unset(name.clone());
            return Err(RunError::BadInput(format!("{at}: {unset}")));
        }
    }
    let mut rng = StdRng::seed_from_u64(scenario.load.seed);
    let canaries = Canaries::of_this_process();
    Ok(match scenario.load.protocol {
        Protocol::Http => PreparedMix::Http(kinds(scenario, &mut rng, canaries, |kind, draw| {
            http_request(kind, draw, env).map(Arc::new)
        })?),
        Protocol::Grpc => PreparedMix::Grpc(kinds(scenario, &mut rng, canaries, |kind, draw| {
            grpc_call(kind, draw, env, unresolved).map(Arc::new)
        })?),
        Protocol::WebSocket => PreparedMix::WebSocket(stream::kinds(
            kinds(scenario, &mut rng, canaries, |kind, draw| {
                stream::subscription(kind, draw, env).map(Arc::new)
            })?,
            scenario,
        )?),
    })
}

/// Each kind's payload variants, rendered up front so that sending does no rendering.
fn kinds<P>(
    scenario: &Scenario,
    rng: &mut StdRng,
    canaries: Canaries,
    render: impl Fn(&RequestKind, &Draw) -> Result<P, RunError>,
) -> Result<Vec<LoadKind<P>>, RunError> {
    scenario
        .requests
        .iter()
        .enumerate()
        .map(|(index, kind)| {
            let cap = match kind.vars {
                scenario::Vars::Rows { .. } => MAX_ROWS_RENDERED,
                _ => VARIANTS_PER_KIND,
            };
            let payloads = (0..kind.vars.variants(cap))
                .map(|i| {
                    let mut draw = kind.vars.draw(i, rng);
                    canaries.add_to(&mut draw, index, i);
                    render(kind, &draw)
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(LoadKind {
                name: kind.name.clone(),
                weight: kind.weight,
                payloads,
                expect: match scenario.load.protocol {
                    Protocol::Http => Outcome::Status(kind.expect.status),
                    Protocol::WebSocket => Outcome::Status(101),
                    Protocol::Grpc => Outcome::Code(kind.expect.code),
                },
                sampling: load::Sampling::NONE,
            })
        })
        .collect()
}

fn bad(kind: &RequestKind, at: &str, problem: impl std::fmt::Display) -> RunError {
    let at = if at.is_empty() {
        format!("requests.{}", kind.name)
    } else {
        at.to_owned()
    };
    RunError::BadInput(format!("{at}: {problem}"))
}

fn render(
    kind: &RequestKind,
    template: &Template,
    draw: &Draw,
    env: Env<'_>,
) -> Result<String, RunError> {
    tpl::render(&template.text, draw, env).map_err(|e| bad(kind, &template.at, e))
}

fn http_request(kind: &RequestKind, draw: &Draw, env: Env<'_>) -> Result<HttpRequest, RunError> {
    let json = |value: &serde_json::Value| -> Result<Bytes, RunError> {
        let value = tpl::render_json(value, draw, env).map_err(|e| bad(kind, "", e))?;
        serde_json::to_vec(&value)
            .map(Bytes::from)
            .map_err(|e| bad(kind, "", e))
    };
    let mut headers = HeaderMap::new();
    let json_type = HeaderValue::from_static("application/json");
    match &kind.call {
        Call::Bundled(body) => {
            let mut request = HttpRequest::json(
                hyper::Method::POST,
                Uri::from_static(bundled::FETCH_ROUTE),
                json(&bundled::with_client_id(body))?,
            );
            bundled::add_client_headers(&mut request.headers, draw)
                .map_err(|e| bad(kind, "", e))?;
            Ok(request)
        }
        Call::Http(call) => {
            for (name, value) in &call.headers {
                let name =
                    HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(kind, &value.at, e))?;
                let mut rendered = HeaderValue::from_str(&render(kind, value, draw, env)?)
                    .map_err(|e| bad(kind, &value.at, e))?;
                // Header values may hold secrets: keep them out of debug output.
                rendered.set_sensitive(true);
                headers.append(name, rendered);
            }
            let body = match &call.body {
                HttpBody::Empty => Bytes::new(),
                HttpBody::Json(value) => {
                    if !headers.contains_key(CONTENT_TYPE) {
                        headers.insert(CONTENT_TYPE, json_type);
                    }
                    json(value)?
                }
                HttpBody::Text(text) => Bytes::from(render(kind, text, draw, env)?),
                HttpBody::File(bytes) => bytes.clone(),
            };
            let url = render(kind, &call.url, draw, env)?;
            let uri = url
                .parse::<Uri>()
                .map_err(|e| bad(kind, &call.url.at, format!("{url:?} is not a URL: {e}")))?;
            Ok(HttpRequest {
                method: hyper::Method::from_bytes(call.method.as_bytes())
                    .map_err(|e| bad(kind, "", e))?,
                uri,
                headers,
                body,
            })
        }
        Call::Grpc(_) => Err(bad(kind, "", "a grpc: request in an http scenario")),
        Call::WebSocket(_) => Err(bad(kind, "", "a websocket: kind in an http scenario")),
    }
}

fn grpc_call(
    kind: &RequestKind,
    draw: &Draw,
    env: Env<'_>,
    unresolved: Unresolved,
) -> Result<GrpcCall, RunError> {
    match &kind.call {
        Call::Bundled(body) => {
            let body = tpl::render_json(body, draw, env).map_err(|e| bad(kind, "", e))?;
            let message = bundled::fetch_message(body)
                .map_err(|e| bad(kind, "", format!("not a FetchMarketData request: {e}")))?;
            Ok(GrpcCall {
                path: bundled::FETCH_METHOD_PATH
                    .parse()
                    .map_err(|e| bad(kind, "", e))?,
                metadata: tonic::metadata::MetadataMap::new(),
                message,
            })
        }
        Call::Grpc(call) => {
            let json = tpl::render_json(&call.message, draw, env).map_err(|e| bad(kind, "", e))?;
            let mut metadata = tonic::metadata::MetadataMap::new();
            for (name, value) in &call.metadata {
                let key = tonic::metadata::MetadataKey::from_bytes(name.as_bytes())
                    .map_err(|e| bad(kind, &value.at, e))?;
                let rendered = render(kind, value, draw, env)?;
                let value = tonic::metadata::MetadataValue::try_from(rendered.as_str())
                    .map_err(|e| bad(kind, &value.at, e))?;
                metadata.append(key, value);
            }
            let method = match (&call.method, unresolved) {
                (GrpcMethod::Resolved(method), _) => method,
                (GrpcMethod::Reflection(name), Unresolved::Refuse) => {
                    return Err(RunError::BadInput(
                        name.problem(
                            "not yet described by the server: its reflection service is asked \
                             when the run starts",
                        )
                        .to_string(),
                    ));
                }
                // Checked as far as it can be; never sent.
                (GrpcMethod::Reflection(name), Unresolved::CheckText) => {
                    return Ok(GrpcCall {
                        path: format!("/{}", name.value).parse().map_err(|e| {
                            RunError::BadInput(name.problem(format!("{e}")).to_string())
                        })?,
                        metadata,
                        message: Bytes::new(),
                    });
                }
            };
            let input = method.input();
            let message =
                prost_reflect::DynamicMessage::deserialize(input.clone(), json).map_err(|e| {
                    bad(
                        kind,
                        "",
                        format!("the message is not a {}: {e}", input.full_name()),
                    )
                })?;
            let path = format!("/{}/{}", method.parent_service().full_name(), method.name());
            Ok(GrpcCall {
                path: path.parse().map_err(|e| bad(kind, "", e))?,
                metadata,
                message: message.encode_to_vec().into(),
            })
        }
        Call::Http(_) => Err(bad(kind, "", "an http: request in a grpc scenario")),
        Call::WebSocket(_) => Err(bad(kind, "", "a websocket: kind in a grpc scenario")),
    }
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
        arrivals: arrivals(load),
        seed: load.seed,
        max_in_flight: load.max_in_flight,
        timeout: load.timeout,
        batch_window: load.batch_window,
        drain_timeout: load.timeout + DRAIN_GRACE,
        announce: None,
        samples: None,
        segment: None,
    }
}

/// How the scenario spreads sends within the rate, for the load core.
pub(crate) fn arrivals(load: &scenario::Load) -> load::Arrivals {
    match load.arrivals {
        scenario::Arrivals::Uniform => load::Arrivals::Uniform,
        scenario::Arrivals::Poisson => load::Arrivals::Poisson { seed: load.seed },
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

mod stream;
#[cfg(test)]
mod tests;
