//! An answer of Jaeger's v3 query API.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::fuzzing::jaeger(data, true);
});
