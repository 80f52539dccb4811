//! Entry points for the fuzz targets in `fuzz/`, built only under `cfg(fuzzing)` (which
//! cargo-fuzz sets): they take raw bytes and panic only when a property of the parser fails.

use axum::http::{HeaderMap, HeaderValue};
use opentelemetry::trace::{SpanContext, TraceState};
use tonic::metadata::{MetadataMap, MetadataValue};

use super::{ids, propagation};

/// A `traceparent` value, then optionally a newline and a `tracestate` value, read by the parser
/// and through both services' carriers (the gateway's HTTP headers, the engine's gRPC metadata).
/// What is accepted must write back as the same lowercase text (version 00, the sampled flag
/// only), and every way in must agree on it.
pub fn traceparent(data: &[u8]) {
    let (parent, state) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], Some(&data[at + 1..])),
        None => (data, None),
    };
    let direct = std::str::from_utf8(parent)
        .ok()
        .and_then(|text| ids::parse_traceparent(text, TraceState::default()));
    if let Some(sc) = &direct {
        written_back_as_read(parent, sc);
    }

    let mut headers = HeaderMap::new();
    let mut metadata = MetadataMap::new();
    for (key, value) in [("traceparent", Some(parent)), ("tracestate", state)] {
        let Some(value) = value else { continue };
        if let Ok(header) = HeaderValue::from_bytes(value) {
            headers.insert(key, header);
        }
        if let Ok(entry) = MetadataValue::try_from(value) {
            metadata.insert(key, entry);
        }
    }
    let ids_of = |sc: &SpanContext| (sc.trace_id(), sc.span_id(), sc.trace_flags());
    let from_headers = propagation::extract(&headers);
    let from_metadata = propagation::extract(&metadata);
    // A carrier refuses some bytes the parser is given (control characters), so it may read
    // nothing where the parser read a context; never another context.
    for read in [&from_headers, &from_metadata] {
        if let Some(sc) = read {
            assert_eq!(
                Some(ids_of(sc)),
                direct.as_ref().map(ids_of),
                "a carrier and the parser disagree"
            );
        }
    }
    // Where both carriers hold the same values, they read the same context, state included.
    let same = |key: &'static str| {
        headers.get(key).map(HeaderValue::as_bytes)
            == metadata.get(key).map(|value| value.as_encoded_bytes())
    };
    if same("traceparent") && same("tracestate") {
        assert_eq!(from_headers, from_metadata, "the two carriers disagree");
    }
}

/// `sc` was read from `parent`: written back, it is `parent` trimmed, as version 00 with only the
/// sampled flag; and that text reads back as `sc`.
fn written_back_as_read(parent: &[u8], sc: &SpanContext) {
    let read = String::from_utf8_lossy(parent);
    let read = read.trim();
    // Accepted, so its first 55 bytes are lowercase hex digits and dashes.
    let flags = u8::from_str_radix(&read[53..55], 16).expect("accepted flags are hex");
    let written = ids::traceparent(sc);
    let expected = format!("00-{}-{:02x}", &read[3..52], flags & 1);
    assert_eq!(written.as_str(), expected, "from {read:?}");
    if read.len() == 55 && read.starts_with("00-") && flags <= 1 {
        assert_eq!(written.as_str(), read, "version 00 writes back as read");
    }
    let again = ids::parse_traceparent(written.as_str(), TraceState::default())
        .expect("what was written reads back");
    assert_eq!(
        (again.trace_id(), again.span_id(), again.trace_flags()),
        (sc.trace_id(), sc.span_id(), sc.trace_flags())
    );
}
