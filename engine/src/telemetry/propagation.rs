//! W3C trace context: read from any carrier (the gateway's HTTP headers, the engine's gRPC
//! metadata), written into gRPC metadata.

use std::borrow::Cow;

use axum::http::{HeaderMap, HeaderValue};
use opentelemetry::trace::{SpanContext, TraceState};
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};

use super::ids;

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

/// A request's fields as W3C Trace Context reads them: the gateway's HTTP headers, the engine's
/// gRPC metadata. Every value of a repeated field is kept, which the specification needs to tell
/// one `traceparent` from two.
pub trait Carrier {
    /// The values of the field `name` (lowercase), in the order they were received.
    fn values<'a>(&'a self, name: &'static str) -> impl Iterator<Item = &'a [u8]>;
}

impl Carrier for HeaderMap {
    fn values<'a>(&'a self, name: &'static str) -> impl Iterator<Item = &'a [u8]> {
        self.get_all(name).iter().map(HeaderValue::as_bytes)
    }
}

impl Carrier for MetadataMap {
    fn values<'a>(&'a self, name: &'static str) -> impl Iterator<Item = &'a [u8]> {
        self.get_all(name)
            .iter()
            .map(|value| value.as_encoded_bytes())
    }
}

/// The remote span context in `carrier`'s `traceparent`, with its `tracestate`, or `None` when
/// there is none to continue: no `traceparent`, one the specification refuses, or more than one
/// (which is ambiguous: the specification's test suite expects it ignored and a new trace).
pub fn extract(carrier: &impl Carrier) -> Option<SpanContext> {
    let mut traceparents = carrier.values(TRACEPARENT);
    let traceparent = traceparents.next()?;
    if traceparents.next().is_some() {
        return None;
    }
    let traceparent = std::str::from_utf8(traceparent).ok()?;
    ids::parse_traceparent(traceparent, trace_state(carrier))
}

/// The `tracestate` of one field or several, joined with commas as HTTP joins a repeated field.
/// A state that does not parse is dropped and the parent kept, as the SDK's propagator does.
fn trace_state(carrier: &impl Carrier) -> TraceState {
    let mut values = carrier.values(TRACESTATE);
    let Some(first) = values.next() else {
        return TraceState::default();
    };
    let mut joined = Cow::Borrowed(first);
    for more in values {
        let joined = joined.to_mut();
        joined.push(b',');
        joined.extend_from_slice(more);
    }
    std::str::from_utf8(&joined)
        .ok()
        .and_then(|state| state.parse().ok())
        .unwrap_or_default()
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
        let sc = extract(&incoming).expect("a valid parent");
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
        let sc = extract(&incoming).expect("a valid parent");
        assert_eq!(sc.trace_state().header(), "");
        incoming.remove("traceparent");
        assert_eq!(extract(&incoming), None);
    }

    #[test]
    fn a_repeated_traceparent_starts_a_new_trace_and_repeated_states_are_joined() {
        let one = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let other = "00-4bf92f3577b34da6a3ce929d0e0e4737-00f067aa0ba902b7-01";
        let mut headers = HeaderMap::new();
        headers.append(TRACEPARENT, HeaderValue::from_static(one));
        headers.append(TRACESTATE, HeaderValue::from_static("a=1"));
        headers.append(TRACESTATE, HeaderValue::from_static("b=2,c=3"));
        let sc = extract(&headers).expect("one traceparent");
        assert_eq!(sc.trace_state().header(), "a=1,b=2,c=3");

        // The same value twice is as ambiguous as two values: neither is continued.
        for second in [one, other] {
            let mut twice = headers.clone();
            twice.append(TRACEPARENT, HeaderValue::from_static(second));
            assert_eq!(extract(&twice), None, "{second}");
        }
        let mut metadata = MetadataMap::new();
        metadata.append(TRACEPARENT, MetadataValue::from_static(one));
        assert!(extract(&metadata).is_some());
        metadata.append(TRACEPARENT, MetadataValue::from_static(other));
        assert_eq!(extract(&metadata), None);

        // A value that is not text is refused as a whole, not skipped.
        let mut binary = HeaderMap::new();
        let not_text =
            HeaderValue::from_bytes(b"00-4bf92f3577b34da6a3ce929d0e0e4736-\xff").expect("obs-text");
        binary.append(TRACEPARENT, not_text.clone());
        assert_eq!(extract(&binary), None);
        let mut state_not_text = HeaderMap::new();
        state_not_text.append(TRACEPARENT, HeaderValue::from_static(one));
        state_not_text.append(TRACESTATE, not_text);
        let sc = extract(&state_not_text).expect("the parent is kept");
        assert_eq!(sc.trace_state().header(), "");
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
