//! Trace and span ids as lowercase hex, written into buffers on the stack.
//!
//! Every traced request writes ids several times: into the `traceparent` it sends on, into its
//! `X-Trace-ID` header and into each log line. `core::fmt`'s `{:032x}` (what the ids' `Display`
//! uses) costs about a thousand instructions per id and a `String` to hold it; a table lookup per
//! nibble costs a few dozen and no allocation.

use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId};

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Fixed-length ASCII text on the stack.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Ascii<const L: usize>([u8; L]);

impl<const L: usize> Ascii<L> {
    pub fn as_str(&self) -> &str {
        // Only ever filled with ASCII, so this never fails.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl<const L: usize> std::fmt::Debug for Ascii<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The 32 hex digits of a trace id, as W3C Trace Context and Jaeger write it.
pub fn trace_id_hex(id: TraceId) -> Ascii<32> {
    let mut out = [0; 32];
    write_hex(&id.to_bytes(), &mut out);
    Ascii(out)
}

/// The 16 hex digits of a span id.
pub fn span_id_hex(id: SpanId) -> Ascii<16> {
    let mut out = [0; 16];
    write_hex(&id.to_bytes(), &mut out);
    Ascii(out)
}

/// The W3C `traceparent` value of `sc`, version 00: `00-{trace id}-{span id}-{flags}`, with only
/// the sampled flag kept, as the specification's version 00 defines.
pub fn traceparent(sc: &SpanContext) -> Ascii<55> {
    let mut out = [b'-'; 55];
    out[..2].copy_from_slice(b"00");
    write_hex(&sc.trace_id().to_bytes(), &mut out[3..35]);
    write_hex(&sc.span_id().to_bytes(), &mut out[36..52]);
    write_hex(
        &[(sc.trace_flags() & TraceFlags::SAMPLED).to_u8()],
        &mut out[53..55],
    );
    Ascii(out)
}

fn write_hex(bytes: &[u8], out: &mut [u8]) {
    for (byte, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0x0f)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::{TraceContextExt, TraceState};
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use std::collections::HashMap;

    /// Ids that exercise every nibble value, the ends of the range and leading zeros.
    fn samples() -> Vec<(u128, u64, u8)> {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut ids = vec![
            (1, 1, 0),
            (u128::MAX, u64::MAX, 0xff),
            (
                0x0123_4567_89ab_cdef_0000_0000_0000_0001,
                0x00f0_67aa_0ba9_02b7,
                1,
            ),
        ];
        for _ in 0..200 {
            let trace = (u128::from(next()) << 64) | u128::from(next());
            ids.push((trace.max(1), next().max(1), next() as u8));
        }
        ids
    }

    #[test]
    fn ids_read_as_their_display() {
        for (trace, span, _) in samples() {
            let (trace, span) = (TraceId::from(trace), SpanId::from(span));
            assert_eq!(trace_id_hex(trace).as_str(), trace.to_string());
            assert_eq!(span_id_hex(span).as_str(), span.to_string());
        }
    }

    #[test]
    fn traceparent_is_what_the_sdk_propagator_writes() {
        let propagator = TraceContextPropagator::new();
        for (trace, span, flags) in samples() {
            let sc = SpanContext::new(
                TraceId::from(trace),
                SpanId::from(span),
                TraceFlags::new(flags),
                false,
                TraceState::default(),
            );
            let mut carrier = HashMap::new();
            propagator.inject_context(
                &opentelemetry::Context::new().with_remote_span_context(sc.clone()),
                &mut carrier,
            );
            assert_eq!(
                Some(traceparent(&sc).as_str()),
                carrier.get("traceparent").map(String::as_str)
            );
        }
    }
}
