//! The validated scenario: every field typed, every default filled in, every cross-field rule
//! checked. Code downstream of [`super::parse`] can rely on these invariants instead of rechecking.

use std::collections::BTreeMap;
use std::time::Duration;

use hyper::Uri;
use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::Value;

use super::error::{At, Problem};

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

/// The `overhead:` section: two arms of the managed system that differ only in tracing, the
/// scenario's load alternated between them, and a claim about what the difference may be.
#[derive(Clone, Debug, PartialEq)]
pub struct Overhead {
    /// Trials per arm; at least [`stats::paired::MIN_PAIRS`], each one the
    /// scenario's whole load profile.
    pub trials: usize,
    /// Whether the arms take the load at the same time or in turn.
    pub execution: Execution,
    /// Whether each pair gets freshly launched processes.
    pub relaunch: Relaunch,
    /// Quiet time after each trial's load that still counts to its CPU, so that spans batched
    /// during the trial are exported inside its window. Longer than the batch delay.
    pub settle: Duration,
    pub claim: Claim,
    /// Arm A: by default the services with tracing off.
    pub control: Arm,
    /// Arm B: by default the services with tracing on, every request sampled.
    pub treatment: Arm,
    /// Arms between the two, in order, each adding one part of tracing to the one before; the
    /// treatment adds the last part. Run as one duet, they say where tracing's cost goes.
    pub steps: Vec<Step>,
    /// Where tracing arms export (an OTLP/gRPC `http://` URL); `None` for the harness's own
    /// receiver.
    pub export: Option<String>,
    /// The experiment repeated at each value of one scenario key.
    pub sweep: Option<Sweep>,
    /// A second, deterministic estimate: instructions per request counted under valgrind.
    pub instructions: Option<Instructions>,
}

/// An arm between control and treatment, named for the part of tracing it adds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub name: String,
    pub arm: Arm,
}

/// Counting each arm's instructions per request with callgrind, after the CPU trials.
///
/// Instruction counts hardly move with what else the machine does, where CPU time does; but
/// instructions are not time (cache misses, system calls and waits cost no instructions), so the
/// count is reported beside the CPU verdict, never instead of it.
#[derive(Clone, Debug, PartialEq)]
pub struct Instructions {
    /// Requests per count.
    pub requests: u64,
    /// Requests per second: low, since the services run tens of times slower under valgrind.
    pub rate: f64,
    /// Counts per arm, on the same processes, to show how well a count repeats.
    pub repeats: usize,
}

/// How the two arms of a pair share the machine.
///
/// On a shared machine the speed of the CPU drifts by more than tracing costs from one second to
/// the next (other tenants, caches, frequency). Arms measured one after the other see different
/// machines; arms measured at the same time under the same requests see the same one, and the
/// drift cancels in each pair (duet benchmarking, Bulej et al., ICPE 2020).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Execution {
    /// Both arms under one schedule at once: every request is sent to both, the arm served first
    /// alternating from one request to the next (the default).
    Duet,
    /// One trial of each arm after the other, in A B B A order.
    Alternating,
}

impl Execution {
    /// How the trials ran, as summaries and reports say it: `at the same time (duet)`.
    pub fn describe(self) -> &'static str {
        match self {
            Execution::Duet => "every arm at the same time under the same requests (duet)",
            Execution::Alternating => "one arm after the other, in A B B A order",
        }
    }
}

/// When the arms' processes are replaced.
///
/// Two identical processes can differ by tens of percent in CPU per request for as long as they
/// live (which worker thread owns which connection, memory layout): an A/A comparison of two
/// long-lived processes finds a "difference" that is only which process is which. Fresh processes
/// for each pair turn that into noise between pairs, which the interval then accounts for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relaunch {
    /// New processes for both arms before every pair (the default).
    EveryPair,
    /// Launch once and keep them for the whole experiment.
    Never,
}

/// "The treatment costs less than `bound` more than the control", measured on `metric`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Claim {
    pub metric: ClaimMetric,
    /// A relative increase, e.g. 0.01 for 1%.
    pub bound: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimMetric {
    /// CPU time per request of all services together.
    Cpu,
    /// A latency percentile from intended send times.
    P50,
    P90,
    P99,
}

impl ClaimMetric {
    pub const NAMES: &[(&str, ClaimMetric)] = &[
        ("cpu", ClaimMetric::Cpu),
        ("p50", ClaimMetric::P50),
        ("p90", ClaimMetric::P90),
        ("p99", ClaimMetric::P99),
    ];

    /// The metric as summaries and reports name it: `CPU per request`, `latency p99`.
    pub fn describe(self) -> &'static str {
        match self {
            ClaimMetric::Cpu => "CPU per request",
            ClaimMetric::P50 => "latency p50",
            ClaimMetric::P90 => "latency p90",
            ClaimMetric::P99 => "latency p99",
        }
    }
}

/// One arm of the experiment: tracing on or off, and flags or environment on top of
/// `system.managed`'s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arm {
    pub tracing: bool,
    pub engine: ServiceSpec,
    pub gateway: ServiceSpec,
}

/// A scenario key (as `--set` takes it) and the values it takes in turn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sweep {
    pub key: String,
    /// At least one; each is applied like `--set KEY=VALUE`, and a point it makes invalid is
    /// reported where the value was written.
    pub values: Vec<Located<String>>,
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

/// The `verify:` section.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verify {
    pub traces: Option<TraceChecks>,
    pub metrics: Option<MetricsChecks>,
}

/// Which sampled requests' traces to check, where to find them, and what they must look like.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceChecks {
    /// The share of each kind's requests that is sampled, unless the kind says otherwise.
    pub sample: SampleShare,
    pub source: TraceSourceSpec,
    /// How long after its request's response a trace may take to arrive complete.
    pub timeout: Duration,
    /// The response header that must carry the trace id; `None` skips that check.
    pub response_header: Option<String>,
    /// Check that the managed services' logs carry each sampled trace id.
    pub logs: bool,
    /// Every one of these services must contribute spans (the `service.name` resource attribute).
    pub services: Vec<String>,
    /// The expected path from the harness's span downwards, one span per step, each a child of
    /// the step before; the first step's parent is the harness's own span.
    pub chain: Vec<ChainStep>,
}

/// A count (`50`: that many, spread over the run) or a ratio (`10%` or `0.1`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SampleShare {
    Count(u64),
    /// In `[0, 1]`.
    Ratio(f64),
}

#[derive(Clone, Debug, PartialEq)]
pub enum TraceSourceSpec {
    /// The harness's own OTLP receiver; managed services export to it. An external system
    /// exports to `grpc` and `http` (default: the standard ports 4317 and 4318 on loopback).
    Embedded {
        grpc: Option<std::net::SocketAddr>,
        http: Option<std::net::SocketAddr>,
    },
    /// A Jaeger query API: `api` is `auto`, `v3` or `v1`.
    Jaeger {
        url: String,
        api: String,
        access: Access,
    },
}

/// One expected span of the chain.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainStep {
    pub service: String,
    pub kind: crate::trace::SpanKind,
    /// The span name, when it matters.
    pub name: Option<String>,
    /// Attribute values as text; `{status}` stands for the HTTP status the harness received and
    /// `{code}` for the gRPC code number.
    pub attributes: BTreeMap<String, String>,
    pub error: ErrorRule,
    /// `true`: the span exists only when the request succeeded (e.g. work skipped on bad input).
    pub only_on_success: bool,
}

/// When a span must carry ERROR status, judged from the outcome the harness received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorRule {
    /// ERROR exactly when the request failed on the server side (HTTP 5xx, a server-fault code).
    Server,
    /// ERROR exactly when the request did not succeed (HTTP 4xx or 5xx, any code but OK).
    Any,
    /// Never ERROR.
    Never,
}

/// How the services' metrics are compared with what the harness counted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricsChecks {
    /// Scrape the services' own endpoints before and after the run. The managed system's are
    /// known; an external system's are in `targets`.
    pub scrape: bool,
    /// Service name → metrics URL, for scraping an external system.
    pub targets: Vec<(String, String)>,
    /// How the scrape reaches those URLs.
    pub access: Access,
    pub prometheus: Option<PrometheusSpec>,
    /// The checks declared for the system; empty for the bundled system's own rules.
    pub rules: Vec<MetricRule>,
}

/// A metrics check the scenario declares: a series' growth over the load must equal what the
/// harness received, or another series' growth.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricRule {
    /// The service whose metrics hold the series (as `scrape`/`prometheus` name it).
    pub service: String,
    /// A counter, or a histogram's `_count`.
    pub metric: String,
    /// Label matchers. A value `{status}` (HTTP) or `{code}` (gRPC) makes one check per outcome
    /// the harness received, with that outcome as the value.
    pub labels: Vec<(String, String)>,
    pub equals: Equals,
    /// Where the rule was written, for reports.
    pub at: String,
}

/// What a declared metrics check compares with.
#[derive(Clone, Debug, PartialEq)]
pub enum Equals {
    /// The responses the harness received for these kinds (all when empty): answers only, not
    /// timeouts or transport failures.
    Responses { kinds: Vec<String> },
    /// Another series of the same service, summed over its matchers.
    Metric {
        metric: String,
        labels: Vec<(String, String)>,
    },
}

/// How the harness reaches a query API or metrics endpoint: what TLS trusts (and presents), and
/// the headers (e.g. `Authorization: Bearer ${TOKEN}`) it sends with every request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Access {
    pub tls: crate::tls::TlsSpec,
    /// Names lower case; values may read `${NAME}` from the environment.
    pub headers: Vec<(String, Template)>,
}

/// Instant queries against a Prometheus server that scrapes the services.
#[derive(Clone, Debug, PartialEq)]
pub struct PrometheusSpec {
    pub url: String,
    pub access: Access,
    /// Service name → series selector of its metrics, e.g. `{job="api-gateway"}`.
    pub selectors: Vec<(String, String)>,
}

impl PrometheusSpec {
    /// The selector of a scrape job named after the service, as the bundled configuration has it.
    pub fn job_selector(service: &str) -> String {
        format!("{{job=\"{service}\"}}")
    }

    /// `url`, with each bundled service's metrics under a job of its name.
    pub fn bundled(url: String) -> Self {
        let job = |service: &str| (service.to_owned(), Self::job_selector(service));
        PrometheusSpec {
            url,
            access: Access::default(),
            selectors: vec![
                job(engine::gateway::DEFAULT_SERVICE_NAME),
                job(engine::core_engine::DEFAULT_SERVICE_NAME),
            ],
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
            Protocol::Http => &self.gateway,
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
}

impl Protocol {
    /// As written in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Grpc => "grpc",
        }
    }
}

impl Call {
    /// The protocol an explicit call speaks; `None` for the bundled shorthand, which speaks
    /// `load.protocol`.
    pub fn protocol(&self) -> Option<Protocol> {
        match self {
            Call::Bundled(_) => None,
            Call::Http(_) => Some(Protocol::Http),
            Call::Grpc(_) => Some(Protocol::Grpc),
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

/// One kind of request in the weighted mix.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestKind {
    /// `[a-z0-9_]+`, unique within the scenario.
    pub name: String,
    /// > 0; the kind's share is `weight / sum of weights`.
    pub weight: u32,
    /// What the kind sends.
    pub call: Call,
    /// Values to draw from for each `{{var}}`. Every placeholder in `call` has values here and
    /// every variable is used.
    pub vars: Vars,
    pub expect: Expect,
    /// Threshold expressions for this kind only, unparsed, each with where it was written.
    pub thresholds: Vec<Located<String>>,
    /// This kind's trace sampling, instead of `verify.traces.sample`.
    pub trace_sample: Option<SampleShare>,
    /// Each `${NAME}` of the kind and where it is written (`file:line:col: key`), in order: an
    /// unset one is reported there when the run starts, inside a JSON body as anywhere else.
    pub env: Vec<(String, String)>,
}

/// What one request kind sends. Every string in it is a template (`scenario::template`).
#[derive(Clone, Debug, PartialEq)]
pub enum Call {
    /// The bundled API's shorthand (`body:`): a fetch request as JSON, sent to the gateway's
    /// route or the engine's method as `load.protocol` says.
    Bundled(Value),
    /// Any HTTP request (`http:`).
    Http(HttpCall),
    /// Any unary gRPC method (`grpc:`).
    Grpc(GrpcCall),
}

/// An `http:` request.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpCall {
    /// An HTTP method token, upper case as written (`GET`, `POST`, ...).
    pub method: String,
    /// Relative to the system's target URL, or absolute.
    pub url: Template,
    /// In the order written; names lower case.
    pub headers: Vec<(String, Template)>,
    pub body: HttpBody,
}

/// What an HTTP request carries.
#[derive(Clone, Debug, PartialEq)]
pub enum HttpBody {
    Empty,
    /// A mapping or sequence, sent as JSON (`content-type: application/json` unless a header
    /// says otherwise); its strings are templates.
    Json(Value),
    /// A string, sent as written after rendering.
    Text(Template),
    /// `body_file:` read when the scenario is, sent as is.
    File(bytes::Bytes),
}

/// A `grpc:` call.
#[derive(Clone, Debug, PartialEq)]
pub struct GrpcCall {
    /// The method: described by a `.proto`, or still to be asked of the server.
    pub method: GrpcMethod,
    /// The request message as JSON (proto3 JSON mapping); its strings are templates.
    pub message: Value,
    /// Request metadata, names lower case.
    pub metadata: Vec<(String, Template)>,
}

/// Where a `grpc:` method's descriptors come from. Its request message can only be encoded once
/// they are known, so every stage that renders a call must say what it does with each case.
#[derive(Clone, Debug, PartialEq)]
pub enum GrpcMethod {
    /// Found in the `.proto` files compiled when the scenario was read (`proto:`), or fetched from
    /// the server's reflection service when the run started.
    Resolved(prost_reflect::MethodDescriptor),
    /// `package.Service/Method` (`reflection: true`), with where it was written: the run asks
    /// the target's reflection service for it once the system is reachable.
    Reflection(Located<String>),
}

impl GrpcMethod {
    /// `package.Service/Method`, however it is known.
    pub fn full_name(&self) -> String {
        match self {
            GrpcMethod::Resolved(method) => {
                format!("{}/{}", method.parent_service().full_name(), method.name())
            }
            GrpcMethod::Reflection(name) => name.value.clone(),
        }
    }

    /// The method's descriptors, once resolved.
    pub fn descriptor(&self) -> Option<&prost_reflect::MethodDescriptor> {
        match self {
            GrpcMethod::Resolved(method) => Some(method),
            GrpcMethod::Reflection(_) => None,
        }
    }
}

/// A string with `{{var}}` and `${NAME}` parts, and where it was written, for errors found when
/// the run renders it (an unset environment variable).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pub text: String,
    /// `file:line:col: key.path`.
    pub at: String,
}

/// The values `{{var}}` placeholders draw from.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Vars {
    #[default]
    None,
    /// `vars:`: each variable drawn on its own from its list.
    Lists(BTreeMap<String, Vec<String>>),
    /// `vars_file:` (CSV with a header row, or JSON lines): one row per request, in order.
    Rows {
        columns: Vec<String>,
        rows: Vec<Vec<String>>,
    },
}

/// The outcome that counts as success for a kind; anything else is an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expect {
    /// For protocol http; 100..=599.
    pub status: u16,
    /// For protocol grpc.
    pub code: tonic::Code,
}

impl Default for Expect {
    fn default() -> Self {
        Expect {
            status: 200,
            code: tonic::Code::Ok,
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

impl Vars {
    /// How many distinct draws are worth rendering ahead: every row of a table (up to `cap`),
    /// `cap` for lists, one when there is nothing to draw.
    pub fn variants(&self, cap: usize) -> usize {
        match self {
            Vars::None => 1,
            Vars::Lists(_) => cap,
            Vars::Rows { rows, .. } => rows.len().clamp(1, cap),
        }
    }

    /// The values of draw number `i`: row `i` of a table, or one uniform pick per list.
    pub fn draw(&self, i: usize, rng: &mut impl Rng) -> BTreeMap<String, String> {
        match self {
            Vars::None => BTreeMap::new(),
            Vars::Lists(lists) => lists
                .iter()
                .filter_map(|(name, values)| Some((name.clone(), values.choose(rng)?.clone())))
                .collect(),
            Vars::Rows { columns, rows } => rows
                .get(i % rows.len().max(1))
                .map(|row| columns.iter().cloned().zip(row.iter().cloned()).collect())
                .unwrap_or_default(),
        }
    }

    /// Whether `name` has values.
    pub fn has(&self, name: &str) -> bool {
        match self {
            Vars::None => false,
            Vars::Lists(lists) => lists.contains_key(name),
            Vars::Rows { columns, .. } => columns.iter().any(|c| c == name),
        }
    }
}

/// `[A-Za-z0-9_]`: variable names.
pub(crate) fn is_var_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `[a-z0-9_]`: request and variable names.
pub(crate) fn is_name_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'
}
