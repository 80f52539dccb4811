//! The trace checks of a stream load (`verify.streams`): for a sample of the traced updates the
//! load kept, the update's `traceparent` names its CONSUMER span; that span, its PRODUCER parent
//! in the same trace, the sequence both carry as message id, and the subscription SERVER spans
//! each links to are looked up in the trace source, waiting (bounded) for them to arrive.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::bundled::stream::{StreamChain, StreamSpan};
use crate::load::stream::{StreamStats, TracedUpdate};
use crate::result::{FailingUpdate, KEPT_FAILING, StreamTraceReport};
use crate::scenario::StreamChecks;
use crate::trace::poll::wait_for;
use crate::trace::{Span, SpanId, SpanKind, Trace, TraceId, TraceSource};

/// The checks, by the names the report counts failures under.
const CONSUMER: &str = "consumer";
const PRODUCER: &str = "producer";
const MESSAGE_ID: &str = "message id";
const LINKS: &str = "links";

/// Checks a sample of `stats.traced` against `chain` in `source`; every lookup ends by
/// `checks.timeout` from now, or at once after `stop`.
pub(super) async fn check<S: TraceSource>(
    source: &S,
    checks: &StreamChecks,
    chain: &StreamChain,
    stats: &StreamStats,
    kind_names: &[String],
    stop: &CancellationToken,
) -> StreamTraceReport {
    let deadline = Instant::now() + checks.timeout;
    let mut report = StreamTraceReport {
        source: source.describe(),
        kept: stats.traced.len() as u64,
        ..StreamTraceReport::default()
    };
    let mut lookup = Lookup {
        source,
        deadline,
        timeout: checks.timeout,
        stop,
        linked: HashMap::new(),
    };
    for update in sample(&stats.traced, checks.sample) {
        report.sampled += 1;
        let (found, failures) = judge(&mut lookup, chain, update).await;
        report.found += u64::from(found);
        if failures.is_empty() {
            report.passed += 1;
            continue;
        }
        for (check, _) in &failures {
            *report.failed_checks.entry(check.clone()).or_default() += 1;
        }
        if report.failing.len() < KEPT_FAILING {
            report.failing.push(FailingUpdate {
                kind: kind_names.get(update.kind).cloned().unwrap_or_default(),
                traceparent: update.traceparent.clone(),
                sequence: update.sequence,
                failures,
            });
        }
    }
    report
}

/// Up to `n` of `kept`, spread evenly over them (so over the run's connections and its length).
fn sample(kept: &[TracedUpdate], n: usize) -> impl Iterator<Item = &TracedUpdate> {
    let len = kept.len();
    let n = n.min(len);
    (0..n).map(move |i| &kept[i * len / n])
}

/// The trace source with the run's deadline, and the subscription traces already fetched.
struct Lookup<'a, S> {
    source: &'a S,
    deadline: Instant,
    /// What the deadline was set from, for messages.
    timeout: Duration,
    stop: &'a CancellationToken,
    linked: HashMap<TraceId, Trace>,
}

impl<S: TraceSource> Lookup<'_, S> {
    /// `id` once `done` holds of it, or as it was at the deadline (or at a stop).
    async fn trace(&self, id: TraceId, done: impl Fn(&Trace) -> bool) -> Option<Trace> {
        if self.stop.is_cancelled() {
            return self.source.fetch(id).await.ok().flatten();
        }
        tokio::select! {
            polled = wait_for(self.source, id, self.deadline, done) => polled.trace,
            () = self.stop.cancelled() => self.source.fetch(id).await.ok().flatten(),
        }
    }

    /// The span a link points to, waiting for it to arrive in its trace.
    async fn linked(&mut self, (trace, span): (TraceId, SpanId)) -> Option<Span> {
        let find = |t: &Trace| t.spans.iter().find(|s| s.span_id == span).cloned();
        if let Some(found) = self.linked.get(&trace).and_then(find) {
            return Some(found);
        }
        let fetched = self.trace(trace, |t| find(t).is_some()).await?;
        let found = find(&fetched);
        self.linked.insert(trace, fetched);
        found
    }
}

/// Whether the update's two message spans were found, and what failed, as `(check, detail)`.
async fn judge<S: TraceSource>(
    lookup: &mut Lookup<'_, S>,
    chain: &StreamChain,
    update: &TracedUpdate,
) -> (bool, Vec<(String, String)>) {
    let mut failures = Vec::new();
    let mut fail = |check: &str, detail: String| failures.push((check.to_owned(), detail));
    let Some((trace_id, consumer_id)) = traceparent(&update.traceparent) else {
        fail(
            CONSUMER,
            "the update's traceparent is no W3C traceparent".into(),
        );
        return (false, failures);
    };
    // Complete once the consumer is there and, if it has a parent, the parent too.
    let done = |t: &Trace| {
        let find = |id: SpanId| t.spans.iter().find(|s| s.span_id == id);
        find(consumer_id).is_some_and(|c| c.parent.is_none_or(|p| find(p).is_some()))
    };
    let trace = lookup.trace(trace_id, done).await.unwrap_or_default();
    let find = |id: SpanId| trace.spans.iter().find(|s| s.span_id == id);
    let Some(consumer) = find(consumer_id) else {
        fail(
            CONSUMER,
            format!(
                "no span {consumer_id} in trace {trace_id} within {}",
                wait_text(lookup)
            ),
        );
        return (false, failures);
    };
    if let Some(problem) = mismatch(consumer, SpanKind::Consumer, &chain.consumer) {
        fail(CONSUMER, problem);
    }
    let producer = match consumer.parent {
        None => {
            fail(
                PRODUCER,
                format!(
                    "the {} span is a root: no {} parent in its trace",
                    chain.consumer.name, chain.producer.name
                ),
            );
            None
        }
        Some(parent) => match find(parent) {
            None => {
                fail(
                    PRODUCER,
                    format!(
                        "its parent {parent} is not in trace {trace_id} within {}",
                        wait_text(lookup)
                    ),
                );
                None
            }
            Some(producer) => {
                if let Some(problem) = mismatch(producer, SpanKind::Producer, &chain.producer) {
                    fail(PRODUCER, format!("the parent: {problem}"));
                }
                Some(producer)
            }
        },
    };
    if let Some(sequence) = update.sequence {
        let wanted = sequence.to_string();
        for span in std::iter::once(consumer).chain(producer) {
            let id = span
                .attributes
                .get(&chain.message_id)
                .map(ToString::to_string);
            if id.as_deref() != Some(wanted.as_str()) {
                fail(
                    MESSAGE_ID,
                    format!(
                        "{} has {} = {}, the update's sequence is {wanted}",
                        span.name,
                        chain.message_id,
                        id.as_deref().unwrap_or("(none)")
                    ),
                );
            }
        }
    }
    let (consumer, producer) = (consumer.clone(), producer.cloned());
    let found = producer.is_some();
    let mut to_check = vec![(consumer, &chain.consumer_link)];
    to_check.extend(producer.map(|p| (p, &chain.producer_link)));
    for (span, wanted) in to_check {
        let mut linked = false;
        for link in span.links.iter().copied() {
            if let Some(target) = lookup.linked(link).await
                && mismatch(&target, SpanKind::Server, wanted).is_none()
            {
                linked = true;
                break;
            }
        }
        if !linked {
            fail(
                LINKS,
                format!(
                    "{} ({}) has no link to a {} server span {} ({} link(s))",
                    span.name,
                    span.service,
                    wanted.service,
                    wanted.name,
                    span.links.len()
                ),
            );
        }
    }
    (found, failures)
}

/// What is wrong with `span` as the chain's `wanted` span of `kind`, if anything.
fn mismatch(span: &Span, kind: SpanKind, wanted: &StreamSpan) -> Option<String> {
    (span.kind != kind || span.service != wanted.service || span.name != wanted.name).then(|| {
        format!(
            "expected a {kind} span {} from {}, found a {} span {} from {}",
            wanted.name, wanted.service, span.kind, span.name, span.service
        )
    })
}

fn wait_text<S>(lookup: &Lookup<'_, S>) -> String {
    format!("the {:?} of verify.streams.timeout", lookup.timeout)
}

/// The trace and span ids of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`).
fn traceparent(text: &str) -> Option<(TraceId, SpanId)> {
    let mut parts = text.split('-');
    let (_version, trace, span) = (parts.next()?, parts.next()?, parts.next()?);
    if trace.len() != 32 || span.len() != 16 {
        return None;
    }
    let trace: TraceId = trace.parse().ok()?;
    let span: SpanId = span.parse().ok()?;
    (trace.0 != 0 && span.0 != 0).then_some((trace, span))
}
