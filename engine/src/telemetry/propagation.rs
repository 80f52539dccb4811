//! W3C trace context: read from any carrier (the gateway's HTTP headers, the engine's gRPC
//! metadata), written into gRPC metadata.

use opentelemetry::propagation::Extractor;
use opentelemetry::trace::SpanContext;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};

use super::ids;

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

/// The remote span context in `carrier`'s `traceparent`, with its `tracestate` (an unreadable
/// state is dropped and the parent kept, as the SDK's propagator does).
pub fn extract(carrier: &dyn Extractor) -> Option<SpanContext> {
    let traceparent = carrier.get(TRACEPARENT)?;
    let state = carrier
        .get(TRACESTATE)
        .and_then(|state| state.parse().ok())
        .unwrap_or_default();
    ids::parse_traceparent(traceparent, state)
}

/// Incoming gRPC metadata as a carrier to read the context from.
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
        // A key from a static name skips parsing the name on every request.
        metadata.insert(MetadataKey::from_static(TRACEPARENT), value);
    }
    let state = sc.trace_state().header();
    if !state.is_empty() {
        // A state the SDK accepted is valid ASCII; anything else is dropped rather than sent
        // malformed.
        if let Ok(value) = MetadataValue::try_from(state) {
            metadata.insert(MetadataKey::from_static(TRACESTATE), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_round_trips_through_metadata() {
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut incoming = MetadataMap::new();
        incoming.insert("traceparent", traceparent.parse().expect("ascii"));
        incoming.insert("tracestate", "vendor=abc,other=1".parse().expect("ascii"));
        let sc = extract(&MetadataExtractor(&incoming)).expect("a valid parent");
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(sc.trace_state().get("vendor"), Some("abc"));

        let mut outgoing = MetadataMap::new();
        inject_metadata(&sc, &mut outgoing);
        assert_eq!(
            outgoing.get("traceparent").and_then(|v| v.to_str().ok()),
            Some(traceparent)
        );
        assert_eq!(
            outgoing.get("tracestate").and_then(|v| v.to_str().ok()),
            Some("vendor=abc,other=1")
        );

        // A state that does not parse is dropped; the parent stays.
        incoming.insert("tracestate", "not a state".parse().expect("ascii"));
        let sc = extract(&MetadataExtractor(&incoming)).expect("a valid parent");
        assert_eq!(sc.trace_state().header(), "");
        incoming.remove("traceparent");
        assert_eq!(extract(&MetadataExtractor(&incoming)), None);
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
