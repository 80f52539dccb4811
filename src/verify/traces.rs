//! Trace verification of a whole run: every sampled request's trace is looked up while the load
//! goes on (so the time until it is visible is measured, not the length of the run), checked, and
//! summed up into completeness, visibility percentiles and a list of failing trace ids.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use super::check::{self, Observed, Sampled};
use crate::load::recorder::new_histogram;
use crate::load::{Outcome, SampledRequest};
use crate::result::{CheckKind, Failure};
use crate::result::{FailingTrace, Percentiles, TraceReport, encode_histogram};
use crate::scenario::TraceChecks;
use crate::trace::logs::LogIndex;
use crate::trace::model::Trace;
use crate::trace::model::{SpanId, TraceId};
use crate::trace::poll;
use crate::trace::{SourceError, TraceSource};
use tokio_util::sync::CancellationToken;

/// How many traces are looked up at once: enough to follow hundreds of samples per second, few
/// enough not to flood a Jaeger query service.
const CONCURRENT_LOOKUPS: usize = 64;
/// Failing traces listed in the result; the rest are only counted.
const LISTED_FAILURES: usize = 50;

/// The verdict on one sampled request's trace.
#[derive(Clone, Debug)]
pub struct Judged {
    pub kind: usize,
    pub trace_id: TraceId,
    pub outcome: String,
    pub complete: bool,
    /// From sending the request until the trace was complete in the source.
    pub visible_after: Option<std::time::Duration>,
    pub failures: Vec<Failure>,
}

/// What became of the sampled requests: every one is judged, answered or not.
#[derive(Debug, Default)]
pub struct Verdicts {
    pub judged: Vec<Judged>,
}

/// Looks up and checks the trace of every sampled request that arrives on `samples`, until the
/// sender closes; each trace gets `checks.timeout` from its request's completion to arrive. Once
/// `stop` is cancelled, each trace still awaited is looked up once more and judged as it is.
pub(super) async fn verify<S: TraceSource + 'static>(
    source: Arc<S>,
    checks: Arc<TraceChecks>,
    mut samples: mpsc::UnboundedReceiver<SampledRequest>,
    stop: CancellationToken,
    pii: Option<Arc<super::pii::Search>>,
) -> Verdicts {
    let source = Arc::new(Limited {
        source,
        permits: Semaphore::new(CONCURRENT_LOOKUPS),
    });
    let mut lookups = JoinSet::new();
    let mut verdicts = Verdicts::default();
    let take = |verdicts: &mut Verdicts, joined: Result<Judged, tokio::task::JoinError>| {
        match joined {
            Ok(verdict) => verdicts.judged.push(verdict),
            // A lookup that panicked is not silently left out of the totals.
            Err(error) => verdicts.judged.push(Judged::lost(&error)),
        }
    };
    loop {
        tokio::select! {
            sample = samples.recv() => {
                let Some(sample) = sample else { break };
                // It may never have reached the system: no trace is waited for, and its verdict
                // says why it failed.
                if let Outcome::Transport(error) = &sample.outcome {
                    source.release(TraceId(sample.trace.trace_id));
                    verdicts.judged.push(Judged::unanswered(&sample, error));
                    continue;
                }
                let (source, checks, stop, pii) =
                    (Arc::clone(&source), Arc::clone(&checks), stop.clone(), pii.clone());
                lookups.spawn(async move {
                    judge(&*source, &checks, sample, &stop, pii.as_deref()).await
                });
            }
            Some(joined) = lookups.join_next(), if !lookups.is_empty() => take(&mut verdicts, joined),
        }
    }
    while let Some(joined) = lookups.join_next().await {
        take(&mut verdicts, joined);
    }
    verdicts
}

/// A source that lets only so many fetches run at once (a lookup holds a permit only while it
/// fetches, not while it waits between attempts).
struct Limited<S> {
    source: Arc<S>,
    permits: Semaphore,
}

impl<S: TraceSource> TraceSource for Limited<S> {
    fn describe(&self) -> String {
        self.source.describe()
    }

    async fn fetch(&self, id: TraceId) -> Result<Option<Trace>, SourceError> {
        let _permit = self.permits.acquire().await;
        self.source.fetch(id).await
    }

    fn release(&self, id: TraceId) {
        self.source.release(id);
    }
}

impl Judged {
    /// A sampled request that got no response at all: a failed trace check, not one left out,
    /// since a system that drops traced requests is not a system whose tracing works.
    fn unanswered(sample: &SampledRequest, error: &str) -> Self {
        Judged {
            kind: sample.kind,
            trace_id: TraceId(sample.trace.trace_id),
            outcome: sample.outcome.label(),
            complete: false,
            visible_after: None,
            failures: vec![Failure {
                check: CheckKind::Response,
                detail: format!("the request got no response: {error}"),
            }],
        }
    }

    /// Whether the request got no response, so that the trace's verdict carries that failure.
    fn got_no_response(&self) -> bool {
        self.failures.iter().any(|f| f.check == CheckKind::Response)
    }

    fn lost(error: &tokio::task::JoinError) -> Self {
        Judged {
            kind: usize::MAX,
            trace_id: TraceId(0),
            outcome: String::new(),
            complete: false,
            visible_after: None,
            failures: vec![Failure {
                check: CheckKind::Exists,
                detail: format!("the lookup failed: {error}"),
            }],
        }
    }
}

async fn judge<S: TraceSource>(
    source: &S,
    checks: &TraceChecks,
    sample: SampledRequest,
    stop: &CancellationToken,
    pii: Option<&super::pii::Search>,
) -> Judged {
    let sampled = Sampled {
        trace_id: TraceId(sample.trace.trace_id),
        parent: SpanId(sample.trace.parent_span_id),
        observed: match sample.outcome {
            Outcome::Status(status) => Observed::Http(status),
            Outcome::Code(code) => Observed::Grpc(code),
            Outcome::Timeout | Outcome::Transport(_) => Observed::Unknown,
        },
        trace_header: sample.trace_header.clone(),
    };
    let deadline = tokio::time::Instant::from_std(sample.finished) + checks.timeout;
    let is_complete = |trace: &Trace| check::is_complete(trace, checks, &sampled);
    let polled = tokio::select! {
        polled = poll::wait_for(source, sampled.trace_id, deadline, is_complete) => polled,
        () = stop.cancelled() => {
            // Interrupted: one last look, judged as it is, with no visibility time.
            let fetched = source.fetch(sampled.trace_id).await;
            let (trace, last_error) = match fetched {
                Ok(trace) => (trace, None),
                Err(error) => (None, Some(error)),
            };
            poll::Polled { trace, complete_at: None, last_error, attempts: 1 }
        }
    };
    // The last look has been taken: what the verdict needs is in `polled`, and a source that
    // kept the trace for this lookup may drop it, so that a long run holds only the traces still
    // awaited.
    source.release(sampled.trace_id);
    let complete = polled.trace.as_ref().is_some_and(is_complete);
    if let (Some(search), Some(trace)) = (pii, &polled.trace) {
        search.trace(trace);
    }
    let mut failures = Vec::new();
    if sample.outcome == Outcome::Timeout {
        failures.push(Failure {
            check: CheckKind::Response,
            detail: format!(
                "the request got no response: none within the request timeout ({})",
                crate::format::duration_terse(
                    u64::try_from(
                        sample
                            .finished
                            .saturating_duration_since(sample.sent)
                            .as_micros()
                    )
                    .unwrap_or(u64::MAX)
                )
            ),
        });
    }
    failures.extend(check::check(polled.trace.as_ref(), checks, &sampled));
    if polled.trace.is_none()
        && let Some(error) = &polled.last_error
    {
        failures.push(Failure {
            check: CheckKind::Exists,
            detail: format!("the trace source failed: {error}"),
        });
    }
    Judged {
        kind: sample.kind,
        trace_id: sampled.trace_id,
        outcome: sample.outcome.label(),
        complete,
        visible_after: polled
            .complete_at
            .map(|at| at.into_std().saturating_duration_since(sample.sent)),
        failures,
    }
}

/// Adds a logs failure to every judged trace whose id is missing from some service's log; a log
/// that could not be read (`unreadable`, described) fails every trace.
pub(super) fn check_logs(judged: &mut [Judged], logs: &LogIndex, unreadable: &[String]) {
    for verdict in judged {
        let missing = logs.missing(verdict.trace_id);
        if !missing.is_empty() {
            verdict.failures.push(Failure {
                check: CheckKind::Logs,
                detail: format!("no log line with this trace_id from {}", missing.join(", ")),
            });
        }
        if !unreadable.is_empty() {
            verdict.failures.push(Failure {
                check: CheckKind::Logs,
                detail: format!("log not readable: {}", unreadable.join("; ")),
            });
        }
    }
}

impl TraceReport {
    /// The report of `verdicts` from `source`, with the failing traces named by request kind.
    pub fn new(source: String, verdicts: &Verdicts, kind_names: &[String]) -> Self {
        let judged = &verdicts.judged;
        let mut visible = new_histogram();
        let mut failed_checks = BTreeMap::new();
        let mut failing = Vec::new();
        for verdict in judged {
            if let Some(after) = verdict.visible_after {
                visible
                    .saturating_record(u64::try_from(after.as_micros()).unwrap_or(u64::MAX).max(1));
            }
            let mut checks: Vec<CheckKind> = verdict.failures.iter().map(|f| f.check).collect();
            checks.sort();
            checks.dedup();
            for check in checks {
                *failed_checks.entry(check).or_default() += 1;
            }
            if !verdict.failures.is_empty() && failing.len() < LISTED_FAILURES {
                failing.push(FailingTrace {
                    trace_id: verdict.trace_id.to_string(),
                    kind: kind_names.get(verdict.kind).cloned().unwrap_or_default(),
                    outcome: verdict.outcome.clone(),
                    failures: verdict.failures.clone(),
                });
            }
        }
        let sampled = judged.len() as u64;
        let complete = judged.iter().filter(|j| j.complete).count() as u64;
        TraceReport {
            source,
            sampled,
            complete,
            passed: judged.iter().filter(|j| j.failures.is_empty()).count() as u64,
            completeness: (sampled > 0).then(|| complete as f64 / sampled as f64),
            visible: (!visible.is_empty()).then(|| Percentiles::of(&visible)),
            visible_histogram: (!visible.is_empty()).then(|| encode_histogram(&visible)),
            checks: Vec::new(),
            failed_checks,
            failing,
            unanswered: judged.iter().filter(|j| j.got_no_response()).count() as u64,
            not_judged: 0,
            source_stats: None,
            jaeger_ui: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::TraceParent;
    use crate::scenario::{Protocol, bundled_trace_checks};
    use crate::trace::model::{Span, SpanKind, SpanStatus};
    use std::collections::HashMap;
    use std::time::{Duration, Instant};

    /// Traces that become visible at a given time after the test starts.
    struct Fake {
        start: tokio::time::Instant,
        traces: HashMap<TraceId, (Duration, Trace)>,
        /// The traces the verifier said it was done with, in order.
        released: std::sync::Mutex<Vec<TraceId>>,
    }

    impl TraceSource for Fake {
        fn describe(&self) -> String {
            "fake".to_owned()
        }

        async fn fetch(&self, id: TraceId) -> Result<Option<Trace>, SourceError> {
            Ok(self
                .traces
                .get(&id)
                .filter(|(after, _)| self.start.elapsed() >= *after)
                .map(|(_, trace)| trace.clone()))
        }

        fn release(&self, id: TraceId) {
            self.released.lock().expect("lock").push(id);
        }
    }

    /// The spans of a healthy gRPC request straight to the engine.
    fn engine_trace(harness: &TraceParent) -> Trace {
        let span = |id, parent, kind, name: &str| Span {
            trace_id: TraceId(harness.trace_id),
            span_id: SpanId(id),
            parent: Some(SpanId(parent)),
            service: "core-engine".to_owned(),
            name: name.to_owned(),
            kind,
            status: SpanStatus::Unset,
            attributes: [
                ("rpc.system", "grpc"),
                ("rpc.service", engine::core_engine::SERVICE_NAME),
                ("rpc.method", engine::core_engine::FETCH_METHOD),
                ("rpc.grpc.status_code", "0"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), crate::trace::AttrValue::String(v.to_owned())))
            .collect(),
            start_unix_nanos: 0,
            end_unix_nanos: 1,
            links: Vec::new(),
            details: Default::default(),
        };
        Trace {
            spans: vec![
                span(
                    10,
                    harness.parent_span_id,
                    SpanKind::Server,
                    engine::core_engine::FETCH_SPAN_NAME,
                ),
                span(11, 10, SpanKind::Internal, "market_data.load"),
            ],
        }
    }

    fn sample(trace_id: u128, outcome: Outcome) -> SampledRequest {
        let now = Instant::now();
        SampledRequest {
            kind: 0,
            trace: TraceParent {
                trace_id,
                parent_span_id: 7,
            },
            intended: now,
            sent: now,
            finished: now,
            outcome,
            trace_header: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn every_sample_is_judged_once_and_counted() {
        let visible = sample(1, Outcome::Code(tonic::Code::Ok));
        let late = sample(2, Outcome::Code(tonic::Code::Ok));
        let missing = sample(3, Outcome::Code(tonic::Code::Ok));
        let unsent = sample(4, Outcome::Transport("refused".into()));
        let mut checks = bundled_trace_checks(Protocol::Grpc, false);
        checks.timeout = Duration::from_secs(2);
        let source = Fake {
            start: tokio::time::Instant::now(),
            traces: HashMap::from([
                (
                    TraceId(1),
                    (Duration::from_millis(300), engine_trace(&visible.trace)),
                ),
                // Arrives after its deadline: incomplete.
                (
                    TraceId(2),
                    (Duration::from_secs(5), engine_trace(&late.trace)),
                ),
            ]),
            released: Default::default(),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        for s in [visible, late, missing, unsent] {
            tx.send(s).expect("open");
        }
        drop(tx);
        let source = Arc::new(source);
        let verdicts = verify(
            Arc::clone(&source),
            Arc::new(checks),
            rx,
            CancellationToken::new(),
            None,
        )
        .await;
        assert_eq!(verdicts.judged.len(), 4);
        // Every sampled trace is released once judged, answered or not, so that a source keeping
        // them holds only those still awaited.
        let mut released = source.released.lock().expect("lock").clone();
        released.sort_by_key(|id| id.0);
        assert_eq!(released, [1, 2, 3, 4].map(TraceId));
        let report = TraceReport::new("fake".into(), &verdicts, &["only".to_owned()]);
        // The request that got no answer is sampled and failed, not left out.
        assert_eq!((report.sampled, report.complete, report.passed), (4, 1, 1));
        assert_eq!(report.unanswered, 1);
        assert_eq!(report.failed_checks[&CheckKind::Exists], 2);
        assert_eq!(report.failed_checks[&CheckKind::Response], 1);
        let unanswered = report
            .failing
            .iter()
            .find(|t| t.outcome == "transport")
            .expect("the unanswered request is listed");
        assert_eq!(
            unanswered.failures,
            [Failure {
                check: CheckKind::Response,
                detail: "the request got no response: refused".to_owned()
            }]
        );
        let visible = report.visible.expect("one visible trace");
        // First looked up at once, then after 50, 100, 200 ms: seen complete at 350 ms.
        assert!((300_000..=400_000).contains(&visible.max), "{visible:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_timed_out_request_fails_even_when_its_trace_is_complete() {
        let mut timed_out = sample(1, Outcome::Timeout);
        timed_out.finished = timed_out.sent + Duration::from_secs(2);
        let answered = sample(2, Outcome::Code(tonic::Code::Ok));
        let source = Fake {
            start: tokio::time::Instant::now(),
            traces: HashMap::from([
                (TraceId(1), (Duration::ZERO, engine_trace(&timed_out.trace))),
                (TraceId(2), (Duration::ZERO, engine_trace(&answered.trace))),
            ]),
            released: Default::default(),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        tx.send(timed_out).expect("open");
        tx.send(answered).expect("open");
        drop(tx);
        let checks = bundled_trace_checks(Protocol::Grpc, false);
        let verdicts = verify(
            Arc::new(source),
            Arc::new(checks),
            rx,
            CancellationToken::new(),
            None,
        )
        .await;
        let report = TraceReport::new("fake".into(), &verdicts, &["only".to_owned()]);
        // The system may have done its part, but the client never saw an answer.
        assert_eq!((report.sampled, report.complete, report.passed), (2, 2, 1));
        assert_eq!(report.unanswered, 1);
        assert_eq!(report.failing.len(), 1);
        let failing = &report.failing[0];
        assert_eq!(failing.outcome, "timeout");
        assert_eq!(
            failing.failures,
            [Failure {
                check: CheckKind::Response,
                detail: "the request got no response: none within the request timeout (2.00s)"
                    .to_owned()
            }]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_interrupted_run_stops_waiting() {
        let mut checks = bundled_trace_checks(Protocol::Grpc, false);
        checks.timeout = Duration::from_secs(3600);
        let (tx, rx) = mpsc::unbounded_channel();
        tx.send(sample(1, Outcome::Code(tonic::Code::Ok)))
            .expect("open");
        drop(tx);
        let stop = CancellationToken::new();
        let canceller = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            canceller.cancel();
        });
        let started = tokio::time::Instant::now();
        let source = Fake {
            start: started,
            traces: HashMap::new(),
            released: Default::default(),
        };
        let verdicts = verify(Arc::new(source), Arc::new(checks), rx, stop, None).await;
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(verdicts.judged.len(), 1);
        assert!(!verdicts.judged[0].complete);
    }
}
