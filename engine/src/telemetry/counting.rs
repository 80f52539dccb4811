//! Exact span accounting: every sampled span a service ends is either exported, dropped because
//! the batch queue was full, lost in an export that failed, or still pending. The counts are
//! exposed as Prometheus metrics so that a harness can tell where spans went missing.
//!
//! The SDK's `BatchSpanProcessor` drops spans silently when its queue is full and keeps its own
//! drop count private, so the queue limit is enforced here, in front of it: a span is admitted only
//! while fewer than `OTEL_BSP_MAX_QUEUE_SIZE` admitted spans await the exporter. The processor's
//! channel has that same capacity and never holds more than this count, so it never drops a span
//! itself, and every drop is counted. Each count is one relaxed atomic add on the span's end.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Span, SpanData, SpanExporter, SpanProcessor,
};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// The SDK's default for `OTEL_BSP_MAX_QUEUE_SIZE`.
const DEFAULT_MAX_QUEUE_SIZE: usize = 2048;

/// The span counters of one service, shared by the processor, the exporter and the metrics.
#[derive(Debug, Default)]
pub struct SpanCounts {
    ended: AtomicU64,
    dropped_queue_full: AtomicU64,
    exported: AtomicU64,
    export_failed: AtomicU64,
    /// Admitted to the queue and not yet handed to the exporter.
    queued: AtomicUsize,
    /// Inside an export call.
    exporting: AtomicU64,
    capacity: usize,
}

/// One reading of [`SpanCounts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanTally {
    /// Sampled spans ended.
    pub ended: u64,
    /// Dropped because the batch queue was full.
    pub dropped_queue_full: u64,
    /// Handed to the exporter in a batch it delivered.
    pub exported: u64,
    /// Handed to the exporter in a batch it failed to deliver.
    pub export_failed: u64,
    /// Ended but neither exported, dropped nor failed yet: queued or being exported.
    pub pending: u64,
    /// Inside an export call: while it is 0, a collector has counted every span exported.
    pub exporting: u64,
    /// The batch queue's capacity (`OTEL_BSP_MAX_QUEUE_SIZE`).
    pub capacity: u64,
}

impl SpanCounts {
    fn with_capacity(capacity: usize) -> Self {
        SpanCounts {
            capacity,
            ..SpanCounts::default()
        }
    }

    /// The counters now. Read one by one: a span ending meanwhile may show as pending.
    pub fn tally(&self) -> SpanTally {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        // Outcomes first, then `ended`, so that `pending` is never negative.
        let dropped_queue_full = read(&self.dropped_queue_full);
        let exported = read(&self.exported);
        let export_failed = read(&self.export_failed);
        let ended = read(&self.ended);
        SpanTally {
            exporting: read(&self.exporting),
            ended,
            dropped_queue_full,
            exported,
            export_failed,
            pending: ended.saturating_sub(dropped_queue_full + exported + export_failed),
            capacity: self.capacity as u64,
        }
    }

    /// Admits one span to the queue, or counts it dropped when the queue is full.
    fn admit(&self) -> bool {
        self.ended.fetch_add(1, Ordering::Relaxed);
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            self.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }
}

/// `OTEL_BSP_MAX_QUEUE_SIZE` as the SDK reads it: a whole number, else the default.
fn max_queue_size(value: Option<&str>) -> usize {
    value
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(DEFAULT_MAX_QUEUE_SIZE)
}

/// The batch span processor for `exporter` (configured by `OTEL_BSP_*`), counting every span into
/// the returned [`SpanCounts`].
pub(super) fn counting_batch(
    exporter: impl SpanExporter + 'static,
) -> (CountingProcessor, Arc<SpanCounts>) {
    let capacity = max_queue_size(std::env::var("OTEL_BSP_MAX_QUEUE_SIZE").ok().as_deref());
    counting_batch_with(exporter, capacity)
}

fn counting_batch_with(
    exporter: impl SpanExporter + 'static,
    capacity: usize,
) -> (CountingProcessor, Arc<SpanCounts>) {
    let counts = Arc::new(SpanCounts::with_capacity(capacity));
    let exporter = CountingExporter {
        inner: exporter,
        counts: Arc::clone(&counts),
    };
    // The environment's other settings stand; the queue size is the one admission enforces.
    let config = BatchConfigBuilder::default()
        .with_max_queue_size(capacity)
        .build();
    let inner = BatchSpanProcessor::builder(exporter)
        .with_batch_config(config)
        .build();
    (
        CountingProcessor {
            inner,
            counts: Arc::clone(&counts),
        },
        counts,
    )
}

/// The SDK's batch processor behind an admission that counts what it lets through.
#[derive(Debug)]
pub(super) struct CountingProcessor {
    inner: BatchSpanProcessor,
    counts: Arc<SpanCounts>,
}

impl SpanProcessor for CountingProcessor {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if self.counts.admit() {
            self.inner.on_end(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The service's exporter, counting each batch as delivered or failed.
struct CountingExporter<E> {
    inner: E,
    counts: Arc<SpanCounts>,
}

impl<E: fmt::Debug> fmt::Debug for CountingExporter<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountingExporter")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<E: SpanExporter> SpanExporter for CountingExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len();
        // Out of the queue: room for as many new spans.
        self.counts.queued.fetch_sub(n, Ordering::AcqRel);
        self.counts.exporting.fetch_add(n as u64, Ordering::Relaxed);
        let result = self.inner.export(batch).await;
        let outcome = match result {
            Ok(()) => &self.counts.exported,
            Err(_) => &self.counts.export_failed,
        };
        outcome.fetch_add(n as u64, Ordering::Relaxed);
        self.counts.exporting.fetch_sub(n as u64, Ordering::Relaxed);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The metric names, documented in docs/verification.md for the harness that reads them.
pub mod names {
    /// Counter: sampled spans ended.
    pub const ENDED: &str = "otel_spans_ended";
    /// Counter, label `reason="queue_full"`: spans dropped before export.
    pub const DROPPED: &str = "otel_spans_dropped";
    /// Counter: spans in batches the exporter delivered.
    pub const EXPORTED: &str = "otel_spans_exported";
    /// Counter: spans in batches the exporter failed to deliver.
    pub const EXPORT_FAILED: &str = "otel_spans_export_failed";
    /// Gauge: spans ended but not yet exported, failed or dropped.
    pub const PENDING: &str = "otel_spans_pending";
    /// Gauge: spans inside an export call right now.
    pub const EXPORTING: &str = "otel_spans_exporting";
    /// Gauge: the batch queue's capacity.
    pub const QUEUE_CAPACITY: &str = "otel_spans_queue_capacity";
}

/// The counts as metrics, read at each scrape.
#[derive(Debug)]
pub(crate) struct SpanCountsCollector(pub(crate) Arc<SpanCounts>);

impl Collector for SpanCountsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let tally = self.0.tally();
        for (name, help, value) in [
            (
                names::ENDED,
                "Sampled spans ended, each handed to the batch span processor",
                tally.ended,
            ),
            (
                names::EXPORTED,
                "Spans in batches the exporter delivered (the collector acknowledged them)",
                tally.exported,
            ),
            (
                names::EXPORT_FAILED,
                "Spans in batches the exporter failed to deliver (unreachable, timed out or refused)",
                tally.export_failed,
            ),
        ] {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        let dropped = ConstCounter::new(tally.dropped_queue_full);
        let mut family = encoder.encode_descriptor(
            names::DROPPED,
            "Spans dropped before export, by reason: queue_full when OTEL_BSP_MAX_QUEUE_SIZE spans were already waiting",
            None,
            dropped.metric_type(),
        )?;
        dropped.encode(family.encode_family(&[("reason", "queue_full")])?)?;
        for (name, help, value) in [
            (
                names::PENDING,
                "Spans ended but not yet exported, failed or dropped: queued or being exported",
                tally.pending,
            ),
            (
                names::EXPORTING,
                "Spans inside an export call now: while it is 0, the collector has counted every span exported",
                tally.exporting,
            ),
            (
                names::QUEUE_CAPACITY,
                "The batch span queue's capacity (OTEL_BSP_MAX_QUEUE_SIZE)",
                tally.capacity,
            ),
        ] {
            let gauge = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
