//! Waiting for a trace to arrive complete. Spans reach a store seconds after the request that made
//! them (batch export, then the store's own ingestion), so a trace is looked up until it is
//! complete or a deadline passes, backing off so that many waits at once do not flood the source.

use std::time::Duration;

use tokio::time::Instant;

use super::{SourceError, Trace, TraceId, TraceSource};

/// The wait before the second attempt; it doubles after each attempt.
const FIRST_DELAY: Duration = Duration::from_millis(50);
/// The longest wait between attempts.
const MAX_DELAY: Duration = Duration::from_secs(1);

/// What a wait saw: enough to tell "never arrived" from "arrived incomplete" from "the source
/// kept failing", and how long arrival took.
#[derive(Debug)]
pub struct Polled {
    /// The last trace seen, complete or not; an answer of "not found" after a trace was seen
    /// does not erase it.
    pub trace: Option<Trace>,
    /// When the trace was first seen complete; `None` if it never was before the deadline.
    pub complete_at: Option<Instant>,
    /// The most recent source error, kept even when a later attempt succeeded.
    pub last_error: Option<SourceError>,
    pub(crate) attempts: u32,
}

/// Fetches `id` until `is_complete` holds or `deadline` passes, with exponential backoff (50 ms
/// doubling to 1 s). There is always at least one attempt, and a last one at the deadline; sleeps
/// never go past it, though a fetch under way then is let finish (sources bound their own requests).
/// Source errors do not end the wait: the source may recover before the deadline.
pub async fn wait_for<S: TraceSource>(
    source: &S,
    id: TraceId,
    deadline: Instant,
    is_complete: impl Fn(&Trace) -> bool,
) -> Polled {
    let mut polled = Polled {
        trace: None,
        complete_at: None,
        last_error: None,
        attempts: 0,
    };
    let mut delay = FIRST_DELAY;
    loop {
        polled.attempts += 1;
        match source.fetch(id).await {
            Ok(Some(trace)) => {
                let complete = is_complete(&trace);
                polled.trace = Some(trace);
                if complete {
                    polled.complete_at = Some(Instant::now());
                    return polled;
                }
            }
            Ok(None) => {}
            Err(error) => polled.last_error = Some(error),
        }
        let now = Instant::now();
        if now >= deadline {
            return polled;
        }
        tokio::time::sleep_until((now + delay).min(deadline)).await;
        delay = (delay * 2).min(MAX_DELAY);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, VecDeque};
    use std::sync::Mutex;

    use super::*;
    use crate::trace::{Span, SpanId, SpanKind, SpanStatus};

    const ID: TraceId = TraceId(0xabc);

    type Outcome = Result<Option<Trace>, SourceError>;

    /// Answers from a script, then repeats `then`; records when it was asked.
    struct Scripted {
        script: Mutex<VecDeque<Outcome>>,
        then: fn() -> Outcome,
        asked_at: Mutex<Vec<Instant>>,
    }

    impl Scripted {
        fn new(script: Vec<Outcome>, then: fn() -> Outcome) -> Self {
            Scripted {
                script: Mutex::new(script.into()),
                then,
                asked_at: Mutex::new(Vec::new()),
            }
        }

        /// Milliseconds from `start` of each attempt.
        fn offsets(&self, start: Instant) -> Vec<u128> {
            let asked = self.asked_at.lock().expect("lock");
            asked.iter().map(|at| (*at - start).as_millis()).collect()
        }
    }

    impl TraceSource for Scripted {
        fn describe(&self) -> String {
            "scripted".to_owned()
        }

        async fn fetch(&self, id: TraceId) -> Outcome {
            assert_eq!(id, ID);
            self.asked_at.lock().expect("lock").push(Instant::now());
            let next = self.script.lock().expect("lock").pop_front();
            // A fetch takes time on a real source; it must not shift the schedule.
            tokio::time::sleep(Duration::from_millis(1)).await;
            next.unwrap_or_else(self.then)
        }
    }

    fn trace(spans: u64) -> Trace {
        Trace {
            spans: (1..=spans)
                .map(|n| Span {
                    trace_id: ID,
                    span_id: SpanId(n),
                    parent: (n > 1).then_some(SpanId(1)),
                    service: "svc".to_owned(),
                    name: format!("op{n}"),
                    kind: SpanKind::Internal,
                    status: SpanStatus::Unset,
                    attributes: BTreeMap::new(),
                    start_unix_nanos: 0,
                    end_unix_nanos: 1,
                    links: Vec::new(),
                    details: Default::default(),
                })
                .collect(),
        }
    }

    fn four_spans(trace: &Trace) -> bool {
        trace.spans.len() == 4
    }

    fn down() -> SourceError {
        SourceError::Unreachable {
            url: "http://127.0.0.1:1/api/v3/traces/x".to_owned(),
            reason: "connection refused".to_owned(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn partial_then_complete() {
        let source = Scripted::new(
            vec![Ok(None), Ok(Some(trace(2))), Ok(Some(trace(3)))],
            || Ok(Some(trace(4))),
        );
        let start = Instant::now();
        let polled = wait_for(&source, ID, start + Duration::from_secs(10), four_spans).await;
        assert_eq!(polled.attempts, 4);
        assert_eq!(polled.trace.map(|t| t.spans.len()), Some(4));
        assert!(polled.last_error.is_none());
        // Backoff 50, 100, 200 ms between attempts, each of which takes 1 ms.
        assert_eq!(source.offsets(start), [0, 51, 152, 353]);
        assert_eq!(
            polled.complete_at.map(|at| (at - start).as_millis()),
            Some(354)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn never_complete_stops_at_the_deadline_with_the_partial_trace() {
        let source = Scripted::new(vec![Ok(None), Ok(Some(trace(3)))], || Ok(None));
        let start = Instant::now();
        let deadline = start + Duration::from_secs(3);
        let polled = wait_for(&source, ID, deadline, four_spans).await;
        assert!(polled.complete_at.is_none());
        assert_eq!(polled.trace.map(|t| t.spans.len()), Some(3));
        // Doubling up to the 1 s cap, then a last attempt at the deadline itself.
        assert_eq!(
            source.offsets(start),
            [0, 51, 152, 353, 754, 1555, 2556, 3000]
        );
        assert_eq!(polled.attempts, 8);
        assert_eq!((Instant::now() - start).as_millis(), 3001);
    }

    #[tokio::test(start_paused = true)]
    async fn errors_then_success() {
        let source = Scripted::new(vec![Err(down()), Err(down()), Ok(None)], || {
            Ok(Some(trace(4)))
        });
        let start = Instant::now();
        let polled = wait_for(&source, ID, start + Duration::from_secs(10), four_spans).await;
        assert_eq!(polled.attempts, 4);
        assert!(polled.complete_at.is_some());
        assert_eq!(polled.trace.map(|t| t.spans.len()), Some(4));
        let error = polled.last_error.map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("cannot reach http://127.0.0.1:1/api/v3/traces/x: connection refused")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_already_past_still_gets_one_attempt() {
        let source = Scripted::new(vec![], || Err(down()));
        let start = Instant::now();
        let polled = wait_for(&source, ID, start, four_spans).await;
        assert_eq!(polled.attempts, 1);
        assert!(polled.trace.is_none());
        assert!(matches!(
            polled.last_error,
            Some(SourceError::Unreachable { .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_trace_seen_is_kept_when_the_source_later_forgets_it() {
        let source = Scripted::new(vec![Ok(Some(trace(2)))], || Ok(None));
        let start = Instant::now();
        let polled = wait_for(&source, ID, start + Duration::from_millis(500), four_spans).await;
        assert_eq!(polled.trace.map(|t| t.spans.len()), Some(2));
        assert_eq!(source.offsets(start), [0, 51, 152, 353, 500]);
    }
}
