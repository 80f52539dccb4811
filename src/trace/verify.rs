//! Trace verification of a whole run: every sampled request's trace is looked up while the load
//! goes on (so the time until it is visible is measured, not the length of the run), checked, and
//! summed up into completeness, visibility percentiles and a list of failing trace ids.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use super::TraceSource;
use super::check::{self, CheckKind, Failure, Observed, Sampled};
use super::logs::LogIndex;
use super::model::{SpanId, TraceId};
use super::poll;
use crate::load::recorder::new_histogram;
use crate::load::{Outcome, SampledRequest};
use crate::result::{Percentiles, encode_histogram};
use crate::scenario::TraceChecks;

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

/// Looks up and checks the trace of every sampled request that arrives on `samples`, until the
/// sender closes; each trace gets `checks.timeout` from its request's completion to arrive.
pub async fn verify<S: TraceSource + 'static>(
    source: Arc<S>,
    checks: Arc<TraceChecks>,
    mut samples: mpsc::UnboundedReceiver<SampledRequest>,
) -> Vec<Judged> {
    let permits = Arc::new(Semaphore::new(CONCURRENT_LOOKUPS));
    let mut lookups = JoinSet::new();
    let mut judged = Vec::new();
    loop {
        tokio::select! {
            sample = samples.recv() => {
                let Some(sample) = sample else { break };
                let (source, checks, permits) =
                    (Arc::clone(&source), Arc::clone(&checks), Arc::clone(&permits));
                lookups.spawn(async move {
                    let _permit = permits.acquire_owned().await;
                    judge(&*source, &checks, sample).await
                });
            }
            Some(Ok(verdict)) = lookups.join_next(), if !lookups.is_empty() => judged.push(verdict),
        }
    }
    while let Some(verdict) = lookups.join_next().await {
        if let Ok(verdict) = verdict {
            judged.push(verdict);
        }
    }
    judged
}

async fn judge<S: TraceSource>(source: &S, checks: &TraceChecks, sample: SampledRequest) -> Judged {
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
    let polled = poll::wait_for(source, sampled.trace_id, deadline, |trace| {
        check::is_complete(trace, checks, &sampled)
    })
    .await;
    let mut failures = check::check(polled.trace.as_ref(), checks, &sampled);
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
        complete: polled.complete_at.is_some(),
        visible_after: polled
            .complete_at
            .map(|at| at.into_std().saturating_duration_since(sample.sent)),
        failures,
    }
}

/// Adds a logs failure to every judged trace whose id is missing from some service's log.
pub fn check_logs(judged: &mut [Judged], logs: &LogIndex) {
    for verdict in judged {
        let missing = logs.missing(verdict.trace_id);
        if !missing.is_empty() {
            verdict.failures.push(Failure {
                check: CheckKind::Logs,
                detail: format!("no log line with this trace_id from {}", missing.join(", ")),
            });
        }
    }
}

/// The trace verification of a run, as `result.json` holds it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TraceReport {
    /// Where the traces were looked up.
    pub source: String,
    pub sampled: u64,
    /// Traces that arrived with every expected service and the whole chain.
    pub complete: u64,
    /// Traces that passed every check.
    pub passed: u64,
    /// `complete / sampled`; absent when nothing was sampled.
    pub completeness: Option<f64>,
    /// Time from sending a sampled request until its trace was complete, over complete traces.
    pub visible: Option<Percentiles>,
    /// The same as an HdrHistogram (V2, base64), for any other percentile.
    pub visible_histogram: Option<String>,
    /// How many traces failed each check.
    pub failed_checks: BTreeMap<CheckKind, u64>,
    /// The first failing traces, with every failed check.
    pub failing: Vec<FailingTrace>,
    /// Counters of the trace source, e.g. the embedded receiver's span counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_stats: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FailingTrace {
    pub trace_id: String,
    pub kind: String,
    pub outcome: String,
    pub failures: Vec<Failure>,
}

impl TraceReport {
    pub fn new(source: String, judged: &[Judged], kind_names: &[String]) -> Self {
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
            failed_checks,
            failing,
            source_stats: None,
        }
    }
}
