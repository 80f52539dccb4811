//! An answer of Jaeger's v1 query API.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::fuzzing::jaeger(data, false);
});
