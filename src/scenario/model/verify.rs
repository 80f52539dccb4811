//! The `verify:` section, validated: which traces to check and how, and how the metrics are read and reconciled.

use std::collections::BTreeMap;
use std::time::Duration;

use super::Template;

/// The `verify:` section.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verify {
    pub traces: Option<TraceChecks>,
    pub metrics: Option<MetricsChecks>,
    /// Trace checks of a stream load's traced updates (`websocket:` kinds only).
    pub streams: Option<StreamChecks>,
    /// The search of the system's telemetry for personal data (`verify.pii`).
    pub pii: Option<PiiChecks>,
}

/// `verify.streams`: how many of the traced updates the load kept are looked up, and how long
/// their spans may take to arrive. The spans go to the embedded OTLP receiver.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamChecks {
    /// Updates checked, spread over those kept.
    pub sample: usize,
    /// How long after the load the sampled updates' spans may take to arrive.
    pub timeout: Duration,
}

impl Default for StreamChecks {
    fn default() -> Self {
        StreamChecks {
            sample: 100,
            timeout: Duration::from_secs(10),
        }
    }
}

/// `verify.pii`: the canaries the requests carried must appear in no span, log line or metric
/// label; generic patterns of personal data are reported too, as warnings unless made fatal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PiiChecks {
    /// What a generic pattern found does to the verdict.
    pub patterns: PatternSeverity,
}

/// `verify.pii.patterns`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatternSeverity {
    /// Not searched for.
    Off,
    /// Reported; the check still passes.
    Warn,
    /// Reported, and the check fails.
    Fail,
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
    /// The query API of the Jaeger the harness launches (`system.managed.jaeger`): its URL is
    /// known once it listens, when it becomes [`TraceSourceSpec::Jaeger`].
    ManagedJaeger {
        /// `auto`, `v3` or `v1`.
        api: String,
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
