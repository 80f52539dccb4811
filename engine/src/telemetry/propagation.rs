//! W3C trace context over gRPC metadata: read through the SDK's propagator, written directly.

use opentelemetry::propagation::Extractor;
use opentelemetry::trace::SpanContext;
use tonic::metadata::{MetadataMap, MetadataValue};

use super::ids;

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

pub struct MetadataExtractor<'a>(pub &'a MetadataMap);

impl Extractor for MetadataExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|key| match key {
                tonic::metadata::KeyRef::Ascii(key) => Some(key.as_str()),
                tonic::metadata::KeyRef::Binary(_) => None,
            })
            .collect()
    }
}

/// Writes the W3C context of `sc` into outgoing gRPC metadata: `traceparent`, and `tracestate`
/// when it holds any entry (an empty one carries nothing and is left out).
///
/// `traceparent` is sent as never indexed in HPACK. Its value is new on every request, so
/// indexing it only makes the encoder and decoder insert an entry that is never used again, and
/// search the growing run of stale `traceparent` entries for a match on every request.
pub fn inject_metadata(sc: &SpanContext, metadata: &mut MetadataMap) {
    if !sc.is_valid() {
        return;
    }
    if let Ok(mut value) = MetadataValue::try_from(ids::traceparent(sc).as_bytes()) {
        value.set_sensitive(true);
        metadata.insert(TRACEPARENT, value);
    }
    let state = sc.trace_state().header();
    if !state.is_empty() {
        // A state the SDK accepted is valid ASCII; anything else is dropped rather than sent
        // malformed.
        if let Ok(value) = MetadataValue::try_from(state) {
            metadata.insert(TRACESTATE, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::TraceContextExt;
    use opentelemetry_sdk::propagation::TraceContextPropagator;

    #[test]
    fn traceparent_round_trips_through_metadata() {
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut incoming = MetadataMap::new();
        incoming.insert("traceparent", traceparent.parse().expect("ascii"));
        let propagator = TraceContextPropagator::new();
        let cx = propagator.extract(&MetadataExtractor(&incoming));
        assert_eq!(
            cx.span().span_context().trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );

        let mut outgoing = MetadataMap::new();
        inject_metadata(&cx.span().span_context().clone(), &mut outgoing);
        assert_eq!(
            outgoing.get("traceparent").and_then(|v| v.to_str().ok()),
            Some(traceparent)
        );
        assert!(
            outgoing.get("tracestate").is_none(),
            "an empty state is left out"
        );
    }

    #[test]
    fn traceparent_is_never_indexed_and_a_state_goes_along() {
        let sc = SpanContext::new(
            opentelemetry::trace::TraceId::from(7_u128),
            opentelemetry::trace::SpanId::from(9_u64),
            opentelemetry::trace::TraceFlags::SAMPLED,
            false,
            "vendor=abc".parse().expect("a valid tracestate"),
        );
        let mut outgoing = MetadataMap::new();
        inject_metadata(&sc, &mut outgoing);
        let traceparent = outgoing.get("traceparent").expect("written");
        assert!(traceparent.is_sensitive(), "sent as never indexed");
        assert_eq!(
            outgoing.get("tracestate").and_then(|v| v.to_str().ok()),
            Some("vendor=abc")
        );

        let mut untouched = MetadataMap::new();
        inject_metadata(&SpanContext::empty_context(), &mut untouched);
        assert!(untouched.is_empty(), "an invalid context writes nothing");
    }
}
