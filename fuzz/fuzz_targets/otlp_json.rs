//! An OTLP/HTTP JSON export body (gzipped when it starts so), decoded and stored.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::fuzzing::otlp(data, true);
});
