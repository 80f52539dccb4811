//! Trace and span ids as lowercase hex: written into buffers on the stack, and read from a W3C
//! `traceparent`.
//!
//! Every traced request writes ids several times: into the `traceparent` it sends on, into its
//! `X-Trace-ID` header and into each log line. `core::fmt`'s `{:032x}` (what the ids' `Display`
//! uses) costs about a thousand instructions per id and a `String` to hold it; a table lookup per
//! nibble costs a few dozen and no allocation. Reading is the same story: the SDK's propagator
//! splits the header into a `Vec`, scans it for capitals three times and parses each id with
//! `from_str_radix`, about 3,500 instructions per request in the engine.

use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

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

/// The remote span context in a W3C `traceparent` value, with `state` as its `tracestate`, or
/// `None` when the value is not one the specification (Trace Context, level 1) accepts: two
/// lowercase hex digits of version other than `ff`, then `-`, 32 lowercase hex digits of trace id
/// and 16 of parent id, neither all zeros, and 2 of flags, separated by `-`; exactly that for
/// version 00, and for a later version either that or that followed by `-` and more. Only the
/// sampled flag is kept, as version 00 defines no other.
pub fn parse_traceparent(value: &str, state: TraceState) -> Option<SpanContext> {
    let value = value.trim().as_bytes();
    let dashes_at = [2, 35, 52];
    if value.len() < 55 || dashes_at.iter().any(|&i| value[i] != b'-') {
        return None;
    }
    let version = read_hex::<1>(&value[..2])?[0];
    let extended = value.len() > 55;
    if version == 0xff || (version == 0 && extended) || (extended && value[55] != b'-') {
        return None;
    }
    let trace_id = TraceId::from_bytes(read_hex::<16>(&value[3..35])?);
    let span_id = SpanId::from_bytes(read_hex::<8>(&value[36..52])?);
    let flags = TraceFlags::new(read_hex::<1>(&value[53..55])?[0]) & TraceFlags::SAMPLED;
    let sc = SpanContext::new(trace_id, span_id, flags, true, state);
    sc.is_valid().then_some(sc)
}

/// `N` bytes from `2 × N` lowercase hex digits.
fn read_hex<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0; N];
    if digits.len() != 2 * N {
        return None;
    }
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
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

    fn local_context(trace: u128, span: u64, flags: u8) -> SpanContext {
        SpanContext::new(
            TraceId::from(trace),
            SpanId::from(span),
            TraceFlags::new(flags),
            false,
            TraceState::default(),
        )
    }

    /// What the SDK's propagator reads from a lone `traceparent`, if anything.
    fn sdk_reads(value: &str) -> Option<SpanContext> {
        let carrier = HashMap::from([("traceparent".to_owned(), value.to_owned())]);
        let cx = TraceContextPropagator::new().extract(&carrier);
        let sc = cx.span().span_context().clone();
        sc.is_valid().then_some(sc)
    }

    #[test]
    fn what_is_written_reads_back_as_the_sdk_reads_it() {
        for (trace, span, flags) in samples() {
            let sc = local_context(trace, span, flags);
            let value = traceparent(&sc);
            let read = parse_traceparent(value.as_str(), TraceState::default());
            assert_eq!(read, sdk_reads(value.as_str()), "{value:?}");
            let read = read.expect("a valid header");
            assert_eq!(read.trace_id(), sc.trace_id());
            assert_eq!(read.span_id(), sc.span_id());
            assert_eq!(read.is_sampled(), flags & 1 == 1);
            assert!(read.is_remote());
        }
    }

    #[test]
    fn malformed_headers_are_refused_as_the_sdk_refuses_them() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert!(parse_traceparent(good, TraceState::default()).is_some());
        assert!(parse_traceparent(&format!("  {good}\t"), TraceState::default()).is_some());
        // A later version may carry more after the flags.
        let later = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what-follows";
        let read = parse_traceparent(later, TraceState::default()).expect("a later version");
        assert!(read.is_sampled());
        assert_eq!(Some(read), sdk_reads(later));
        for bad in [
            "",
            "00",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0X",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01é",
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
        ] {
            assert_eq!(
                parse_traceparent(bad, TraceState::default()),
                None,
                "{bad:?}"
            );
            assert_eq!(sdk_reads(bad), None, "the SDK refuses {bad:?} too");
        }
        // Where the SDK is laxer than the specification (ids of other lengths, a version 00 with
        // a trailing dash), the specification is followed.
        for lax in [
            "00-1-2-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            // A trace id of `1`, of 31 digits, or signed; a span id of `1`; flags and version of
            // one digit.
            "00-1-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-+4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-1-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(sdk_reads(lax).is_some(), "the SDK takes {lax:?}");
            assert_eq!(
                parse_traceparent(lax, TraceState::default()),
                None,
                "{lax:?}"
            );
        }
    }

    #[test]
    fn traceparent_is_what_the_sdk_propagator_writes() {
        let propagator = TraceContextPropagator::new();
        for (trace, span, flags) in samples() {
            let sc = local_context(trace, span, flags);
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
