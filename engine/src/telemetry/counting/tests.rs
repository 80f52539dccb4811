use std::sync::{Condvar, Mutex};

use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::error::OTelSdkError;
use opentelemetry_sdk::trace::SdkTracerProvider;

use super::*;

/// An exporter that holds every export until its gate opens, then delivers or fails it.
#[derive(Debug, Clone)]
struct Gated {
    open: Arc<(Mutex<bool>, Condvar)>,
    fail: bool,
    received: Arc<AtomicU64>,
}

impl Gated {
    fn new(open: bool, fail: bool) -> Self {
        Gated {
            open: Arc::new((Mutex::new(open), Condvar::new())),
            fail,
            received: Arc::default(),
        }
    }

    fn open(&self) {
        let (lock, signal) = &*self.open;
        *lock.lock().expect("gate") = true;
        signal.notify_all();
    }
}

impl SpanExporter for Gated {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let (lock, signal) = &*self.open;
        let mut open = lock.lock().expect("gate");
        while !*open {
            open = signal.wait(open).expect("gate");
        }
        drop(open);
        if self.fail {
            return Err(OTelSdkError::InternalFailure("refused".into()));
        }
        self.received
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

fn provider(exporter: Gated, capacity: usize) -> (SdkTracerProvider, Arc<SpanCounts>) {
    let (processor, counts) = counting_batch_with(exporter, capacity);
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .build();
    (provider, counts)
}

fn end_spans(provider: &SdkTracerProvider, n: usize) {
    let tracer = provider.tracer("test");
    for _ in 0..n {
        tracer.start("span").end();
    }
}

#[test]
fn a_full_queue_drops_and_counts_every_span_it_drops() {
    let exporter = Gated::new(false, false);
    let (provider, counts) = provider(exporter.clone(), 2);
    end_spans(&provider, 50);
    let held = counts.tally();
    assert_eq!(held.ended, 50);
    // At most the queue (2) plus one batch being exported (2) got through.
    assert!(held.dropped_queue_full >= 46, "{held:?}");
    assert_eq!(
        held.pending + held.dropped_queue_full,
        50,
        "nothing exported yet: {held:?}"
    );
    exporter.open();
    provider.force_flush().expect("flush");
    let settled = counts.tally();
    assert_eq!(settled.pending, 0, "{settled:?}");
    assert_eq!(
        settled.exported + settled.dropped_queue_full,
        settled.ended,
        "{settled:?}"
    );
    assert_eq!(
        settled.exported,
        exporter.received.load(Ordering::Relaxed),
        "every span counted exported reached the exporter, and no other"
    );
    assert_eq!(settled.capacity, 2);
}

#[test]
fn a_queue_with_room_drops_nothing() {
    let exporter = Gated::new(true, false);
    let (provider, counts) = provider(exporter.clone(), 2048);
    end_spans(&provider, 300);
    provider.force_flush().expect("flush");
    let tally = counts.tally();
    assert_eq!(
        tally,
        SpanTally {
            ended: 300,
            dropped_queue_full: 0,
            exported: 300,
            export_failed: 0,
            pending: 0,
            exporting: 0,
            capacity: 2048,
        }
    );
    assert_eq!(exporter.received.load(Ordering::Relaxed), 300);
}

#[test]
fn a_failed_export_counts_its_spans_as_failed() {
    let (provider, counts) = provider(Gated::new(true, true), 2048);
    end_spans(&provider, 7);
    let _ = provider.force_flush();
    let tally = counts.tally();
    assert_eq!(
        (tally.ended, tally.export_failed, tally.exported),
        (7, 7, 0)
    );
    assert_eq!(tally.pending, 0);
}

#[test]
fn unsampled_spans_are_not_counted() {
    let (processor, counts) = counting_batch_with(Gated::new(true, false), 2048);
    let provider = SdkTracerProvider::builder()
        .with_sampler(opentelemetry_sdk::trace::Sampler::AlwaysOff)
        .with_span_processor(processor)
        .build();
    end_spans(&provider, 5);
    provider.force_flush().expect("flush");
    assert_eq!(counts.tally().ended, 0);
}

#[test]
fn the_queue_size_is_read_as_the_sdk_reads_it() {
    assert_eq!(max_queue_size(None), DEFAULT_MAX_QUEUE_SIZE);
    assert_eq!(max_queue_size(Some("1")), 1);
    assert_eq!(max_queue_size(Some("4096")), 4096);
    for bad in ["", "x", "-1", " 2"] {
        assert_eq!(max_queue_size(Some(bad)), DEFAULT_MAX_QUEUE_SIZE, "{bad:?}");
    }
}

#[test]
fn the_counts_are_exposed_as_prometheus_metrics() {
    let counts = Arc::new(SpanCounts::with_capacity(4));
    for _ in 0..6 {
        if counts.admit() {
            // Handed to an exporter that delivered it.
            counts.queued.fetch_sub(1, Ordering::AcqRel);
            counts.exported.fetch_add(1, Ordering::Relaxed);
        }
    }
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(SpanCountsCollector(Arc::clone(&counts))));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
    for line in [
        "otel_spans_ended_total 6",
        "otel_spans_exported_total 6",
        "otel_spans_export_failed_total 0",
        "otel_spans_dropped_total{reason=\"queue_full\"} 0",
        "otel_spans_pending 0",
        "otel_spans_exporting 0",
        "otel_spans_queue_capacity 4",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
    }
}
