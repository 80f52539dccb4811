//! A `/metrics` page in the Prometheus text format.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::fuzzing::exposition(data);
});
