//! The span accounting of a run: the services' span counters and the trace backend's, read at a
//! quiet moment after the warm-up and again once the run's spans have settled, then checked by
//! [`crate::metrics::spans::account`] against each other and against the spans the trace chain
//! expects for the requests answered. The result is one more metrics source in the report.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::{Metrics, Source, Verifier, snapshot_after};
use crate::load::RunReport;
use crate::metrics::MetricsSource;
use crate::metrics::scrape::ScrapeSource;
use crate::metrics::spans::{BackendSpans, CounterNames, Readings, ServiceSpans, account};
use crate::result::SourceReport;
use crate::scenario::TraceChecks;
use crate::trace::receiver::ReceiverHandle;

/// How long to look for a moment with no export in flight before the load.
const QUIET_WAIT: Duration = Duration::from_secs(3);
/// How long the spans of the run may take to leave the services' queues after the load: the
/// SDK's default schedule delay (5 s) plus its export timeout (10 s).
const SETTLE_WAIT: Duration = Duration::from_secs(15);
/// Between the two service readings that bracket a backend reading.
const BRACKET: Duration = Duration::from_millis(10);
const POLL: Duration = Duration::from_millis(100);

/// What counts the spans the backend took.
pub(super) enum Backend {
    Receiver(ReceiverHandle),
    /// An OpenTelemetry Collector's (Jaeger v2's) own metrics endpoint.
    Collector(ScrapeSource, String),
}

impl Backend {
    fn describe(&self) -> String {
        match self {
            Backend::Receiver(_) => "embedded OTLP receiver".to_owned(),
            Backend::Collector(_, url) => format!("collector {url}"),
        }
    }

    async fn read(&self) -> Result<BackendSpans, String> {
        match self {
            Backend::Receiver(handle) => {
                let stats = handle.stats();
                Ok(BackendSpans {
                    accepted: (stats.spans_received - stats.spans_rejected) as f64,
                    refused: stats.spans_rejected as f64,
                    stored: None,
                    store_failed: None,
                })
            }
            Backend::Collector(source, url) => {
                let snapshot = source.snapshot().await.map_err(|e| e.to_string())?;
                snapshot
                    .first()
                    .and_then(BackendSpans::from_collector)
                    .ok_or_else(|| {
                        format!(
                            "{url} exposes no otelcol_receiver_accepted_spans: expected an \
                             OpenTelemetry Collector's own metrics"
                        )
                    })
            }
        }
    }
}

/// One reading of every service and of the backend.
struct Reading {
    services: BTreeMap<String, ServiceSpans>,
    backend: Option<Result<BackendSpans, String>>,
}

/// The reading before the load.
pub(super) struct Baseline {
    reading: Result<Reading, String>,
    /// Set when no quiet moment came: the backend count may include a batch the services had
    /// not yet counted as exported.
    restless: bool,
}

impl Verifier {
    /// Where the backend's span counters are read, for a Jaeger v2 (an OpenTelemetry Collector)
    /// whose metrics endpoint is known (by default `http://HOST:8888/metrics`).
    pub fn set_collector_metrics(&mut self, url: &str) -> Result<(), String> {
        let source = ScrapeSource::new(vec![("collector".to_owned(), url.to_owned())])
            .map_err(|e| e.to_string())?;
        self.collector = Some((source, url.to_owned()));
        Ok(())
    }

    fn span_backend(&self) -> Option<Backend> {
        match &self.traces.as_ref()?.source {
            Source::Embedded(receiver) => Some(Backend::Receiver(receiver.handle())),
            Source::Jaeger(_) => self
                .collector
                .as_ref()
                .map(|(source, url)| Backend::Collector(source.clone(), url.clone())),
        }
    }

    /// The metrics source the services' counters are read from: a direct scrape when there is
    /// one (it reads the moment itself), else Prometheus (as of its latest scrape).
    fn span_source(&self) -> Option<&Metrics> {
        let usable = || {
            self.metrics
                .iter()
                .filter(|r| r.before.is_ok())
                .filter_map(|r| r.source.as_ref())
        };
        usable()
            .find(|source| matches!(source, Metrics::Scrape(_)))
            .or_else(|| usable().next())
    }

    /// Reads the counters before the load, at a moment with no export in flight.
    pub(super) async fn span_baseline(&mut self) {
        if self.traces.is_none() {
            return;
        }
        let Some(source) = self.span_source() else {
            return;
        };
        let backend = self.span_backend();
        let deadline = Instant::now() + QUIET_WAIT;
        let baseline = match quiet_reading(source, backend.as_ref(), deadline, false).await {
            Ok((reading, restless)) => Baseline {
                reading: Ok(reading),
                restless: restless.is_some(),
            },
            Err(error) => Baseline {
                reading: Err(error),
                restless: false,
            },
        };
        self.span_baseline = Some(baseline);
    }

    /// Once the run's spans have left the services (or after [`SETTLE_WAIT`]), reads the
    /// counters again and accounts for every span. `None` when there was no baseline.
    pub(crate) async fn span_counts(&mut self, report: &RunReport) -> Option<SourceReport> {
        let baseline = self.span_baseline.take()?;
        let source = self.span_source()?;
        let backend = self.span_backend();
        let bundled = self
            .metrics_spec
            .as_ref()
            .is_some_and(|s| s.rules.is_empty());
        let names = &crate::bundled::spans::COUNTERS;
        let description = format!(
            "{}: the services' {} and {} against {}",
            crate::result::SPAN_COUNTS,
            names.ended,
            names.exported,
            backend
                .as_ref()
                .map_or_else(|| "no backend count".to_owned(), Backend::describe)
        );
        let fail = |error: String| SourceReport {
            source: description.clone(),
            error: Some(error),
            passed: false,
            checks: Vec::new(),
        };
        let before = match baseline.reading {
            Ok(reading) => reading,
            Err(error) => return Some(fail(format!("before the load: {error}"))),
        };
        let deadline = Instant::now() + SETTLE_WAIT;
        let (after, unsettled) = match quiet_reading(source, backend.as_ref(), deadline, true).await
        {
            Ok(reading) => reading,
            Err(error) => return Some(fail(format!("after the load: {error}"))),
        };
        if !bundled && before.services.is_empty() {
            // A system of its own that counts no spans: nothing to account for.
            return None;
        }
        let mut readings = Readings {
            before: before.services,
            after: after.services,
            unsettled,
            ..Readings::default()
        };
        if bundled && let Some(traces) = &self.traces {
            readings.required = traces.checks.services.clone();
            readings.expected = expected_spans(&traces.checks, report);
        }
        let mut notes = Vec::new();
        match (before.backend, after.backend, backend) {
            (Some(Ok(b)), Some(Ok(a)), Some(backend)) => {
                readings.backend = Some((backend.describe(), b, a));
            }
            (Some(Err(error)), _, _) | (_, Some(Err(error)), _) => {
                notes.push(format!("the backend's count could not be read: {error}"));
            }
            _ => {}
        }
        if baseline.restless {
            notes.push("no moment without an export in flight was found before the load".into());
        }
        let mut checks = account(&readings, names);
        let passed = checks.iter().all(|c| c.passed) && notes.is_empty();
        if !notes.is_empty() {
            for check in &mut checks {
                check.detail = format!("{} ({})", check.detail, notes.join("; "));
            }
        }
        Some(SourceReport {
            source: description,
            error: (!notes.is_empty()).then(|| notes.join("; ")),
            passed,
            checks,
        })
    }
}

/// Reads the services, the backend and the services again, until no export was in flight
/// throughout (and, when `settled` is asked, nothing is pending), or the deadline. With the
/// deadline passed, the last reading comes back with what was still moving.
async fn quiet_reading(
    source: &Metrics,
    backend: Option<&Backend>,
    deadline: Instant,
    settled: bool,
) -> Result<(Reading, Option<String>), String> {
    let names = &crate::bundled::spans::COUNTERS;
    loop {
        let first = services(source, names).await?;
        tokio::time::sleep(BRACKET).await;
        let counted = match backend {
            Some(backend) => Some(backend.read().await),
            None => None,
        };
        tokio::time::sleep(BRACKET).await;
        let second = services(source, names).await?;
        let quiet = second.iter().all(|(service, later)| {
            first
                .get(service)
                .is_some_and(|earlier| earlier.quiet() && later.quiet() && earlier.same_as(later))
        });
        let pending: Vec<String> = second
            .iter()
            .filter(|(_, s)| s.pending > 0.0)
            .map(|(service, s)| format!("{service} {}", s.pending))
            .collect();
        let backend_quiet = match &counted {
            Some(Ok(spans)) => spans.pipeline_empty(),
            _ => true,
        };
        let done = quiet && backend_quiet && (!settled || pending.is_empty());
        // A backend whose pipeline never empties (a busy shared collector) cannot say what it
        // stored of these spans: that comparison is left out rather than failed.
        let done_but_backend = quiet && !backend_quiet && (!settled || pending.is_empty());
        if done || Instant::now() >= deadline {
            let mut counted = counted;
            if done_but_backend && let Some(Ok(spans)) = &mut counted {
                spans.stored = None;
                spans.store_failed = None;
            }
            let done = done || done_but_backend;
            let unsettled = (!done).then(|| {
                if pending.is_empty() {
                    "spans were still being exported when the wait ended".to_owned()
                } else {
                    format!(
                        "spans still pending when the wait ended: {}",
                        pending.join(", ")
                    )
                }
            });
            return Ok((
                Reading {
                    services: second,
                    backend: counted,
                },
                unsettled,
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Each service's span counters, for the services that expose them.
async fn services(
    source: &Metrics,
    names: &CounterNames,
) -> Result<BTreeMap<String, ServiceSpans>, String> {
    let never = tokio_util::sync::CancellationToken::new();
    let snapshots = snapshot_after(source, std::time::SystemTime::now(), &never).await?;
    Ok(snapshots
        .iter()
        .filter_map(|s| Some((s.service.clone(), ServiceSpans::read(s, names)?)))
        .collect())
}

/// The spans each service of the chain should have ended: per answered request, one per step
/// of that service, the steps that exist only on success counted for successes only. Requests
/// without an answer (timeouts, transport errors, still open) make the count unknowable.
pub(super) fn expected_spans(
    checks: &TraceChecks,
    report: &RunReport,
) -> BTreeMap<String, Result<(f64, String), String>> {
    let (mut succeeded, mut failed, mut unknown) = (0u64, 0u64, 0u64);
    for kind in &report.recorder.kinds {
        let mut answered = 0;
        for (label, n) in &kind.outcomes {
            match outcome_succeeded(label) {
                Some(true) => succeeded += n,
                Some(false) => failed += n,
                None => unknown += n,
            }
            answered += n;
        }
        unknown += kind.sent.saturating_sub(answered);
    }
    let mut expected = BTreeMap::new();
    for service in &checks.services {
        let steps = checks.chain.iter().filter(|s| &s.service == service);
        let always = steps.clone().filter(|s| !s.only_on_success).count() as u64;
        let on_success = steps.count() as u64;
        let value = if unknown > 0 {
            Err(format!(
                "{unknown} requests got no answer (timeouts, transport errors): how many spans \
                 they made cannot be told"
            ))
        } else {
            Ok((
                (succeeded * on_success + failed * always) as f64,
                format!(
                    "{succeeded} successful requests × {on_success} + {failed} failed × {always} \
                     spans of {service}"
                ),
            ))
        };
        expected.insert(service.clone(), value);
    }
    expected
}

/// Whether an outcome label is a success (HTTP below 400, gRPC OK); `None` without an answer.
fn outcome_succeeded(label: &str) -> Option<bool> {
    if let Ok(status) = label.parse::<u16>() {
        return Some(status < 400);
    }
    engine::status::code_from_name(label).map(|code| code == tonic::Code::Ok)
}
