//! The traces the harness asked for, and the counters of everything else: spans of wanted traces
//! are kept up to a limit until the verifier releases them, all others counted and dropped, so
//! memory stays bounded whatever the services send and however long the run.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};

use super::super::{Span, Trace, TraceId};
use super::convert::{SpanIds, convert, resource_attributes, service_name};
use super::{ReceiverConfig, ReceiverStats};

/// Lock shards for the trace store, so that registering traces from the load path and storing
/// exported spans rarely wait for each other.
const SHARDS: usize = 16;

#[derive(Default)]
struct Counters {
    batches: AtomicU64,
    spans_received: AtomicU64,
    spans_kept: AtomicU64,
    spans_unwanted: AtomicU64,
    spans_over_limit: AtomicU64,
    spans_rejected: AtomicU64,
    wants_refused: AtomicU64,
    rejected_requests: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> ReceiverStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ReceiverStats {
            batches: read(&self.batches),
            spans_received: read(&self.spans_received),
            spans_kept: read(&self.spans_kept),
            spans_unwanted: read(&self.spans_unwanted),
            spans_over_limit: read(&self.spans_over_limit),
            spans_rejected: read(&self.spans_rejected),
            wants_refused: read(&self.wants_refused),
            rejected_requests: read(&self.rejected_requests),
        }
    }
}

/// What one export request amounted to, added to the counters once per batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct BatchTally {
    received: u64,
    kept: u64,
    unwanted: u64,
    over_limit: u64,
    rejected: u64,
}

/// OTLP's partial success tells the exporter about spans it must not retry.
pub(super) fn export_response(tally: BatchTally) -> ExportTraceServiceResponse {
    let partial_success = (tally.rejected > 0).then(|| ExportTracePartialSuccess {
        rejected_spans: i64::try_from(tally.rejected).unwrap_or(i64::MAX),
        error_message: format!(
            "{} spans had a trace, span or parent id of the wrong length or all zeroes",
            tally.rejected
        ),
    });
    ExportTraceServiceResponse { partial_success }
}

/// The spans kept so far per wanted trace; an empty list marks a trace wanted but not yet seen.
type Shard = HashMap<TraceId, Vec<Span>>;

/// The most recent unwanted spans, by trace, oldest traces dropped first.
#[derive(Default)]
struct Held {
    traces: HashMap<TraceId, Vec<Span>>,
    /// Traces in the order their first held span came; a trace taken or dropped may linger
    /// here, and is skipped when its turn comes.
    order: VecDeque<TraceId>,
    count: usize,
    max: usize,
}

impl Held {
    fn hold(&mut self, span: Span) {
        let id = span.trace_id;
        let spans = self.traces.entry(id).or_default();
        if spans.is_empty() {
            self.order.push_back(id);
        }
        spans.push(span);
        self.count += 1;
        while self.count > self.max {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(dropped) = self.traces.remove(&oldest) {
                self.count -= dropped.len();
            }
        }
        // Ids of traces already taken would otherwise pile up in the order.
        if self.order.len() > 2 * self.max.max(self.traces.len()) {
            let traces = &self.traces;
            self.order.retain(|id| traces.contains_key(id));
        }
    }
}

pub(super) struct Store {
    shards: Box<[Mutex<Shard>]>,
    registered: AtomicUsize,
    max_traces: usize,
    max_spans_per_trace: usize,
    counters: Counters,
    /// Unwanted spans held for a later `want`; locked after a shard, never before.
    held: Option<Mutex<Held>>,
    pub(super) grpc_addr: SocketAddr,
    pub(super) http_addr: SocketAddr,
}

impl Store {
    pub(super) fn new(
        config: &ReceiverConfig,
        grpc_addr: SocketAddr,
        http_addr: SocketAddr,
    ) -> Self {
        Store {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            registered: AtomicUsize::new(0),
            max_traces: config.max_traces,
            max_spans_per_trace: config.max_spans_per_trace,
            counters: Counters::default(),
            held: (config.held_unwanted_spans > 0).then(|| {
                Mutex::new(Held {
                    max: config.held_unwanted_spans,
                    ..Held::default()
                })
            }),
            grpc_addr,
            http_addr,
        }
    }

    /// A panic while holding a shard leaves plain data behind, still consistent enough to read.
    fn shard(&self, id: TraceId) -> MutexGuard<'_, Shard> {
        // The low bits of a trace id are random, so they spread traces evenly.
        let index = (id.0 % SHARDS as u128) as usize;
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn want(&self, id: TraceId) -> bool {
        let mut shard = self.shard(id);
        if shard.contains_key(&id) {
            return true;
        }
        let reserved = self
            .registered
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.max_traces).then_some(n + 1)
            })
            .is_ok();
        if reserved {
            let mut spans = self.take_held(id);
            let over = spans.len().saturating_sub(self.max_spans_per_trace);
            spans.truncate(self.max_spans_per_trace);
            let add =
                |counter: &AtomicU64, n: usize| counter.fetch_add(n as u64, Ordering::Relaxed);
            add(&self.counters.spans_kept, spans.len());
            add(&self.counters.spans_over_limit, over);
            self.counters
                .spans_unwanted
                .fetch_sub((spans.len() + over) as u64, Ordering::Relaxed);
            shard.insert(id, spans);
        } else {
            self.counters.wants_refused.fetch_add(1, Ordering::Relaxed);
        }
        reserved
    }

    /// The held spans of `id`, taken out of the buffer.
    fn take_held(&self, id: TraceId) -> Vec<Span> {
        let Some(held) = &self.held else {
            return Vec::new();
        };
        let mut held = held.lock().unwrap_or_else(PoisonError::into_inner);
        let spans = held.traces.remove(&id).unwrap_or_default();
        held.count -= spans.len();
        spans
    }

    /// Drops `id`'s spans and frees its place under `max_traces`. Spans that arrive for it later
    /// are counted as unwanted, as for a trace never registered.
    pub(super) fn forget(&self, id: TraceId) {
        if self.shard(id).remove(&id).is_some() {
            // Only a registered trace is removed, so the count is at least one here.
            let _ = self
                .registered
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
    }

    /// How many traces are registered now: wanted and not yet forgotten.
    #[cfg(test)]
    pub(super) fn registered(&self) -> usize {
        self.registered.load(Ordering::Relaxed)
    }

    /// A snapshot of the counters; see [`ReceiverHandle::stats`](super::ReceiverHandle::stats).
    pub(super) fn stats(&self) -> ReceiverStats {
        self.counters.snapshot()
    }

    /// Counts an HTTP request answered with an error status.
    pub(super) fn reject_request(&self) {
        self.counters
            .rejected_requests
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The spans kept for `id`, or `None` when it is not wanted or none have arrived.
    pub(super) fn lookup(&self, id: TraceId) -> Option<Trace> {
        let shard = self.shard(id);
        shard
            .get(&id)
            .filter(|spans| !spans.is_empty())
            .map(|spans| Trace {
                spans: spans.clone(),
            })
    }

    pub(super) fn ingest(&self, request: ExportTraceServiceRequest) -> BatchTally {
        let mut tally = BatchTally::default();
        for resource_spans in request.resource_spans {
            let service = service_name(resource_spans.resource.as_ref());
            let resource = resource_attributes(resource_spans.resource.as_ref());
            for scope_spans in resource_spans.scope_spans {
                for span in scope_spans.spans {
                    tally.received += 1;
                    self.ingest_span(span, (&service, &resource), &mut tally);
                }
            }
        }
        let add = |counter: &AtomicU64, n| counter.fetch_add(n, Ordering::Relaxed);
        let counters = &self.counters;
        add(&counters.batches, 1);
        add(&counters.spans_received, tally.received);
        add(&counters.spans_kept, tally.kept);
        add(&counters.spans_unwanted, tally.unwanted);
        add(&counters.spans_over_limit, tally.over_limit);
        add(&counters.spans_rejected, tally.rejected);
        tally
    }

    fn ingest_span(
        &self,
        span: opentelemetry_proto::tonic::trace::v1::Span,
        (service, resource): (&str, &std::sync::Arc<[(String, crate::trace::AttrValue)]>),
        tally: &mut BatchTally,
    ) {
        let Some(ids) = SpanIds::of(&span) else {
            tally.rejected += 1;
            return;
        };
        let mut shard = self.shard(ids.trace);
        match shard.get_mut(&ids.trace) {
            None => {
                tally.unwanted += 1;
                if let Some(held) = &self.held {
                    let span = convert(span, ids, service, resource);
                    held.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .hold(span);
                }
            }
            Some(spans) if spans.len() >= self.max_spans_per_trace => tally.over_limit += 1,
            Some(spans) => {
                spans.push(convert(span, ids, service, resource));
                tally.kept += 1;
            }
        }
    }
}
