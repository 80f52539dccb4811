//! A W3C `traceparent` (and, after a newline, a `tracestate`) as both services read it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    engine::telemetry::fuzzing::traceparent(data);
});
