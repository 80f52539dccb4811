//! The bundled services' span counters, for the span accounting of [`crate::metrics::spans`]:
//! both services expose them (`otel_spans_*`, see docs/verification.md) whenever they export spans,
//! so a service of this system without them is a failure, not a skip.

use engine::telemetry::counting::names;

use crate::metrics::spans::CounterNames;

/// The names under which the gateway and the engine expose their span counters.
pub const COUNTERS: CounterNames = CounterNames {
    ended: const_total::ENDED,
    dropped: const_total::DROPPED,
    dropped_reason: ("reason", "queue_full"),
    exported: const_total::EXPORTED,
    export_failed: const_total::EXPORT_FAILED,
    pending: names::PENDING,
    exporting: names::EXPORTING,
    capacity: names::QUEUE_CAPACITY,
};

/// The counters as scraped: the Prometheus text format appends `_total` to a counter's name.
mod const_total {
    pub(super) const ENDED: &str = "otel_spans_ended_total";
    pub(super) const DROPPED: &str = "otel_spans_dropped_total";
    pub(super) const EXPORTED: &str = "otel_spans_exported_total";
    pub(super) const EXPORT_FAILED: &str = "otel_spans_export_failed_total";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scraped_names_are_the_services_names_with_total() {
        for (scraped, exposed) in [
            (COUNTERS.ended, names::ENDED),
            (COUNTERS.dropped, names::DROPPED),
            (COUNTERS.exported, names::EXPORTED),
            (COUNTERS.export_failed, names::EXPORT_FAILED),
        ] {
            assert_eq!(scraped, format!("{exposed}_total"));
        }
    }
}
