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

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use super::*;
    use crate::trace::{AttrValue, SourceError, SpanStatus};

    const UPDATE: TraceId = TraceId(0xa1);
    const SUBSCRIPTION: TraceId = TraceId(0xb2);
    const GATEWAY_SERVER: SpanId = SpanId(1);
    const ENGINE_SERVER: SpanId = SpanId(2);
    const PRODUCER: SpanId = SpanId(10);
    const CONSUMER: SpanId = SpanId(11);

    struct Fake(HashMap<TraceId, Trace>);

    impl TraceSource for Fake {
        fn describe(&self) -> String {
            "fake".to_owned()
        }

        async fn fetch(&self, id: TraceId) -> Result<Option<Trace>, SourceError> {
            Ok(self.0.get(&id).cloned())
        }
    }

    fn span(
        trace: TraceId,
        id: SpanId,
        parent: Option<SpanId>,
        kind: SpanKind,
        of: &StreamSpan,
    ) -> Span {
        Span {
            trace_id: trace,
            span_id: id,
            parent,
            service: of.service.clone(),
            name: of.name.clone(),
            kind,
            status: SpanStatus::Unset,
            attributes: BTreeMap::new(),
            start_unix_nanos: 0,
            end_unix_nanos: 1,
            links: Vec::new(),
            details: Default::default(),
        }
    }

    /// The subscription and one update traced as docs/streaming.md says, message id 7.
    fn system(chain: &StreamChain) -> HashMap<TraceId, Trace> {
        let id = |s: &mut Span| {
            s.attributes
                .insert(chain.message_id.clone(), AttrValue::String("7".to_owned()));
        };
        let mut producer = span(UPDATE, PRODUCER, None, SpanKind::Producer, &chain.producer);
        producer.links = vec![(SUBSCRIPTION, ENGINE_SERVER)];
        id(&mut producer);
        let mut consumer = span(
            UPDATE,
            CONSUMER,
            Some(PRODUCER),
            SpanKind::Consumer,
            &chain.consumer,
        );
        consumer.links = vec![(SUBSCRIPTION, GATEWAY_SERVER)];
        id(&mut consumer);
        let subscription = vec![
            span(
                SUBSCRIPTION,
                GATEWAY_SERVER,
                None,
                SpanKind::Server,
                &chain.consumer_link,
            ),
            span(
                SUBSCRIPTION,
                ENGINE_SERVER,
                Some(GATEWAY_SERVER),
                SpanKind::Server,
                &chain.producer_link,
            ),
        ];
        HashMap::from([
            (
                UPDATE,
                Trace {
                    spans: vec![producer, consumer],
                },
            ),
            (
                SUBSCRIPTION,
                Trace {
                    spans: subscription,
                },
            ),
        ])
    }

    async fn judged(traces: HashMap<TraceId, Trace>) -> StreamTraceReport {
        let mut stats = StreamStats::new(["sub".to_owned()]);
        stats.traced.push(TracedUpdate {
            kind: 0,
            traceparent: format!("00-{UPDATE}-{CONSUMER}-01"),
            sequence: Some(7),
        });
        let checks = StreamChecks {
            sample: 10,
            timeout: Duration::from_millis(50),
        };
        let stop = CancellationToken::new();
        let names = ["sub".to_owned()];
        check(
            &Fake(traces),
            &checks,
            &crate::bundled::stream::chain(),
            &stats,
            &names,
            &stop,
        )
        .await
    }

    fn failed(report: &StreamTraceReport) -> Vec<&str> {
        report.failed_checks.keys().map(String::as_str).collect()
    }

    #[tokio::test]
    async fn the_documented_chain_passes() {
        let chain = crate::bundled::stream::chain();
        let report = judged(system(&chain)).await;
        assert_eq!(
            (report.sampled, report.found, report.passed),
            (1, 1, 1),
            "{report:?}"
        );
    }

    #[tokio::test]
    async fn each_broken_part_of_the_chain_is_named() {
        let chain = crate::bundled::stream::chain();
        // The consumer starts its own trace: a root, no producer.
        let mut traces = system(&chain);
        let spans = &mut traces.get_mut(&UPDATE).expect("update").spans;
        spans.retain(|s| s.span_id == CONSUMER);
        spans[0].parent = None;
        let report = judged(traces).await;
        assert_eq!(failed(&report), ["producer"], "{report:?}");
        assert!(report.failing[0].failures[0].1.contains("is a root"));
        // Another message id on the producer.
        let mut traces = system(&chain);
        let producer = traces
            .get_mut(&UPDATE)
            .expect("update")
            .spans
            .iter_mut()
            .find(|s| s.span_id == PRODUCER)
            .expect("producer");
        producer
            .attributes
            .insert(chain.message_id.clone(), AttrValue::String("8".to_owned()));
        assert_eq!(failed(&judged(traces).await), ["message id"]);
        // The consumer's link goes nowhere known.
        let mut traces = system(&chain);
        traces
            .get_mut(&UPDATE)
            .expect("update")
            .spans
            .iter_mut()
            .find(|s| s.span_id == CONSUMER)
            .expect("consumer")
            .links = vec![(TraceId(0xdead), SpanId(5))];
        assert_eq!(failed(&judged(traces).await), ["links"]);
        // The update's spans never arrive.
        let mut traces = system(&chain);
        traces.remove(&UPDATE);
        let report = judged(traces).await;
        assert_eq!((failed(&report), report.found), (vec!["consumer"], 0));
    }
}
