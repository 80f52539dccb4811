//! The Verify stage of a run: it owns the trace source and the metrics sources, tells the load
//! which requests to sample, looks traces up while the load runs, takes the metrics snapshots on
//! either side of the measured load, and reads the managed services' logs at the end. The load
//! core sees only a sampling share per kind, an announce hook and a sink.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::bundled::metrics::{Received, StreamReceived, reconcile};
use crate::exit::RunError;
use crate::load::{self, Announce, RunReport, SampleSink};
use crate::metrics::declared::{self, Outcomes};
use crate::metrics::prometheus::PrometheusSource;
use crate::metrics::scrape::ScrapeSource;
use crate::metrics::{MetricsSource, Snapshot};
use crate::result::CheckKind;
use crate::scenario::{
    MetricsChecks, Protocol, SampleShare, Scenario, System, TraceChecks, TraceSourceSpec,
};
use crate::trace::jaeger::{JaegerApi, JaegerSource};
use crate::trace::logs::LogIndex;
use crate::trace::receiver::{Receiver, ReceiverConfig};
mod apis;
mod check;
mod pii;
mod preflight;
mod spans;
mod streams;
mod traces;

pub use apis::QueryApis;
pub(crate) use apis::headers;

use crate::result::{MetricsReport, PiiReport, SourceReport, StreamTraceReport, TraceReport};
use crate::trace::{TraceId, TraceSource};
use traces::Verdicts;

/// The standard OTLP ports, where an external system's exporters look for a collector.
const OTLP_GRPC_PORT: u16 = 4317;
const OTLP_HTTP_PORT: u16 = 4318;
/// Unwanted spans the receiver holds for a stream load: an update's spans may be exported
/// before the load has read the update and learnt its trace id. About 10 MB at most.
const HELD_STREAM_SPANS: usize = 20_000;
/// How long one query API request may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for Prometheus to scrape past a moment, in scrape intervals... at most this.
const PROMETHEUS_WAIT: Duration = Duration::from_secs(60);

enum Source {
    Embedded(Receiver),
    Jaeger(Arc<JaegerSource>),
}

struct Traces {
    checks: Arc<TraceChecks>,
    source: Source,
    task: Option<JoinHandle<Verdicts>>,
}

enum Metrics {
    Scrape(ScrapeSource),
    Prometheus(PrometheusSource),
}

impl Metrics {
    fn describe(&self) -> String {
        match self {
            Metrics::Scrape(s) => s.describe(),
            Metrics::Prometheus(p) => p.describe(),
        }
    }
}

/// One metrics source with its snapshot from before the load.
struct Reconciler {
    description: String,
    /// `None` when the source could not even be built (its error is in `before`).
    source: Option<Metrics>,
    before: Result<Vec<Snapshot>, String>,
}

/// The verification of one run, from before the system starts to after it stops.
pub struct Verifier {
    traces: Option<Traces>,
    metrics_spec: Option<MetricsChecks>,
    metrics: Vec<Reconciler>,
    protocol: Protocol,
    /// The harness launches the services: their metrics endpoints are known once they listen.
    managed: bool,
    /// A collector's own metrics endpoint (Jaeger v2's), counting the spans it accepted.
    collector: Option<(ScrapeSource, String)>,
    /// The span counters before the load.
    span_baseline: Option<spans::Baseline>,
    /// `Authorization` for the managed services' metrics endpoints (`metrics_auth`).
    scrape_authorization: Option<reqwest::header::HeaderValue>,
    /// The trace checks of a stream load's updates, with the receiver their spans go to.
    streams: Option<(crate::scenario::StreamChecks, Receiver)>,
    /// The search for personal data (`verify.pii`), fed by the trace lookups, the scrapes after
    /// the load and the managed services' logs.
    pii: Option<Arc<pii::Search>>,
}

impl Verifier {
    /// Opens the trace source: the embedded receiver listens from here on, so managed services can
    /// be pointed at it.
    pub fn prepare(scenario: &Scenario) -> Result<Verifier, RunError> {
        let managed = match &scenario.system {
            System::Managed(m) => Some(m),
            System::External { .. } => None,
        };
        let traces = match &scenario.verify.traces {
            None => None,
            Some(checks) => {
                if managed.is_some_and(|m| !m.tracing) {
                    return Err(RunError::BadInput(format!(
                        "{}: verify.traces needs system.managed.tracing: true",
                        scenario.name
                    )));
                }
                let source = match &checks.source {
                    TraceSourceSpec::Embedded { grpc, http } => {
                        let mut config = ReceiverConfig::default();
                        if managed.is_none() {
                            config.grpc_addr.set_port(OTLP_GRPC_PORT);
                            config.http_addr.set_port(OTLP_HTTP_PORT);
                        }
                        if let Some(addr) = grpc {
                            config.grpc_addr = *addr;
                        }
                        if let Some(addr) = http {
                            config.http_addr = *addr;
                        }
                        let receiver = Receiver::start(config).map_err(|e| {
                            RunError::Incomplete(anyhow::anyhow!(
                                "starting the embedded OTLP receiver: {e}"
                            ))
                        })?;
                        Source::Embedded(receiver)
                    }
                    TraceSourceSpec::Jaeger { url, api, access } => {
                        let api: JaegerApi = api
                            .parse()
                            .map_err(|e| RunError::BadInput(format!("jaeger api: {e}")))?;
                        let headers =
                            headers(access).map_err(|e| RunError::BadInput(e.to_string()))?;
                        let source = JaegerSource::new(url, api, QUERY_TIMEOUT)
                            .and_then(|s| s.with_access(&access.tls, headers))
                            .map_err(|e| RunError::BadInput(e.to_string()))?;
                        Source::Jaeger(Arc::new(source))
                    }
                    TraceSourceSpec::ManagedJaeger { .. } => {
                        return Err(RunError::Incomplete(anyhow::anyhow!(
                            "{}: the managed Jaeger was not started before the verification",
                            scenario.name
                        )));
                    }
                };
                Some(Traces {
                    checks: Arc::new(checks.clone()),
                    source,
                    task: None,
                })
            }
        };
        let streams = match &scenario.verify.streams {
            None => None,
            Some(checks) => {
                if managed.is_some_and(|m| !m.tracing) {
                    return Err(RunError::BadInput(format!(
                        "{}: verify.streams needs system.managed.tracing: true",
                        scenario.name
                    )));
                }
                let mut config = ReceiverConfig {
                    held_unwanted_spans: HELD_STREAM_SPANS,
                    ..ReceiverConfig::default()
                };
                if managed.is_none() {
                    config.grpc_addr.set_port(OTLP_GRPC_PORT);
                    config.http_addr.set_port(OTLP_HTTP_PORT);
                }
                let receiver = Receiver::start(config).map_err(|e| {
                    RunError::Incomplete(anyhow::anyhow!(
                        "starting the embedded OTLP receiver: {e}"
                    ))
                })?;
                Some((checks.clone(), receiver))
            }
        };
        let pii = match scenario.verify.pii {
            None => None,
            Some(checks) => {
                let http = scenario.load.protocol == Protocol::Http;
                let sent = scenario
                    .requests
                    .iter()
                    .flat_map(|kind| crate::plan::canary::sent_by(kind, http))
                    .collect();
                let search =
                    pii::Search::new(checks, crate::plan::Canaries::of_this_process(), sent)
                        .map_err(|e| {
                            RunError::Incomplete(anyhow::anyhow!(
                                "compiling the search for personal data: {e}"
                            ))
                        })?;
                Some(Arc::new(search))
            }
        };
        Ok(Verifier {
            streams,
            pii,
            traces,
            metrics_spec: scenario.verify.metrics.clone(),
            metrics: Vec::new(),
            protocol: scenario.load.protocol,
            managed: managed.is_some(),
            collector: None,
            span_baseline: None,
            scrape_authorization: None,
        })
    }

    /// Sends `value` as `Authorization` whenever the managed services' metrics are scraped, over
    /// any header of `verify.metrics.headers` of that name.
    pub fn set_scrape_authorization(&mut self, value: reqwest::header::HeaderValue) {
        self.scrape_authorization = Some(value);
    }

    /// Where managed services should export spans, when the harness receives them itself.
    pub fn otlp_endpoint(&self) -> Option<String> {
        if let Some((_, receiver)) = &self.streams {
            return Some(receiver.grpc_endpoint());
        }
        match &self.traces.as_ref()?.source {
            Source::Embedded(receiver) => Some(receiver.grpc_endpoint()),
            Source::Jaeger(_) => None,
        }
    }

    /// What a stream load tells of the trace ids it sees (traced updates and subscriptions), so
    /// that the receiver keeps their spans; `None` without `verify.streams`.
    pub fn stream_announce(&self) -> Option<Announce> {
        let handle = self.streams.as_ref()?.1.handle();
        Some(Arc::new(move |id| {
            handle.want(TraceId(id));
        }))
    }

    /// Checks a sample of the stream load's traced updates (`verify.streams`).
    pub async fn check_streams(
        &self,
        report: &RunReport,
        kind_names: &[String],
        stop: &CancellationToken,
    ) -> Option<StreamTraceReport> {
        let (checks, receiver) = self.streams.as_ref()?;
        let empty;
        let stats = match &report.stream {
            Some(stats) => stats.as_ref(),
            None => {
                empty = load::stream::StreamStats::new(kind_names.iter().cloned());
                &empty
            }
        };
        let chain = crate::bundled::stream::chain();
        let handle = receiver.handle();
        Some(streams::check(&handle, checks, &chain, stats, kind_names, stop).await)
    }

    /// The sampling share of each kind, as the load core takes it.
    pub fn sampling(&self, scenario: &Scenario) -> Vec<load::Sampling> {
        let Some(traces) = &self.traces else {
            return vec![load::Sampling::NONE; scenario.requests.len()];
        };
        let total_weight = scenario.total_weight().max(1) as f64;
        let expected_total: f64 = scenario
            .load
            .phases
            .iter()
            .map(|p| crate::plan::rate_phase(p).expected_requests())
            .sum();
        scenario
            .requests
            .iter()
            .map(
                |kind| match kind.trace_sample.unwrap_or(traces.checks.sample) {
                    SampleShare::Ratio(ratio) => load::Sampling {
                        ratio,
                        max: u64::MAX,
                    },
                    SampleShare::Count(count) => {
                        let expected = expected_total * f64::from(kind.weight) / total_weight;
                        load::Sampling {
                            ratio: if expected > 0.0 {
                                (count as f64 / expected).min(1.0)
                            } else {
                                1.0
                            },
                            max: count,
                        }
                    }
                },
            )
            .collect()
    }

    /// Starts looking up traces as sampled requests complete; returns what the load needs. After
    /// `stop`, traces are no longer waited for.
    pub fn start_traces(
        &mut self,
        stop: &CancellationToken,
    ) -> (Option<Announce>, Option<SampleSink>) {
        let Some(traces) = &mut self.traces else {
            return (None, None);
        };
        let (sink, samples) = mpsc::unbounded_channel();
        let checks = Arc::clone(&traces.checks);
        let pii = self.pii.clone();
        let (announce, task): (Option<Announce>, _) = match &traces.source {
            Source::Embedded(receiver) => {
                let handle = receiver.handle();
                let wanted = handle.clone();
                let announce: Announce = Arc::new(move |id| {
                    wanted.want(TraceId(id));
                });
                (
                    Some(announce),
                    tokio::spawn(traces::verify(
                        Arc::new(handle),
                        checks,
                        samples,
                        stop.clone(),
                        pii,
                    )),
                )
            }
            Source::Jaeger(source) => (
                None,
                tokio::spawn(traces::verify(
                    Arc::clone(source),
                    checks,
                    samples,
                    stop.clone(),
                    pii,
                )),
            ),
        };
        traces.task = Some(task);
        (announce, Some(sink))
    }

    /// Builds the metrics sources and takes their first snapshot, after the warm-up: what the
    /// measured load adds is the difference from here.
    pub async fn before_load(
        &mut self,
        scrape_targets: Option<Vec<(String, String)>>,
        stop: &CancellationToken,
    ) {
        let Some(spec) = self.metrics_spec.clone() else {
            return;
        };
        let mut sources: Vec<(String, Result<Metrics, String>)> = Vec::new();
        if spec.scrape {
            let targets = scrape_targets.unwrap_or_else(|| spec.targets.clone());
            if targets.is_empty() {
                // An external system's endpoints are not known: say so rather than check nothing.
                sources.push((
                    "scrape".to_owned(),
                    Err(
                        "the services' metrics URLs are not known for an external system: set \
                         verify.metrics.scrape to {service: URL}, or verify.metrics.scrape=false \
                         to use only --prometheus"
                            .to_owned(),
                    ),
                ));
            } else {
                let urls: Vec<&str> = targets.iter().map(|(_, url)| url.as_str()).collect();
                let description = format!("scrape of {}", urls.join(" and "));
                let source = headers(&spec.access)
                    .map(|mut headers| {
                        if let (true, Some(value)) = (self.managed, &self.scrape_authorization) {
                            headers.insert(reqwest::header::AUTHORIZATION, value.clone());
                        }
                        headers
                    })
                    .map_err(|e| e.to_string())
                    .and_then(|headers| {
                        ScrapeSource::new(targets)
                            .and_then(|s| s.with_access(&spec.access.tls, headers))
                            .map_err(|e| e.to_string())
                    });
                sources.push((description, source.map(Metrics::Scrape)));
            }
        }
        if let Some(prometheus) = &spec.prometheus {
            let access = &prometheus.access;
            let source = headers(access)
                .map_err(|e| e.to_string())
                .and_then(|headers| {
                    PrometheusSource::new(&prometheus.url, prometheus.selectors.clone())
                        .and_then(|s| s.with_access(&access.tls, headers))
                        .map_err(|e| e.to_string())
                });
            sources.push((
                format!("prometheus {}", prometheus.url),
                source.map(Metrics::Prometheus),
            ));
        }
        let now = SystemTime::now();
        for (description, source) in sources {
            let reconciler = match source {
                Ok(source) => Reconciler {
                    description: source.describe(),
                    before: snapshot_after(&source, now, stop).await,
                    source: Some(source),
                },
                Err(error) => Reconciler {
                    description,
                    source: None,
                    before: Err(error),
                },
            };
            self.metrics.push(reconciler);
        }
        self.span_baseline().await;
    }

    /// Takes the second snapshots and reconciles them with what the harness received.
    pub async fn after_load(
        &mut self,
        report: &RunReport,
        stop: &CancellationToken,
    ) -> Option<MetricsReport> {
        self.metrics_spec.as_ref()?;
        let spec = self.metrics_spec.as_ref()?;
        let received = received(report, self.protocol);
        let outcomes: Outcomes = report
            .recorder
            .kinds
            .iter()
            .map(|kind| {
                (
                    kind.name.clone(),
                    kind.outcomes.clone().into_iter().collect(),
                )
            })
            .collect();
        let now = SystemTime::now();
        let mut sources = Vec::new();
        for reconciler in &self.metrics {
            let after = match (&reconciler.source, &reconciler.before) {
                (Some(source), Ok(_)) => snapshot_after(source, now, stop).await,
                (_, Err(error)) => Err(error.clone()),
                (None, Ok(_)) => Err("no source".to_owned()),
            };
            if let (Some(search), Ok(after)) = (&self.pii, &after) {
                search.series(after);
            }
            let report = match (&reconciler.before, after) {
                (Ok(before), Ok(after)) => {
                    let reconciliation = if spec.rules.is_empty() {
                        reconcile(before, &after, &received)
                    } else {
                        declared::reconcile(before, &after, &spec.rules, &outcomes)
                    };
                    SourceReport {
                        source: reconciler.description.clone(),
                        error: None,
                        passed: reconciliation.passed,
                        checks: reconciliation.checks,
                    }
                }
                (Err(error), _) => SourceReport {
                    source: reconciler.description.clone(),
                    error: Some(error.clone()),
                    passed: false,
                    checks: Vec::new(),
                },
                (_, Err(error)) => SourceReport {
                    source: reconciler.description.clone(),
                    error: Some(error),
                    passed: false,
                    checks: Vec::new(),
                },
            };
            sources.push(report);
        }
        Some(MetricsReport {
            reconciled: !sources.is_empty() && sources.iter().all(|s| s.passed),
            sources,
        })
    }

    /// Waits for the last lookups (each has its own deadline), checks the logs of a managed
    /// system, and sums up.
    pub async fn finish_traces(
        &mut self,
        kind_names: &[String],
        logs: Option<&LogFiles<'_>>,
    ) -> Option<TraceReport> {
        let traces = self.traces.as_mut()?;
        let mut verdicts = match traces.task.take() {
            Some(task) => task.await.unwrap_or_default(),
            None => Verdicts::default(),
        };
        let logs_read = traces.checks.logs && logs.is_some();
        if traces.checks.logs
            && let Some(files) = logs
        {
            let mut index = LogIndex::default();
            let mut unreadable = Vec::new();
            for (service, path) in files.services {
                if let Err(error) = index.add_file(service, path) {
                    unreadable.push(format!("{service} ({}: {error})", path.display()));
                }
            }
            traces::check_logs(&mut verdicts.judged, &index, &unreadable);
        }
        let (description, stats, jaeger_ui) = match &traces.source {
            Source::Embedded(receiver) => (
                receiver.describe(),
                serde_json::to_value(receiver.stats()).ok(),
                None,
            ),
            Source::Jaeger(source) => (source.describe(), None, Some(source.base().to_owned())),
        };
        let mut report = TraceReport::new(description, &verdicts, kind_names);
        report.checks = CheckKind::made_by(&traces.checks, logs_read);
        report.source_stats = stats;
        report.jaeger_ui = jaeger_ui;
        Some(report)
    }

    /// The search for personal data, finished with the managed services' logs (read once the
    /// services have stopped and written their last lines).
    pub fn finish_pii(&self, logs: Option<&LogFiles<'_>>) -> Option<PiiReport> {
        let search = self.pii.as_ref()?;
        match logs {
            Some(files) => {
                for (_, path) in files.services {
                    search.log_file(path);
                }
            }
            None => search
                .not_searched("logs: the system is external; its logs are not read".to_owned()),
        }
        if self.traces.is_none() {
            search.not_searched("spans: verify.traces is off, no trace was fetched".to_owned());
        }
        if self.metrics_spec.is_none() {
            search.not_searched(
                "metric labels: verify.metrics is off, nothing was scraped".to_owned(),
            );
        }
        Some(search.report())
    }

    /// Stops the embedded receiver, if any.
    pub async fn shutdown(self) {
        if let Some((_, receiver)) = self.streams {
            let _ = receiver.shutdown().await;
        }
        if let Some(Traces {
            source: Source::Embedded(receiver),
            ..
        }) = self.traces
        {
            let _ = receiver.shutdown().await;
        }
    }
}

/// The managed services' log files, by service name.
pub struct LogFiles<'a> {
    /// `(service name, log file)`.
    pub services: &'a [(&'a str, &'a Path)],
}

/// A snapshot that reflects the services at `t` or later: Prometheus must first scrape past it.
/// An interrupted run does not wait for that.
async fn snapshot_after(
    source: &Metrics,
    t: SystemTime,
    stop: &CancellationToken,
) -> Result<Vec<Snapshot>, String> {
    match source {
        Metrics::Scrape(scrape) => scrape.snapshot().await.map_err(|e| e.to_string()),
        Metrics::Prometheus(prometheus) => {
            tokio::select! {
                waited = prometheus.wait_for_scrape_after(t, PROMETHEUS_WAIT) => {
                    waited.map_err(|e| e.to_string())?;
                }
                () = stop.cancelled() => {
                    return Err("interrupted before Prometheus had scraped the services".to_owned());
                }
            }
            prometheus.snapshot().await.map_err(|e| e.to_string())
        }
    }
}

/// What the harness received in the measured run, by HTTP status and gRPC code.
fn received(report: &RunReport, protocol: Protocol) -> Received {
    let mut received = Received::default();
    if protocol == Protocol::WebSocket {
        // Upgrades, not fetches: the stream rules take them with the updates.
        let total = report.stream.as_ref().map(|s| s.total());
        received.stream = Some(
            total.map_or_else(StreamReceived::default, |t| StreamReceived {
                connected: t.connected,
                updates: t.updates,
                lost: t.lost,
            }),
        );
        return received;
    }
    for kind in &report.recorder.kinds {
        received.add_outcomes(protocol, &kind.outcomes);
    }
    let service = report.recorder.merged_service_time();
    received.client_p99 =
        (!service.is_empty()).then(|| Duration::from_micros(service.value_at_quantile(0.99)));
    received
}
