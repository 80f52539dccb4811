//! The validated scenario: every field typed, every default filled in, every cross-field rule
//! checked. Code downstream of [`super::parse`] can rely on these invariants instead of rechecking.

use std::collections::BTreeMap;
use std::time::Duration;

use hyper::Uri;

use super::error::{At, Problem};

mod overhead;
mod requests;
mod verify;

pub(crate) use overhead::{
    Arm, Claim, ClaimMetric, Execution, Instructions, Overhead, Relaunch, Step, Sweep,
};
pub(crate) use requests::{
    Call, Expect, GrpcCall, GrpcMethod, HttpBody, HttpCall, MessageFields, RequestKind, Template,
    Vars, WebSocketCall, WsMessage, is_name_byte, is_var_byte,
};
pub(crate) use verify::{
    Access, ChainStep, Equals, ErrorRule, MetricRule, MetricsChecks, PatternSeverity, PiiChecks,
    PrometheusSpec, SampleShare, StreamChecks, TraceChecks, TraceSourceSpec, Verify,
};

/// One scenario file, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// `[a-z0-9_-]+`, safe to use in report file names.
    pub name: String,
    pub description: String,
    pub system: System,
    pub load: Load,
    /// At least one kind, names unique.
    pub requests: Vec<RequestKind>,
    /// Threshold expressions over all kinds, unparsed (the threshold module owns their syntax),
    /// each with where it was written.
    pub thresholds: Vec<Located<String>>,
    /// What to check besides latency: traces and metrics. Nothing when the section is absent.
    pub verify: Verify,
    /// Turns the run into the tracing-overhead experiment. Only with a managed system and no
    /// `verify` section.
    pub overhead: Option<Overhead>,
}

/// A value that a later stage checks (a threshold's syntax, a sweep's setting), kept with where
/// it was written so that those checks' errors name the place as the scenario's own do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located<T> {
    pub value: T,
    /// The file position, or the `--set` that supplied the value.
    pub at: At,
    /// Its key path, such as `thresholds[2]`.
    pub key: String,
}

impl<T> Located<T> {
    /// `file:line:col: key: message`, the shape of every scenario problem.
    pub(crate) fn problem(&self, message: impl Into<String>) -> Problem {
        Problem {
            at: self.at.clone(),
            key: self.key.clone(),
            message: message.into(),
        }
    }
}

/// The system under test.
#[derive(Clone, Debug, PartialEq)]
pub enum System {
    /// The bundled engine and gateway, launched by the harness as child processes.
    Managed(Managed),
    /// An already running system. The URL the protocol needs is guaranteed present.
    External(Box<External>),
}

/// An already running system. The URL the protocol needs is guaranteed present: `target`, or for
/// the bundled system's names, `gateway` (http) or `engine` (grpc).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct External {
    /// Where relative request URLs go and gRPC calls connect: `http(s)://host[:port][/prefix]`.
    pub target: Option<Uri>,
    /// The bundled gateway's URL, for protocol http when there is no `target`.
    pub gateway: Option<Uri>,
    /// The bundled engine's gRPC URL, for protocol grpc when there is no `target`.
    pub engine: Option<Uri>,
    /// What to trust (and present) on `https://` connections to the system.
    pub tls: crate::tls::TlsSpec,
    /// Which HTTP versions to speak.
    pub http: crate::load::HttpVersion,
}

impl External {
    /// The URL the load of `protocol` goes to.
    pub fn base(&self, protocol: Protocol) -> Option<&Uri> {
        let named = match protocol {
            Protocol::Http | Protocol::WebSocket => &self.gateway,
            Protocol::Grpc => &self.engine,
        };
        self.target.as_ref().or(named.as_ref())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Managed {
    /// `false` launches both services with `OTEL_SDK_DISABLED=true`.
    pub tracing: bool,
    pub engine: ServiceSpec,
    pub gateway: ServiceSpec,
    /// `jaeger:`: a Jaeger v2 launched beside the services, which export to it and whose query
    /// API the trace checks read.
    pub jaeger: Option<ManagedJaeger>,
    /// `metrics_auth: true`: both services' metrics endpoints need a bearer token, which the
    /// harness makes for the run, hands them in a private file and sends when it scrapes them.
    pub metrics_auth: bool,
}

/// The Jaeger the harness launches (`system.managed.jaeger`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManagedJaeger {
    /// `config:` (relative to the scenario): its configuration; `None` runs the compose stack's
    /// `observability/jaeger.yaml`. Its listeners are moved to free loopback ports either way.
    pub config: Option<std::path::PathBuf>,
}

/// Extra command-line flags and environment for one managed service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceSpec {
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP requests (for the bundled shorthand: JSON through the gateway).
    Http,
    /// Unary gRPC calls (for the bundled shorthand: protobuf straight to the engine).
    Grpc,
    /// WebSocket subscriptions (`websocket:` kinds), through the gateway's address.
    WebSocket,
}

impl Protocol {
    /// As written in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Grpc => "grpc",
            Protocol::WebSocket => "websocket",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrivals {
    /// Evenly spaced sends at the target rate.
    Uniform,
    /// Exponential gaps with the target rate as mean, seeded by [`Load::seed`].
    Poisson,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Load {
    pub protocol: Protocol,
    /// Run at the first phase's starting rate before recording; may be zero.
    pub warmup: Duration,
    /// At least one phase, run in order.
    pub phases: Vec<Phase>,
    pub arrivals: Arrivals,
    /// Seeds Poisson gaps and the request mix, so runs are repeatable.
    pub seed: u64,
    /// A send due while this many requests are in flight is dropped (and counted), never queued:
    /// queuing would hide the overload an open-loop test exists to show. At least 1.
    pub max_in_flight: usize,
    /// Per-request timeout, > 0.
    pub timeout: Duration,
    /// HTTP keep-alive connections or gRPC channels, at least 1.
    pub connections: usize,
    /// The shortest time between two wake-ups of the load: what falls due within it leaves
    /// together, each request at most this late. Zero wakes for every request.
    pub batch_window: Duration,
}

/// A stretch of the load profile. Rates are requests per second, finite and > 0; durations > 0.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Phase {
    Constant {
        rate: f64,
        duration: Duration,
    },
    /// Linear from `from` to `to` over `duration`.
    Ramp {
        from: f64,
        to: f64,
        duration: Duration,
    },
}

impl Phase {
    pub fn duration(&self) -> Duration {
        match *self {
            Phase::Constant { duration, .. } | Phase::Ramp { duration, .. } => duration,
        }
    }

    /// The rate the phase starts at; warm-up runs at the first phase's.
    pub fn start_rate(&self) -> f64 {
        match *self {
            Phase::Constant { rate, .. } => rate,
            Phase::Ramp { from, .. } => from,
        }
    }
}

impl Scenario {
    /// The keys whose `tls.insecure` is on: connections through them accept any certificate.
    pub fn insecure(&self) -> Vec<String> {
        let mut keys = Vec::new();
        if let System::External(external) = &self.system
            && external.tls.insecure
        {
            keys.push("system.external.tls".to_owned());
        }
        if let Some(TraceChecks {
            source: TraceSourceSpec::Jaeger { access, .. },
            ..
        }) = &self.verify.traces
            && access.tls.insecure
        {
            keys.push("verify.traces.jaeger.tls".to_owned());
        }
        if let Some(metrics) = &self.verify.metrics {
            if metrics.access.tls.insecure {
                keys.push("verify.metrics.tls".to_owned());
            }
            if metrics
                .prometheus
                .as_ref()
                .is_some_and(|p| p.access.tls.insecure)
            {
                keys.push("verify.metrics.prometheus.tls".to_owned());
            }
        }
        keys
    }

    /// The recorded part of the run: all phases, without the warm-up.
    pub fn total_duration(&self) -> Duration {
        self.load.phases.iter().map(Phase::duration).sum()
    }

    /// The `grpc:` methods that the target's reflection service is to describe when the run
    /// starts, each with where it was named.
    pub fn reflected_methods(&self) -> Vec<&Located<String>> {
        self.requests
            .iter()
            .filter_map(|kind| match &kind.call {
                Call::Grpc(GrpcCall {
                    method: GrpcMethod::Reflection(name),
                    ..
                }) => Some(name),
                _ => None,
            })
            .collect()
    }

    /// The sum of the kinds' weights, to turn a weight into a share.
    pub fn total_weight(&self) -> u64 {
        self.requests
            .iter()
            .map(|kind| u64::from(kind.weight))
            .sum()
    }
}
